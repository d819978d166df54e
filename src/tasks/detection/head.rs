//! The Fast R-CNN C4 model on a frozen conv body (Detectron's `ResNet50_fast_rcnn`): the
//! stages after the frozen tap (none for the paper's frozen body, res3 and res4 for the full
//! fine-tune), the RoI transform at 1/16, res5 on each RoI with its first block at stride 2,
//! a 7x7 average pool, then `cls_score` and the class-specific `bbox_pred`. Every convolution
//! trains over its batch norm frozen as an affine (Detectron's `AffineChannel`).

use super::config::{ModelConfig, RoiOp};
use crate::backbone::{
    affine_stages, AffineConv, BackboneConfig, RandomInit, Stage, StagePlan, Tap,
};
use crate::train::params::Params;
use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use candle_nn::Init;
use sslbench_ops::{from_channel_major, global_avg_pool, mm, to_channel_major};

/// The spatial scale of res4 in a C4 model.
pub const RES4_SCALE: f32 = 1.0 / 16.0;

/// The trained part of the detector.
pub struct FastRcnnHead {
    body: Vec<Stage<AffineConv>>,
    res5: Stage<AffineConv>,
    cls_w: Tensor,
    cls_b: Tensor,
    box_w: Tensor,
    box_b: Tensor,
    model: ModelConfig,
}

/// The outputs on a set of RoIs.
pub struct HeadOutput {
    /// Class logits, R x (classes + 1), background first.
    pub logits: Tensor,
    /// Box deltas, R x 4 (classes + 1), class-major.
    pub deltas: Tensor,
}

/// The stage index (0 = res2) of a frozen tap, and the trainable stages between it and res4.
pub fn trained_body(frozen: Tap) -> Result<Vec<usize>> {
    let first = match frozen {
        Tap::Res4 => 3,
        Tap::Res3 => 2,
        Tap::Res2 => 1,
        other => bail!(
            "detection freezes the body up to res2, res3 or res4 (Detectron's FREEZE_AT 2..4), \
             not {other}: set --taps res4 (the paper's frozen body) or res2 (its fine-tune)"
        ),
    };
    Ok((first..3).collect())
}

impl FastRcnnHead {
    /// Builds the head for `classes` foreground classes (`box_columns` regression outputs)
    /// on a body frozen up to `frozen`,
    /// the stages from the backbone's checkpoint, the two layers from Detectron's Gaussian
    /// init; every variable is recorded in `params`.
    pub fn new(
        backbone: &BackboneConfig,
        model: &ModelConfig,
        frozen: Tap,
        classes: usize,
        box_columns: usize,
        params: &Params,
        device: &Device,
    ) -> Result<Self> {
        let mut plans: Vec<StagePlan> = trained_body(frozen)?
            .into_iter()
            .map(StagePlan::plain)
            .collect();
        let mut res5 = StagePlan::plain(3);
        res5.stride = model.res5_stride;
        plans.push(res5);
        let mut stages = affine_stages(backbone, &plans, params, device)?;
        let res5 = stages.pop().expect("res5 is planned");
        let (_, width) = backbone.family()?;
        let dim = ((64.0 * width).round() as usize).max(1) * 8 * 4;
        let vb = params.var_builder(Box::new(RandomInit::new(model.init_seed)), device);
        let k = classes + 1;
        let gauss = |stdev| Init::Randn { mean: 0.0, stdev };
        Ok(Self {
            body: stages,
            res5,
            cls_w: vb.get_with_hints((k, dim), "cls_score.weight", gauss(model.cls_init_std))?,
            cls_b: vb.get_with_hints(k, "cls_score.bias", Init::Const(0.0))?,
            box_w: vb.get_with_hints(
                (box_columns, dim),
                "bbox_pred.weight",
                gauss(model.bbox_init_std),
            )?,
            box_b: vb.get_with_hints(box_columns, "bbox_pred.bias", Init::Const(0.0))?,
            model: model.clone(),
        })
    }

    /// Whether a parameter name is one of the head's biases (2x rate, no decay in Detectron).
    pub fn is_bias(name: &str) -> bool {
        name == "cls_score.bias" || name == "bbox_pred.bias"
    }

    /// Whether a parameter trains: every convolution weight, the two layers; never a frozen
    /// batch norm's numbers.
    pub fn trains(name: &str) -> bool {
        name.starts_with("cls_score.")
            || name.starts_with("bbox_pred.")
            || name.ends_with("conv1.weight")
            || name.ends_with("conv2.weight")
            || name.ends_with("conv3.weight")
            || name.ends_with("downsample.0.weight")
    }

    /// The res4 maps of a minibatch (NCHW) from the frozen tap's maps (NCHW).
    pub fn res4(&self, frozen: &Tensor) -> Result<Tensor> {
        if self.body.is_empty() {
            return Ok(frozen.clone());
        }
        let mut h = to_channel_major(frozen)?;
        for stage in &self.body {
            h = stage.forward(&h)?;
        }
        Ok(from_channel_major(&h)?)
    }

    /// The RoI maps, R x C x res x res, of `rois` (R x 5: batch index, x1 y1 x2 y2 in blob
    /// pixels) on res4 maps (N x C x H x W).
    pub fn roi_maps(&self, res4: &Tensor, rois: &Tensor) -> Result<Tensor> {
        let r = self.model.resolution;
        Ok(match self.model.roi_op {
            RoiOp::RoiPool => sslbench_ops::roi_pool::roi_pool(res4, rois, (r, r), RES4_SCALE)?,
            RoiOp::RoiAlign => sslbench_ops::roi_align::roi_align(
                res4,
                rois,
                (r, r),
                RES4_SCALE,
                self.model.sampling_ratio,
                self.model.aligned,
            )?,
        })
    }

    /// Class logits and box deltas of RoI maps (R x C x res x res).
    pub fn classify(&self, roi_maps: &Tensor) -> Result<HeadOutput> {
        let h = self.res5.forward(&to_channel_major(roi_maps)?)?;
        let pooled = from_channel_major(&global_avg_pool(&h)?)?;
        Ok(HeadOutput {
            logits: mm(&pooled, &self.cls_w.t()?)?.broadcast_add(&self.cls_b)?,
            deltas: mm(&pooled, &self.box_w.t()?)?.broadcast_add(&self.box_b)?,
        })
    }

    /// The whole head: maps of the frozen tap and the RoIs to logits and deltas.
    pub fn forward(&self, frozen: &Tensor, rois: &Tensor) -> Result<HeadOutput> {
        let res4 = self.res4(frozen)?;
        self.classify(&self.roi_maps(&res4, rois)?)
    }
}
