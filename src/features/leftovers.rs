//! What interrupted or running writers leave in the cache: chunk folders of entries being
//! extracted (`<digest>.partial`, `<digest>.dense-partial`), files being written before their
//! rename (`<name>.tmp<pid>`, e.g. `<digest>.h5.tmp4242`) and lock files (`*.lock`); all in the
//! cache folder and one level below (SVM journals, derived files). `sslbench cache verify`
//! lists them; `sslbench cache gc` removes those whose owner is gone.

use crate::lock::{host_name, inspect, pid_alive, try_acquire, LockState, Owner};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A partial folder or a lock file, with the lock that guards it.
pub struct Leftover {
    /// The folder or file.
    pub path: PathBuf,
    /// Its lock file (`path` itself for a lock file).
    pub lock: PathBuf,
}

/// What became of a leftover in `gc`.
pub enum Collected {
    /// Removed: its owner is gone.
    Removed,
    /// Kept: a live process holds its lock.
    Kept(LockState),
    /// Already gone (its lock went with a partial folder removed before it).
    Gone,
}

/// Every leftover under the cache folder `root`, sorted by path.
pub fn leftovers(root: &Path) -> Result<Vec<Leftover>> {
    let mut found = Vec::new();
    let mut scan = |dir: &Path, depth: usize| -> Result<Vec<PathBuf>> {
        let mut subdirs = Vec::new();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list the cache folder {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".lock") {
                found.push(Leftover {
                    lock: path.clone(),
                    path,
                });
            } else if depth == 1 && temporary_writer(name).is_some() {
                // A derived file's: locked as `<target>.lock`.
                let target = name.rsplit_once(".tmp").map_or(name, |(t, _)| t);
                found.push(Leftover {
                    lock: crate::lock::lock_path(&dir.join(target)),
                    path,
                });
            } else if depth == 0
                && (name.ends_with(".partial")
                    || name.ends_with(".dense-partial")
                    || temporary_writer(name).is_some())
            {
                // An entry's: locked as `<digest>.lock`.
                let digest = name.split('.').next().unwrap_or("");
                found.push(Leftover {
                    lock: dir.join(format!("{digest}.lock")),
                    path,
                });
            } else if depth == 0 && path.is_dir() {
                subdirs.push(path);
            }
        }
        Ok(subdirs)
    };
    for sub in scan(root, 0)? {
        scan(&sub, 1)?;
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// The writer's pid of a temporary file's name (`<name>.tmp<pid>`), `None` for other names.
fn temporary_writer(name: &str) -> Option<u32> {
    let (_, pid) = name.rsplit_once(".tmp")?;
    pid.parse().ok()
}

impl Leftover {
    /// Whether this is a lock file (else a partial folder or a temporary file).
    pub fn is_lock(&self) -> bool {
        self.path == self.lock
    }

    /// What it is: `lock`, `temporary` (a file not yet renamed into place) or `partial`.
    pub fn kind(&self) -> &'static str {
        let name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if self.is_lock() {
            "lock"
        } else if temporary_writer(name).is_some() {
            "temporary"
        } else {
            "partial"
        }
    }

    /// The state of its lock; `None` when it has no lock file (its writer let go or died
    /// without one).
    pub fn state(&self) -> Option<LockState> {
        self.lock
            .exists()
            .then(|| inspect(&self.lock).ok())
            .flatten()
    }

    /// Removes it unless a live owner holds its lock (which `gc` takes while removing).
    pub fn collect(&self) -> Result<Collected> {
        if !self.path.exists() {
            return Ok(Collected::Gone);
        }
        let name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(pid) = temporary_writer(name).filter(|pid| pid_alive(*pid)) {
            // Its writer may still rename it into place, lock or no lock.
            let owner = Owner {
                host: host_name(),
                pid,
                started: 0,
            };
            return Ok(Collected::Kept(LockState {
                owner: Some(owner),
                alive: true,
            }));
        }
        let Some(lock) = try_acquire(&self.lock)? else {
            let state = inspect(&self.lock)?;
            return Ok(Collected::Kept(state));
        };
        if self.path.is_dir() {
            std::fs::remove_dir_all(&self.path)
                .with_context(|| format!("cannot remove {}", self.path.display()))?;
        } else if !self.is_lock() {
            std::fs::remove_file(&self.path)
                .with_context(|| format!("cannot remove {}", self.path.display()))?;
        }
        drop(lock);
        Ok(Collected::Removed)
    }
}
