//! Train-time augmentation for probes trained through the trunk: torchvision's
//! `RandomResizedCrop` (or the test transform unchanged) and a random horizontal flip, on a
//! decoded image, then the scaling and normalisation of a [`TransformConfig`].
//!
//! The window follows torchvision's `RandomResizedCrop.get_params`: up to 10 draws of an area
//! fraction (uniform in `scale`) and an aspect ratio (log-uniform in `ratio`), the side lengths
//! rounded half to even; the first window that fits is placed uniformly; otherwise the central
//! window of the whole image with its aspect ratio clamped to `ratio`. FAIR's Caffe2 version
//! differs in small ways (uniform ratio, a coin flip that swaps the sides, a resize and centre
//! crop as fallback). Colour jitter and PCA lighting, which FAIR also applies, are not
//! implemented.

use image::{imageops, RgbImage};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::transform::{Crop, Resize, TransformConfig, TransformError};

/// Attempts at a random window before the central fallback (torchvision's constant).
const WINDOW_TRIES: usize = 10;

/// The train augmentation of a linear probe (the task file's `[augment]` table).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// `"random_resized"`: a random window resized to `transform.size` (ResNet-50 protocol);
    /// `"center"`: the test transform itself (FAIR's AlexNet protocol: scale, centre crop).
    pub crop: AugmentCrop,
    /// Range of the window's area as a fraction of the image's (`random_resized`).
    pub scale: [f64; 2],
    /// Range of the window's aspect ratio, width over height, drawn log-uniformly
    /// (`random_resized`).
    pub ratio: [f64; 2],
    /// Flip left-right with probability 1/2.
    pub flip: bool,
}

/// The crop of [`AugmentConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AugmentCrop {
    /// torchvision `RandomResizedCrop(size, scale, ratio)`.
    RandomResized,
    /// The `[transform]` of the test images (resize, then centre crop or squash).
    Center,
}

/// A window of an image: left, top, width, height in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl AugmentConfig {
    /// Checks the ranges: `0 < scale[0] <= scale[1]` and `0 < ratio[0] <= ratio[1]`.
    pub fn validate(&self) -> Result<(), TransformError> {
        let ordered = |r: [f64; 2]| r[0] > 0.0 && r[0] <= r[1] && r[1].is_finite();
        if !ordered(self.scale) || !ordered(self.ratio) {
            return Err(TransformError::Config(format!(
                "augment.scale {:?} and augment.ratio {:?} must be positive [low, high] ranges",
                self.scale, self.ratio
            )));
        }
        Ok(())
    }

    /// Augments one decoded image into a normalised CHW input of `tf.size` pixels a side.
    /// The draws come from `rng` in torchvision's order: the window, then the flip.
    pub fn apply<R: Rng>(
        &self,
        img: &RgbImage,
        tf: &TransformConfig,
        rng: &mut R,
    ) -> Result<Vec<f32>, TransformError> {
        self.validate()?;
        match self.crop {
            AugmentCrop::RandomResized => {
                let w = self.window(img.width(), img.height(), rng);
                let mut crop = imageops::crop_imm(img, w.x, w.y, w.width, w.height).to_image();
                if self.flip && rng.random_bool(0.5) {
                    imageops::flip_horizontal_in_place(&mut crop);
                }
                // The window resized to size x size and normalised: the transform's own
                // squash, with no first resize.
                let squash = TransformConfig {
                    resize: Resize::None,
                    crop: Crop::Squash,
                    ..tf.clone()
                };
                squash.apply(&crop)
            }
            AugmentCrop::Center => {
                if self.flip && rng.random_bool(0.5) {
                    tf.apply(&imageops::flip_horizontal(img))
                } else {
                    tf.apply(img)
                }
            }
        }
    }

    /// Draws a `RandomResizedCrop` window of a `width` x `height` image.
    pub fn window<R: Rng>(&self, width: u32, height: u32, rng: &mut R) -> Window {
        let area = f64::from(width) * f64::from(height);
        let (log_lo, log_hi) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..WINDOW_TRIES {
            let target = area * uniform(rng, self.scale[0], self.scale[1]);
            let aspect = uniform(rng, log_lo, log_hi).exp();
            let w = (target * aspect).sqrt().round_ties_even();
            let h = (target / aspect).sqrt().round_ties_even();
            if w > 0.0 && h > 0.0 && w <= f64::from(width) && h <= f64::from(height) {
                let (w, h) = (w as u32, h as u32);
                let y = rng.random_range(0..=height - h);
                let x = rng.random_range(0..=width - w);
                return Window {
                    x,
                    y,
                    width: w,
                    height: h,
                };
            }
        }
        let in_ratio = f64::from(width) / f64::from(height);
        let (w, h) = if in_ratio < self.ratio[0] {
            (
                width,
                (f64::from(width) / self.ratio[0]).round_ties_even() as u32,
            )
        } else if in_ratio > self.ratio[1] {
            (
                (f64::from(height) * self.ratio[1]).round_ties_even() as u32,
                height,
            )
        } else {
            (width, height)
        };
        let (w, h) = (w.clamp(1, width), h.clamp(1, height));
        Window {
            x: (width - w) / 2,
            y: (height - h) / 2,
            width: w,
            height: h,
        }
    }
}

/// A draw from U[lo, hi) (lo when the range is empty).
fn uniform<R: Rng>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}
