//! `sslbench extract`: features of some taps into the cache.

use super::setup::BackboneArgs;
use anyhow::Result;
use clap::Args;

/// Arguments of `sslbench extract`.
#[derive(Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    common: BackboneArgs,
    /// imagefolder:DIR, voc:ROOT:SPLIT, coco:ANNOTATIONS.json:IMAGES_DIR or list:FILE:ROOT.
    #[arg(long)]
    dataset: String,
}

/// Runs `sslbench extract`.
pub fn run(args: ExtractArgs) -> Result<()> {
    let setup = args.common.setup(None)?;
    let taps = args.common.taps(None)?;
    let (_, entries) = setup.features(&args.dataset, &taps)?;
    for e in entries {
        println!(
            "{:<6} {}  {}  ({})",
            e.tap.name(),
            e.key.pooling,
            e.path.display(),
            e.status
        );
    }
    Ok(())
}
