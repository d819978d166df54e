//! Training the RoI heads with Detectron's solver: per iteration `gpus` aspect-grouped
//! minibatches of `ims_per_batch` images (Detectron's order, on one device), 64 sampled RoIs
//! each, softmax cross-entropy plus smooth L1, SGD
//! with momentum (biases at twice the rate without decay), linear warm-up and step decay, the
//! velocity rescaled on a rate step. Every random draw derives from (seed, iteration), so a
//! run killed and resumed from its checkpoint ends bit-identical to one that never stopped.

use super::batches::MinibatchOrder;
use super::config::DetectionConfig;
use super::head::FastRcnnHead;
use super::maps::FrozenMaps;
use super::roidb::RoidbEntry;
use super::sampling::{sample_rng, sample_rois};
use crate::train::log::{CsvLog, LogRow};
use crate::train::optim::{Method, Optimizer, OptimizerConfig};
use crate::train::params::Params;
use crate::train::run_dir::{RunDir, RunSpec};
use crate::train::stop::Cadence;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use std::path::Path;
use std::time::Instant;

/// The training log's file name.
pub const LOG: &str = "train.csv";

/// One logged iteration.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Iterations done.
    pub iter: usize,
    /// The rate of the iteration.
    pub lr: f64,
    /// Softmax cross-entropy, mean over RoIs.
    pub loss_cls: f64,
    /// Smooth L1 over the foreground RoIs' class columns, summed and divided by the RoIs.
    pub loss_bbox: f64,
    /// Classification accuracy on the sampled RoIs.
    pub accuracy: f64,
    /// Seconds per iteration since the last row.
    pub seconds: f64,
}

impl LogRow for Row {
    const HEADER: &'static str = "iter,lr,loss_cls,loss_bbox,accuracy,seconds";

    fn step(&self) -> usize {
        self.iter
    }

    fn to_csv(&self) -> String {
        format!(
            "{},{:e},{},{},{},{:.4}",
            self.iter, self.lr, self.loss_cls, self.loss_bbox, self.accuracy, self.seconds
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let v: Vec<&str> = line.split(',').collect();
        if v.len() != 6 {
            return None;
        }
        Some(Self {
            iter: v[0].parse().ok()?,
            lr: v[1].parse().ok()?,
            loss_cls: v[2].parse().ok()?,
            loss_bbox: v[3].parse().ok()?,
            accuracy: v[4].parse().ok()?,
            seconds: v[5].parse().ok()?,
        })
    }
}

/// The SGD optimiser over the head's trained parameters, as Detectron builds it.
pub fn optimizer(cfg: &DetectionConfig, params: &Params) -> Result<Optimizer> {
    let s = &cfg.solver;
    let mut optim = Optimizer::new(OptimizerConfig {
        method: Method::Sgd {
            momentum: s.momentum,
            nesterov: false,
        },
        weight_decay: s.weight_decay,
        decay_vectors: s.bias_weight_decay,
        clip_norm: None,
    });
    for (name, var, _) in params.all() {
        if !FastRcnnHead::trains(&name) {
            continue;
        }
        if FastRcnnHead::is_bias(&name) {
            optim.add_scaled(&name, var, s.bias_weight_decay, s.bias_lr_factor)?;
        } else {
            optim.add(&name, var, true)?;
        }
    }
    Ok(optim)
}

/// One minibatch as tensors.
pub struct Minibatch {
    /// The frozen tap's maps, N x C x H x W, zero-padded to a common size.
    pub maps: Tensor,
    /// R x 5 RoIs: image index, x1 y1 x2 y2 in blob pixels.
    pub rois: Tensor,
    /// R class labels (u32, 0 = background).
    pub labels: Tensor,
    /// R x 4 (classes + 1) regression targets.
    pub targets: Tensor,
    /// Their inside weights (1 on the label's four columns of a foreground RoI).
    pub inside: Tensor,
    /// Their outside weights.
    pub outside: Tensor,
}

/// Zero-pads C x H_i x W_i maps to the largest H and W (bottom and right, as Detectron's
/// `im_list_to_blob` pads the images) and stacks them.
pub fn stack_padded(maps: &[Tensor]) -> Result<Tensor> {
    let h = maps
        .iter()
        .map(|m| m.dim(1))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let w = maps
        .iter()
        .map(|m| m.dim(2))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let (hm, wm) = (*h.iter().max().unwrap_or(&0), *w.iter().max().unwrap_or(&0));
    let padded = maps
        .iter()
        .map(|m| {
            let (_, mh, mw) = m.dims3()?;
            m.pad_with_zeros(1, 0, hm - mh)?
                .pad_with_zeros(2, 0, wm - mw)
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::stack(&padded, 0)?)
}

fn minibatch(
    cfg: &DetectionConfig,
    roidb: &[RoidbEntry],
    batch: &[usize],
    maps: &FrozenMaps,
    classes: usize,
    iter: usize,
    device: &Device,
) -> Result<Minibatch> {
    let mut rois: Vec<f32> = Vec::new();
    let mut labels = Vec::new();
    let (mut targets, mut inside, mut outside) = (Vec::new(), Vec::new(), Vec::new());
    let mut images = Vec::with_capacity(batch.len());
    let mut cols = cfg.box_columns(classes);
    for (k, &i) in batch.iter().enumerate() {
        let entry = &roidb[i];
        let (map, im_scale) = maps.read(entry)?;
        images.push(map);
        let mut rng = sample_rng(cfg.train.seed, iter as u64, k as u64);
        let s = sample_rois(entry, im_scale, k, classes + 1, &cfg.sampling, &mut rng);
        cols = s.target_columns;
        rois.extend(s.rois.iter().flatten());
        labels.extend(s.labels.iter().map(|&l| l as u32));
        targets.extend_from_slice(&s.bbox_targets);
        inside.extend_from_slice(&s.bbox_inside_weights);
        outside.extend_from_slice(&s.bbox_outside_weights);
    }
    let r = labels.len();
    if r == 0 {
        bail!("iteration {iter}: the minibatch has no RoI (no proposal overlaps any class)");
    }
    let t = |v: Vec<f32>| Tensor::from_vec(v, (r, cols), device);
    Ok(Minibatch {
        maps: stack_padded(&images)?.to_device(device)?,
        rois: Tensor::from_vec(rois, (r, 5), device)?,
        labels: Tensor::from_vec(labels, r, device)?,
        targets: t(targets)?,
        inside: t(inside)?,
        outside: t(outside)?,
    })
}

/// Smooth L1 with `beta` (Detectron's `SmoothL1Loss`): `sum(outside * sl1(inside * (pred -
/// target))) / rois`, written with `m = min(|x|, beta)` as `0.5 m^2 / beta + |x| - m`.
pub fn smooth_l1(
    pred: &Tensor,
    target: &Tensor,
    inside: &Tensor,
    outside: &Tensor,
    beta: f64,
) -> Result<Tensor> {
    let x = ((pred - target)? * inside)?;
    let a = x.abs()?;
    let m = a.minimum(beta)?;
    let l = ((m.sqr()? * (0.5 / beta))? + (a - m)?)?;
    let rois = pred.dim(0)? as f64;
    Ok(((l * outside)?.sum_all()? / rois)?)
}

/// The losses and accuracy of one forward pass.
pub struct Losses {
    /// Their sum, to differentiate.
    pub total: Tensor,
    /// The cross-entropy.
    pub cls: f64,
    /// The smooth L1.
    pub bbox: f64,
    /// The accuracy on the RoIs.
    pub accuracy: f64,
}

/// One training iteration: forward, backward, and the optimiser's step at `lr`.
pub fn train_step(
    head: &FastRcnnHead,
    optim: &mut Optimizer,
    mb: &Minibatch,
    lr: f64,
    beta: f64,
) -> Result<Losses> {
    let l = losses(head, mb, beta)?;
    let grads = l.total.backward()?;
    optim.step(&grads, lr)?;
    Ok(l)
}

fn losses(head: &FastRcnnHead, mb: &Minibatch, beta: f64) -> Result<Losses> {
    let out = head.forward(&mb.maps, &mb.rois)?;
    let cls = candle_nn::loss::cross_entropy(&out.logits, &mb.labels)?;
    let bbox = smooth_l1(&out.deltas, &mb.targets, &mb.inside, &mb.outside, beta)?;
    let predicted = out.logits.argmax(D::Minus1)?;
    let correct = predicted
        .eq(&mb.labels)?
        .to_dtype(DType::F64)?
        .mean_all()?
        .to_scalar::<f64>()?;
    Ok(Losses {
        total: (&cls + &bbox)?,
        cls: cls.to_dtype(DType::F64)?.to_scalar()?,
        bbox: bbox.to_dtype(DType::F64)?.to_scalar()?,
        accuracy: correct,
    })
}

/// What training leaves for the test.
pub struct Trained {
    /// Iterations run in this process (0 when the run was already complete).
    pub iterations_run: usize,
    /// Seconds spent in them.
    pub seconds: f64,
    /// The log's last row.
    pub last: Option<Row>,
}

/// Trains (or resumes, or finds finished) the head in `dir`.
#[allow(clippy::too_many_arguments)]
pub fn train(
    cfg: &DetectionConfig,
    head: &FastRcnnHead,
    params: &Params,
    roidb: &[RoidbEntry],
    maps: &FrozenMaps,
    classes: usize,
    dir: &Path,
    device: &Device,
) -> Result<Trained> {
    let mut optim = optimizer(cfg, params)?;
    let (run_dir, start) = RunDir::open(
        dir,
        RunSpec {
            what: "detection",
            seed: cfg.train.seed,
            digest: cfg.train_digest(),
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
    let order = MinibatchOrder::new(
        cfg.train.seed,
        roidb.iter().map(|e| (e.width, e.height)).collect(),
        cfg.train.ims_per_batch,
        cfg.train.aspect_grouping,
    )?;
    let bar = crate::progress::bar((total - start) as u64, "Fast R-CNN", "iterations");
    let mut cadence = Cadence::new(cfg.train.checkpoint_every, cfg.train.checkpoint_seconds);
    let started = Instant::now();
    let mut since = Instant::now();
    let mut sums = (0.0, 0.0, 0.0, 0usize);
    let mut lr_prev = if start > 0 {
        cfg.solver.lr_at(start - 1)
    } else {
        cfg.solver.lr_at(0)
    };
    for it in start..total {
        let gpus = cfg.train.gpus.max(1) as u64;
        let batch: Vec<usize> = (0..gpus)
            .flat_map(|g| order.minibatch(it as u64 * gpus + g))
            .collect();
        let lr = cfg.solver.lr_at(it);
        let ratio = (lr / lr_prev).max(lr_prev / lr);
        if cfg.solver.scale_momentum
            && lr_prev > 1e-7
            && ratio > cfg.solver.scale_momentum_threshold
        {
            optim.scale_velocity(lr / lr_prev)?;
        }
        lr_prev = lr;
        let mb = minibatch(cfg, roidb, &batch, maps, classes, it, device)
            .with_context(|| format!("building minibatch {it}"))?;
        let l = train_step(head, &mut optim, &mb, lr, cfg.model.smooth_l1_beta)?;
        sums = (
            sums.0 + l.cls,
            sums.1 + l.bbox,
            sums.2 + l.accuracy,
            sums.3 + 1,
        );
        bar.inc(1);
        let done = it + 1;
        if done % cfg.train.log_every.max(1) == 0 || done == total {
            let n = sums.3.max(1) as f64;
            let row = Row {
                iter: done,
                lr,
                loss_cls: sums.0 / n,
                loss_bbox: sums.1 / n,
                accuracy: sums.2 / n,
                seconds: since.elapsed().as_secs_f64() / n,
            };
            bar.set_message(format!("loss {:.3} + {:.3}", row.loss_cls, row.loss_bbox));
            log.push(row)?;
            sums = (0.0, 0.0, 0.0, 0);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::{BackboneConfig, Tap};

    /// The head, its optimiser and one minibatch of random maps with 3 classes of RoIs.
    fn setup() -> (FastRcnnHead, Params, Optimizer, Minibatch) {
        let dev = Device::Cpu;
        let backbone: BackboneConfig =
            toml::from_str("arch = \"resnet50\"\nwidth = 0.0625\nweights = \"random\"\nseed = 1\n")
                .unwrap();
        let mut cfg = DetectionConfig::default();
        cfg.solver.weight_decay = 0.0;
        let params = Params::new();
        let head =
            FastRcnnHead::new(&backbone, &cfg.model, Tap::Res4, 3, 16, &params, &dev).unwrap();
        let optim = optimizer(&cfg, &params).unwrap();
        // Distinct, reproducible non-negative maps (a ReLU trunk's).
        let values: Vec<f32> = (0..2 * 64 * 12 * 16)
            .map(|i| ((i as f32 * 0.7341).sin() * 43758.547).fract().abs())
            .collect();
        let maps = Tensor::from_vec(values, (2, 64, 12, 16), &dev).unwrap();
        let rois: Vec<f32> = (0..16)
            .flat_map(|i| {
                let x = (i % 4) as f32 * 48.0;
                let y = (i / 4 % 2) as f32 * 80.0;
                [(i / 8) as f32, x, y, x + 60.0, y + 90.0]
            })
            .collect();
        let labels: Vec<u32> = (0..16).map(|i| (i % 4) as u32).collect();
        let mb = Minibatch {
            maps,
            rois: Tensor::from_vec(rois, (16, 5), &dev).unwrap(),
            labels: Tensor::from_vec(labels, 16, &dev).unwrap(),
            targets: Tensor::zeros((16, 16), DType::F32, &dev).unwrap(),
            inside: Tensor::zeros((16, 16), DType::F32, &dev).unwrap(),
            outside: Tensor::zeros((16, 16), DType::F32, &dev).unwrap(),
        };
        (head, params, optim, mb)
    }

    /// Twenty SGD steps at a small rate on one minibatch lower its loss: the gradients reach
    /// every trained layer with the right sign (the whole head, res5 included).
    #[test]
    fn sgd_steps_lower_the_loss_of_a_minibatch() {
        let (head, _params, mut optim, mb) = setup();
        let first = train_step(&head, &mut optim, &mb, 1e-3, 1.0).unwrap();
        let mut last = first.cls;
        for _ in 0..20 {
            last = train_step(&head, &mut optim, &mb, 1e-3, 1.0).unwrap().cls;
        }
        assert!(first.cls > 1.0, "initial loss {}", first.cls);
        assert!(last < 0.97 * first.cls, "loss {} -> {last}", first.cls);
    }

    #[test]
    fn only_convolution_weights_and_the_two_layers_train() {
        let (_head, params, optim, _mb) = setup();
        let trained: Vec<String> = params
            .all()
            .into_iter()
            .map(|(n, _, _)| n)
            .filter(|n| FastRcnnHead::trains(n))
            .collect();
        // res5: 3 blocks x 3 convs + the projection; cls_score and bbox_pred: weight and bias.
        assert_eq!(trained.len(), 10 + 4, "{trained:?}");
        assert_eq!(optim.steps(), 0);
        assert!(trained.iter().all(|n| !n.contains(".bn")));
    }
}
