//! Colorization previews: held-out images colourised by the trained model, written as PNG
//! strips (grey input | colourised by annealed mean | original) so a person can look at
//! what the model learned.

use super::batch::Pretext;
use super::config::PretextConfig;
use super::loader::Loader;
use super::model::PretextModel;
use crate::data::Sample;
use anyhow::{Context, Result};
use candle_core::Tensor;
use image::{imageops, RgbImage};
use ndarray::{Array2, Array3};
use std::path::{Path, PathBuf};

/// Writes `ab_bins.preview_images` strips of held-out images into `dir`; returns their paths.
pub(super) fn write(
    cfg: &PretextConfig,
    model: &PretextModel,
    pretext: &Pretext,
    loader: &Loader,
    holdout: &[Sample],
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let (Pretext::Colorization { cfg: c, bins, .. }, Some(b)) = (pretext, &cfg.ab_bins) else {
        return Ok(Vec::new());
    };
    let count = b.preview_images.min(holdout.len());
    if count == 0 {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The centre crop of each image is both the network input (its lightness, grey) and the
    // strip, so what is colourised is what the model saw, whatever `[augment]` trains with.
    let crops: Vec<RgbImage> = (0..count)
        .map(|i| c.crop(&loader.image(holdout, i)?))
        .collect::<Result<_>>()?;
    let mut inputs = Vec::new();
    for crop in &crops {
        inputs.extend(pretext.normalise(&super::colorize::grey_input(crop))?);
    }
    let side_in = c.size as usize;
    let inputs = Tensor::from_vec(inputs, (count, 3, side_in, side_in), model.device())?;
    model.trunk.set_training(false);
    let probs = model.probabilities(&inputs, count);
    model.trunk.set_training(true);
    let side = (c.size / c.output_stride) as usize;
    // Q x (count h w), cells ordered (image, row, column).
    let probs = probs?.reshape((bins.len(), count, side, side))?;
    let mut written = Vec::new();
    for (i, (sample, crop)) in holdout.iter().zip(&crops).enumerate() {
        let lab = super::lab::from_rgb_image(crop);
        let lightness: Array2<f32> = lab.index_axis(ndarray::Axis(2), 0).to_owned();
        let p = probs.narrow(1, i, 1)?.squeeze(1)?.to_vec3::<f32>()?;
        let p = Array3::from_shape_vec(
            (bins.len(), side, side),
            p.into_iter().flatten().flatten().collect(),
        )?;
        let colour = c.colourise(lightness.view(), p.view(), bins)?;
        let grey = super::colorize::grey_input(crop);
        let (w, h) = crop.dimensions();
        let mut strip = RgbImage::new(3 * w, h);
        imageops::replace(&mut strip, &grey, 0, 0);
        imageops::replace(&mut strip, &colour, i64::from(w), 0);
        imageops::replace(&mut strip, crop, 2 * i64::from(w), 0);
        let stem = Path::new(&sample.id).with_extension("");
        let name = stem.to_string_lossy().replace(['/', '\\'], "_");
        let path = dir.join(format!("{i:03}_{name}.png"));
        strip
            .save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
