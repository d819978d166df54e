//! The task's configuration: the mode, the protocol variant of `[probe]`, the `[augment]` of
//! paper mode, the two splits and the `[run]` folder's checkpoints, read once from the merged
//! document.

use crate::data::augment::AugmentConfig;
use crate::linear::probe::ProbeConfig;
use crate::train::run_section::CheckpointSection;
use anyhow::{ensure, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// How the heads see the training images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Mode {
    /// Cached features of the test transform.
    Fast,
    /// The train augmentation, online through the trunk.
    Paper,
}

impl Mode {
    pub(super) fn name(self) -> &'static str {
        match self {
            Mode::Fast => "fast",
            Mode::Paper => "paper",
        }
    }
}

/// The `[probe]` table: the mode, the protocol variant, and one table per variant.
#[derive(Deserialize)]
pub(super) struct ProbeSection {
    mode: Mode,
    variant: String,
    seed: u64,
    log_every: usize,
    #[serde(flatten)]
    variants: BTreeMap<String, ProbeConfig>,
}

/// Everything the task reads from the config document.
pub(super) struct TaskConfig {
    pub(super) mode: Mode,
    pub(super) variant: String,
    pub(super) seed: u64,
    pub(super) log_every: usize,
    pub(super) probe: ProbeConfig,
    pub(super) augment: AugmentConfig,
    pub(super) train: String,
    pub(super) val: String,
    /// `[run]`: the checkpoint cadence and resume of the run folder.
    pub(super) run: CheckpointSection,
}

impl TaskConfig {
    pub(super) fn from_doc(doc: &toml::Table) -> Result<Self> {
        let section: ProbeSection = crate::config::section(doc, "probe")?;
        let probe = section
            .variants
            .get(&section.variant)
            .cloned()
            .with_context(|| {
                let known: Vec<&str> = section.variants.keys().map(String::as_str).collect();
                format!(
                    "probe.variant = \"{}\" has no [probe.{}] table: use one of {}",
                    section.variant,
                    section.variant,
                    known.join(", ")
                )
            })?;
        probe
            .validate()
            .with_context(|| format!("in [probe.{}]", section.variant))?;
        ensure!(section.log_every > 0, "probe.log_every must be positive");
        let augment: AugmentConfig = crate::config::section(doc, "augment")?;
        augment.validate()?;
        let data = crate::tasks::DataSection::of(doc);
        Ok(Self {
            mode: section.mode,
            variant: section.variant,
            seed: section.seed,
            log_every: section.log_every,
            probe,
            augment,
            train: data.spec("train")?,
            val: data.spec("val")?,
            run: crate::config::section(doc, "run")?,
        })
    }
}
