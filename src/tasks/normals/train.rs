//! Training res5 and the decoder on the cached res4 maps: each iteration draws one short side
//! and `batch` frames (a fresh seeded permutation per epoch), cross-entropy over the clusters
//! on the 1/8-resolution labels with unlabelled pixels ignored, SGD with momentum and weight
//! decay on conv weights only, poly decay set after each step as the paper's loop does (so
//! the first two steps run at the base rate). The paper draws a short side per 2-image GPU
//! sub-batch; one device cannot stack maps of different sizes, so here one side serves the
//! whole batch (a stated difference). Every draw derives from (seed, iteration or epoch), so a
//! run killed and resumed from a checkpoint ends bit-identical to one that never stopped.

use super::config::NormalsConfig;
use super::labels::Supervision;
use super::maps::FrozenMaps;
use super::model::NormalsModel;
use crate::train::log::{CsvLog, LogRow};
use crate::train::optim::{Method, Optimizer, OptimizerConfig};
use crate::train::params::Params;
use crate::train::run_dir::{RunDir, RunSpec};
use crate::train::stop::Cadence;
use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use rand::seq::SliceRandom;
use rand::Rng;
use std::path::Path;
use std::time::Instant;

/// The training log's file name.
pub const LOG: &str = "train.csv";

/// Stream numbers of the seeded draws.
const ORDER_STREAM: u64 = 0x6e_01;
const SCALE_STREAM: u64 = 0x6e_02;
const DROPOUT_STREAM: u64 = 0x6e_03;

/// One logged row (means since the last row).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Iterations done.
    pub iter: usize,
    /// The rate of the last iteration.
    pub lr: f64,
    /// Cross-entropy over labelled pixels.
    pub loss: f64,
    /// Pixel accuracy of the argmax cluster over labelled pixels.
    pub pixel_acc: f64,
    /// Seconds per iteration.
    pub seconds: f64,
}

impl LogRow for Row {
    const HEADER: &'static str = "iter,lr,loss,pixel_acc,seconds";

    fn step(&self) -> usize {
        self.iter
    }

    fn to_csv(&self) -> String {
        format!(
            "{},{:e},{},{},{:.4}",
            self.iter, self.lr, self.loss, self.pixel_acc, self.seconds
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let v: Vec<&str> = line.split(',').collect();
        if v.len() != 5 {
            return None;
        }
        Some(Self {
            iter: v[0].parse().ok()?,
            lr: v[1].parse().ok()?,
            loss: v[2].parse().ok()?,
            pixel_acc: v[3].parse().ok()?,
            seconds: v[4].parse().ok()?,
        })
    }
}

/// The rate of step `it` (0-based): the paper sets `lr(cur_iter)` after each step.
pub fn lr_of_step(cfg: &NormalsConfig, it: usize) -> f64 {
    cfg.solver.lr_at(it.saturating_sub(1))
}

/// Cross-entropy over the pixels whose label is not `ignore`, and the pixel accuracy:
/// `logits` K x N x h x w (channel-major), `labels` N.h.w values in image-major order.
pub fn loss_and_accuracy(logits: &Tensor, labels: &[u8], ignore: u8) -> Result<(Tensor, f64)> {
    let (k, n, h, w) = logits.dims4()?;
    let p = n * h * w;
    ensure!(labels.len() == p, "{} labels for {p} pixels", labels.len());
    let flat = logits.reshape((k, p))?.t()?;
    let logp = candle_nn::ops::log_softmax(&flat, D::Minus1)?;
    let idx: Vec<u32> = labels
        .iter()
        .map(|&l| if l == ignore { 0 } else { l as u32 })
        .collect();
    let keep: Vec<f32> = labels.iter().map(|&l| (l != ignore) as u8 as f32).collect();
    let count = keep.iter().sum::<f32>().max(1.0);
    let dev = logits.device();
    let idx = Tensor::from_vec(idx, (p, 1), dev)?;
    let keep = Tensor::from_vec(keep, p, dev)?;
    let picked = logp.gather(&idx, 1)?.squeeze(1)?;
    let loss = ((picked * &keep)?.sum_all()? * (-1.0 / count as f64))?;
    let hits = flat
        .argmax(D::Minus1)?
        .eq(&idx.squeeze(1)?)?
        .to_dtype(DType::F32)?;
    let acc = (hits * keep)?.sum_all()?.to_scalar::<f32>()? as f64 / count as f64;
    Ok((loss, acc))
}

/// The SGD optimiser over the trained parameters.
pub fn optimizer(cfg: &NormalsConfig, params: &Params) -> Result<Optimizer> {
    let s = &cfg.solver;
    let mut optim = Optimizer::new(OptimizerConfig {
        method: Method::Sgd {
            momentum: s.momentum,
            nesterov: false,
        },
        weight_decay: s.weight_decay,
        decay_vectors: false,
        clip_norm: None,
    });
    for (name, var, _) in params.all() {
        if NormalsModel::trains(&name) {
            optim.add(&name, var, NormalsModel::decays(&name))?;
        }
    }
    Ok(optim)
}

/// One training step on a batch of frozen res4 maps (N x C x h x w) and their labels (N.h.w,
/// image-major): the forward pass in training mode with dropout masks from `uniform`, the
/// loss over labelled pixels, backward and the SGD step at `lr`. Returns the loss and the
/// pixel accuracy.
pub fn train_step(
    model: &NormalsModel,
    optim: &mut Optimizer,
    x: &Tensor,
    labels: &[u8],
    lr: f64,
    uniform: impl FnMut() -> f64,
) -> Result<(f64, f64)> {
    let logits = model.forward(x, true, uniform)?;
    let (loss, acc) = loss_and_accuracy(&logits, labels, super::codebook::IGNORE_LABEL)?;
    let grads = loss.backward()?;
    optim.step(&grads, lr)?;
    Ok((loss.to_dtype(DType::F64)?.to_scalar::<f64>()?, acc))
}

/// What training leaves for the test.
pub struct Trained {
    /// Iterations run in this process.
    pub iterations_run: usize,
    /// Seconds spent in them.
    pub seconds: f64,
    /// The log's last row.
    pub last: Option<Row>,
}

/// The frames of iteration `it`: positions `it * batch ..` of the epochs' permutations.
fn batch_of(cfg: &NormalsConfig, n: usize, it: usize) -> Vec<usize> {
    let b = cfg.train.batch;
    let mut out = Vec::with_capacity(b);
    let mut cached: Option<(usize, Vec<usize>)> = None;
    for pos in it * b..(it + 1) * b {
        let epoch = pos / n;
        if cached.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut perm: Vec<usize> = (0..n).collect();
            perm.shuffle(&mut crate::seed::stream(
                cfg.train.seed,
                &[ORDER_STREAM, epoch as u64],
            ));
            cached = Some((epoch, perm));
        }
        out.push(cached.as_ref().expect("set").1[pos % n]);
    }
    out
}

/// Trains (or resumes, or finds finished) the model in `dir`.
#[allow(clippy::too_many_arguments)]
pub fn train(
    cfg: &NormalsConfig,
    model: &NormalsModel,
    params: &Params,
    train_ids: &[usize],
    sup: &Supervision,
    maps: &FrozenMaps,
    digest: String,
    dir: &Path,
    device: &Device,
) -> Result<Trained> {
    let mut optim = optimizer(cfg, params)?;
    let (run_dir, start) = RunDir::open(
        dir,
        RunSpec {
            what: "normals",
            seed: cfg.train.seed,
            digest,
            keep: cfg.train.keep_checkpoints,
            resume: cfg.run.resume,
            log: LOG,
        },
        params,
        &mut optim,
    )?;
    let mut log = CsvLog::<Row>::open(&dir.join(LOG), start)?;
    let total = cfg.solver.max_iter;
    if start >= total {
        return Ok(Trained {
            iterations_run: 0,
            seconds: 0.0,
            last: log.rows().last().cloned(),
        });
    }
    let sides = &cfg.input.train_short_sides;
    let bar = crate::progress::bar((total - start) as u64, "normals", "iterations");
    let mut cadence = Cadence::new(cfg.train.checkpoint_every, cfg.train.checkpoint_seconds);
    let started = Instant::now();
    let mut since = Instant::now();
    let mut sums = (0.0, 0.0, 0usize);
    for it in start..total {
        let side = sides[crate::seed::stream(cfg.train.seed, &[SCALE_STREAM, it as u64])
            .random_range(0..sides.len())];
        let mut xs = Vec::new();
        let mut labels = Vec::new();
        for i in batch_of(cfg, train_ids.len(), it) {
            let id = train_ids[i];
            xs.push(maps.read(id, side)?);
            let l = sup.items.get(&(id, side)).with_context(|| {
                format!("internal: no labels for frame {id} at short side {side}")
            })?;
            labels.extend_from_slice(&l.labels);
        }
        let x = Tensor::stack(&xs, 0)?.to_device(device)?;
        let mut rng = crate::seed::stream(cfg.model.init_seed, &[DROPOUT_STREAM, it as u64]);
        let lr = lr_of_step(cfg, it);
        let (l, acc) = train_step(model, &mut optim, &x, &labels, lr, || rng.random::<f64>())
            .with_context(|| format!("iteration {it} at short side {side}"))?;
        sums = (sums.0 + l, sums.1 + acc, sums.2 + 1);
        bar.inc(1);
        let done = it + 1;
        if done % cfg.train.log_every.max(1) == 0 || done == total {
            let n = sums.2.max(1) as f64;
            let row = Row {
                iter: done,
                lr,
                loss: sums.0 / n,
                pixel_acc: sums.1 / n,
                seconds: since.elapsed().as_secs_f64() / n,
            };
            bar.set_message(format!("loss {:.3}", row.loss));
            log.push(row)?;
            sums = (0.0, 0.0, 0);
            since = Instant::now();
        }
        if cadence.due(done, total) {
            run_dir.save(done, params, &optim)?;
            cadence.check(done)?;
        }
    }
    bar.finish_and_clear();
    Ok(Trained {
        iterations_run: total - start,
        seconds: started.elapsed().as_secs_f64(),
        last: log.rows().last().cloned(),
    })
}
