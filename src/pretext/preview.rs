//! Colorization previews: held-out images colourised by the trained model, written as PNG
//! strips (grey input | colourised by annealed mean | original) so a person can look at
//! what the model learned.

use super::batch::Pretext;
use super::config::PretextConfig;
use super::model::PretextModel;
use super::run::Loader;
use crate::data::Sample;
use anyhow::{Context, Result};
use image::{imageops, RgbImage};
use ndarray::{Array2, Array3};
use std::path::Path;

/// Writes `ab_bins.preview_images` strips of held-out images into `dir`.
pub(super) fn write(
    cfg: &PretextConfig,
    model: &PretextModel,
    pretext: &Pretext,
    loader: &Loader,
    holdout: &[Sample],
    dir: &Path,
) -> Result<()> {
    let (Pretext::Colorization { cfg: c, bins, .. }, Some(b)) = (pretext, &cfg.ab_bins) else {
        return Ok(());
    };
    let count = b.preview_images.min(holdout.len());
    if count == 0 {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    model.trunk.set_training(false);
    let indices: Vec<usize> = (0..count).collect();
    let batch = loader.batch(holdout, &indices, &[u64::MAX - 1])?;
    let probs = model
        .probabilities(&batch.inputs, count)?
        .to_vec2::<f32>()?;
    model.trunk.set_training(true);
    let side = (c.size / c.output_stride) as usize;
    let cells = side * side;
    for (i, sample) in holdout.iter().take(count).enumerate() {
        let crop = c.crop(&loader.image(holdout, i)?)?;
        let lab = super::lab::from_rgb_image(&crop);
        let lightness: Array2<f32> = lab.index_axis(ndarray::Axis(2), 0).to_owned();
        let mut p = Array3::<f32>::zeros((bins.len(), side, side));
        for (q, row) in probs.iter().enumerate() {
            for n in 0..cells {
                p[[q, n / side, n % side]] = row[i * cells + n];
            }
        }
        let colour = c.colourise(lightness.view(), p.view(), bins)?;
        let grey = super::colorize::grey_input(&crop);
        let (w, h) = crop.dimensions();
        let mut strip = RgbImage::new(3 * w, h);
        imageops::replace(&mut strip, &grey, 0, 0);
        imageops::replace(&mut strip, &colour, i64::from(w), 0);
        imageops::replace(&mut strip, &crop, 2 * i64::from(w), 0);
        let stem = Path::new(&sample.id).with_extension("");
        let name = stem.to_string_lossy().replace(['/', '\\'], "_");
        let path = dir.join(format!("{i:03}_{name}.png"));
        strip
            .save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
