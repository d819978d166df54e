//! A pretext run's configuration (`configs/pretext/<name>.toml`), with the paper's three
//! scaling axes as plain fields: data size (`data.subset`), model capacity (`model.arch`,
//! `model.width`) and problem complexity (`permutations.count` = |P| for Jigsaw,
//! `colorize.k` = K for Colorization).

use super::colorize::ColorizeConfig;
use super::jigsaw::JigsawConfig;
use super::permutations::Criterion;
use crate::backbone::{BackboneConfig, CheckpointFormat, Tap};
use crate::data::augment::AugmentConfig;
use crate::data::TransformConfig;
use crate::train::optim::OptimizerConfig;
use crate::train::schedule::LrSchedule;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

/// Which pretext task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PretextKind {
    /// Noroozi and Favaro: which of |P| permutations shuffled the 9 tiles.
    Jigsaw,
    /// Zhang, Isola and Efros: the ab bins of each pixel from its lightness.
    Colorization,
    /// Gidaris et al.: which of 4 rotations was applied.
    Rotation,
}

impl PretextKind {
    /// The name used in configs and outputs.
    pub fn name(self) -> &'static str {
        match self {
            PretextKind::Jigsaw => "jigsaw",
            PretextKind::Colorization => "colorization",
            PretextKind::Rotation => "rotation",
        }
    }
}

/// The images (axis 1: data size).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset SPEC (`imagefolder:DIR`, `list:FILE:ROOT`, `voc:ROOT:SPLIT`, ...); labels,
    /// if any, are ignored.
    pub images: String,
    /// Images used, drawn at random (seeded) from the list: the data-size axis (0: all).
    pub subset: usize,
    /// Of those, images held out of training to measure pretext accuracy at the end.
    pub holdout: usize,
}

/// The trunk (axis 2: capacity).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `resnet50`, `resnet50w2`, `resnet50w4`, `alexnet` or `alexnet_jigsaw`.
    pub arch: String,
    /// Width multiplier (1 for the published models; fractions for small runs).
    pub width: f64,
    /// ResNet output stride: 32, or 16 / 8 with res5 / res4 and res5 dilated (the dense
    /// maps Colorization predicts on).
    pub output_stride: usize,
    /// Batch-norm running-average momentum (PyTorch's convention and default: 0.1).
    pub bn_momentum: f64,
    /// The tap the pretext head reads (`pool5` for Jigsaw and Rotation, the deepest map
    /// for Colorization).
    pub head_tap: Tap,
    /// Start from these weights instead of a random init (a checkpoint path).
    #[serde(default)]
    pub init: Option<String>,
}

/// The length and bookkeeping of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Source images per step.
    pub batch_size: usize,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Also write one when this many seconds have passed since the last (0: never), and
    /// always on SIGTERM ([`crate::train::stop`]).
    #[serde(default)]
    pub checkpoint_seconds: f64,
    /// Checkpoints kept on disk.
    pub keep_checkpoints: usize,
    /// Write a log row every this many steps.
    pub log_every: usize,
}

/// The Jigsaw permutation set (axis 3 for Jigsaw: |P|).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermutationsConfig {
    /// |P|, the problem-complexity axis (paper: 100 to 10,000).
    pub count: usize,
    /// Greedy criterion (paper: maximal mean Hamming distance).
    pub criterion: Criterion,
    /// Seed of the first permutation.
    pub seed: u64,
    /// Where the set is saved and reused (relative to the run's output folder unless
    /// absolute; a FAIR-made `.npy` with its sidecar works too).
    pub file: String,
}

/// Where the colorization bins come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinSource {
    /// Every grid cell an sRGB colour falls in.
    InGamut,
    /// The non-empty cells of the training images' histogram (FAIR's choice).
    Histogram,
}

/// The ab bins of Colorization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbBinsConfig {
    /// In-gamut grid or dataset histogram.
    pub source: BinSource,
    /// Grid step in ab units (paper: 10).
    pub step: f32,
    /// Images read for the histogram and the prior (0: all of the training subset).
    pub prior_images: usize,
    /// Gaussian smoothing of the prior in ab units before rebalancing (Zhang et al.: 5).
    pub prior_sigma: f32,
    /// Colourised PNGs of held-out images written at the end.
    pub preview_images: usize,
}

/// A whole pretext configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretextConfig {
    /// Which pretext.
    pub pretext: PretextKind,
    /// Seed of every draw: the subset, the order, the augmentations, the init.
    pub seed: u64,
    /// The images.
    pub data: DataConfig,
    /// The trunk.
    pub model: ModelConfig,
    /// Length and bookkeeping.
    pub train: TrainConfig,
    /// Learning rate over the run.
    pub schedule: LrSchedule,
    /// Optimiser.
    pub optimizer: OptimizerConfig,
    /// Scaling and normalisation of network inputs (`size` is the Rotation input side).
    pub transform: TransformConfig,
    /// Rotation's crop and flip (also Colorization's, instead of its central crop).
    #[serde(default)]
    pub augment: Option<AugmentConfig>,
    /// Jigsaw's tile transform.
    #[serde(default)]
    pub jigsaw: Option<JigsawConfig>,
    /// Jigsaw's permutation set.
    #[serde(default)]
    pub permutations: Option<PermutationsConfig>,
    /// Colorization's targets and decode.
    #[serde(default)]
    pub colorize: Option<ColorizeConfig>,
    /// Colorization's bins.
    #[serde(default)]
    pub ab_bins: Option<AbBinsConfig>,
}

impl PretextConfig {
    /// Reads a pretext config file (over its `base = "..."` file, if it names one) with
    /// `sets` overrides applied, and checks it.
    pub fn read(path: &std::path::Path, sets: &[String]) -> Result<Self> {
        let mut doc = crate::config::read_layered(path)?;
        crate::config::set_all(&mut doc, sets)?;
        Self::from_table(doc).map_err(|e| e.context(format!("in {}", path.display())))
    }

    /// Reads a config table (after `--set` overrides) and checks it.
    pub fn from_table(doc: toml::Table) -> Result<Self> {
        let mut cfg: Self = toml::Value::Table(doc)
            .try_into()
            .context("invalid pretext config")?;
        if cfg.schedule.total == 0 {
            cfg.schedule.total = cfg.train.steps;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let t = &self.train;
        ensure!(
            t.steps > 0 && t.batch_size > 0,
            "train.steps and train.batch_size must be positive"
        );
        ensure!(
            t.checkpoint_every > 0 && t.log_every > 0,
            "train.checkpoint_every and train.log_every must be positive"
        );
        self.transform.validate()?;
        let need = |present: bool, table: &str| -> Result<()> {
            if !present {
                bail!(
                    "pretext = \"{}\" needs a [{table}] table",
                    self.pretext.name()
                );
            }
            Ok(())
        };
        match self.pretext {
            PretextKind::Rotation => need(self.augment.is_some(), "augment")?,
            PretextKind::Jigsaw => {
                need(self.jigsaw.is_some(), "jigsaw")?;
                need(self.permutations.is_some(), "permutations")?;
                if let Some(j) = &self.jigsaw {
                    j.validate()?;
                }
            }
            PretextKind::Colorization => {
                need(self.colorize.is_some(), "colorize")?;
                need(self.ab_bins.is_some(), "ab_bins")?;
                if let Some(c) = &self.colorize {
                    c.validate()?;
                }
            }
        }
        Ok(())
    }

    /// The trunk as a backbone config: random from the run seed, or `model.init`.
    pub fn backbone(&self) -> BackboneConfig {
        BackboneConfig {
            arch: self.model.arch.clone(),
            weights: self.model.init.clone().unwrap_or_else(|| "random".into()),
            seed: self.seed,
            format: CheckpointFormat::Auto,
            key: None,
            width: Some(self.model.width),
            output_stride: self.model.output_stride,
            paper_row: None,
            stride_in_1x1: false,
            weights_channel_order: None,
        }
    }

    /// A digest of everything that shapes the trajectory of a run (all but the bookkeeping
    /// intervals), so a checkpoint is only resumed by the run that wrote it.
    pub fn digest(&self) -> Result<String> {
        let mut shaping = self.clone();
        shaping.train.checkpoint_every = 0;
        shaping.train.keep_checkpoints = 0;
        shaping.train.log_every = 0;
        Ok(crate::train::run_dir::config_digest([
            serde_json::to_string(&shaping)?,
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_pretext_config_is_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/pretext");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let doc = crate::config::read_table(&path).unwrap();
                let cfg = PretextConfig::from_table(doc)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                assert_eq!(cfg.schedule.total, cfg.train.steps, "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 6, "only {seen} configs in {}", dir.display());
    }

    #[test]
    fn unknown_keys_and_missing_tables_are_refused() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs/pretext/demo_rotation.toml");
        let mut doc = crate::config::read_table(&path).unwrap();
        crate::config::set(&mut doc, "model.widht=0.5").unwrap();
        assert!(PretextConfig::from_table(doc).is_err());
        let mut doc = crate::config::read_table(&path).unwrap();
        crate::config::set(&mut doc, "pretext=\"jigsaw\"").unwrap();
        let err = format!("{:#}", PretextConfig::from_table(doc).unwrap_err());
        assert!(err.contains("[jigsaw]"), "{err}");
    }
}
