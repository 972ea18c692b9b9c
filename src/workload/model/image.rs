//! The model's output: an 8-bit RGB image, and its PNG encoding (the "upload" step).

use super::ModelError;

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Image {
    /// Converts channel-major values in `[-1, 1]` (`[3, height, width]`, as the model makes
    /// them) to bytes; out-of-range values are clamped.
    pub fn from_planes(width: u32, height: u32, planes: &[f32]) -> Result<Image, ModelError> {
        let plane = width as usize * height as usize;
        if planes.len() != 3 * plane {
            return Err(ModelError::Execution(format!(
                "the model returned {} values for a {width}x{height} RGB image",
                planes.len()
            )));
        }
        let rgb = (0..plane)
            .flat_map(|i| {
                (0..3).map(move |c| {
                    let v = planes[c * plane + i];
                    // NaN maps to 0 through `as`; clamp handles the rest.
                    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
                })
            })
            .collect();
        Ok(Image { width, height, rgb })
    }

    /// The same pixels as 8-bit RGBA (opaque), as a UI texture takes them.
    pub fn to_rgba(&self) -> Vec<u8> {
        self.rgb
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect()
    }

    /// Encodes the image as PNG.
    pub fn to_png(&self) -> Result<Vec<u8>, ModelError> {
        let expected = self.width as usize * self.height as usize * 3;
        if self.rgb.len() != expected {
            return Err(ModelError::Png(format!(
                "{} bytes for a {}x{} RGB image (expected {expected})",
                self.rgb.len(),
                self.width,
                self.height
            )));
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| ModelError::Png(e.to_string()))?;
        writer
            .write_image_data(&self.rgb)
            .map_err(|e| ModelError::Png(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| ModelError::Png(e.to_string()))?;
        Ok(out)
    }

    /// Decodes an 8-bit RGB or RGBA PNG (alpha is dropped), e.g. a stored reference image.
    pub fn from_png(bytes: &[u8]) -> Result<Image, ModelError> {
        let bad = |e: &dyn std::fmt::Display| ModelError::Png(e.to_string());
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().map_err(|e| bad(&e))?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| bad(&"image too large"))?;
        let mut buf = vec![0; size];
        let info = reader.next_frame(&mut buf).map_err(|e| bad(&e))?;
        buf.truncate(info.buffer_size());
        if info.bit_depth != png::BitDepth::Eight {
            return Err(bad(&format!("bit depth {:?}, expected 8", info.bit_depth)));
        }
        let rgb = match info.color_type {
            png::ColorType::Rgb => buf,
            png::ColorType::Rgba => buf
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            other => return Err(bad(&format!("colour type {other:?}, expected RGB"))),
        };
        Ok(Image {
            width: info.width,
            height: info.height,
            rgb,
        })
    }

    /// Tiles equally sized images into a grid `columns` wide, each enlarged `zoom` times
    /// (nearest neighbour) with a 2-pixel grey gutter: the sample sheets in assets/model.
    pub fn sheet(images: &[Image], columns: usize, zoom: usize) -> Image {
        let Some(first) = images.first() else {
            return Image {
                width: 0,
                height: 0,
                rgb: Vec::new(),
            };
        };
        let columns = columns.max(1);
        let rows = images.len().div_ceil(columns);
        let (w, h) = (first.width as usize * zoom, first.height as usize * zoom);
        let gutter = 2;
        let width = columns * (w + gutter) + gutter;
        let height = rows * (h + gutter) + gutter;
        let mut rgb = vec![128u8; width * height * 3];
        for (k, image) in images.iter().enumerate() {
            let (ox, oy) = (
                gutter + (k % columns) * (w + gutter),
                gutter + (k / columns) * (h + gutter),
            );
            for y in 0..h {
                for x in 0..w {
                    let src = ((y / zoom) * image.width as usize + x / zoom) * 3;
                    let dst = ((oy + y) * width + ox + x) * 3;
                    if let (Some(from), Some(to)) =
                        (image.rgb.get(src..src + 3), rgb.get_mut(dst..dst + 3))
                    {
                        to.copy_from_slice(from);
                    }
                }
            }
        }
        Image {
            width: width as u32,
            height: height as u32,
            rgb,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips() {
        let image = Image {
            width: 3,
            height: 2,
            rgb: (0..18).map(|v| v * 14).collect(),
        };
        let png = image.to_png().unwrap_or_default();
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(Image::from_png(&png).ok(), Some(image));
    }

    #[test]
    fn a_wrong_buffer_size_is_an_error_not_a_panic() {
        let image = Image {
            width: 4,
            height: 4,
            rgb: vec![0; 5],
        };
        assert!(image.to_png().is_err());
    }
}
