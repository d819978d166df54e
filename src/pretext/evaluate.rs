//! What a pretext run is measured by at its end: the held-out loss and pretext accuracy (batch
//! norm in evaluation mode), and the chance level they are read against.

use super::batch::Pretext;
use super::config::PretextKind;
use super::loader::Loader;
use super::model::PretextModel;
use crate::data::Sample;
use anyhow::Result;

/// Stream of the held-out batches' augmentation.
const STREAM_HOLDOUT: u64 = 4;
/// Images over which Colorization's most-frequent-bin baseline is counted.
const CHANCE_IMAGES: usize = 256;

/// Held-out loss and accuracy in evaluation mode (`None` without held-out images).
pub fn evaluate(
    model: &PretextModel,
    loader: &Loader,
    holdout: &[Sample],
) -> Result<(Option<f64>, Option<f64>)> {
    if holdout.is_empty() {
        return Ok((None, None));
    }
    model.trunk.set_training(false);
    let b = loader.cfg.train.batch_size;
    let (mut loss, mut correct, mut total) = (0.0, 0.0, 0.0);
    let indices: Vec<usize> = (0..holdout.len()).collect();
    for (c, chunk) in indices.chunks(b).enumerate() {
        let batch = loader.batch(holdout, chunk, &[STREAM_HOLDOUT, c as u64])?;
        let out = model.outcome(&batch)?;
        loss += f64::from(out.loss.to_scalar::<f32>()?) * chunk.len() as f64;
        correct += out.correct;
        total += out.total;
    }
    model.trunk.set_training(true);
    Ok((
        Some(loss / holdout.len() as f64),
        Some(100.0 * correct / total.max(1.0)),
    ))
}

/// Chance accuracy in percent: a uniform guess over the classes, and for Colorization the
/// better of that and always answering the most frequent target bin, counted on the
/// held-out images (or the first training images when none are held out).
pub fn chance(pretext: &Pretext, loader: &Loader, holdout: &[Sample]) -> Result<f64> {
    let uniform = 100.0 / pretext.classes() as f64;
    if pretext.kind() != PretextKind::Colorization {
        return Ok(uniform);
    }
    let images = if holdout.is_empty() {
        loader.samples
    } else {
        holdout
    };
    let indices: Vec<usize> = (0..images.len().min(CHANCE_IMAGES)).collect();
    let batch = loader.batch(images, &indices, &[STREAM_HOLDOUT, u64::MAX])?;
    let Some(soft) = batch.soft else {
        return Ok(uniform);
    };
    let hard = soft.argmax(0)?.to_vec1::<u32>()?;
    let mut counts = vec![0usize; pretext.classes()];
    for q in &hard {
        counts[*q as usize] += 1;
    }
    let best = counts.iter().copied().max().unwrap_or(0);
    Ok(uniform.max(100.0 * best as f64 / hard.len().max(1) as f64))
}
