//! Ground-floor file utilities every wing uses: writes that are never seen half done, and
//! the sha256 of a file (checkpoint digests, the inputs of `sslbench svm`).

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

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
/// file cannot be opened (it names the fix).
pub fn file_sha256(path: &Path, missing: impl FnOnce() -> String) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(missing)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}
