//! `sslbench extract`: features of some taps into the cache.

use super::setup::{classes, BackboneArgs};
use crate::features::extract::Status;
use crate::features::get_or_extract;
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
    let dataset = crate::data::open(&args.dataset, classes(&setup.doc)?)?;
    eprintln!(
        "{}: {} images, {} classes; backbone {}; cache {}",
        args.dataset,
        dataset.samples.len(),
        dataset.classes.len(),
        setup.backbone.arch_id()?,
        setup.store.root().display()
    );
    let entries = get_or_extract(
        &setup.store,
        &setup.backbone,
        &setup.device,
        &dataset,
        &taps,
        &setup.extract,
    )?;
    for e in entries {
        let how = match e.status {
            Status::Cached => "cached".to_string(),
            Status::Extracted { resumed_from: 0 } => "extracted".to_string(),
            Status::Extracted { resumed_from } => {
                format!("extracted, resumed from image {resumed_from}")
            }
        };
        println!(
            "{:<6} {}  {}  ({how})",
            e.tap.name(),
            e.key.pooling,
            e.path.display()
        );
    }
    Ok(())
}
