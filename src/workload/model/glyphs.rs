//! The data set the project makes itself, and the prompt's meaning.
//!
//! A sample is one character of the 8x8 bitmap font `font8x8` drawn into a 32x32 RGB image
//! at a random scale (2.75x to 3.5x, so 22 to 28 pixels tall), centred up to 2 pixels off in
//! each direction, in a random light colour on a random darker one (at least 0.4 apart in
//! luminance). A first version placed glyphs anywhere they fit, from 2.25x, light on dark or
//! dark on light: after 2500 training steps its samples were glyph-like shapes of the wrong
//! glyph; the network had learnt what glyphs look like but not which is which (see `render`
//! for why). Near-centred glyphs also let the class lay out its shape at the U-Net's 4x4
//! bottleneck (see `unet`). The class is the character: digits and upper-case letters,
//! 36 in all. A prompt means the class of its first ASCII letter or digit, case folded
//! ("a red cat" draws an `A`); a prompt with none means "any glyph" (the null class).
//!
//! The same renderer gives the masks that [`glyph_scores`] matches a generated image against,
//! which is how tests and the training report tell whether a picture shows its glyph.

use font8x8::{BASIC_FONTS, UnicodeFonts};
use rand::Rng;

use super::unet::{CHANNELS, IMAGE_SIZE, NULL_CLASS, NUM_CLASSES};

/// Smallest and largest glyph scale (pixels per font pixel).
pub const SCALE_RANGE: (f32, f32) = (2.75, 3.5);
/// Largest distance, in pixels, of a glyph from the centred position on each axis.
pub const JITTER: f32 = 2.0;
/// Least luminance difference (0..1) between foreground and background.
const MIN_CONTRAST: f32 = 0.4;

/// The conditioning class of a prompt: its first ASCII letter or digit, upper-cased, or
/// [`NULL_CLASS`] when it has none.
pub fn prompt_class(prompt: &str) -> usize {
    prompt
        .chars()
        .find(char::is_ascii_alphanumeric)
        .and_then(char_class)
        .unwrap_or(NULL_CLASS)
}

/// `0-9` are classes 0 to 9, `A-Z` (or `a-z`) 10 to 35.
pub fn char_class(c: char) -> Option<usize> {
    let c = c.to_ascii_uppercase();
    match c {
        '0'..='9' => Some(c as usize - '0' as usize),
        'A'..='Z' => Some(10 + c as usize - 'A' as usize),
        _ => None,
    }
}

/// The character a class draws, `None` for the null class.
pub fn class_char(class: usize) -> Option<char> {
    match class {
        0..=9 => char::from_digit(class as u32, 10),
        10..NUM_CLASSES => char::from_u32('A' as u32 + (class - 10) as u32),
        _ => None,
    }
}

/// The 8x8 bitmap of a class: byte `row`, bit `col` (bit 0 is the leftmost pixel, as
/// font8x8 stores it).
fn bitmap(class: usize) -> [u8; 8] {
    class_char(class)
        .and_then(|c| BASIC_FONTS.get(c))
        .unwrap_or([0; 8])
}

/// Where a glyph sits: pixels per font pixel, and the top-left corner of its 8x8 cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    pub scale: f32,
    pub x: f32,
    pub y: f32,
}

/// Calls `ink(index)` for every pixel (`y * 32 + x`) the glyph covers at `placement`.
fn for_each_ink(class: usize, placement: Placement, mut ink: impl FnMut(usize)) {
    let rows = bitmap(class);
    for py in 0..IMAGE_SIZE {
        // Sample the glyph at the pixel's centre (nearest neighbour).
        let gy = ((py as f32 + 0.5 - placement.y) / placement.scale).floor();
        if !(0.0..8.0).contains(&gy) {
            continue;
        }
        let row = rows[gy as usize];
        for px in 0..IMAGE_SIZE {
            let gx = ((px as f32 + 0.5 - placement.x) / placement.scale).floor();
            if (0.0..8.0).contains(&gx) && row & (1 << gx as u32) != 0 {
                ink(py * IMAGE_SIZE + px);
            }
        }
    }
}

fn luminance(rgb: [f32; 3]) -> f32 {
    0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
}

/// One training sample for `class`: `3 * 32 * 32` values in `[-1, 1]`, channel-major.
pub fn render(class: usize, rng: &mut impl Rng) -> Vec<f32> {
    let scale = rng.random_range(SCALE_RANGE.0..=SCALE_RANGE.1);
    let room = IMAGE_SIZE as f32 - 8.0 * scale;
    let mut offset = || (room / 2.0 + rng.random_range(-JITTER..=JITTER)).clamp(0.0, room);
    let placement = Placement {
        scale,
        x: offset(),
        y: offset(),
    };
    // Two random colours with enough contrast; the lighter one draws the glyph. With either
    // way round equally likely, the average image of a class would be flat grey, so at high
    // noise (where the best prediction is that average) knowing the class would not lower
    // the loss at all and the class is learnt very slowly; a light glyph on a darker ground
    // makes the class's average a blurred glyph.
    let (fg, bg) = loop {
        let one: [f32; 3] = [rng.random(), rng.random(), rng.random()];
        let other: [f32; 3] = [rng.random(), rng.random(), rng.random()];
        let contrast = luminance(one) - luminance(other);
        if contrast >= MIN_CONTRAST {
            break (one, other);
        }
        if -contrast >= MIN_CONTRAST {
            break (other, one);
        }
    };
    let plane = IMAGE_SIZE * IMAGE_SIZE;
    let mut mask = vec![false; plane];
    for_each_ink(class, placement, |i| mask[i] = true);
    let mut out = vec![0.0; CHANNELS * plane];
    for (c, channel) in out.chunks_exact_mut(plane).enumerate() {
        for (value, &inked) in channel.iter_mut().zip(&mask) {
            let colour = if inked { fg[c] } else { bg[c] };
            *value = colour * 2.0 - 1.0;
        }
    }
    out
}

/// How much a 32x32 RGB image (bytes, row-major RGB) looks like each of the 36 glyphs:
/// for each class, the best Pearson correlation between the image's luminance and the
/// glyph's mask (1 on the glyph) over a grid of scales and all positions. 1 is a perfect
/// rendering of a light glyph on a darker ground, as the data set draws them.
pub fn glyph_scores(rgb: &[u8]) -> [f32; NUM_CLASSES] {
    let plane = IMAGE_SIZE * IMAGE_SIZE;
    let lum: Vec<f32> = (0..plane)
        .map(|i| match rgb.get(3 * i..3 * i + 3) {
            Some(p) => luminance([p[0] as f32, p[1] as f32, p[2] as f32]) / 255.0,
            None => 0.0,
        })
        .collect();
    let n = plane as f32;
    let mean = lum.iter().sum::<f32>() / n;
    let var = lum.iter().map(|l| (l - mean).powi(2)).sum::<f32>() / n;
    let mut scores = [0.0f32; NUM_CLASSES];
    if var <= 1e-8 {
        return scores; // a flat image resembles nothing
    }
    let sd = var.sqrt();
    for (class, score) in scores.iter_mut().enumerate() {
        for k in 0..6 {
            let scale = SCALE_RANGE.0 + k as f32 * (SCALE_RANGE.1 - SCALE_RANGE.0) / 5.0;
            let room = (IMAGE_SIZE as f32 - 8.0 * scale).floor() as usize;
            for y in 0..=room {
                for x in 0..=room {
                    let placement = Placement {
                        scale,
                        x: x as f32,
                        y: y as f32,
                    };
                    let (mut sum, mut count) = (0.0f32, 0usize);
                    for_each_ink(class, placement, |i| {
                        sum += lum[i];
                        count += 1;
                    });
                    if count == 0 || count == plane {
                        continue;
                    }
                    // Pearson correlation with a 0/1 mask: the difference of the means inside
                    // and outside, times sqrt(p (1 - p)), over the standard deviation.
                    let p = count as f32 / n;
                    let inside = sum / count as f32;
                    let outside = (mean * n - sum) / (n - count as f32);
                    let r = (inside - outside) * (p * (1.0 - p)).sqrt() / sd;
                    *score = score.max(r);
                }
            }
        }
    }
    scores
}

/// The class whose glyph an image resembles most (see [`glyph_scores`]).
pub fn classify(rgb: &[u8]) -> usize {
    let scores = glyph_scores(rgb);
    let mut best = 0;
    for (class, score) in scores.iter().enumerate() {
        if *score > scores[best] {
            best = class;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn prompts_map_to_their_first_letter_or_digit() {
        assert_eq!(prompt_class("a red cat"), char_class('A').unwrap_or(99));
        assert_eq!(prompt_class("  --7 dwarfs"), 7);
        assert_eq!(prompt_class("Zebra"), 35);
        assert_eq!(prompt_class("!!! ..."), NULL_CLASS);
        assert_eq!(prompt_class("élan b"), 21); // 'é' is not ASCII: the first is 'l'
        for class in 0..NUM_CLASSES {
            let c = class_char(class).unwrap_or('?');
            assert_eq!(char_class(c), Some(class));
        }
    }

    #[test]
    fn a_rendered_sample_is_recognised_as_its_glyph() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut right = 0;
        for class in 0..NUM_CLASSES {
            let sample = render(class, &mut rng);
            let plane = IMAGE_SIZE * IMAGE_SIZE;
            let sample = &sample;
            let rgb: Vec<u8> = (0..plane)
                .flat_map(|i| {
                    (0..3).map(move |c| ((sample[c * plane + i] + 1.0) * 127.5).round() as u8)
                })
                .collect();
            if classify(&rgb) == class {
                right += 1;
            }
        }
        // Placements off the matching grid and look-alikes (0/O, 1/I) cost a few.
        assert!(right >= 30, "{right}/36 recognised");
    }
}
