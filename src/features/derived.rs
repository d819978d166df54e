//! Files the shared cache holds beside the trunk's outputs: what a task derives from a dataset
//! alone and would otherwise recompute on every run (the dense tasks' per-pixel labels and
//! their codebook). One file per (kind, digest) at `<cache>/<kind>/<digest>.<ext>`, written to
//! a temporary sibling and renamed, so a reader never sees half a file; a file that no longer
//! reads is reported, then made again.

use super::extract::Status;
use super::store::FeatureStore;
use crate::atomic::write_atomic_with;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A derived file's place in the cache and how it was obtained.
#[derive(Clone, Debug)]
pub struct Derived {
    /// The file.
    pub path: PathBuf,
    /// Its digest (the file's stem).
    pub digest: String,
    /// `Cached` when read back, `Extracted` when made by this run.
    pub status: Status,
}

/// How one kind of derived file is made, written and read.
pub struct DerivedFile<'a, T> {
    /// The folder under the cache root (`normals-labels`), also its name in messages.
    pub kind: &'a str,
    /// The digest of everything the contents depend on.
    pub digest: String,
    /// The file extension (`h5`).
    pub ext: &'a str,
    /// Reads a file written by `write`.
    pub read: &'a dyn Fn(&Path) -> Result<T>,
    /// Writes `T` to the given (temporary) path, closing the file before it returns.
    pub write: &'a dyn Fn(&T, &Path) -> Result<()>,
}

impl<T> DerivedFile<'_, T> {
    /// The file's path in `store`.
    pub fn path(&self, store: &FeatureStore) -> PathBuf {
        store
            .root()
            .join(self.kind)
            .join(format!("{}.{}", self.digest, self.ext))
    }

    /// Reads the file from `store`, or runs `make`, stores its result and returns it.
    pub fn get_or_make(
        &self,
        store: &FeatureStore,
        make: impl FnOnce() -> Result<T>,
    ) -> Result<(T, Derived)> {
        let path = self.path(store);
        let derived = |status| Derived {
            path: path.clone(),
            digest: self.digest.clone(),
            status,
        };
        let read = |warn: bool| -> Option<T> {
            if !path.exists() {
                return None;
            }
            (self.read)(&path)
                .inspect_err(|e| {
                    if warn {
                        eprintln!(
                            "warning: the cached {} file {} does not read ({e:#}); making it again",
                            self.kind,
                            path.display()
                        )
                    }
                })
                .ok()
        };
        if let Some(v) = read(false) {
            return Ok((v, derived(Status::Cached)));
        }
        let dir = path.parent().expect("a cache file has a folder");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // One writer per file; a process we waited for may have written it.
        let _lock = crate::lock::acquire(
            &crate::lock::lock_path(&path),
            &format!("the {} file {}", self.kind, self.digest),
        )?;
        if let Some(v) = read(true) {
            return Ok((v, derived(Status::Cached)));
        }
        let value = make()?;
        write_atomic_with(&path, |tmp| (self.write)(&value, tmp))
            .with_context(|| format!("cannot store the {} file {}", self.kind, path.display()))?;
        Ok((value, derived(Status::Extracted { resumed_from: 0 })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file<'a>(
        read: &'a dyn Fn(&Path) -> Result<String>,
        write: &'a dyn Fn(&String, &Path) -> Result<()>,
    ) -> DerivedFile<'a, String> {
        DerivedFile {
            kind: "test-kind",
            digest: "abc".into(),
            ext: "txt",
            read,
            write,
        }
    }

    #[test]
    fn a_derived_file_is_made_once_then_read_and_made_again_when_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = FeatureStore::open(dir.path()).unwrap();
        let read = |p: &Path| -> Result<String> {
            let s = std::fs::read_to_string(p)?;
            anyhow::ensure!(s.starts_with("ok:"), "bad contents");
            Ok(s)
        };
        let write = |v: &String, p: &Path| -> Result<()> { Ok(std::fs::write(p, v)?) };
        let f = file(&read, &write);
        let (v, d) = f.get_or_make(&store, || Ok("ok:1".into())).unwrap();
        assert_eq!(
            (v.as_str(), d.status),
            ("ok:1", Status::Extracted { resumed_from: 0 })
        );
        assert_eq!(d.path, dir.path().join("test-kind/abc.txt"));
        let (v, d) = f
            .get_or_make(&store, || panic!("must not be made again"))
            .unwrap();
        assert_eq!((v.as_str(), d.status), ("ok:1", Status::Cached));
        std::fs::write(&d.path, "garbage").unwrap();
        let (v, d) = f.get_or_make(&store, || Ok("ok:2".into())).unwrap();
        assert_eq!(
            (v.as_str(), d.status),
            ("ok:2", Status::Extracted { resumed_from: 0 })
        );
        // Nothing but the file is left in its folder (no temporary siblings).
        let names: Vec<_> = std::fs::read_dir(dir.path().join("test-kind"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["abc.txt"]);
    }
}
