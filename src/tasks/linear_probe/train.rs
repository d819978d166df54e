//! Training the heads in their run folder: one loop for both modes, over the cached features
//! (fast) or over augmented batches through the frozen trunk, prepared one batch ahead
//! (paper), checkpointed and resumable.

use super::config::{Mode, TaskConfig};
use super::log::Row;
use super::split::{index_tensor, read_split};
use crate::backbone::{Backbone, Tap};
use crate::data::{decode, Dataset, ImageError};
use crate::features::pooling::pool;
use crate::features::Extracted;
use crate::linear::probe::{Batches, Probe, Schedule, TapShape};
use crate::tasks::Setup;
use crate::train::log::CsvLog;
use crate::train::prefetch::with_prefetch;
use crate::train::run_dir::{RunDir, RunSpec};
use crate::train::stop::Cadence;
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use rayon::prelude::*;
use std::path::Path;

/// The loss of one head averaged over every `log_every` iterations: `[iteration, loss]`.
pub(super) type LossCurve = Vec<(usize, f64)>;

/// The loss log in the run folder.
const LOG: &str = "probe_log.csv";

/// The heads being trained in their run folder: the checkpoints, the loss log, and the
/// iteration to start at (after the latest checkpoint when resuming).
pub(super) struct ProbeRun {
    /// The heads and their optimiser.
    pub(super) probe: Probe,
    folder: RunDir,
    log: CsvLog<Row>,
    start: usize,
}

impl ProbeRun {
    /// Opens the run folder `dir` for `probe`: a used folder is refused without `[run]
    /// resume`; with it, the heads, their running statistics and the SGD moments of the
    /// latest checkpoint are loaded, if its `digest` (see [`train_digest`]) is this run's.
    pub(super) fn open(
        mut probe: Probe,
        cfg: &TaskConfig,
        dir: &Path,
        digest: String,
    ) -> Result<Self> {
        let params = probe.params().clone();
        let (folder, start) = RunDir::open(
            dir,
            RunSpec {
                what: "linear probe",
                seed: cfg.seed,
                digest,
                keep: cfg.run.keep_checkpoints,
                resume: cfg.run.resume,
                log: LOG,
            },
            &params,
            probe.optimizer_mut(),
        )?;
        let log = CsvLog::open(&dir.join(LOG), start)?;
        Ok(Self {
            probe,
            folder,
            log,
            start,
        })
    }

    /// The iteration this process started training at (0, or the resumed checkpoint's).
    pub(super) fn start(&self) -> usize {
        self.start
    }

    /// Each tap's loss curve, from the log.
    fn curves(&self, taps: &[Tap]) -> Vec<LossCurve> {
        taps.iter()
            .map(|t| {
                let rows = self.log.rows().iter().filter(|r| r.tap == t.name());
                rows.map(|r| (r.iter, r.loss)).collect()
            })
            .collect()
    }
}

/// A digest of everything that shapes the heads' trajectory: the protocol, the mode and its
/// augmentation, the seed, the logging, the taps and their shapes, the classes, the training
/// split and the backbone's weights. Only a checkpoint written under the same digest resumes.
pub(super) fn train_digest(
    cfg: &TaskConfig,
    taps: &[Tap],
    shapes: &[TapShape],
    classes: usize,
    weights: &str,
) -> Result<String> {
    let augment = (cfg.mode == Mode::Paper).then_some(&cfg.augment);
    let parts = serde_json::to_string(&(
        cfg.mode.name(),
        &cfg.variant,
        &cfg.probe,
        augment,
        cfg.seed,
        cfg.log_every,
        taps.iter().map(|t| t.name()).collect::<Vec<_>>(),
        shapes,
        classes,
        &cfg.train,
        weights,
    ))?;
    Ok(crate::train::run_dir::config_digest([parts]))
}

/// The training loop shared by both modes, from the run's start to the schedule's end:
/// `next(it)` gives the inputs of every head and the labels of iteration `it`. Checkpoints
/// every `[run] checkpoint_every` iterations (and `checkpoint_seconds`), at the end, and on
/// SIGTERM, after which it returns [`crate::train::stop::Stopped`].
pub(super) fn train(
    run: &mut ProbeRun,
    cfg: &TaskConfig,
    schedule: &Schedule,
    taps: &[Tap],
    mut next: impl FnMut(usize) -> Result<(Vec<Tensor>, Tensor)>,
) -> Result<Vec<LossCurve>> {
    let total = schedule.iterations;
    let bar = crate::progress::bar(
        total.saturating_sub(run.start) as u64,
        "training",
        "iterations",
    );
    let mut cadence = Cadence::new(cfg.run.checkpoint_every, cfg.run.checkpoint_seconds);
    let mut window = vec![0.0f64; taps.len()];
    let mut since = 0;
    for it in run.start..total {
        let (inputs, labels) = next(it)?;
        let lr = cfg.probe.lr_at(schedule, it);
        let losses = run.probe.step(&inputs, &labels, lr)?;
        for (w, l) in window.iter_mut().zip(&losses) {
            *w += f64::from(*l);
        }
        since += 1;
        let done = it + 1;
        if done % cfg.log_every == 0 || done == total {
            let mut msg = Vec::with_capacity(taps.len());
            for (tap, w) in taps.iter().zip(window.iter_mut()) {
                let loss = *w / since as f64;
                msg.push(format!("{tap} {loss:.3}"));
                run.log.push(Row {
                    iter: done,
                    tap: tap.name().to_string(),
                    lr,
                    loss,
                })?;
                *w = 0.0;
            }
            since = 0;
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
        if cadence.due(done, total) {
            run.folder
                .save(done, run.probe.params(), run.probe.optimizer())?;
            cadence.check(done)?;
        }
    }
    bar.finish();
    Ok(run.curves(taps))
}

/// Fast mode: batches of the cached train features, reshuffled every epoch.
pub(super) fn train_cached(
    run: &mut ProbeRun,
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
    let curves = train(run, cfg, &schedule, taps, |it| {
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
    run: &mut ProbeRun,
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
    let curves = with_prefetch(run.start..schedule.iterations, prepare, |prepared| {
        train(run, cfg, &schedule, taps, |_| {
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
