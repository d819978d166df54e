//! What every task shares: the backbone, the merged config document, the device and the
//! feature cache, resolved once with the documented precedence; the typed `[data]` section;
//! and the cached features of a task's train and test splits.

use super::{cache_ref, RunContext};
use crate::backbone::{BackboneConfig, Tap};
use crate::config;
use crate::data::Dataset;
use crate::features::{get_or_extract, ExtractConfig, Extracted, FeatureStore};
use anyhow::{bail, Context, Result};
use candle_core::Device;
use std::path::{Path, PathBuf};

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
    /// Resolves a run: the backbone file with the `backbone.*` entries of `sets`, and the
    /// config document in the one order of precedence, shipped defaults (`tasks/extract.toml`)
    /// < the task file < `[arch_overrides.<family>]` < the other `sets`. `cache` defaults to
    /// [`FeatureStore::default_root`].
    pub fn resolve(
        backbone_file: &Path,
        task: Option<toml::Table>,
        sets: &[String],
        device: Device,
        cache: Option<PathBuf>,
    ) -> Result<Setup> {
        let (backbone_sets, sets): (Vec<String>, Vec<String>) = sets
            .iter()
            .cloned()
            .partition(|s| s.starts_with("backbone."));
        let mut table = config::read_table(backbone_file)?;
        let stripped: Vec<String> = backbone_sets
            .iter()
            .map(|s| s.trim_start_matches("backbone.").to_string())
            .collect();
        config::set_all(&mut table, &stripped)?;
        let dir = backbone_file.parent().unwrap_or(Path::new("."));
        let backbone = BackboneConfig::from_table(table, dir)
            .with_context(|| format!("in backbone config {}", backbone_file.display()))?;
        let (family, _) = backbone.family()?;
        let mut doc = config::shipped("extract.toml")?;
        if let Some(task) = task {
            config::merge(&mut doc, task);
        }
        let arch_overrides = doc
            .get("arch_overrides")
            .and_then(|t| t.get(family.name()))
            .and_then(|t| t.as_table())
            .cloned();
        if let Some(o) = arch_overrides {
            config::merge(&mut doc, o);
        }
        config::set_all(&mut doc, &sets)?;
        let extract = ExtractConfig::from_doc(&doc, family)?;
        let store = FeatureStore::open(&cache.unwrap_or_else(FeatureStore::default_root))?;
        Ok(Setup {
            backbone,
            doc,
            extract,
            device,
            store,
        })
    }

    /// The `[data]` section of the document.
    pub fn data(&self) -> DataSection<'_> {
        DataSection::of(&self.doc)
    }

    /// Opens the dataset of `spec` (with the `data.classes` override) and returns the
    /// entries of `taps`, extracting what the cache lacks.
    pub fn features(&self, spec: &str, taps: &[Tap]) -> Result<(Dataset, Vec<Extracted>)> {
        let dataset = self.dataset(spec)?;
        let entries = self.entries(&dataset, taps)?;
        Ok((dataset, entries))
    }

    /// Opens the dataset of `spec` with the `data.classes` override, extracting nothing.
    pub fn dataset(&self, spec: &str) -> Result<Dataset> {
        crate::data::open(spec, self.data().classes()?)
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

/// The `[data]` section: dataset SPECs by split (`train`, `test`, `val`, `spec`), with
/// `{root}` replaced by `data.root`, and the `classes` override.
pub struct DataSection<'a> {
    table: Option<&'a toml::Table>,
}

impl<'a> DataSection<'a> {
    /// The `[data]` section of a merged document (none: every read names the fix).
    pub fn of(doc: &'a toml::Table) -> Self {
        Self {
            table: doc.get("data").and_then(|d| d.as_table()),
        }
    }

    /// The dataset SPEC `data.<key>`, with `{root}` replaced by `data.root`.
    pub fn spec(&self, key: &str) -> Result<String> {
        let spec = self
            .table
            .and_then(|d| d.get(key))
            .and_then(|s| s.as_str())
            .with_context(|| {
                format!(
                    "the task file sets no data.{key}: --set data.{key}=SPEC (voc:ROOT:SPLIT, \
                     coco:..., list:FILE:ROOT or imagefolder:DIR)"
                )
            })?;
        self.rooted(key, spec)
    }

    /// `data.<key>` as one SPEC or a list of them, each with `{root}` replaced.
    pub fn specs(&self, key: &str) -> Result<Vec<String>> {
        let specs: Vec<String> = match self.table.and_then(|d| d.get(key)) {
            Some(toml::Value::String(s)) => vec![s.clone()],
            Some(v) => v
                .clone()
                .try_into()
                .with_context(|| format!("data.{key} must be a SPEC or a list of them"))?,
            None => bail!(
                "set the dataset: --set data.{key}=voc:ROOT:SPLIT (or imagefolder:, coco:, list:)"
            ),
        };
        specs.iter().map(|s| self.rooted(key, s)).collect()
    }

    fn rooted(&self, key: &str, spec: &str) -> Result<String> {
        match self
            .table
            .and_then(|d| d.get("root"))
            .and_then(|r| r.as_str())
        {
            Some(root) => Ok(spec.replace("{root}", root)),
            None if spec.contains("{root}") => {
                bail!("data.{key} = \"{spec}\" needs data.root: --set data.root=DIR")
            }
            None => Ok(spec.to_string()),
        }
    }

    /// The dataset's class list override, `data.classes`, if any.
    pub fn classes(&self) -> Result<Option<Vec<String>>> {
        self.table
            .and_then(|d| d.get("classes"))
            .map(|v| {
                v.clone()
                    .try_into()
                    .context("data.classes must be a list of names")
            })
            .transpose()
    }
}

/// The cached features of a task's train and test splits.
pub struct Splits {
    /// The train split and its entries (one per tap).
    pub train: (Dataset, Vec<Extracted>),
    /// The test split and its entries.
    pub test: (Dataset, Vec<Extracted>),
}

impl Splits {
    /// Extracts (or finds) `data.train` and `data.test` at the run's taps and checks that the
    /// two splits share their classes.
    pub fn load(ctx: &RunContext) -> Result<Splits> {
        let data = ctx.setup.data();
        let (train_spec, test_spec) = (data.spec("train")?, data.spec("test")?);
        let open = |spec: &str| {
            ctx.setup.features(spec, ctx.taps).with_context(|| {
                format!("cannot use {spec}: point the task at your copy with --set data.root=DIR")
            })
        };
        let (train, test) = (open(&train_spec)?, open(&test_spec)?);
        if train.0.classes != test.0.classes {
            bail!(
                "{train_spec} and {test_spec} have different classes ({} vs {}): set the same \
                 data.classes for both",
                train.0.classes.len(),
                test.0.classes.len()
            );
        }
        Ok(Splits { train, test })
    }

    /// The cache references of both splits.
    pub fn cache_refs(&self) -> Vec<crate::report::CacheRef> {
        [&self.train, &self.test]
            .iter()
            .flat_map(|(d, es)| es.iter().map(|e| cache_ref(&d.spec, e)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(task: &str, sets: &[&str]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let backbone = dir.path().join("b.toml");
        std::fs::write(
            &backbone,
            "arch = \"resnet50\"\nwidth = 0.125\nweights = \"random\"\nseed = 0\n",
        )
        .unwrap();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let task = config::parse_table(task).unwrap();
        let cache = dir.path().join("cache");
        Setup::resolve(&backbone, Some(task), &sets, Device::Cpu, Some(cache)).unwrap()
    }

    /// shipped defaults < task file < `[arch_overrides.<family>]` < `--set`; `backbone.*`
    /// overrides go to the backbone.
    #[test]
    fn the_document_follows_the_one_precedence() {
        let task = "task = \"features\"\n[extract]\nbatch_size = 5\n\
                    [arch_overrides.resnet50.extract]\nbatch_size = 3\n\
                    [arch_overrides.alexnet.extract]\nbatch_size = 99\n";
        let s = resolve(task, &[]);
        assert_eq!(s.extract.batch_size, 3);
        // The shipped default where nothing overrides it.
        assert_eq!(s.extract.chunk_size, 64);
        let s = resolve(task, &["extract.batch_size=9", "backbone.seed=4"]);
        assert_eq!((s.extract.batch_size, s.backbone.seed), (9, 4));
    }

    #[test]
    fn data_specs_take_the_root_and_name_the_fix() {
        let s = resolve(
            "task = \"features\"\n[data]\nroot = \"/d\"\ntrain = \"voc:{root}:trainval\"\nspec = [\"voc:{root}:a\", \"list:f:r\"]\n",
            &[],
        );
        assert_eq!(s.data().spec("train").unwrap(), "voc:/d:trainval");
        assert_eq!(s.data().specs("spec").unwrap(), ["voc:/d:a", "list:f:r"]);
        let err = s.data().spec("test").unwrap_err().to_string();
        assert!(err.contains("--set data.test="), "{err}");
        let s = resolve(
            "task = \"features\"\n[data]\ntrain = \"voc:{root}:x\"\n",
            &[],
        );
        let err = s.data().spec("train").unwrap_err().to_string();
        assert!(err.contains("--set data.root=DIR"), "{err}");
    }
}
