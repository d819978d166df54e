//! What every task shares: the backbone, the merged config document, the device and the
//! feature cache, resolved once from the command line.

use crate::backbone::{BackboneConfig, Tap};
use crate::data::Dataset;
use crate::features::{get_or_extract, ExtractConfig, Extracted, FeatureStore};
use anyhow::{Context, Result};
use candle_core::Device;

/// Everything a run needs, resolved from the arguments.
pub struct Setup {
    /// The backbone config, with `backbone.*` overrides applied.
    pub backbone: BackboneConfig,
    /// The merged config: shipped defaults, arch overrides, the task file, `--set`.
    pub doc: toml::Table,
    /// The extraction protocol read from `doc`.
    pub extract: ExtractConfig,
    /// The device.
    pub device: Device,
    /// The feature cache.
    pub store: FeatureStore,
}

impl Setup {
    /// Opens the dataset of `spec` (with the `data.classes` override) and returns the
    /// entries of `taps`, extracting what the cache lacks.
    pub fn features(&self, spec: &str, taps: &[Tap]) -> Result<(Dataset, Vec<Extracted>)> {
        let dataset = self.dataset(spec)?;
        let entries = self.entries(&dataset, taps)?;
        Ok((dataset, entries))
    }

    /// Opens the dataset of `spec` with the `data.classes` override, extracting nothing.
    pub fn dataset(&self, spec: &str) -> Result<Dataset> {
        crate::data::open(spec, classes(&self.doc)?)
    }

    /// The entries of `taps` on `dataset` (any subset of a dataset too), extracting what the
    /// cache lacks.
    pub fn entries(&self, dataset: &Dataset, taps: &[Tap]) -> Result<Vec<Extracted>> {
        let spec = &dataset.spec;
        eprintln!(
            "{spec}: {} images, {} classes; backbone {}; cache {}",
            dataset.samples.len(),
            dataset.classes.len(),
            self.backbone.arch_id()?,
            self.store.root().display()
        );
        get_or_extract(
            &self.store,
            &self.backbone,
            &self.device,
            dataset,
            taps,
            &self.extract,
        )
    }
}

/// The dataset's class list override, `data.classes`, if any.
fn classes(doc: &toml::Table) -> Result<Option<Vec<String>>> {
    doc.get("data")
        .and_then(|d| d.get("classes"))
        .map(|v| {
            v.clone()
                .try_into()
                .context("data.classes must be a list of names")
        })
        .transpose()
}
