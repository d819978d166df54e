//! `sslbench proposals`: selective search over a dataset's images, written as Detectron's
//! proposal pickle. Self-made proposals are not the paper's (those came from Uijlings' own
//! release and cannot be regenerated); the README says so.

use crate::proposals::file::{write_detectron, ProposalSet};
use crate::proposals::selective_search::{run_dataset, SelectiveSearchConfig};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Flags of `sslbench proposals`.
#[derive(Args, Debug)]
pub struct ProposalsArgs {
    /// The images: a dataset SPEC (voc:ROOT:SPLIT, imagefolder:DIR, coco:..., list:...).
    #[arg(long)]
    dataset: String,
    /// The pickle to write (Detectron's `boxes` / `scores` / `indexes`).
    #[arg(long)]
    out: PathBuf,
    /// A TOML file with a [selective_search] table (default: fast mode, the paper's).
    #[arg(long)]
    config: Option<PathBuf>,
    /// `key=value` overrides of [selective_search] fields, e.g. `--set ks=[100]`.
    #[arg(long = "set")]
    sets: Vec<String>,
}

/// Runs `sslbench proposals`.
pub fn run(args: ProposalsArgs) -> Result<()> {
    let mut table = match &args.config {
        Some(path) => crate::config::read_layered(path)?
            .get("selective_search")
            .and_then(|t| t.as_table())
            .cloned()
            .unwrap_or_default(),
        None => toml::Table::new(),
    };
    crate::config::set_all(&mut table, &args.sets)?;
    let cfg: SelectiveSearchConfig = toml::Value::Table(table)
        .try_into()
        .context("invalid [selective_search] settings")?;
    let dataset = crate::data::open(&args.dataset, None)?;
    let images: Vec<(String, PathBuf)> = dataset
        .samples
        .iter()
        .map(|s| (s.id.clone(), s.path.clone()))
        .collect();
    let mut partial = args.out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let boxes = run_dataset(&images, &cfg, &partial, true)?;
    let n: usize = boxes.iter().map(Vec::len).sum();
    let set = ProposalSet {
        ids: images.into_iter().map(|(id, _)| id).collect(),
        scores: boxes.iter().map(|b| vec![0.0; b.len()]).collect(),
        boxes,
    };
    write_detectron(&args.out, &set)?;
    std::fs::remove_dir_all(&partial)
        .with_context(|| format!("cannot remove {}", partial.display()))?;
    eprintln!(
        "{}: {} images, {n} boxes ({:.0} per image)",
        args.out.display(),
        set.ids.len(),
        n as f64 / set.ids.len().max(1) as f64
    );
    Ok(())
}
