//! The `FeatureStore`: one HDF5 file per cache key under a cache folder, readable by h5py:
//! datasets `features` (N x D, or N x C x H x W in dense mode), `ids` (N strings) and
//! `targets` (N x T int32), and the key's fields as string attributes, with a checksum.
//! Entries of one map per item, each of its own size, are laid out by `dense`.

use super::key::{CacheKey, FORMAT_VERSION, KEY_FIELDS};
use super::partial::{PartialEntry, Skipped};
use crate::data::Sample;
use crate::lock::KeyLock;
use anyhow::{bail, Context, Result};
use hdf5::types::VarLenUnicode;
use ndarray::{Array2, ArrayD, IxDyn};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Rows read per slice when streaming an entry (checksums, verification).
const READ_ROWS: usize = 256;

/// A content-addressed folder of feature entries.
pub struct FeatureStore {
    root: PathBuf,
}

/// A cached entry read back whole.
pub struct Entry {
    /// The key it was stored under.
    pub key: CacheKey,
    /// Features, one row per kept image.
    pub features: ArrayD<f32>,
    /// Image ids, parallel to the rows.
    pub ids: Vec<String>,
    /// Targets, parallel to the rows.
    pub targets: Array2<i32>,
    /// Images left out (with `data.skip_bad_images`), and why.
    pub skipped: Vec<Skipped>,
}

/// What `cache ls` shows of an entry.
pub struct EntryInfo {
    /// The entry file.
    pub path: PathBuf,
    /// Its key, when readable.
    pub key: Result<CacheKey>,
    /// Shape of `features` (items x channels for a dense entry), when readable.
    pub shape: Vec<usize>,
    /// File size in bytes.
    pub bytes: u64,
}

pub(super) fn text(s: &str) -> Result<VarLenUnicode> {
    s.parse::<VarLenUnicode>()
        .map_err(|e| anyhow::anyhow!("cannot store string attribute: {e}"))
}

/// Writes the string attribute `name` = `value` on `file`.
pub(crate) fn write_attr(file: &hdf5::File, name: &str, value: &str) -> Result<()> {
    file.new_attr::<VarLenUnicode>()
        .create(name)?
        .write_scalar(&text(value)?)?;
    Ok(())
}

/// Reads the string attribute `name` of `file`.
pub(crate) fn read_attr(file: &hdf5::File, name: &str) -> Result<String> {
    Ok(file
        .attr(name)
        .with_context(|| format!("attribute `{name}` missing"))?
        .read_scalar::<VarLenUnicode>()?
        .to_string())
}

pub(super) fn read_key(file: &hdf5::File) -> Result<CacheKey> {
    let get = |n: &str| read_attr(file, n);
    Ok(CacheKey {
        format_version: get(KEY_FIELDS[0])?.parse()?,
        weights: get(KEY_FIELDS[1])?,
        arch: get(KEY_FIELDS[2])?,
        tap: get(KEY_FIELDS[3])?,
        pooling: get(KEY_FIELDS[4])?,
        transform: get(KEY_FIELDS[5])?,
        dataset: get(KEY_FIELDS[6])?,
    })
}

/// The selection of rows `start..end` of a rank-`rank` dataset.
fn rows_of(start: usize, end: usize, rank: usize) -> hdf5::Hyperslab {
    let mut sel: Vec<hdf5::SliceOrIndex> = vec![(start..end).into()];
    sel.extend((1..rank).map(|_| hdf5::SliceOrIndex::from(..)));
    sel.into()
}

/// Running checksum over features, ids and targets, in file order.
struct Checksum(Sha256);

impl Checksum {
    fn rows(&mut self, rows: &[f32]) {
        for v in rows {
            self.0.update(v.to_le_bytes());
        }
    }
    fn finish(mut self, ids: &[VarLenUnicode], targets: &Array2<i32>) -> String {
        for id in ids {
            self.0.update(id.as_str().as_bytes());
            self.0.update([0u8]);
        }
        for t in targets.iter() {
            self.0.update(t.to_le_bytes());
        }
        hex::encode(self.0.finalize())
    }
}

impl FeatureStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create the feature cache at {}", root.display()))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// `$SSLBENCH_CACHE`, else the user's cache directory (`~/.cache/sslbench/features`).
    pub fn default_root() -> PathBuf {
        std::env::var_os("SSLBENCH_CACHE")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("sslbench").join("features")))
            .unwrap_or_else(|| PathBuf::from(".sslbench-cache"))
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the entry of `key` lives once complete.
    pub fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.root.join(format!("{}.h5", key.digest()))
    }

    /// Whether a complete entry for `key` exists (its stored key is checked).
    pub fn contains(&self, key: &CacheKey) -> bool {
        let path = self.entry_path(key);
        path.exists()
            && crate::h5::open(&path)
                .ok()
                .and_then(|f| read_key(&f).ok())
                .is_some_and(|k| &k == key)
    }

    /// Where the write lock of `key`'s entry lives: `<digest>.lock`.
    pub fn lock_path(&self, key: &CacheKey) -> PathBuf {
        self.root.join(format!("{}.lock", key.digest()))
    }

    /// Takes the write lock of `key`'s entry, waiting while a live process holds it.
    pub fn lock(&self, key: &CacheKey) -> Result<KeyLock> {
        crate::lock::acquire(
            &self.lock_path(key),
            &format!("cache entry {}", key.digest()),
        )
    }

    /// The chunk folder of an entry being extracted (resumed if it exists).
    pub fn partial(&self, key: &CacheKey) -> Result<PartialEntry> {
        PartialEntry::open(self.root.join(format!("{}.partial", key.digest())), key)
    }

    /// Assembles a finished partial entry into one HDF5 file (temporary name, then rename)
    /// and removes the chunks.
    pub fn finish(
        &self,
        key: &CacheKey,
        partial: PartialEntry,
        samples: &[Sample],
    ) -> Result<PathBuf> {
        let chunks = partial.complete(samples.len())?;
        let row_shape = chunks
            .values()
            .find(|h| !h.kept.is_empty())
            .map(|h| h.row_shape.clone())
            .unwrap_or_default();
        let kept: Vec<usize> = chunks
            .values()
            .flat_map(|h| h.kept.iter().copied())
            .collect();
        let skipped: Vec<Skipped> = chunks
            .values()
            .flat_map(|h| h.skipped.iter().cloned())
            .collect();
        let target_len = samples.first().map_or(0, |s| s.target.len());
        let path = self.entry_path(key);
        let tmp = path.with_extension(format!("h5.tmp{}", std::process::id()));
        let write = || -> Result<()> {
            let file = crate::h5::create(&tmp)?;
            let mut shape = vec![kept.len()];
            shape.extend(&row_shape);
            let features = file
                .new_dataset::<f32>()
                .shape(shape.clone())
                .create("features")?;
            let mut sum = Checksum(Sha256::new());
            let mut row = 0;
            for (start, header) in chunks {
                let rows = partial.rows(*start)?;
                sum.rows(&rows);
                let mut chunk_shape = vec![header.kept.len()];
                chunk_shape.extend(&row_shape);
                let arr = ArrayD::from_shape_vec(IxDyn(&chunk_shape), rows)?;
                if !header.kept.is_empty() {
                    features
                        .write_slice(&arr, rows_of(row, row + header.kept.len(), shape.len()))?;
                }
                row += header.kept.len();
            }
            let ids: Vec<VarLenUnicode> = kept
                .iter()
                .map(|&i| text(&samples[i].id))
                .collect::<Result<_>>()?;
            let targets = Array2::from_shape_fn((kept.len(), target_len), |(r, c)| {
                samples[kept[r]].target.get(c).copied().unwrap_or(0)
            });
            file.new_dataset_builder().with_data(&ids).create("ids")?;
            file.new_dataset_builder()
                .with_data(&targets)
                .create("targets")?;
            for (name, value) in key.fields() {
                write_attr(&file, name, &value)?;
            }
            write_attr(&file, "key_digest", &key.digest())?;
            write_attr(&file, "skipped", &serde_json::to_string(&skipped)?)?;
            write_attr(&file, "checksum", &sum.finish(&ids, &targets))?;
            file.flush()?;
            Ok(())
        };
        write().with_context(|| format!("cannot write cache entry {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)?;
        partial.remove()?;
        Ok(path)
    }

    /// Reads a complete entry, checking that its stored key is `key`.
    pub fn read(&self, key: &CacheKey) -> Result<Entry> {
        let path = self.entry_path(key);
        let entry = read_entry(&path)?;
        if &entry.key != key {
            bail!(
                "cache entry {} holds another key: remove it with `sslbench cache rm {}`",
                path.display(),
                key.digest()
            );
        }
        Ok(entry)
    }

    /// Every entry file in the store.
    pub fn list(&self) -> Result<Vec<EntryInfo>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.root)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "h5"))
            .collect();
        paths.sort();
        Ok(paths
            .into_iter()
            .map(|path| {
                let opened = crate::h5::open(&path).map_err(anyhow::Error::from);
                let shape = opened
                    .as_ref()
                    .ok()
                    .and_then(|f| {
                        super::dense::listed_shape(f)
                            .or_else(|| f.dataset("features").ok().map(|d| d.shape()))
                    })
                    .unwrap_or_default();
                let key = opened.and_then(|f| read_key(&f));
                let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                EntryInfo {
                    path,
                    key,
                    shape,
                    bytes,
                }
            })
            .collect())
    }

    /// Entry files whose name starts with `prefix` (a digest or its beginning).
    pub fn find(&self, prefix: &str) -> Result<Vec<PathBuf>> {
        let found: Vec<PathBuf> = self
            .list()?
            .into_iter()
            .map(|e| e.path)
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect();
        if found.is_empty() {
            bail!(
                "no cache entry matches `{prefix}` in {}",
                self.root.display()
            );
        }
        Ok(found)
    }
}

/// Checks an entry file end to end: it opens, its key matches its name and `key_digest`,
/// and its checksum matches its contents. The error says what is wrong and how to fix it.
pub fn verify(path: &Path) -> Result<()> {
    let fix = || {
        let digest = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        format!("remove it (`sslbench cache rm {digest}`) and extract again")
    };
    let check = || -> Result<()> {
        let file =
            crate::h5::open(path).context("not a readable HDF5 file (truncated or corrupt)")?;
        let key = read_key(&file)?;
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if key.digest() != name || read_attr(&file, "key_digest")? != name {
            bail!("its key does not match its name");
        }
        if key.format_version != FORMAT_VERSION {
            bail!(
                "format version {} (this build writes {FORMAT_VERSION})",
                key.format_version
            );
        }
        if super::dense::is_dense(&file) {
            return super::dense::check_contents(path);
        }
        let features = file.dataset("features")?;
        let n = features.shape().first().copied().unwrap_or(0);
        let mut sum = Checksum(Sha256::new());
        for start in (0..n).step_by(READ_ROWS) {
            let end = (start + READ_ROWS).min(n);
            let rows: ArrayD<f32> = features.read_slice(rows_of(start, end, features.ndim()))?;
            sum.rows(
                rows.as_standard_layout()
                    .as_slice()
                    .context("internal: layout")?,
            );
        }
        let ids: Vec<VarLenUnicode> = file.dataset("ids")?.read_raw()?;
        let targets: Array2<i32> = file.dataset("targets")?.read_2d()?;
        if ids.len() != n || targets.nrows() != n {
            bail!("features, ids and targets disagree in length");
        }
        if sum.finish(&ids, &targets) != read_attr(&file, "checksum")? {
            bail!("its checksum does not match its contents (tampered or damaged)");
        }
        Ok(())
    };
    check().with_context(|| {
        format!(
            "cache entry {} failed verification: {}",
            path.display(),
            fix()
        )
    })
}

/// Reads the entry file at `path` (as `sslbench cache` finds it by digest).
pub fn read_entry(path: &Path) -> Result<Entry> {
    let read = || -> Result<Entry> {
        let file = crate::h5::open(path)?;
        let key = read_key(&file)?;
        let ids: Vec<VarLenUnicode> = file.dataset("ids")?.read_raw()?;
        Ok(Entry {
            key,
            features: file.dataset("features")?.read_dyn()?,
            ids: ids.into_iter().map(|s| s.to_string()).collect(),
            targets: file.dataset("targets")?.read_2d()?,
            skipped: serde_json::from_str(&read_attr(&file, "skipped")?)?,
        })
    };
    read().with_context(|| {
        format!(
            "cannot read cache entry {}: run `sslbench cache verify`, then `sslbench cache rm` it",
            path.display()
        )
    })
}
