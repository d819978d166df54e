//! The typed sections of a detection task file (`tasks/voc07_frcnn.toml` and its kin). Every
//! number of the protocol is a field; the defaults are Detectron's (`detectron/core/config.py`)
//! and FAIR's VOC07 frozen-body config, so a file that sets nothing runs the paper's protocol.

use super::blob::BlobConfig;
use super::roidb::RoidbConfig;
use super::sampling::SamplingConfig;
use super::voc_eval::EvalConfig;
use crate::features::dense::MapsStorage;
use crate::proposals::selective_search::SelectiveSearchConfig;
use crate::train::run_section::ResumeSection;
use crate::train::schedule::{Decay, LrSchedule};
use anyhow::{Context, Result};
use serde::Deserialize;
use sslbench_ops::boxes::BoxCoder;

/// The RoI feature transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoiOp {
    /// Detectron's RoIPoolF (the benchmark's default).
    RoiPool,
    /// RoIAlign (`aligned` chooses Detectron's legacy or detectron2's half-pixel form).
    RoiAlign,
}

/// `[model]`: the C4 head on the RoIs.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// `FAST_RCNN.ROI_XFORM_METHOD`.
    pub roi_op: RoiOp,
    /// `FAST_RCNN.ROI_XFORM_RESOLUTION`: RoI maps are resolution x resolution.
    pub resolution: usize,
    /// `FAST_RCNN.ROI_XFORM_SAMPLING_RATIO` (RoIAlign; 0: adaptive).
    pub sampling_ratio: usize,
    /// RoIAlign's half-pixel shift (detectron2's ROIAlignV2); false is Detectron's.
    pub aligned: bool,
    /// Stride of res5's first block (`int(resolution / 7)`: 14x14 RoIs become 7x7).
    pub res5_stride: usize,
    /// Standard deviation of `cls_score`'s Gaussian init.
    pub cls_init_std: f64,
    /// Standard deviation of `bbox_pred`'s Gaussian init.
    pub bbox_init_std: f64,
    /// Seed of the heads' random init (Detectron's `RNG_SEED`).
    pub init_seed: u64,
    /// The smooth L1 loss's beta (Detectron's `SmoothL1Loss` default 1).
    pub smooth_l1_beta: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            roi_op: RoiOp::RoiPool,
            resolution: 14,
            sampling_ratio: 0,
            aligned: false,
            res5_stride: 2,
            cls_init_std: 0.01,
            bbox_init_std: 0.001,
            init_seed: 3,
            smooth_l1_beta: 1.0,
        }
    }
}

/// `[trunk_input]`: what the trunk expects of Detectron's mean-subtracted blob.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrunkInput {
    /// FAIR's `--absorb_std`: the trunk was trained on `(x / 255 - mean) / std`, so the blob
    /// (`x - 255 mean`) is divided by `255 std` per channel before it enters. Dividing the
    /// input is the same linear map as FAIR's division of `conv1_w`.
    pub absorb_std: bool,
    /// The per-channel std of the trunk's training normalisation, in the blob's channel order.
    pub std: [f32; 3],
}

impl Default for TrunkInput {
    fn default() -> Self {
        Self {
            absorb_std: true,
            std: [0.229, 0.224, 0.225],
        }
    }
}

/// `[box_coder]`: the decoding's clip (its weights are `roidb.bbox_reg_weights`, which the
/// training targets use too).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoxCoderConfig {
    /// `BBOX_XFORM_CLIP`: the largest decoded log-scale.
    pub clip: f32,
}

impl Default for BoxCoderConfig {
    fn default() -> Self {
        Self {
            clip: BoxCoder::default().clip,
        }
    }
}

/// `[solver]`: Detectron's SGD.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SolverConfig {
    /// `SOLVER.BASE_LR`.
    pub base_lr: f64,
    /// `SOLVER.MOMENTUM`.
    pub momentum: f64,
    /// `SOLVER.WEIGHT_DECAY` (weights only).
    pub weight_decay: f64,
    /// `SOLVER.BIAS_LR_FACTOR`... Detectron's biases train at twice the rate.
    pub bias_lr_factor: f64,
    /// Whether biases are decayed (Detectron: no).
    pub bias_weight_decay: bool,
    /// `SOLVER.MAX_ITER`.
    pub max_iter: usize,
    /// `SOLVER.STEP_SIZE` ("step" policy: `lr = base * gamma^(it / step)`).
    pub step_size: usize,
    /// `SOLVER.GAMMA`.
    pub gamma: f64,
    /// `SOLVER.WARM_UP_ITERS`.
    pub warmup_iters: usize,
    /// `SOLVER.WARM_UP_FACTOR` (linear ramp from this factor).
    pub warmup_factor: f64,
    /// `SOLVER.SCALE_MOMENTUM`: on a rate change larger than the threshold, the velocity
    /// (which carries the old rate) is rescaled by new / old.
    pub scale_momentum: bool,
    /// `SOLVER.SCALE_MOMENTUM_THRESHOLD`.
    pub scale_momentum_threshold: f64,
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self {
            base_lr: 0.002,
            momentum: 0.9,
            weight_decay: 5e-4,
            bias_lr_factor: 2.0,
            bias_weight_decay: false,
            max_iter: 30_000,
            step_size: 22_000,
            gamma: 0.1,
            warmup_iters: 500,
            warmup_factor: 1.0 / 3.0,
            scale_momentum: true,
            scale_momentum_threshold: 1.1,
        }
    }
}

impl SolverConfig {
    /// The learning rate at iteration `it` (Detectron's `get_lr_at_iter`: the step policy
    /// times the linear warm-up factor), through the training kit's schedule.
    pub fn lr_at(&self, it: usize) -> f64 {
        LrSchedule {
            base: self.base_lr,
            decay: Decay::Step {
                gamma: self.gamma,
                step: self.step_size,
            },
            total: self.max_iter,
            warmup: self.warmup_iters,
            warmup_factor: self.warmup_factor,
        }
        .at(it)
    }
}

/// `[train]`: the minibatch and the run folder.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// `TRAIN.IMS_PER_BATCH`: images per minibatch (per GPU in Detectron).
    pub ims_per_batch: usize,
    /// `NUM_GPUS`: minibatches per iteration, run together on one device (the paper's 2),
    /// so an iteration sees `ims_per_batch x gpus` images in Detectron's order.
    pub gpus: usize,
    /// `TRAIN.ASPECT_GROUPING`: minibatches of one orientation.
    pub aspect_grouping: bool,
    /// Seed of the minibatch order and the RoI sampling (Detectron's `RNG_SEED`).
    pub seed: u64,
    /// Iterations between checkpoints.
    pub checkpoint_every: usize,
    /// Also checkpoint every this many seconds of training (0: only every
    /// `checkpoint_every`); a SIGTERM always checkpoints before the run stops.
    pub checkpoint_seconds: f64,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
    /// Iterations between log rows.
    pub log_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            ims_per_batch: 2,
            gpus: 2,
            aspect_grouping: true,
            seed: 3,
            checkpoint_every: 1000,
            checkpoint_seconds: 0.0,
            keep_checkpoints: 2,
            log_every: 20,
        }
    }
}

/// `[test]`: inference on the test split.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestConfig {
    /// `DEDUP_BOXES`: RoIs equal after scaling by this are run once (0: off).
    pub dedup_boxes: f32,
    /// `TEST.SCORE_THRESH`.
    pub score_thresh: f32,
    /// `TEST.NMS`.
    pub nms: f32,
    /// `TEST.DETECTIONS_PER_IM`.
    pub detections_per_im: usize,
    /// `TEST.BBOX_REG`: decode the class-specific regression (false: the proposals).
    pub bbox_reg: bool,
    /// RoIs per forward pass of the head (memory only; results do not depend on it).
    pub roi_chunk: usize,
    /// Test images drawn with their detections into `detections.png`.
    pub draw_images: usize,
    /// The highest-scoring detections drawn on each of them.
    pub draw_per_image: usize,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            dedup_boxes: 1.0 / 16.0,
            score_thresh: 0.05,
            nms: 0.3,
            detections_per_im: 100,
            bbox_reg: true,
            roi_chunk: 256,
            draw_images: 4,
            draw_per_image: 8,
        }
    }
}

/// Every section of a detection task.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct DetectionConfig {
    /// `[model]`.
    pub model: ModelConfig,
    /// `[trunk_input]`.
    pub trunk_input: TrunkInput,
    /// `[input]`: the image blob (`TRAIN.SCALES` = `TEST.SCALE`, the max sizes, the means).
    pub input: BlobConfig,
    /// `[roidb]`.
    pub roidb: RoidbConfig,
    /// `[sampling]`.
    pub sampling: SamplingConfig,
    /// `[box_coder]`.
    pub box_coder: BoxCoderConfig,
    /// `[solver]`.
    pub solver: SolverConfig,
    /// `[train]`.
    pub train: TrainConfig,
    /// `[test]`.
    pub test: TestConfig,
    /// `[eval]`.
    pub eval: EvalConfig,
    /// `[cache]`.
    pub cache: MapsStorage,
    /// `[run]`.
    pub run: ResumeSection,
    /// `[selective_search]`: the generator `sslbench proposals` runs with.
    pub selective_search: SelectiveSearchConfig,
}

/// The sections a detection task file reads besides the shared ones.
pub const SECTIONS: &[&str] = &[
    "model",
    "trunk_input",
    "input",
    "roidb",
    "sampling",
    "box_coder",
    "solver",
    "train",
    "test",
    "eval",
    "cache",
    "run",
    "selective_search",
];

impl DetectionConfig {
    /// Reads the detection sections of a merged document; a misspelt field is an error.
    pub fn from_doc(doc: &toml::Table) -> Result<Self> {
        let mut own = toml::Table::new();
        for key in SECTIONS {
            if let Some(v) = doc.get(*key) {
                own.insert((*key).to_string(), v.clone());
            }
        }
        toml::Value::Table(own)
            .try_into()
            .context("invalid detection section (see tasks/voc07_frcnn.toml for every field)")
    }

    /// The box coder of the regression targets and the test-time decoding.
    pub fn coder(&self) -> BoxCoder {
        BoxCoder {
            weights: self.roidb.bbox_reg_weights,
            clip: self.box_coder.clip,
        }
    }

    /// Columns of the box regression per RoI: 4 per class and background, or 4 x 2 when
    /// class-agnostic.
    pub fn box_columns(&self, classes: usize) -> usize {
        if self.sampling.class_agnostic_bbox_reg {
            8
        } else {
            4 * (classes + 1)
        }
    }

    /// A digest of everything that shapes a training run's trajectory.
    pub fn train_digest(&self) -> String {
        crate::train::run_dir::config_digest([format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.model,
            self.trunk_input,
            self.input,
            self.roidb,
            self.sampling,
            self.box_coder,
            self.solver,
            (
                self.train.ims_per_batch,
                self.train.gpus,
                self.train.aspect_grouping,
                self.train.seed
            )
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_detectrons_step_policy_with_linear_warm_up() {
        let s = SolverConfig::default();
        assert!((s.lr_at(0) - 0.002 / 3.0).abs() < 1e-15);
        assert!((s.lr_at(250) - 0.002 * (1.0 / 3.0 * 0.5 + 0.5)).abs() < 1e-15);
        assert_eq!(s.lr_at(500), 0.002);
        assert_eq!(s.lr_at(21_999), 0.002);
        assert!((s.lr_at(22_000) - 0.0002).abs() < 1e-15);
    }
}
