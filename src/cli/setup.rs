//! The flags of every command that runs a backbone (`extract`, `run`, `nav`, `sweep`),
//! handed to the tasks wing as they are.

use crate::backbone::Tap;
use crate::tasks::{RunRequest, Setup};
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
        Setup::resolve(
            &self.backbone,
            task,
            &self.sets,
            parse_device(&self.device)?,
            self.cache.clone(),
        )
    }

    /// The taps asked for, or `default` when `--taps` is absent.
    pub fn taps(&self, default: Option<&str>) -> Result<Vec<Tap>> {
        crate::tasks::taps(self.taps.as_deref(), default)
    }

    /// The run of `task_file` these flags ask for, writing into `out`.
    pub fn request<'a>(&'a self, task_file: &'a Path, out: &'a Path) -> Result<RunRequest<'a>> {
        Ok(RunRequest {
            task_file,
            backbone: &self.backbone,
            taps: self.taps.as_deref(),
            sets: &self.sets,
            device: parse_device(&self.device)?,
            cache: self.cache.clone(),
            out,
        })
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
