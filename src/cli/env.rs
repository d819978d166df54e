//! `sslbench env serve|check` (placeholder until the bridge lands).

use anyhow::Result;

/// Arguments of `sslbench env`.
#[derive(clap::Args)]
pub struct EnvArgs {}

/// Runs `sslbench env`.
pub fn run(_args: EnvArgs) -> Result<()> {
    anyhow::bail!("not yet")
}
