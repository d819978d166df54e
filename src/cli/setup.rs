//! What `extract` and `run` share: the backbone, the merged config document, the device,
//! the store.

use crate::backbone::{BackboneConfig, Tap};
use crate::config;
use crate::features::{default_extract_doc, ExtractConfig, FeatureStore};
use crate::tasks::Setup;
use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::Args;
use std::path::{Path, PathBuf};

/// Options common to every command that runs a backbone.
#[derive(Args, Clone, Debug)]
pub struct BackboneArgs {
    /// Backbone TOML: `arch`, `weights` (path or "random"), optional `seed`, `format`, `key`.
    #[arg(long)]
    pub backbone: PathBuf,
    /// Comma-separated taps (conv1..conv5, res2..res5, pool5).
    #[arg(long)]
    pub taps: Option<String>,
    /// Feature cache folder [default: $SSLBENCH_CACHE, else the user's cache dir].
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// `cpu` or `cuda:N` (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Override any config field: `--set transform.resize=none`, `--set backbone.seed=3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

impl BackboneArgs {
    /// Resolves the backbone, the config document (`task` merged over the defaults), the
    /// device and the store.
    pub fn setup(&self, task: Option<toml::Table>) -> Result<Setup> {
        let (backbone_sets, sets): (Vec<String>, Vec<String>) = self
            .sets
            .iter()
            .cloned()
            .partition(|s| s.starts_with("backbone."));
        let mut table = config::read_table(&self.backbone)?;
        let stripped: Vec<String> = backbone_sets
            .iter()
            .map(|s| s.trim_start_matches("backbone.").to_string())
            .collect();
        config::set_all(&mut table, &stripped)?;
        let dir = self.backbone.parent().unwrap_or(Path::new("."));
        let backbone = BackboneConfig::from_table(table, dir)
            .with_context(|| format!("in backbone config {}", self.backbone.display()))?;
        let (family, _) = backbone.family()?;
        // Precedence: shipped defaults < task file < [arch_overrides.<family>] < --set.
        let mut doc = default_extract_doc();
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
        let store = FeatureStore::open(
            &self
                .cache
                .clone()
                .unwrap_or_else(FeatureStore::default_root),
        )?;
        Ok(Setup {
            backbone,
            doc,
            extract,
            device: parse_device(&self.device)?,
            store,
        })
    }

    /// The taps asked for, or `default` when `--taps` is absent.
    pub fn taps(&self, default: Option<&str>) -> Result<Vec<Tap>> {
        match (self.taps.as_deref(), default) {
            (Some(list), _) | (None, Some(list)) => Tap::parse_list(list),
            (None, None) => bail!("name the taps: --taps conv1,res2,res3,res4,res5"),
        }
    }
}

/// Parses `cpu` or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        s if s.starts_with("cuda") => {
            let ordinal = s
                .strip_prefix("cuda:")
                .map(|n| n.parse::<usize>())
                .transpose()
                .with_context(|| format!("bad device `{s}`: use cuda:N"))?
                .unwrap_or(0);
            Device::new_cuda(ordinal).with_context(|| {
                format!("cannot use {s}: build with `cargo build --release --features cuda` on a machine with CUDA")
            })
        }
        other => bail!("unknown device `{other}`: use cpu or cuda:N"),
    }
}
