//! The typed sections of a normals task file (`tasks/nyuv2_normals.toml`). Every number of the
//! protocol is a field; the defaults are the paper's code (research/normals.md §1: FAIR's
//! `train_finetune_models.sh` over the CSAIL toolbox defaults), so a file that sets nothing
//! runs the paper's protocol.

use super::from_depth::NormalsFromDepth;
use crate::features::dense::MapsStorage;
use crate::train::run_section::ResumeSection;
use crate::train::schedule::{Decay, LrSchedule};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::PathBuf;

/// Where the ground-truth normals come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroundTruthSource {
    /// FAIR's `all_normals.pklz` (`data.normals` is the file).
    Pklz,
    /// Per-image `.mat` files with `nx`, `ny`, `nz`, `depthValid` (`data.normals` is the
    /// folder, files named by the 6-digit NYU index, `000001.mat`).
    Mat,
    /// Ladicky's PNGs (`data.normals` is the folder, `00001.png`) with Eigen's masks
    /// (`data.masks`, `0000.png`, 0-based).
    Png,
    /// Computed from the labelled file's depth by [`NormalsFromDepth`] (`[ground_truth]`).
    FromDepth,
}

/// `[data]`: the files (`{root}` in a path is `data.root`).
#[derive(Clone, Debug, Deserialize)]
pub struct DataConfig {
    /// The folder the other paths may name as `{root}`.
    #[serde(default)]
    pub root: Option<String>,
    /// `nyu_depth_v2_labeled.mat`.
    pub labeled: String,
    /// `splits.mat` (`trainNdxs`, `testNdxs`).
    pub splits: String,
    /// Which ground truth.
    pub ground_truth: GroundTruthSource,
    /// The ground-truth file or folder (not read for `from_depth`).
    #[serde(default)]
    pub normals: Option<String>,
    /// Eigen's mask folder (`png` only).
    #[serde(default)]
    pub masks: Option<String>,
    /// `vocab40.mat`; absent (or "") fits k-means on the training normals (`[codebook]`).
    #[serde(default)]
    pub codebook: Option<String>,
}

impl DataConfig {
    /// `path` with `{root}` replaced.
    pub fn resolve(&self, path: &str) -> Result<PathBuf> {
        match &self.root {
            Some(root) => Ok(PathBuf::from(path.replace("{root}", root))),
            None if path.contains("{root}") => {
                bail!("the path \"{path}\" needs data.root: --set data.root=DIR")
            }
            None => Ok(PathBuf::from(path)),
        }
    }
}

/// `[model]`: res5 and the PSPNet decoder (NRM `ppm`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// The trunk's output stride (dilated res4 and res5: 8, NRM `resnet50dilated`).
    pub output_stride: usize,
    /// `pool_scales`: the pyramid's adaptive-pool output sizes.
    pub ppm_bins: Vec<usize>,
    /// Channels of each pyramid branch at width 1 (512).
    pub ppm_dim: usize,
    /// Channels of `conv_last`'s 3x3 conv at width 1 (512).
    pub last_dim: usize,
    /// Scale `ppm_dim` and `last_dim` by the backbone's width (a 1/8-width trunk gets a
    /// 1/8-width decoder, as its res5 has 2048/8 channels).
    pub scale_with_width: bool,
    /// `Dropout2d` probability before the classifier.
    pub dropout: f64,
    /// Momentum of the trained batch norms' bias-corrected running averages (NRM
    /// `SynchronizedBatchNorm2d` default 0.001).
    pub bn_momentum: f64,
    /// The trained batch norms' eps (normalising by `clamp(var, eps)^-1/2`).
    pub bn_eps: f64,
    /// The decoder BNs' initial shift (`weights_init`: weight 1, bias 1e-4).
    pub bn_bias_init: f64,
    /// Seed of the decoder's random init and of the dropout masks.
    pub init_seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            output_stride: 8,
            ppm_bins: vec![1, 2, 3, 6],
            ppm_dim: 512,
            last_dim: 512,
            scale_with_width: true,
            dropout: 0.1,
            bn_momentum: 0.001,
            bn_eps: 1e-5,
            bn_bias_init: 1e-4,
            init_seed: 304,
        }
    }
}

/// `[input]`: the images as the trunk sees them.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputConfig {
    /// Training short sides, one drawn per iteration (`imgSize`).
    pub train_short_sides: Vec<usize>,
    /// The longest side a resize may give (`imgMaxSize`).
    pub max_size: usize,
    /// Training images are zero-padded (after normalisation) to a multiple of this
    /// (`padding_constant`).
    pub pad_multiple: usize,
    /// The labels' downsampling (`segm_downsampling_rate`), nearest, after the same padding.
    pub label_downsample: usize,
    /// Whether padded label pixels are ignored; the paper's loader gives them cluster 0
    /// (research note §1.5, a quirk), so the default is false.
    pub ignore_padding: bool,
    /// The test short side (`eval_generic.py --imgSize`), rounded up to `test_multiple` by
    /// resizing.
    pub test_short_side: usize,
    /// The multiple test sizes are rounded up to.
    pub test_multiple: usize,
    /// The per-channel mean of `x / 255` (RGB).
    pub mean: [f32; 3],
    /// The per-channel std of `x / 255` (RGB).
    pub std: [f32; 3],
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            train_short_sides: vec![300, 375, 450, 525, 600],
            max_size: 1000,
            pad_multiple: 8,
            label_downsample: 8,
            ignore_padding: false,
            test_short_side: 450,
            test_multiple: 8,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }
}

/// `[solver]`: SGD with momentum, weight decay on conv weights only, poly decay.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SolverConfig {
    /// `lr_encoder` = `lr_decoder`.
    pub base_lr: f64,
    /// `beta1`.
    pub momentum: f64,
    /// On convolution weights only (`group_weight`).
    pub weight_decay: f64,
    /// The poly power: `lr = base (1 - it / max_iter)^power`.
    pub power: f64,
    /// `epoch_iters x num_epoch` = 50 x 400.
    pub max_iter: usize,
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self {
            base_lr: 0.02,
            momentum: 0.9,
            weight_decay: 1e-4,
            power: 0.9,
            max_iter: 20_000,
        }
    }
}

impl SolverConfig {
    /// The rate of iteration `it` (0-based) through the training kit's poly schedule.
    pub fn lr_at(&self, it: usize) -> f64 {
        LrSchedule {
            base: self.base_lr,
            decay: Decay::Poly { power: self.power },
            total: self.max_iter,
            warmup: 0,
            warmup_factor: 1.0,
        }
        .at(it)
    }
}

/// `[train]`: the batch and the run folder.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Images per iteration (8 GPUs x 2).
    pub batch: usize,
    /// Seed of the image order and the scale draws (`random.seed(304)`).
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
            batch: 16,
            seed: 304,
            checkpoint_every: 1000,
            checkpoint_seconds: 0.0,
            keep_checkpoints: 2,
            log_every: 20,
        }
    }
}

/// `[test]`: the evaluation.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestConfig {
    /// Angle thresholds in degrees, counted strictly below.
    pub thresholds: Vec<f64>,
    /// Test images drawn into `normals.png` (image, ground truth, prediction, error).
    pub draw_images: usize,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            thresholds: vec![11.25, 22.5, 30.0],
            draw_images: 4,
        }
    }
}

/// `[codebook]`: the clusters when no `vocab40.mat` is given (k-means on training normals).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodebookConfig {
    /// Clusters (the classifier's outputs).
    pub k: usize,
    /// k-means++ seed.
    pub seed: u64,
    /// Lloyd iterations at most.
    pub max_iterations: usize,
    /// Every `sample_every`-th valid training pixel is fitted on.
    pub sample_every: usize,
}

impl Default for CodebookConfig {
    fn default() -> Self {
        Self {
            k: 40,
            seed: 0,
            max_iterations: 300,
            sample_every: 16,
        }
    }
}

/// Every section of a normals task.
#[derive(Clone, Debug, Deserialize)]
pub struct NormalsConfig {
    /// `[data]`.
    pub data: DataConfig,
    /// `[ground_truth]`: normals from depth (used when `data.ground_truth = "from_depth"`).
    #[serde(default)]
    pub ground_truth: NormalsFromDepth,
    /// `[model]`.
    #[serde(default)]
    pub model: ModelConfig,
    /// `[input]`.
    #[serde(default)]
    pub input: InputConfig,
    /// `[solver]`.
    #[serde(default)]
    pub solver: SolverConfig,
    /// `[train]`.
    #[serde(default)]
    pub train: TrainConfig,
    /// `[test]`.
    #[serde(default)]
    pub test: TestConfig,
    /// `[codebook]`.
    #[serde(default)]
    pub codebook: CodebookConfig,
    /// `[cache]`.
    #[serde(default)]
    pub cache: MapsStorage,
    /// `[run]`.
    #[serde(default)]
    pub run: ResumeSection,
}

/// The sections a normals task file reads besides the shared ones.
pub const SECTIONS: &[&str] = &[
    "ground_truth",
    "model",
    "input",
    "solver",
    "train",
    "test",
    "codebook",
    "cache",
    "run",
];

impl NormalsConfig {
    /// Reads the normals sections (and `[data]`) of a merged document; a misspelt field or a
    /// value outside its range is an error.
    pub fn from_doc(doc: &toml::Table) -> Result<Self> {
        let mut own = toml::Table::new();
        for key in SECTIONS.iter().chain(&["data"]) {
            if let Some(v) = doc.get(*key) {
                own.insert((*key).to_string(), v.clone());
            }
        }
        let cfg: Self = toml::Value::Table(own)
            .try_into()
            .context("invalid normals section (see tasks/nyuv2_normals.toml for every field)")?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        let i = &self.input;
        if i.train_short_sides.is_empty() || i.train_short_sides.contains(&0) {
            bail!("input.train_short_sides must list positive short sides (the paper's [300, 375, 450, 525, 600])");
        }
        if i.pad_multiple == 0 || i.test_multiple == 0 || i.label_downsample == 0 {
            bail!("input.pad_multiple, test_multiple and label_downsample must be positive");
        }
        if i.pad_multiple % self.model.output_stride != 0
            || i.label_downsample != self.model.output_stride
        {
            bail!(
                "input.label_downsample ({}) must equal model.output_stride ({}) and \
                 input.pad_multiple ({}) be a multiple of it, so that labels and maps align",
                i.label_downsample,
                self.model.output_stride,
                i.pad_multiple
            );
        }
        if self.model.ppm_bins.is_empty() || self.model.ppm_bins.contains(&0) {
            bail!("model.ppm_bins must list positive pool sizes (the paper's [1, 2, 3, 6])");
        }
        if !(0.0..1.0).contains(&self.model.dropout) {
            bail!("model.dropout {} must lie in [0, 1)", self.model.dropout);
        }
        if !(0.0..=1.0).contains(&self.model.bn_momentum) || self.model.bn_momentum == 0.0 {
            bail!(
                "model.bn_momentum {} must lie in (0, 1]",
                self.model.bn_momentum
            );
        }
        if self.train.batch == 0 || self.solver.max_iter == 0 {
            bail!("train.batch and solver.max_iter must be positive");
        }
        if self.codebook.k == 0 || self.codebook.k > 255 || self.codebook.sample_every == 0 {
            bail!("codebook.k must lie in 1..=255 (labels are bytes) and codebook.sample_every be positive");
        }
        Ok(())
    }

    /// A digest of everything that shapes a training run's trajectory (the codebook's
    /// centres and the data enter through `extra`).
    pub fn train_digest(&self, extra: &str) -> String {
        crate::train::run_dir::config_digest([format!(
            "{:?}|{:?}|{:?}|{:?}|{}|{extra}",
            self.model,
            self.input,
            self.solver,
            (self.train.batch, self.train.seed),
            self.data.ground_truth as u8,
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_poly_from_the_base_rate() {
        let s = SolverConfig::default();
        assert_eq!(s.lr_at(0), 0.02);
        let mid = 0.02 * 0.5f64.powf(0.9);
        assert!((s.lr_at(10_000) - mid).abs() < 1e-12, "{}", s.lr_at(10_000));
    }
}
