//! `sslbench report RESULTS_DIR --out DIR`: one static HTML page of a results folder.

use crate::report::{html, Reference};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `sslbench report`.
#[derive(Args)]
pub struct ReportArgs {
    /// The results folder (`--out` of `sslbench run` or `sslbench sweep`).
    results: PathBuf,
    /// The folder to write `index.html` into; images are linked where they lie, by paths
    /// relative to it, so keep the two folders side by side when moving them.
    #[arg(long)]
    out: PathBuf,
    /// Published numbers to show beside ours: a built-in name (goyal2019), a reference TOML,
    /// or `none`.
    #[arg(long, default_value = "goyal2019")]
    reference: String,
}

/// Runs `sslbench report`.
pub fn run(args: ReportArgs) -> Result<()> {
    let reference = match args.reference.as_str() {
        "none" => None,
        name => Some(Reference::load(name)?),
    };
    let page = html::write(&args.results, &args.out, reference.as_ref())?;
    println!("wrote {}", page.display());
    Ok(())
}
