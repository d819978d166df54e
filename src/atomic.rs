//! Ground-floor file utilities every wing uses: writes that are never seen half done, and
//! the sha256 of a file (checkpoint digests, the inputs of `sslbench svm`).

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// Writes `bytes` to a temporary sibling, syncs it, and renames it onto `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| {
        let mut f = std::fs::File::create(tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(())
    })
}

/// Runs `write` on a temporary sibling of `path` (same folder, `.<ext>.tmp<pid>`), then
/// renames it onto `path`; on an error the temporary file is removed and `path` is untouched.
/// `write` must have closed the file when it returns (an HDF5 file, say).
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename onto {}", path.display()))
}

/// The sha256 of the file at `path`, as lower-case hex. `missing` is the message when the
/// file cannot be opened (it names the fix). A file is hashed once per process while its
/// size and modification time stay the same: a run asks for its checkpoint's digest for every
/// cache key, its resume guard and its provenance.
pub fn file_sha256(path: &Path, missing: impl FnOnce() -> String) -> Result<String> {
    type Stamp = (PathBuf, u64, Option<SystemTime>);
    static HASHED: Mutex<Option<HashMap<Stamp, String>>> = Mutex::new(None);
    let mut f = std::fs::File::open(path).with_context(missing)?;
    let meta = f
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let stamp: Stamp = (path.to_path_buf(), meta.len(), meta.modified().ok());
    let memo = || HASHED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sha) = memo().as_ref().and_then(|m| m.get(&stamp)) {
        return Ok(sha.clone());
    }
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("cannot read {}", path.display()))?;
    let sha = hex::encode(h.finalize());
    memo()
        .get_or_insert_with(HashMap::new)
        .insert(stamp, sha.clone());
    Ok(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        let sha = |p: &Path| file_sha256(p, || "missing".into()).unwrap();
        std::fs::write(&path, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha(&path), abc);
        assert_eq!(sha(&path), abc);
        std::fs::write(&path, b"abcd").unwrap();
        assert_eq!(
            sha(&path),
            "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"
        );
        assert!(file_sha256(&dir.path().join("none"), || "missing".into()).is_err());
    }
}
