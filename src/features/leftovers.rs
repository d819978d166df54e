//! What interrupted or running writers leave in the cache: chunk folders of entries being
//! extracted (`<digest>.partial`, `<digest>.dense-partial`) and lock files (`*.lock`, in the
//! cache folder and one level below: SVM journals, derived files). `sslbench cache verify`
//! lists them; `sslbench cache gc` removes those whose owner is gone.

use crate::lock::{inspect, try_acquire, LockState};
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
            } else if depth == 0 && (name.ends_with(".partial") || name.ends_with(".dense-partial"))
            {
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

impl Leftover {
    /// Whether this is a lock file (else a partial folder).
    pub fn is_lock(&self) -> bool {
        self.path == self.lock
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
        let Some(lock) = try_acquire(&self.lock)? else {
            let state = inspect(&self.lock)?;
            return Ok(Collected::Kept(state));
        };
        if !self.is_lock() {
            std::fs::remove_dir_all(&self.path)
                .with_context(|| format!("cannot remove {}", self.path.display()))?;
        }
        drop(lock);
        Ok(Collected::Removed)
    }
}
