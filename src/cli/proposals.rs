//! `sslbench proposals`: selective search over a dataset's images.

use anyhow::Result;
use clap::Args;

/// Flags of `sslbench proposals`.
#[derive(Args, Debug)]
pub struct ProposalsArgs {}

/// Runs `sslbench proposals`.
pub fn run(_args: ProposalsArgs) -> Result<()> {
    anyhow::bail!("not built yet")
}
