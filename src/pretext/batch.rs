//! From decoded images to training batches: each pretext's inputs and targets for one image
//! (drawn from its own seeded generator), and the batch tensors they stack into.

use super::ab_bins::AbBins;
use super::colorize::{self, ColorizeConfig};
use super::config::PretextKind;
use super::jigsaw::JigsawConfig;
use super::permutations::{PermutationSet, TILES};
use super::rotation::{rotate, ROTATIONS};
use crate::data::augment::{AugmentConfig, AugmentCrop};
use crate::data::{Crop, Resize, TransformConfig};
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use image::{imageops, RgbImage};
use rand::{Rng, RngCore};

/// A pretext, ready to turn images into examples.
pub enum Pretext {
    /// 4-way rotation of one crop.
    Rotation {
        /// The crop and flip.
        augment: AugmentConfig,
        /// Scaling to the input side and normalisation.
        transform: TransformConfig,
    },
    /// Which permutation shuffled the tiles.
    Jigsaw {
        /// The tile transform.
        tiles: JigsawConfig,
        /// The permutation set; the label is an index into it.
        perms: PermutationSet,
        /// Normalisation (the tile side comes from `tiles.patch`).
        transform: TransformConfig,
    },
    /// The ab bins of each output cell from the lightness.
    Colorization {
        /// Targets and decode.
        cfg: ColorizeConfig,
        /// A random crop and flip instead of the central square, when given.
        augment: Option<AugmentConfig>,
        /// The classes.
        bins: AbBins,
        /// Rebalancing weights per bin, when on.
        class_weights: Option<Vec<f64>>,
        /// Normalisation (the side comes from `cfg.size`).
        transform: TransformConfig,
    },
}

/// One image's share of a batch.
#[derive(Default)]
pub struct Example {
    /// Network inputs, each 3 x side x side, concatenated.
    pub inputs: Vec<f32>,
    /// Class labels (Rotation: one per input; Jigsaw: one per image).
    pub labels: Vec<u32>,
    /// Colorization: soft targets Q x h x w.
    pub soft: Vec<f32>,
    /// Colorization: per-cell weights h x w.
    pub weight: Vec<f32>,
}

/// A batch on the device.
pub struct Batch {
    /// Network inputs, N x 3 x side x side.
    pub inputs: Tensor,
    /// Class labels (u32), when the pretext classifies.
    pub labels: Option<Tensor>,
    /// Colorization: soft targets, Q x (B h w), cells ordered (image, row, column).
    pub soft: Option<Tensor>,
    /// Colorization: per-cell weights, B h w.
    pub weight: Option<Tensor>,
    /// Source images in the batch.
    pub images: usize,
}

impl Pretext {
    /// Which pretext this is.
    pub fn kind(&self) -> PretextKind {
        match self {
            Pretext::Rotation { .. } => PretextKind::Rotation,
            Pretext::Jigsaw { .. } => PretextKind::Jigsaw,
            Pretext::Colorization { .. } => PretextKind::Colorization,
        }
    }

    /// Number of classes the head predicts: 4, |P| or the number of ab bins.
    pub fn classes(&self) -> usize {
        match self {
            Pretext::Rotation { .. } => ROTATIONS,
            Pretext::Jigsaw { perms, .. } => perms.perms.len(),
            Pretext::Colorization { bins, .. } => bins.len(),
        }
    }

    /// Network inputs per source image: 4, 9 or 1.
    pub fn inputs_per_image(&self) -> usize {
        match self {
            Pretext::Rotation { .. } => ROTATIONS,
            Pretext::Jigsaw { .. } => TILES,
            Pretext::Colorization { .. } => 1,
        }
    }

    /// The side of a network input.
    pub fn input_side(&self) -> u32 {
        match self {
            Pretext::Rotation { transform, .. } => transform.size,
            Pretext::Jigsaw { tiles, .. } => tiles.patch,
            Pretext::Colorization { cfg, .. } => cfg.size,
        }
    }

    /// Normalises a square RGB image into CHW with the pretext's transform.
    pub(super) fn normalise(&self, img: &RgbImage) -> Result<Vec<f32>> {
        let tf = match self {
            Pretext::Rotation { transform, .. }
            | Pretext::Jigsaw { transform, .. }
            | Pretext::Colorization { transform, .. } => transform,
        };
        let squash = TransformConfig {
            resize: Resize::None,
            crop: Crop::Squash,
            size: img.width(),
            ..tf.clone()
        };
        Ok(squash.apply(img)?)
    }

    /// The example of one decoded image.
    pub fn example(&self, img: &RgbImage, rng: &mut impl RngCore) -> Result<Example> {
        let mut ex = Example::default();
        match self {
            Pretext::Rotation { augment, transform } => {
                let crop = random_crop(img, augment, transform.size, rng)?;
                for k in 0..ROTATIONS {
                    ex.inputs.extend(self.normalise(&rotate(&crop, k as u8))?);
                    ex.labels.push(k as u32);
                }
            }
            Pretext::Jigsaw { tiles, perms, .. } => {
                let label = rng.random_range(0..perms.perms.len());
                for tile in tiles.tiles(img, &perms.perms[label], rng)? {
                    ex.inputs.extend(self.normalise(&tile)?);
                }
                ex.labels.push(label as u32);
            }
            Pretext::Colorization {
                cfg,
                augment,
                bins,
                class_weights,
                ..
            } => {
                let crop = match augment {
                    Some(a) => random_crop(img, a, cfg.size, rng)?,
                    None => cfg.crop(img)?,
                };
                ex.inputs = self.normalise(&colorize::grey_input(&crop))?;
                let t = cfg.targets(&crop, bins, class_weights.as_deref())?;
                ex.soft = t.soft;
                ex.weight = t.weight;
            }
        }
        Ok(ex)
    }

    /// Stacks examples into a batch on `device`.
    pub fn collate(&self, examples: Vec<Example>, device: &Device) -> Result<Batch> {
        let images = examples.len();
        let side = self.input_side() as usize;
        let n = images * self.inputs_per_image();
        let mut inputs = Vec::with_capacity(n * 3 * side * side);
        let mut labels = Vec::new();
        for ex in &examples {
            inputs.extend_from_slice(&ex.inputs);
            labels.extend_from_slice(&ex.labels);
        }
        let inputs = Tensor::from_vec(inputs, (n, 3, side, side), device)
            .context("examples of unequal size")?;
        let (mut soft, mut weight) = (None, None);
        if let Pretext::Colorization { bins, .. } = self {
            let q = bins.len();
            let cells = examples.first().map_or(0, |e| e.weight.len());
            let per: Vec<Tensor> = examples
                .iter()
                .map(|e| Tensor::from_slice(&e.soft, (q, cells), device))
                .collect::<candle_core::Result<_>>()?;
            soft = Some(Tensor::cat(&per, 1)?);
            let w: Vec<f32> = examples
                .iter()
                .flat_map(|e| e.weight.iter().copied())
                .collect();
            weight = Some(Tensor::from_vec(w, images * cells, device)?);
        }
        let labels = match labels.is_empty() {
            true => None,
            false => Some(Tensor::from_vec(labels.clone(), labels.len(), device)?),
        };
        Ok(Batch {
            inputs,
            labels,
            soft,
            weight,
            images,
        })
    }
}

/// A random window (or the central square), flipped at random, resized to `side` x `side`:
/// Rotation's crop, whose four rotations are the inputs (Gidaris et al. rotate one crop), and
/// Colorization's when it has an `[augment]` table.
fn random_crop(
    img: &RgbImage,
    augment: &AugmentConfig,
    side: u32,
    rng: &mut impl RngCore,
) -> Result<RgbImage> {
    augment.validate()?;
    let (w, h) = img.dimensions();
    anyhow::ensure!(w > 0 && h > 0, "cannot crop an empty image");
    let (x, y, cw, ch) = match augment.crop {
        AugmentCrop::RandomResized => {
            let win = augment.window(w, h, rng);
            (win.x, win.y, win.width, win.height)
        }
        AugmentCrop::Center => {
            let s = w.min(h);
            ((w - s) / 2, (h - s) / 2, s, s)
        }
    };
    let mut crop = imageops::crop_imm(img, x, y, cw, ch).to_image();
    if augment.flip && rng.random_bool(0.5) {
        imageops::flip_horizontal_in_place(&mut crop);
    }
    Ok(imageops::resize(
        &crop,
        side,
        side,
        imageops::FilterType::Triangle,
    ))
}
