//! The trained part of the normals model (NRM `ppm` on `resnet50dilated`): res5 of the
//! dilated ResNet-50 (its first 3x3 at dilation 2, the others at 4, stride 1: output stride
//! 8) from the backbone's checkpoint, then the PSPNet pyramid: per bin an adaptive average
//! pool, a 1x1 conv without bias, batch norm and ReLU, resized back bilinearly
//! (`align_corners` false) and concatenated after res5; a 3x3 conv without bias, batch norm,
//! ReLU, `Dropout2d` and a 1x1 classifier with bias.
//!
//! Batch norm: the decoder's train on the batch's statistics (the paper's synchronised BN
//! over its 16 images), with the paper's bias-corrected running averages
//! (`tmp = (1 - m) tmp + stat`, `w = (1 - m) w + 1`, `running = tmp / w`, unbiased variance)
//! that evaluation normalises with. res5's batch norms stay frozen as affine maps from the
//! checkpoint (Detectron's `AffineChannel`, [`affine_stages`]), a stated difference: the
//! paper trains them too. Maps are channel-major (C x N x H x W) inside, as the trunk's.

use super::config::ModelConfig;
use crate::backbone::{affine_stages, AffineConv, BackboneConfig, RandomInit, Stage, StagePlan};
use crate::train::params::Params;
use anyhow::Result;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Init, VarBuilder};
use sslbench_ops::{
    adaptive_avg_pool2d, batch_norm_train, conv2d, relu, resize_bilinear, to_channel_major,
    ConvSpec, Dropout2d,
};

/// A batch norm trained on batch statistics with bias-corrected running averages.
struct TrainedBatchNorm {
    gamma: Tensor,
    beta: Tensor,
    running_mean: Var,
    running_var: Var,
    /// The running averages' total weight `w` (0 before the first batch).
    running_weight: Var,
    momentum: f64,
    eps: f64,
}

impl TrainedBatchNorm {
    fn new(vb: VarBuilder, c: usize, cfg: &ModelConfig) -> Result<Self> {
        let var = |name: &str, init: f64| -> Result<Var> {
            Ok(Var::from_tensor(&vb.get_with_hints(
                c,
                name,
                Init::Const(init),
            )?)?)
        };
        Ok(Self {
            gamma: vb.get_with_hints(c, "weight", Init::Const(1.0))?,
            beta: vb.get_with_hints(c, "bias", Init::Const(cfg.bn_bias_init))?,
            running_mean: var("running_mean", 0.0)?,
            running_var: var("running_var", 1.0)?,
            running_weight: Var::from_tensor(&vb.get_with_hints(
                1,
                "running_weight",
                Init::Const(0.0),
            )?)?,
            momentum: cfg.bn_momentum,
            eps: cfg.bn_eps,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (c, n, h, w) = x.dims4()?;
        let count = n * h * w;
        if train {
            let (y, mean, var) = if x.device().is_cpu() {
                let (y, s) = batch_norm_train(x, &self.gamma, &self.beta, self.eps)?;
                let t = |v: &[f64]| Tensor::new(v, x.device())?.to_dtype(DType::F32);
                (y, t(&s.mean)?, t(&s.var)?)
            } else {
                let flat = x.reshape((c, count))?;
                let mean = flat.mean_keepdim(1)?;
                let centred = flat.broadcast_sub(&mean)?;
                let var = centred.sqr()?.mean_keepdim(1)?;
                let scale =
                    (var.affine(1.0, self.eps)?.sqrt()?.recip()? * self.gamma.reshape((c, 1))?)?;
                let y = centred
                    .broadcast_mul(&scale)?
                    .broadcast_add(&self.beta.reshape((c, 1))?)?
                    .reshape((c, n, h, w))?;
                (y, mean.flatten_all()?, var.flatten_all()?)
            };
            self.update(&mean.detach(), &var.detach(), count)?;
            return Ok(y);
        }
        let flat = x.reshape((c, count))?;
        let rm = self.running_mean.as_tensor().reshape((c, 1))?;
        let rv = self.running_var.as_tensor().reshape((c, 1))?;
        let scale = (rv.affine(1.0, self.eps)?.sqrt()?.recip()? * self.gamma.reshape((c, 1))?)?;
        Ok(flat
            .broadcast_sub(&rm)?
            .broadcast_mul(&scale)?
            .broadcast_add(&self.beta.reshape((c, 1))?)?
            .reshape((c, n, h, w))?)
    }

    /// The bias-corrected update with this batch's mean and unbiased variance.
    fn update(&self, mean: &Tensor, var: &Tensor, count: usize) -> Result<()> {
        let m = self.momentum;
        let unbiased = (var * (count as f64 / (count.max(2) - 1) as f64))?;
        let w_old = self.running_weight.as_tensor().detach();
        let w_new = ((&w_old * (1.0 - m))? + 1.0)?;
        let blend = |running: &Var, stat: &Tensor| -> Result<()> {
            let tmp = running
                .as_tensor()
                .detach()
                .broadcast_mul(&(&w_old * (1.0 - m))?)?;
            Ok(running.set(&(tmp + stat)?.broadcast_div(&w_new)?)?)
        };
        blend(&self.running_mean, mean)?;
        blend(&self.running_var, &unbiased)?;
        self.running_weight.set(&w_new)?;
        Ok(())
    }
}

/// A conv without bias, a trained batch norm and a ReLU.
struct ConvBnRelu {
    weight: Tensor,
    spec: ConvSpec,
    bn: TrainedBatchNorm,
}

impl ConvBnRelu {
    fn new(vb: VarBuilder, spec: ConvSpec, cfg: &ModelConfig) -> Result<Self> {
        let fan_in = spec.cin * spec.kernel * spec.kernel;
        let stdev = (2.0 / fan_in as f64).sqrt();
        Ok(Self {
            weight: vb.pp("conv").get_with_hints(
                spec.weight_shape(),
                "weight",
                Init::Randn { mean: 0.0, stdev },
            )?,
            bn: TrainedBatchNorm::new(vb.pp("bn"), spec.cout, cfg)?,
            spec,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = conv2d(x, &self.weight, None, &self.spec)?;
        Ok(relu(&self.bn.forward(&y, train)?)?)
    }
}

/// res5 and the PSPNet decoder.
pub struct NormalsModel {
    res5: Stage<AffineConv>,
    branches: Vec<(usize, ConvBnRelu)>,
    last: ConvBnRelu,
    dropout: Dropout2d,
    cls_w: Tensor,
    cls_b: Tensor,
    classes: usize,
}

/// Channels of res5's output and of the decoder's layers for a trunk of `width`.
pub fn widths(cfg: &ModelConfig, width: f64) -> (usize, usize, usize) {
    let scaled = |d: usize| {
        if cfg.scale_with_width {
            ((d as f64 * width).round() as usize).max(1)
        } else {
            d
        }
    };
    let res5 = ((64.0 * width).round() as usize).max(1) * 8 * 4;
    (res5, scaled(cfg.ppm_dim), scaled(cfg.last_dim))
}

/// res5's plan at output stride 8 (NRM `_nostride_dilate(dilate=4)`): stride 1, the first
/// block's 3x3 at dilation 2, the others at 4.
pub const RES5_OS8: StagePlan = StagePlan {
    index: 3,
    stride: 1,
    first_dilation: 2,
    dilation: 4,
    stride_in_1x1: false,
};

impl NormalsModel {
    /// Builds res5 from `backbone`'s checkpoint (or seeded init) and the decoder from the
    /// paper's init (Kaiming normal fan-in convs, BN weight 1 and bias `bn_bias_init`, the
    /// classifier's bias PyTorch's default uniform), recording every variable in `params`.
    pub fn new(
        backbone: &BackboneConfig,
        cfg: &ModelConfig,
        classes: usize,
        params: &Params,
        device: &Device,
    ) -> Result<Self> {
        let (_, width) = backbone.family()?;
        let res5 = affine_stages(backbone, &[RES5_OS8], params, device)?
            .pop()
            .expect("one stage planned");
        let (c5, ppm, last) = widths(cfg, width);
        let vb = params
            .var_builder(Box::new(RandomInit::new(cfg.init_seed)), device)
            .pp("decoder");
        let branches = cfg
            .ppm_bins
            .iter()
            .enumerate()
            .map(|(i, &bin)| {
                Ok((
                    bin,
                    ConvBnRelu::new(vb.pp(format!("ppm.{i}")), ConvSpec::new(c5, ppm, 1), cfg)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let cat = c5 + ppm * cfg.ppm_bins.len();
        let last_layer = ConvBnRelu::new(
            vb.pp("conv_last"),
            ConvSpec::new(cat, last, 3).padding(1),
            cfg,
        )?;
        let bound = 1.0 / (last as f64).sqrt();
        let cls = vb.pp("classifier");
        Ok(Self {
            res5,
            branches,
            last: last_layer,
            dropout: Dropout2d::new(cfg.dropout)?,
            cls_w: cls.get_with_hints(
                (classes, last, 1, 1),
                "weight",
                Init::Randn {
                    mean: 0.0,
                    stdev: (2.0 / last as f64).sqrt(),
                },
            )?,
            cls_b: cls.get_with_hints(
                classes,
                "bias",
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?,
            classes,
        })
    }

    /// Whether a parameter trains: res5's conv weights and every decoder variable but the
    /// running statistics.
    pub fn trains(name: &str) -> bool {
        if let Some(rest) = name.strip_prefix("decoder.") {
            return !rest.contains("running_");
        }
        name.starts_with("layer4.")
            && (name.ends_with("conv1.weight")
                || name.ends_with("conv2.weight")
                || name.ends_with("conv3.weight")
                || name.ends_with("downsample.0.weight"))
    }

    /// Whether weight decay applies (conv weights only, `group_weight`).
    pub fn decays(name: &str) -> bool {
        name.ends_with(".weight") && !name.contains(".bn.")
    }

    /// Logits, K x N x h x w (channel-major), of frozen res4 maps (N x C x h x w); in
    /// training (`train`) the batch norms use batch statistics and update their averages and
    /// dropout draws its masks from `uniform`.
    pub fn forward(
        &self,
        res4: &Tensor,
        train: bool,
        uniform: impl FnMut() -> f64,
    ) -> Result<Tensor> {
        let x = self.res5.forward(&to_channel_major(res4)?)?;
        let (_, n, h, w) = x.dims4()?;
        let mut parts = vec![x.clone()];
        for (bin, layer) in &self.branches {
            let pooled = adaptive_avg_pool2d(&x, (*bin, *bin))?;
            let y = layer.forward(&pooled, train)?;
            parts.push(resize_bilinear(&y, (h, w), false)?);
        }
        let y = self.last.forward(&Tensor::cat(&parts, 0)?, train)?;
        let y = if train && self.dropout.p() > 0.0 {
            let c = y.dim(0)?;
            // The masks are drawn per (image, channel), as Dropout2d draws them, then laid
            // out channel-major.
            let mask = self
                .dropout
                .mask(n, c, y.dtype(), y.device(), uniform)?
                .transpose(0, 1)?;
            y.broadcast_mul(&mask)?
        } else {
            y
        };
        let spec = ConvSpec::new(y.dim(0)?, self.classes, 1);
        Ok(conv2d(&y, &self.cls_w, Some(&self.cls_b), &spec)?)
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }
}
