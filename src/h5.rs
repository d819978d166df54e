//! Opening HDF5 files without HDF5's own file locks. The cache serialises its writers with
//! per-key locks (`crate::lock`) and renames finished files into place, so readers never see a
//! file being written. HDF5's `flock` adds nothing to that, and it fails in two places the
//! cache must work: on NFS and Lustre, where `flock` is refused, and between two handles on
//! one file within one process ("unable to lock file, errno = 11").

use hdf5::{File, FileBuilder};
use std::path::Path;

/// A builder whose file access list turns HDF5's locking off.
fn unlocked() -> FileBuilder {
    let mut builder = File::with_options();
    builder.with_fapl(|p| p.file_locking(false));
    builder
}

/// Opens an existing file read-only.
pub fn open(path: impl AsRef<Path>) -> hdf5::Result<File> {
    unlocked().open(path)
}

/// Creates a file (truncating one that exists).
pub fn create(path: impl AsRef<Path>) -> hdf5::Result<File> {
    unlocked().create(path)
}

/// Opens an existing file for reading and writing.
pub fn open_rw(path: impl AsRef<Path>) -> hdf5::Result<File> {
    unlocked().open_rw(path)
}
