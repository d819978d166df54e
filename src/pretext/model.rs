//! A trunk with its pretext head: a linear layer on the pooled features of each input
//! (Rotation), on the 9 tiles' pooled features concatenated (Jigsaw's siamese trunk), or a
//! 1x1 convolution over a map (Colorization's per-cell bin classifier); the loss and the
//! pretext accuracy of a batch.

use super::batch::{Batch, Pretext};
use super::config::{PretextConfig, PretextKind};
use crate::backbone::{RandomInit, Tap, TrainableBackbone};
use crate::train::params::Params;
use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::Init;

/// The parameter-name prefix of the head: the frozen benchmark trunk ignores it.
pub const HEAD: &str = "head";

/// What a forward pass gives: the loss to minimise and the pretext accuracy's counts.
pub struct Outcome {
    /// Mean loss over the batch (a scalar with gradients).
    pub loss: Tensor,
    /// Correct predictions (images, inputs or cells).
    pub correct: f64,
    /// Predictions made.
    pub total: f64,
}

/// A trunk and its pretext head.
pub struct PretextModel {
    /// The trunk.
    pub trunk: TrainableBackbone,
    /// Every variable (trunk and head) by name.
    pub params: Params,
    weight: Tensor,
    bias: Tensor,
    kind: PretextKind,
    tap: Tap,
}

impl PretextModel {
    /// Builds the trunk of `cfg` and a head over its `model.head_tap` sized by a dry run.
    pub fn new(cfg: &PretextConfig, pretext: &Pretext, device: &Device) -> Result<Self> {
        let params = Params::new();
        let trunk =
            TrainableBackbone::new(&cfg.backbone(), device, &params, cfg.model.bn_momentum)?;
        let tap = cfg.model.head_tap;
        let side = pretext.input_side() as usize;
        trunk.set_training(false);
        let probe = Tensor::zeros((1, 3, side, side), DType::F32, device)?;
        let map = trunk
            .forward_taps(&probe, &[tap])
            .with_context(|| format!("the trunk cannot run on {side} x {side} inputs up to {tap}"))?
            .remove(0);
        trunk.set_training(true);
        let features = map.dims()[1..].iter().product::<usize>();
        let fan_in = match pretext.kind() {
            PretextKind::Rotation => features,
            PretextKind::Jigsaw => super::permutations::TILES * features,
            PretextKind::Colorization => {
                ensure!(
                    map.rank() == 4,
                    "colorization needs a spatial tap, not `{tap}`"
                );
                if let (Pretext::Colorization { cfg: c, .. }, [_, _, h, w]) = (pretext, map.dims())
                {
                    let want = (c.size / c.output_stride) as usize;
                    ensure!(
                        *h == want && *w == want,
                        "`{tap}` gives {h} x {w} maps on {side} px inputs, but colorize.output_stride = {} asks for {want} x {want}: set it to {}",
                        c.output_stride,
                        side / h.max(&1)
                    );
                }
                map.dims()[1]
            }
        };
        let classes = pretext.classes();
        let vb = params
            .var_builder(Box::new(RandomInit::new(cfg.seed)), device)
            .pp(HEAD);
        // PyTorch's `Linear` / 1x1 `Conv2d` default: uniform in +-1/sqrt(fan_in).
        let bound = 1.0 / (fan_in as f64).sqrt();
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let weight = vb.get_with_hints((classes, fan_in), "weight", init)?;
        let bias = vb.get_with_hints(classes, "bias", init)?;
        Ok(Self {
            trunk,
            params,
            weight,
            bias,
            kind: pretext.kind(),
            tap,
        })
    }

    /// The head's logits: (rows, classes) for the classifiers, (Q, cells) for Colorization.
    pub fn logits(&self, inputs: &Tensor, images: usize) -> Result<Tensor> {
        let map = self.trunk.forward_taps(inputs, &[self.tap])?.remove(0);
        let rows = match self.kind {
            PretextKind::Rotation => map.flatten_from(1)?,
            // The 9 tiles of an image are consecutive rows: one row per image.
            PretextKind::Jigsaw => map.flatten_from(1)?.reshape((images, ()))?,
            PretextKind::Colorization => {
                let c = map.dim(1)?;
                let cells = map.permute((1, 0, 2, 3))?.reshape((c, ()))?;
                return Ok(sslbench_ops::mm(&self.weight, &cells)?
                    .broadcast_add(&self.bias.unsqueeze(1)?)?);
            }
        };
        Ok(sslbench_ops::mm(&rows, &self.weight.t()?)?.broadcast_add(&self.bias)?)
    }

    /// The loss and accuracy counts of a batch.
    pub fn outcome(&self, batch: &Batch) -> Result<Outcome> {
        let logits = self.logits(&batch.inputs, batch.images)?;
        match (&batch.labels, &batch.soft, &batch.weight) {
            (Some(labels), _, _) => {
                let loss = candle_nn::loss::cross_entropy(&logits, labels)?;
                let hits = logits.argmax(D::Minus1)?.eq(labels)?.to_dtype(DType::F32)?;
                Ok(Outcome {
                    loss,
                    correct: f64::from(hits.sum_all()?.to_scalar::<f32>()?),
                    total: labels.dim(0)? as f64,
                })
            }
            (None, Some(soft), Some(weight)) => {
                // Zhang et al.'s multinomial loss: -sum_q z_q log p_q per cell, times the
                // cell's rebalancing weight, averaged over cells.
                let logp = candle_nn::ops::log_softmax(&logits, 0)?;
                let per_cell = (soft * &logp)?.sum(0)?.neg()?;
                let loss = (per_cell * weight)?.mean_all()?;
                let hits = logits
                    .argmax(0)?
                    .eq(&soft.argmax(0)?)?
                    .to_dtype(DType::F32)?;
                Ok(Outcome {
                    loss,
                    correct: f64::from(hits.sum_all()?.to_scalar::<f32>()?),
                    total: weight.dim(0)? as f64,
                })
            }
            _ => anyhow::bail!("internal: a batch with neither labels nor soft targets"),
        }
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        self.weight.device()
    }

    /// Colorization: per-cell bin probabilities of one batch, Q x (B h w).
    pub fn probabilities(&self, inputs: &Tensor, images: usize) -> Result<Tensor> {
        Ok(candle_nn::ops::softmax(&self.logits(inputs, images)?, 0)?)
    }
}
