//! Test-time preprocessing: resize, squash or centre crop, scale, normalise, CHW.
//!
//! Resampling is image's `Triangle` filter, which widens its support when shrinking (the
//! antialiased bilinear of PIL and torchvision); sizes and crop offsets follow torchvision.
//! The protocols' numbers live in the task TOML files, never here.

use std::borrow::Cow;

use image::imageops::{self, FilterType};
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// How to preprocess one decoded image into a backbone input.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// First resize: the shorter side to N (`resize = 256`), or `resize = "none"`.
    pub resize: Resize,
    /// Then `"squash"` to `size` x `size` (the SVM protocol) or a `"center"` crop.
    pub crop: Crop,
    /// Output side in pixels (224; 227 for FAIR's AlexNet).
    pub size: u32,
    /// Per-channel mean, in RGB order, subtracted after scaling by `pixel_scale`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, in RGB order, divided after subtracting `mean`.
    pub std: [f32; 3],
    /// Factor from 0..255 pixel values: 1/255 for torchvision, 1.0 for Caffe2-style inputs.
    pub pixel_scale: f32,
    /// Channel order of the output; `mean` and `std` are permuted along with the channels.
    pub channel_order: ChannelOrder,
}

/// The first resize of [`TransformConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ResizeRepr", into = "ResizeRepr")]
pub enum Resize {
    /// Shorter side to this many pixels, aspect ratio kept (torchvision `Resize(int)`).
    Shorter(u32),
    /// Keep the decoded size.
    None,
}

/// TOML form of [`Resize`]: an integer or the string "none".
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ResizeRepr {
    Pixels(u32),
    Word(String),
}

impl TryFrom<ResizeRepr> for Resize {
    type Error = String;
    fn try_from(repr: ResizeRepr) -> Result<Self, String> {
        match repr {
            ResizeRepr::Pixels(0) => {
                Err("resize must be a positive number of pixels or \"none\"".into())
            }
            ResizeRepr::Pixels(n) => Ok(Resize::Shorter(n)),
            ResizeRepr::Word(w) if w == "none" => Ok(Resize::None),
            ResizeRepr::Word(w) => Err(format!(
                "resize = \"{w}\": use a number of pixels or \"none\""
            )),
        }
    }
}

impl From<Resize> for ResizeRepr {
    fn from(resize: Resize) -> Self {
        match resize {
            Resize::Shorter(n) => ResizeRepr::Pixels(n),
            Resize::None => ResizeRepr::Word("none".into()),
        }
    }
}

/// The second step of [`TransformConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Crop {
    /// Resize to `size` x `size`, aspect ratio not kept, nothing cut.
    Squash,
    /// Cut the central `size` x `size` window (torchvision `CenterCrop`).
    Center,
}

/// Channel order of the output tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Red, green, blue (torchvision models).
    Rgb,
    /// Blue, green, red (Caffe2 / Detectron models).
    Bgr,
}

/// Why [`TransformConfig::apply`] cannot produce an input.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The image is smaller than the centre crop.
    #[error(
        "the image is {width}x{height} after resizing, smaller than the {size}x{size} centre \
         crop: set transform.resize to at least {size}, or use crop = \"squash\""
    )]
    TooSmall {
        /// Width after the first resize.
        width: u32,
        /// Height after the first resize.
        height: u32,
        /// The crop side.
        size: u32,
    },
    /// The configuration itself is unusable.
    #[error("invalid transform config: {0}; fix the task's [transform] table")]
    Config(String),
}

impl TransformConfig {
    /// Checks what serde cannot: a positive size, usable std and scale, and a centre crop that
    /// fits in the resized image.
    pub fn validate(&self) -> Result<(), TransformError> {
        let bad = |msg: String| Err(TransformError::Config(msg));
        if self.size == 0 {
            return bad("size must be positive".into());
        }
        if self.resize == Resize::Shorter(0) {
            return bad("resize must be positive".into());
        }
        if !self.pixel_scale.is_finite() || self.std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            return bad(format!(
                "pixel_scale {} and std {:?} must be finite, std non-zero",
                self.pixel_scale, self.std
            ));
        }
        match (self.crop, self.resize) {
            (Crop::Center, Resize::Shorter(n)) if n < self.size => bad(format!(
                "resize {n} is smaller than the centre crop size {}",
                self.size
            )),
            _ => Ok(()),
        }
    }

    /// Turns a decoded image into a CHW tensor of `3 * size * size` values, channels in
    /// `channel_order`: `(pixel * pixel_scale - mean) / std`.
    pub fn apply(&self, img: &RgbImage) -> Result<Vec<f32>, TransformError> {
        self.validate()?;
        let (width, height) = img.dimensions();
        if width == 0 || height == 0 {
            return Err(TransformError::TooSmall {
                width,
                height,
                size: self.size,
            });
        }
        let img = match self.resize {
            Resize::Shorter(n) => resize_shorter(img, n),
            Resize::None => Cow::Borrowed(img),
        };
        let size = self.size;
        let img = match self.crop {
            Crop::Squash => resized(&img, size, size),
            Crop::Center => {
                let (width, height) = img.dimensions();
                if width < size || height < size {
                    return Err(TransformError::TooSmall {
                        width,
                        height,
                        size,
                    });
                }
                // torchvision rounds the offsets with Python's round (ties to even).
                let offset = |d: u32| (f64::from(d - size) / 2.0).round_ties_even() as u32;
                Cow::Owned(
                    imageops::crop_imm(&*img, offset(width), offset(height), size, size).to_image(),
                )
            }
        };
        Ok(self.normalise(&img))
    }

    /// Scales, normalises and lays out the `size` x `size` image as CHW.
    fn normalise(&self, img: &RgbImage) -> Vec<f32> {
        let order = match self.channel_order {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        let mut out = Vec::with_capacity(img.len());
        for c in order {
            let (mean, std) = (self.mean[c], self.std[c]);
            out.extend(
                img.pixels()
                    .map(|p| (f32::from(p.0[c]) * self.pixel_scale - mean) / std),
            );
        }
        out
    }
}

/// `img` with its shorter side resampled to `side` pixels, as torchvision's `Resize(int)`:
/// the longer side becomes int(side * long / short). Borrowed when already that size.
pub fn resize_shorter(img: &RgbImage, side: u32) -> Cow<'_, RgbImage> {
    let (width, height) = img.dimensions();
    let long = |a: u32, b: u32| (f64::from(side) * f64::from(a) / f64::from(b)) as u32;
    let (w, h) = if width <= height {
        (side, long(height, width))
    } else {
        (long(width, height), side)
    };
    resized(img, w, h)
}

/// `img` resampled to `w` x `h`, borrowed when already that size.
fn resized(img: &RgbImage, w: u32, h: u32) -> Cow<'_, RgbImage> {
    if img.dimensions() == (w, h) {
        Cow::Borrowed(img)
    } else {
        Cow::Owned(imageops::resize(img, w, h, FilterType::Triangle))
    }
}
