//! Linear probes on frozen taps (protocols.md section 4): per tap, batch norm over the channels
//! of the pooled map (no scale and shift in FAIR's protocol, learned ones in VISSL's), a fully
//! connected layer and softmax cross-entropy. The heads' losses are summed, so the heads are
//! independent but train in one loop over the same batches.

use crate::seed::probe_stream;
use crate::train::optim::{Method, Optimizer, OptimizerConfig};
use crate::train::params::Params;
use crate::train::schedule::Decay;
use anyhow::{bail, ensure, Context};
use candle_core::{DType, Device, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// How a schedule's `length` and `step` are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// SGD iterations (FAIR).
    Iterations,
    /// Passes over the training set (VISSL).
    Epochs,
}

/// The training protocol of the heads: one `[probe.<variant>]` table of a task file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Images per SGD iteration.
    pub batch_size: usize,
    /// The unit of `length` and `step`.
    pub unit: Unit,
    /// Training length.
    pub length: usize,
    /// The learning rate is multiplied by `gamma` every `step` units.
    pub step: usize,
    /// Initial learning rate.
    pub lr: f64,
    /// Factor of each learning-rate step.
    pub gamma: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 weight decay of the fully connected weights (never of batch-norm parameters).
    pub weight_decay: f64,
    /// Whether the fully connected bias takes weight decay too.
    pub bias_decay: bool,
    /// Batch-norm momentum in Caffe2's convention: `running = m * running + (1 - m) * batch`
    /// (PyTorch's `momentum` is `1 - m`).
    pub bn_momentum: f64,
    /// Batch-norm epsilon.
    pub bn_eps: f64,
    /// Images per batch-norm statistics group: the per-GPU batch when batch norm is not
    /// synchronised across GPUs (FAIR: 256 over 8 GPUs = 32), the whole batch when it is.
    pub bn_group: usize,
    /// Learned batch-norm scale and shift (VISSL) instead of none (FAIR).
    pub bn_affine: bool,
    /// Standard deviation of the Gaussian initialisation of the fully connected weights.
    pub init_std: f64,
}

/// A schedule resolved to iterations for one training set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// Total SGD iterations.
    pub iterations: usize,
    /// Iterations between learning-rate steps.
    pub step: usize,
    /// Full batches per epoch (the remainder of an epoch is dropped).
    pub per_epoch: usize,
}

impl ProbeConfig {
    /// Checks the numbers, naming the field to fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            self.batch_size > 0 && self.length > 0 && self.step > 0,
            "batch_size, length and step of the probe must be positive"
        );
        ensure!(
            self.bn_group > 0 && self.batch_size.is_multiple_of(self.bn_group),
            "bn_group ({}) must divide batch_size ({})",
            self.bn_group,
            self.batch_size
        );
        ensure!(
            (0.0..1.0).contains(&self.bn_momentum) && (0.0..1.0).contains(&self.momentum),
            "bn_momentum and momentum must lie in [0, 1)"
        );
        ensure!(
            self.lr > 0.0 && self.gamma > 0.0 && self.bn_eps > 0.0 && self.init_std >= 0.0,
            "lr, gamma and bn_eps must be positive and init_std not negative"
        );
        ensure!(
            self.weight_decay >= 0.0,
            "weight_decay must not be negative"
        );
        Ok(())
    }

    /// The schedule in iterations for a training set of `images` images.
    pub fn schedule(&self, images: usize) -> anyhow::Result<Schedule> {
        let per_epoch = images / self.batch_size;
        if per_epoch == 0 {
            bail!(
                "the training set has {images} images, fewer than one batch of {}: lower the \
                 variant's batch_size (and bn_group)",
                self.batch_size
            );
        }
        let scale = match self.unit {
            Unit::Iterations => 1,
            Unit::Epochs => per_epoch,
        };
        Ok(Schedule {
            iterations: self.length * scale,
            step: self.step * scale,
            per_epoch,
        })
    }

    /// The learning rate at iteration `it` of `schedule`.
    pub fn lr_at(&self, schedule: &Schedule, it: usize) -> f64 {
        let decay = Decay::Step {
            gamma: self.gamma,
            step: schedule.step,
        };
        self.lr * decay.factor(it, schedule.iterations)
    }
}

/// Which images each iteration trains on: the training set shuffled anew every epoch (seeded
/// by the run seed and the epoch) and cut into full batches.
pub struct Batches {
    images: usize,
    batch: usize,
    seed: u64,
    epoch: Option<usize>,
    order: Vec<usize>,
}

impl Batches {
    /// Batches of `batch` out of `images` images.
    pub fn new(images: usize, batch: usize, seed: u64) -> Self {
        Self {
            images,
            batch,
            seed,
            epoch: None,
            order: (0..images).collect(),
        }
    }

    /// The epoch and the image indices of iteration `it`.
    pub fn get(&mut self, it: usize) -> (usize, &[usize]) {
        let per_epoch = (self.images / self.batch).max(1);
        let (epoch, pos) = (it / per_epoch, it % per_epoch);
        if self.epoch != Some(epoch) {
            self.order = (0..self.images).collect();
            self.order
                .shuffle(&mut probe_stream(self.seed, &[u64::MAX, epoch as u64]));
            self.epoch = Some(epoch);
        }
        let end = ((pos + 1) * self.batch).min(self.images);
        (epoch, &self.order[pos * self.batch..end])
    }
}

/// Batch norm over channels of a flattened `C x S` map (S spatial positions, channel-major, as
/// the pooled taps are stored): statistics over the images of a group and the positions.
pub struct BatchNorm {
    channels: usize,
    eps: f64,
    momentum: f64,
    group: usize,
    running_mean: Var,
    running_var: Var,
    affine: Option<(Var, Var)>,
}

impl BatchNorm {
    /// A batch norm over `channels` channels: running mean 0 and variance 1, scale 1 and shift
    /// 0 when affine.
    pub fn new(channels: usize, cfg: &ProbeConfig, device: &Device) -> Result<Self> {
        let affine = if cfg.bn_affine {
            Some((
                Var::ones(channels, DType::F32, device)?,
                Var::zeros(channels, DType::F32, device)?,
            ))
        } else {
            None
        };
        Ok(Self {
            channels,
            eps: cfg.bn_eps,
            momentum: cfg.bn_momentum,
            group: cfg.bn_group,
            running_mean: Var::zeros(channels, DType::F32, device)?,
            running_var: Var::ones(channels, DType::F32, device)?,
            affine,
        })
    }

    /// Training forward of a `B x (C S)` batch: each group of `bn_group` images is normalised
    /// with its own mean and biased variance; the running statistics move towards the groups'
    /// mean statistics (the variance unbiased, as Caffe2 and PyTorch keep it).
    pub fn train(&mut self, x: &Tensor) -> Result<Tensor> {
        let (b, d) = x.dims2()?;
        let (c, s) = (self.channels, d / self.channels);
        if !b.is_multiple_of(self.group) || s * self.channels != d {
            candle_core::bail!(
                "batch norm: a {b} x {d} batch does not split into groups of {} images and {c} \
                 channels",
                self.group
            );
        }
        let groups = b / self.group;
        let count = self.group * s;
        if count < 2 {
            candle_core::bail!(
                "batch norm needs at least 2 values per channel and group: raise bn_group"
            );
        }
        let xg = x.reshape((groups, self.group, c, s))?;
        let mean = xg.mean_keepdim(3)?.mean_keepdim(1)?;
        let centred = xg.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(3)?.mean_keepdim(1)?;
        let y = centred.broadcast_div(&(var.clone() + self.eps)?.sqrt()?)?;
        let m = self.momentum;
        let batch_mean = mean.detach().reshape((groups, c))?.mean(0)?;
        let unbias = count as f64 / (count - 1) as f64;
        let batch_var = (var.detach().reshape((groups, c))?.mean(0)? * unbias)?;
        let blend = |running: &Var, batch: Tensor| -> Result<()> {
            running.set(&((running.as_tensor().detach() * m)? + (batch * (1.0 - m))?)?)
        };
        blend(&self.running_mean, batch_mean)?;
        blend(&self.running_var, batch_var)?;
        self.scale_shift(y.reshape((b, c, s))?)?.reshape((b, d))
    }

    /// Inference forward: normalised with the running statistics.
    pub fn eval(&self, x: &Tensor) -> Result<Tensor> {
        let (b, d) = x.dims2()?;
        let c = self.channels;
        let s = d / c;
        let mean = self.running_mean.as_tensor().reshape((1, c, 1))?;
        let std = (self.running_var.as_tensor().reshape((1, c, 1))? + self.eps)?.sqrt()?;
        let y = x
            .reshape((b, c, s))?
            .broadcast_sub(&mean)?
            .broadcast_div(&std)?;
        self.scale_shift(y)?.reshape((b, d))
    }

    /// The running mean (one value per channel).
    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    /// The running variance (one value per channel).
    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    /// The learned scale and shift, when affine.
    pub fn affine(&self) -> Option<&(Var, Var)> {
        self.affine.as_ref()
    }

    fn scale_shift(&self, y: Tensor) -> Result<Tensor> {
        match &self.affine {
            Some((scale, shift)) => {
                let c = self.channels;
                y.broadcast_mul(&scale.as_tensor().reshape((1, c, 1))?)?
                    .broadcast_add(&shift.as_tensor().reshape((1, c, 1))?)
            }
            None => Ok(y),
        }
    }
}

/// The shape of one tap's pooled features.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TapShape {
    /// Channels of the pooled map.
    pub channels: usize,
    /// Flattened dimension (channels x positions).
    pub dim: usize,
}

/// One head: batch norm, then a fully connected layer to the classes.
pub struct Head {
    bn: BatchNorm,
    weight: Var,
    bias: Var,
}

impl Head {
    /// A head for `shape` features and `classes` classes, its weights drawn from `rng`.
    pub fn new(
        shape: TapShape,
        classes: usize,
        cfg: &ProbeConfig,
        rng: &mut StdRng,
        device: &Device,
    ) -> anyhow::Result<Self> {
        ensure!(
            shape.channels > 0 && shape.dim.is_multiple_of(shape.channels),
            "a {}-dim feature does not split into {} channels",
            shape.dim,
            shape.channels
        );
        let normal = Normal::new(0.0f32, cfg.init_std as f32).context("invalid init_std")?;
        let values: Vec<f32> = (0..shape.dim * classes)
            .map(|_| normal.sample(rng))
            .collect();
        Ok(Self {
            bn: BatchNorm::new(shape.channels, cfg, device)?,
            weight: Var::from_tensor(&Tensor::from_vec(values, (shape.dim, classes), device)?)?,
            bias: Var::zeros(classes, DType::F32, device)?,
        })
    }

    /// Training logits (batch statistics, running statistics updated).
    pub fn train(&mut self, x: &Tensor) -> Result<Tensor> {
        let y = self.bn.train(x)?;
        self.fc(&y)
    }

    /// Inference logits (running statistics).
    pub fn eval(&self, x: &Tensor) -> Result<Tensor> {
        self.fc(&self.bn.eval(x)?)
    }

    fn fc(&self, y: &Tensor) -> Result<Tensor> {
        sslbench_ops::mm(y, self.weight.as_tensor())?.broadcast_add(self.bias.as_tensor())
    }
}

/// The heads of all taps and their optimiser. Every tensor of the heads, running statistics
/// included, is also recorded by name in [`Probe::params`], so a checkpoint holds the whole
/// state a resumed run needs.
pub struct Probe {
    heads: Vec<Head>,
    sgd: Optimizer,
    params: Params,
}

impl Probe {
    /// One head per shape; head `i` draws its weights from `seeded(seed, &[streams[i]])`.
    pub fn new(
        shapes: &[TapShape],
        streams: &[u64],
        classes: usize,
        cfg: &ProbeConfig,
        seed: u64,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let mut sgd = Optimizer::new(OptimizerConfig {
            method: Method::Sgd {
                momentum: cfg.momentum,
                nesterov: cfg.nesterov,
            },
            weight_decay: cfg.weight_decay,
            decay_vectors: cfg.bias_decay,
            clip_norm: None,
        });
        let mut heads = Vec::with_capacity(shapes.len());
        let params = Params::new();
        for (shape, stream) in shapes.iter().zip(streams) {
            let head = Head::new(
                *shape,
                classes,
                cfg,
                &mut probe_stream(seed, &[*stream]),
                device,
            )?;
            let name = |p: &str| format!("head{stream}.{p}");
            sgd.add(&name("weight"), head.weight.clone(), true)?;
            sgd.add(&name("bias"), head.bias.clone(), cfg.bias_decay)?;
            if let Some((scale, shift)) = head.bn.affine() {
                sgd.add(&name("bn.weight"), scale.clone(), false)?;
                sgd.add(&name("bn.bias"), shift.clone(), false)?;
                params.insert(&name("bn.weight"), scale.clone());
                params.insert(&name("bn.bias"), shift.clone());
            }
            params.insert(&name("weight"), head.weight.clone());
            params.insert(&name("bias"), head.bias.clone());
            params.insert(&name("bn.running_mean"), head.bn.running_mean.clone());
            params.insert(&name("bn.running_var"), head.bn.running_var.clone());
            heads.push(head);
        }
        Ok(Self { heads, sgd, params })
    }

    /// One SGD iteration on a batch: `inputs[i]` (`B x dim`) feeds head `i`, `labels` (u32,
    /// `B`) are the classes; the summed loss is minimised. Returns each head's loss.
    pub fn step(&mut self, inputs: &[Tensor], labels: &Tensor, lr: f64) -> Result<Vec<f32>> {
        let mut total: Option<Tensor> = None;
        let mut losses = Vec::with_capacity(self.heads.len());
        for (head, x) in self.heads.iter_mut().zip(inputs) {
            let loss = candle_nn::loss::cross_entropy(&head.train(x)?, labels)?;
            losses.push(loss.to_scalar::<f32>()?);
            total = Some(match total {
                Some(t) => (t + loss)?,
                None => loss,
            });
        }
        if let Some(total) = total {
            let grads = total.backward()?;
            self.sgd.step(&grads, lr)?;
        }
        Ok(losses)
    }

    /// The heads, in the order of the shapes.
    pub fn heads(&self) -> &[Head] {
        &self.heads
    }

    /// Every tensor of the heads by name (`head<stream>.weight`, `.bias`, `.bn.*`), shared
    /// with the heads: what a checkpoint saves and a resume loads.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The optimiser, whose moments a checkpoint saves and a resume loads.
    pub fn optimizer_mut(&mut self) -> &mut Optimizer {
        &mut self.sgd
    }

    /// The optimiser.
    pub fn optimizer(&self) -> &Optimizer {
        &self.sgd
    }
}
