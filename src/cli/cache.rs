//! `sslbench cache ls | verify | export | rm | gc`.

use crate::features::leftovers::{leftovers, Collected, Leftover};
use crate::features::{verify, FeatureStore};
use crate::lock::LockState;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Arguments of `sslbench cache`.
#[derive(Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    op: CacheOp,
    /// Feature cache folder [default: $SSLBENCH_CACHE, else the user's cache dir].
    #[arg(long, global = true)]
    cache: Option<PathBuf>,
}

#[derive(Subcommand)]
enum CacheOp {
    /// List the entries: digest, tap, architecture, pooling, shape (items x channels for a
    /// dense entry), size.
    Ls,
    /// Check entries end to end (all, or those whose digest starts with the given prefixes),
    /// and list leftover partial folders and lock files with their owner, alive or stale.
    Verify {
        /// Digest prefixes.
        digests: Vec<String>,
    },
    /// Write one entry as FAIR-style .npy files: `<out>/<digest>_features.npy` (N x D, f32)
    /// and `<out>/<digest>_targets.npy` (N x C, i32), for scripts outside sslbench.
    Export {
        /// Digest prefix of one entry.
        digest: String,
        /// Output folder.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Remove entries by digest prefix.
    Rm {
        /// Digest prefixes.
        #[arg(required = true)]
        digests: Vec<String>,
    },
    /// Remove leftover partial folders and lock files whose owner is gone (a process that
    /// died, or another host's lock without a heartbeat for SSLBENCH_LOCK_STALE_S seconds,
    /// 600 by default); those of a live owner are kept.
    Gc,
}

/// Runs `sslbench cache`.
pub fn run(args: CacheArgs) -> Result<()> {
    let store = FeatureStore::open(&args.cache.unwrap_or_else(FeatureStore::default_root))?;
    match args.op {
        CacheOp::Ls => {
            println!(
                "{:<32}  {:<6} {:<28} {:<12} {:<20} {:>10}",
                "digest", "tap", "arch", "pooling", "shape", "MiB"
            );
            for e in store.list()? {
                let digest = e.path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
                let mib = e.bytes as f64 / (1 << 20) as f64;
                match e.key {
                    Ok(k) => println!(
                        "{digest:<32}  {:<6} {:<28} {:<12} {:<20} {mib:>10.2}",
                        k.tap,
                        k.arch,
                        k.pooling,
                        format!("{:?}", e.shape)
                    ),
                    Err(_) => {
                        println!("{digest:<32}  unreadable: run `sslbench cache verify {digest}`")
                    }
                }
            }
            Ok(())
        }
        CacheOp::Verify { digests } => {
            let paths = select(&store, &digests)?;
            let mut failed = 0;
            for path in &paths {
                match verify(path) {
                    Ok(()) => println!("ok      {}", path.display()),
                    Err(e) => {
                        failed += 1;
                        println!("FAILED  {e:#}");
                    }
                }
            }
            let left = leftovers(store.root())?;
            for l in &left {
                println!("left    {}", describe(l, l.state()));
            }
            if left.iter().any(|l| l.state().is_none_or(|s| !s.alive)) {
                println!("leftovers of dead writers: `sslbench cache gc` removes them");
            }
            if failed > 0 {
                bail!("{failed} of {} entries failed verification", paths.len());
            }
            println!("{} entries verified", paths.len());
            Ok(())
        }
        CacheOp::Export { digest, out } => {
            let paths = store.find(&digest)?;
            if paths.len() != 1 {
                bail!(
                    "`{digest}` matches {} entries: give more of the digest",
                    paths.len()
                );
            }
            if crate::h5::open(&paths[0]).is_ok_and(|f| crate::features::dense::is_dense(&f)) {
                bail!(
                    "`{digest}` is a dense entry (one C x H x W map per item), which `export` \
                     does not flatten: read it with h5py, item i being \
                     `features[offsets[i]:offsets[i+1]].reshape(shapes[i])`"
                );
            }
            let entry = crate::features::store::read_entry(&paths[0])?;
            let n = entry.features.shape()[0];
            let dim = entry.features.len() / n.max(1);
            let stem = entry.key.digest();
            std::fs::create_dir_all(&out)?;
            let (features, _) = entry.features.into_raw_vec_and_offset();
            let f = out.join(format!("{stem}_features.npy"));
            crate::data::npy::write_f32(&f, &[n, dim], &features)?;
            let t = out.join(format!("{stem}_targets.npy"));
            let shape = [entry.targets.nrows(), entry.targets.ncols()];
            let (targets, _) = entry.targets.into_raw_vec_and_offset();
            crate::data::npy::write_i32(&t, &shape, &targets)?;
            println!("wrote {} and {}", f.display(), t.display());
            Ok(())
        }
        CacheOp::Gc => {
            let mut removed = 0;
            for l in leftovers(store.root())? {
                match l.collect()? {
                    Collected::Removed => {
                        removed += 1;
                        println!("removed {}", l.path.display());
                    }
                    Collected::Kept(state) => println!("kept    {}", describe(&l, Some(state))),
                    Collected::Gone => {}
                }
            }
            println!("{removed} leftovers removed");
            Ok(())
        }
        CacheOp::Rm { digests } => {
            for path in select(&store, &digests)? {
                std::fs::remove_file(&path)?;
                println!("removed {}", path.display());
            }
            Ok(())
        }
    }
}

/// One line on a leftover: its path, kind, owner and whether that owner is alive.
fn describe(l: &Leftover, state: Option<LockState>) -> String {
    let kind = l.kind();
    let owner = match state {
        None => "no lock: its writer is gone".to_string(),
        Some(LockState { owner, alive }) => format!(
            "{}, {}",
            owner.map_or_else(|| "owner unknown".into(), |o| format!("owner {o}")),
            if alive { "alive" } else { "stale" }
        ),
    };
    format!("{}  ({kind}; {owner})", l.path.display())
}

fn select(store: &FeatureStore, prefixes: &[String]) -> Result<Vec<PathBuf>> {
    if prefixes.is_empty() {
        return Ok(store.list()?.into_iter().map(|e| e.path).collect());
    }
    let mut paths = Vec::new();
    for p in prefixes {
        paths.extend(store.find(p)?);
    }
    paths.dedup();
    Ok(paths)
}
