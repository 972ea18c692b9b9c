//! The denoising network: a small class-conditioned U-Net that predicts `v` (see
//! [`super::schedule`]) for a noisy 32x32 RGB image.
//!
//! Shape of the computation, chosen to train in minutes on two CPU cores:
//! the 32x32x3 image is pixel-unshuffled into 16x16x12 (the glyphs are drawn with pixels at
//! least 2 wide, so 2x2 patches lose nothing the data has), then a two-level U-Net runs at
//! 16x16, 8x8 and 4x4 and the result is pixel-shuffled back. Working at 16x16 instead of
//! 32x32 makes every top-level convolution 4x cheaper, which is most of the cost.
//! The noise level and the class enter every residual block as a per-channel scale and
//! shift after the second normalisation (FiLM, as in Dhariwal & Nichol's ADM). The class
//! also adds a learnt 4x4 map to the bottleneck: with the glyphs near the centre (see
//! `glyphs`), that lets it lay out the glyph's coarse shape directly, where FiLM alone (one
//! number per channel) learnt the class far more slowly than the look of glyphs in general.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, Initializer, Linear, LinearConfig,
    PaddingConfig2d, PixelShuffle, PixelShuffleConfig, PixelUnshuffle, PixelUnshuffleConfig,
};
use burn::tensor::activation::silu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Int, Tensor};

/// Side of the square images the model makes.
pub const IMAGE_SIZE: usize = 32;
/// Colour channels.
pub const CHANNELS: usize = 3;
/// Conditioning classes: the 36 glyphs `0-9`, `A-Z` (see [`super::glyphs`]).
pub const NUM_CLASSES: usize = 36;
/// The extra "no class" label: trained on 10% of samples so that sampling can use
/// classifier-free guidance, and used for prompts with no letter or digit.
pub const NULL_CLASS: usize = NUM_CLASSES;

/// Width of the sinusoidal noise-level features fed to the embedding MLP.
const TIME_FEATURES: usize = 64;
/// Width of the conditioning embedding (noise level + class).
const EMB: usize = 128;
/// Channels at 16x16, 8x8 and 4x4.
const C1: usize = 32;
const C2: usize = 64;
const C3: usize = 96;
/// Side of the bottleneck's feature map (32 / 2 (unshuffle) / 2 / 2).
const BOTTLENECK: usize = 4;
/// Channels per GroupNorm group.
const GROUP: usize = 16;

fn conv3(channels_in: usize, channels_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([channels_in, channels_out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// A 3x3 convolution whose weights start at zero, so that a residual branch (or the whole
/// network's output) starts as the identity (or zero): the usual trick that keeps early
/// diffusion training stable.
fn conv3_zero(channels_in: usize, channels_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([channels_in, channels_out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_initializer(Initializer::Zeros)
        .init(device)
}

fn down(channels_in: usize, channels_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([channels_in, channels_out], [3, 3])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

fn norm(channels: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(channels / GROUP, channels).init(device)
}

/// Nearest-neighbour 2x upsampling.
fn upsample(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h * 2, w * 2]),
    )
}

/// Residual block: GroupNorm, SiLU, conv, FiLM from the embedding, GroupNorm, SiLU, conv.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    emb: Linear,
    norm2: GroupNorm,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    fn new(channels_in: usize, channels_out: usize, device: &Device) -> Self {
        Self {
            norm1: norm(channels_in, device),
            conv1: conv3(channels_in, channels_out, device),
            emb: LinearConfig::new(EMB, 2 * channels_out).init(device),
            norm2: norm(channels_out, device),
            conv2: conv3_zero(channels_out, channels_out, device),
            skip: (channels_in != channels_out)
                .then(|| Conv2dConfig::new([channels_in, channels_out], [1, 1]).init(device)),
        }
    }

    fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let [batch, channels, _, _] = h.dims();
        let film = self.emb.forward(emb).reshape([batch, 2 * channels, 1, 1]);
        let scale = film.clone().narrow(1, 0, channels);
        let shift = film.narrow(1, channels, channels);
        let h = self.norm2.forward(h) * (scale + 1.0) + shift;
        let h = self.conv2.forward(silu(h));
        let skip = match &self.skip {
            Some(conv) => conv.forward(x),
            None => x,
        };
        skip + h
    }
}

/// The U-Net. `forward` takes the noisy image in `[-1, 1]` scale `[B, 3, 32, 32]`, the noise
/// level `t` in `[0, 1]` as `[B]` and the class labels `[B]`, and returns `v` `[B, 3, 32, 32]`.
#[derive(Module, Debug)]
pub struct Denoiser {
    unshuffle: PixelUnshuffle,
    shuffle: PixelShuffle,
    time1: Linear,
    time2: Linear,
    class: Embedding,
    class_map: Embedding,
    conv_in: Conv2d,
    block1: ResBlock,
    down1: Conv2d,
    block2: ResBlock,
    down2: Conv2d,
    mid1: ResBlock,
    mid2: ResBlock,
    up2: Conv2d,
    block_up2: ResBlock,
    up1: Conv2d,
    block_up1: ResBlock,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

/// The network's stages, in execution order, for warm-up progress reports.
pub const STAGES: [&str; 11] = [
    "embedding",
    "conv_in",
    "block1",
    "block2",
    "mid1",
    "mid2",
    "up2",
    "up1",
    "conv_out",
    "shuffle",
    "done",
];

impl Denoiser {
    /// A freshly initialised network on `device` (random weights from the device's RNG:
    /// seed it first for a reproducible start).
    pub fn new(device: &Device) -> Self {
        let patch = CHANNELS * 4;
        Self {
            unshuffle: PixelUnshuffleConfig::new(2).init(),
            shuffle: PixelShuffleConfig::new(2).init(),
            time1: LinearConfig::new(TIME_FEATURES, EMB).init(device),
            time2: LinearConfig::new(EMB, EMB).init(device),
            class: EmbeddingConfig::new(NUM_CLASSES + 1, EMB)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.5,
                })
                .init(device),
            class_map: EmbeddingConfig::new(NUM_CLASSES + 1, C3 * BOTTLENECK * BOTTLENECK)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.1,
                })
                .init(device),
            conv_in: conv3(patch, C1, device),
            block1: ResBlock::new(C1, C1, device),
            down1: down(C1, C2, device),
            block2: ResBlock::new(C2, C2, device),
            down2: down(C2, C3, device),
            mid1: ResBlock::new(C3, C3, device),
            mid2: ResBlock::new(C3, C3, device),
            up2: conv3(C3, C2, device),
            block_up2: ResBlock::new(2 * C2, C2, device),
            up1: conv3(C2, C1, device),
            block_up1: ResBlock::new(2 * C1, C1, device),
            norm_out: norm(C1, device),
            conv_out: conv3_zero(C1, patch, device),
        }
    }

    /// Predicts `v` for the batch.
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, class: Tensor<1, Int>) -> Tensor<4> {
        self.forward_staged(x, t, class, &mut |_| {})
    }

    /// [`forward`](Self::forward), calling `after_stage(i)` once stage `STAGES[i]` has been
    /// queued. Warm-up uses it to sync the device stage by stage, so that the minutes of
    /// shader compilation on a software adapter show up as progress.
    pub fn forward_staged(
        &self,
        x: Tensor<4>,
        t: Tensor<1>,
        class: Tensor<1, Int>,
        after_stage: &mut dyn FnMut(usize),
    ) -> Tensor<4> {
        let [batch] = class.dims();
        let device = x.device();
        let features = time_features(t, &device);
        let emb = self.time2.forward(silu(self.time1.forward(features)));
        let emb = emb
            + self
                .class
                .forward(class.clone().reshape([batch, 1]))
                .reshape([batch, EMB]);
        let emb = silu(emb);
        let class_map = self
            .class_map
            .forward(class.reshape([batch, 1]))
            .reshape([batch, C3, BOTTLENECK, BOTTLENECK]);
        after_stage(0);

        let h0 = self.conv_in.forward(self.unshuffle.forward(x));
        after_stage(1);
        let h1 = self.block1.forward(h0, emb.clone()); // 16x16
        after_stage(2);
        let h2 = self
            .block2
            .forward(self.down1.forward(h1.clone()), emb.clone()); // 8x8
        after_stage(3);
        let h = self.down2.forward(h2.clone()) + class_map; // 4x4
        let h = self.mid1.forward(h, emb.clone());
        after_stage(4);
        let h = self.mid2.forward(h, emb.clone());
        after_stage(5);
        // Channels change before upsampling, at a quarter of the cost of doing it after;
        // the block's convolutions that follow give the 2x2 copies their own detail.
        let h = upsample(self.up2.forward(h)); // 8x8
        let h = self
            .block_up2
            .forward(Tensor::cat(vec![h, h2], 1), emb.clone());
        after_stage(6);
        let h = upsample(self.up1.forward(h)); // 16x16
        let h = self.block_up1.forward(Tensor::cat(vec![h, h1], 1), emb);
        after_stage(7);
        let h = self.conv_out.forward(silu(self.norm_out.forward(h)));
        after_stage(8);
        let out = self.shuffle.forward(h);
        after_stage(9);
        out
    }
}

/// Sinusoidal features of the noise level `t` in `[0, 1]`, `[B] -> [B, TIME_FEATURES]`,
/// with frequencies from 1 to 1000 (t is scaled by 1000 as in discrete-time DDPM).
fn time_features(t: Tensor<1>, device: &Device) -> Tensor<2> {
    let half = TIME_FEATURES / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(1000f32.ln()) * i as f32 / half as f32).exp() * 1000.0)
        .collect();
    let freqs = Tensor::<1>::from_floats(freqs.as_slice(), device).reshape([1, half]);
    let [batch] = t.dims();
    let angles = t.reshape([batch, 1]) * freqs;
    Tensor::cat(vec![angles.clone().sin(), angles.cos()], 1)
}
