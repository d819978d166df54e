//! Training the heads: one loop for both modes, over the cached features (fast) or over
//! augmented batches through the frozen trunk, prepared one batch ahead (paper).

use super::config::TaskConfig;
use super::split::{index_tensor, read_split};
use crate::backbone::{Backbone, Tap};
use crate::data::{decode, Dataset, ImageError};
use crate::features::pooling::pool;
use crate::features::Extracted;
use crate::linear::probe::{Batches, Probe, Schedule, TapShape};
use crate::tasks::Setup;
use crate::train::prefetch::with_prefetch;
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use rayon::prelude::*;

/// The loss of one head averaged over every `log_every` iterations: `[iteration, loss]`.
pub(super) type LossCurve = Vec<(usize, f64)>;

/// The training loop shared by both modes: `next(it)` gives the inputs of every head and the
/// labels of iteration `it`.
pub(super) fn train(
    probe: &mut Probe,
    cfg: &TaskConfig,
    schedule: &Schedule,
    taps: &[Tap],
    mut next: impl FnMut(usize) -> Result<(Vec<Tensor>, Tensor)>,
) -> Result<Vec<LossCurve>> {
    let bar = crate::progress::bar(schedule.iterations as u64, "training", "iterations");
    let mut curves = vec![LossCurve::new(); taps.len()];
    let mut window = vec![0.0f64; taps.len()];
    let mut since = 0;
    for it in 0..schedule.iterations {
        let (inputs, labels) = next(it)?;
        let losses = probe.step(&inputs, &labels, cfg.probe.lr_at(schedule, it))?;
        for (w, l) in window.iter_mut().zip(&losses) {
            *w += f64::from(*l);
        }
        since += 1;
        if since == cfg.log_every || it + 1 == schedule.iterations {
            for (curve, w) in curves.iter_mut().zip(window.iter_mut()) {
                curve.push((it + 1, *w / since as f64));
                *w = 0.0;
            }
            since = 0;
            let msg: Vec<String> = taps
                .iter()
                .zip(&curves)
                .map(|(t, c)| format!("{t} {:.3}", c.last().map_or(0.0, |p| p.1)))
                .collect();
            bar.set_message(format!("loss {}", msg.join(" ")));
        }
        bar.inc(1);
        if losses.iter().any(|l| !l.is_finite()) {
            bail!(
                "the loss diverged at iteration {it}: lower the variant's lr (--set \
                 probe.{}.lr=...)",
                cfg.variant
            );
        }
    }
    bar.finish();
    Ok(curves)
}

/// Fast mode: batches of the cached train features, reshuffled every epoch.
pub(super) fn train_cached(
    probe: &mut Probe,
    cfg: &TaskConfig,
    setup: &Setup,
    taps: &[Tap],
    entries: &[Extracted],
    shapes: &[TapShape],
    classes: usize,
) -> Result<(Schedule, Vec<LossCurve>)> {
    let (features, labels) = read_split(setup, &cfg.train, entries, shapes, classes)?;
    let images = labels.dim(0)?;
    let schedule = cfg.probe.schedule(images)?;
    let mut batches = Batches::new(images, cfg.probe.batch_size, cfg.seed);
    let curves = train(probe, cfg, &schedule, taps, |it| {
        let (_, rows) = batches.get(it);
        let index = index_tensor(rows, &setup.device)?;
        let inputs = features
            .iter()
            .map(|f| f.index_select(&index, 0))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok((inputs, labels.index_select(&index, 0)?))
    })?;
    Ok((schedule, curves))
}

/// A decoded, augmented batch: the CHW inputs and the labels.
pub(super) type Prepared = Result<(Vec<f32>, Vec<u32>)>;

/// Paper mode: each batch is decoded and augmented (seeded per epoch and image) one batch
/// ahead, in parallel, then goes through the trunk and the protocol's pooling.
pub(super) fn train_online(
    probe: &mut Probe,
    cfg: &TaskConfig,
    net: &Backbone,
    taps: &[Tap],
    setup: &Setup,
    dataset: &Dataset,
    classes: usize,
) -> Result<(Schedule, Vec<LossCurve>)> {
    let labels: Vec<u32> = dataset
        .samples
        .iter()
        .map(|s| match s.target.as_slice() {
            [c] if *c >= 0 && (*c as usize) < classes => Ok(*c as u32),
            _ => bail!(
                "image {} has target {:?}: a linear probe needs single-label data (list: or \
                 imagefolder:)",
                s.path.display(),
                s.target
            ),
        })
        .collect::<Result<_>>()?;
    let schedule = cfg.probe.schedule(dataset.samples.len())?;
    let tf = &setup.extract.transform;
    let size = tf.size as usize;
    let mut batches = Batches::new(dataset.samples.len(), cfg.probe.batch_size, cfg.seed);
    let prepare = |it: usize| -> Prepared {
        let (epoch, rows) = batches.get(it);
        rows.par_iter()
            .map(|&i| {
                let path = &dataset.samples[i].path;
                let mut rng = crate::seed::probe_stream(cfg.seed, &[epoch as u64, i as u64]);
                cfg.augment
                    .apply(&decode(path)?, tf, &mut rng)
                    .map_err(|source| ImageError::Transform {
                        path: path.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<Vec<f32>>, ImageError>>()
            .map(|images| {
                let targets = rows.iter().map(|&i| labels[i]).collect();
                (images.concat(), targets)
            })
            .with_context(|| {
                format!(
                    "preparing the batch of iteration {it} (paper mode reads every train image \
                     and skips none: fix or remove the image)"
                )
            })
    };
    let curves = with_prefetch(0..schedule.iterations, prepare, |prepared| {
        train(probe, cfg, &schedule, taps, |_| {
            let (pixels, targets) = prepared.next()?;
            let n = targets.len();
            let x = Tensor::from_vec(pixels, (n, 3, size, size), net.device())?;
            let maps = net.forward_taps(&x, taps)?;
            let inputs = taps
                .iter()
                .zip(&maps)
                .map(|(tap, map)| pool(map, setup.extract.pooling.get(*tap)))
                .collect::<Result<Vec<_>>>()?;
            Ok((inputs, Tensor::from_vec(targets, n, net.device())?))
        })
    })?;
    Ok((schedule, curves))
}
