//! A dense entry opened for reading, and its end-to-end check.

use super::{DenseDtype, Map, LAYOUT};
use crate::features::key::CacheKey;
use crate::features::store::{read_attr, read_key};
use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use half::f16;
use half::slice::HalfFloatSliceExt;
use hdf5::types::VarLenUnicode;
use ndarray::Array2;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A dense entry opened for reading: the index is in memory, the maps are read on demand.
pub struct DenseEntry {
    path: PathBuf,
    key: CacheKey,
    dtype: DenseDtype,
    names: Vec<String>,
    shapes: Vec<[usize; 3]>,
    offsets: Vec<u64>,
    features: hdf5::Dataset,
}

/// The fix named by every error about an entry file.
fn remove_hint(path: &Path) -> String {
    let digest = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
    format!("remove it with `sslbench cache rm {digest}` and compute it again")
}

/// Whether an opened entry file is a dense entry.
pub fn is_dense(file: &hdf5::File) -> bool {
    read_attr(file, "layout").is_ok_and(|l| l == LAYOUT)
}

/// What `sslbench cache ls` shows as a dense entry's shape: items x channels.
pub fn listed_shape(file: &hdf5::File) -> Option<Vec<usize>> {
    if !is_dense(file) {
        return None;
    }
    let shapes: Array2<u64> = file.dataset("shapes").ok()?.read_2d().ok()?;
    let channels = shapes
        .rows()
        .into_iter()
        .next()
        .map_or(0, |r| r[0] as usize);
    Some(vec![shapes.nrows(), channels])
}

impl DenseEntry {
    /// Opens the dense entry file at `path`, checking that its index is consistent (layout,
    /// dtype, names, shapes and offsets agree with each other and with `features`).
    pub fn open(path: &Path) -> Result<Self> {
        let open = || -> Result<Self> {
            let file = crate::h5::open(path).context("not a readable HDF5 file")?;
            ensure!(is_dense(&file), "not a dense entry (no `layout = dense`)");
            let key = read_key(&file)?;
            let dtype = DenseDtype::parse(&read_attr(&file, "dtype")?)?;
            ensure!(
                key.pooling == dtype.pooling(),
                "its key's pooling `{}` disagrees with its dtype {}",
                key.pooling,
                dtype.name()
            );
            let features = file.dataset("features")?;
            ensure!(
                features.dtype()?.size() == dtype.size() && features.ndim() == 1,
                "`features` is not a 1-D {} dataset",
                dtype.name()
            );
            let names: Vec<VarLenUnicode> = file.dataset("names")?.read_raw()?;
            let shapes: Array2<u64> = file.dataset("shapes")?.read_2d()?;
            let offsets: Vec<u64> = file.dataset("offsets")?.read_raw()?;
            ensure!(
                shapes.ncols() == 3
                    && shapes.nrows() == names.len()
                    && offsets.len() == names.len() + 1,
                "`names`, `shapes` and `offsets` disagree in length"
            );
            let shapes: Vec<[usize; 3]> = shapes
                .rows()
                .into_iter()
                .map(|r| [r[0] as usize, r[1] as usize, r[2] as usize])
                .collect();
            let mut end = 0u64;
            for (i, s) in shapes.iter().enumerate() {
                ensure!(
                    offsets[i] == end,
                    "offset of item {i} does not follow the shapes"
                );
                end += s.iter().product::<usize>() as u64;
            }
            ensure!(
                offsets[names.len()] == end && features.size() as u64 == end,
                "`features` holds {} values, the shapes {end}",
                features.size()
            );
            Ok(Self {
                path: path.to_path_buf(),
                key,
                dtype,
                names: names.iter().map(|n| n.to_string()).collect(),
                shapes,
                offsets,
                features,
            })
        };
        open().with_context(|| {
            format!(
                "cannot open dense cache entry {}: {}",
                path.display(),
                remove_hint(path)
            )
        })
    }

    /// Opens the entry at `path` and checks that it holds `key` and exactly `names`.
    pub fn open_as(path: &Path, key: &CacheKey, names: &[String]) -> Result<Self> {
        let entry = Self::open(path)?;
        let mismatch = if &entry.key != key {
            Some("another key".to_string())
        } else if entry.names != names {
            let i = (0..entry.len().max(names.len()))
                .find(|&i| entry.names.get(i) != names.get(i))
                .unwrap_or(0);
            Some(format!(
                "other items ({} stored, {} asked; item {i} is `{}`, asked `{}`)",
                entry.len(),
                names.len(),
                entry.names.get(i).map_or("none", |s| s.as_str()),
                names.get(i).map_or("none", |s| s.as_str())
            ))
        } else {
            None
        };
        if let Some(what) = mismatch {
            bail!(
                "dense cache entry {} holds {what}: {}",
                path.display(),
                remove_hint(path)
            );
        }
        Ok(entry)
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the entry holds no item.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The item names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// (C, H, W) of item `i`.
    pub fn shape(&self, i: usize) -> [usize; 3] {
        self.shapes[i]
    }

    /// The key the entry was stored under.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    /// The storage type.
    pub fn dtype(&self) -> DenseDtype {
        self.dtype
    }

    /// The entry file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of stored values (the `bytes` attribute): the file is this plus a small index.
    pub fn bytes(&self) -> u64 {
        self.offsets[self.len()] * self.dtype.size() as u64
    }

    /// Reads item `i` from disk as f32 values in C x H x W order, with (C, H, W).
    pub fn read(&self, i: usize) -> Result<Map> {
        ensure!(
            i < self.len(),
            "item {i} of {} asked of dense entry {}",
            self.len(),
            self.path.display()
        );
        let range = self.offsets[i] as usize..self.offsets[i + 1] as usize;
        let read = || -> Result<Vec<f32>> {
            Ok(match self.dtype {
                DenseDtype::F32 => {
                    self.features
                        .read_slice_1d::<f32, _>(range)?
                        .into_raw_vec_and_offset()
                        .0
                }
                DenseDtype::F16 => {
                    let half = self.features.read_slice_1d::<f16, _>(range)?;
                    let half = half.as_slice().context("internal: layout")?;
                    let mut out = vec![0f32; half.len()];
                    half.convert_to_f32_slice(&mut out);
                    out
                }
            })
        };
        let values = read().with_context(|| {
            format!(
                "cannot read item {i} of {}: run `sslbench cache verify`",
                self.path.display()
            )
        })?;
        Ok((values, self.shapes[i]))
    }

    /// Item `i` as an f32 tensor (C, H, W) on `device`.
    pub fn tensor(&self, i: usize, device: &Device) -> Result<Tensor> {
        let (values, shape) = self.read(i)?;
        Ok(Tensor::from_vec(
            values,
            (shape[0], shape[1], shape[2]),
            device,
        )?)
    }
}

/// The running checksum of a dense entry: dtype, then per item its name, shape and stored
/// little-endian bytes.
pub(super) struct Checksum(Sha256);

impl Checksum {
    pub(super) fn new(dtype: DenseDtype) -> Self {
        Self(Sha256::new_with_prefix(dtype.name().as_bytes()))
    }
    pub(super) fn item(&mut self, name: &str, shape: [usize; 3], bytes: &[u8]) {
        self.0.update(name.as_bytes());
        self.0.update([0u8]);
        for d in shape {
            self.0.update((d as u64).to_le_bytes());
        }
        self.0.update(bytes);
    }
    pub(super) fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// The stored bytes of item `i`, read back from `features`.
fn stored_bytes(entry: &DenseEntry, i: usize) -> Result<Vec<u8>> {
    let range = entry.offsets[i] as usize..entry.offsets[i + 1] as usize;
    Ok(match entry.dtype {
        DenseDtype::F32 => entry
            .features
            .read_slice_1d::<f32, _>(range)?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DenseDtype::F16 => entry
            .features
            .read_slice_1d::<f16, _>(range)?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    })
}

/// The content checks of `sslbench cache verify` for a dense entry (its key and name were
/// checked by the caller): a consistent index, and a checksum that matches, item by item.
pub fn check_contents(path: &Path) -> Result<()> {
    let entry = DenseEntry::open(path)?;
    let file = crate::h5::open(path)?;
    let mut sum = Checksum::new(entry.dtype);
    for i in 0..entry.len() {
        sum.item(&entry.names[i], entry.shapes[i], &stored_bytes(&entry, i)?);
    }
    if sum.finish() != read_attr(&file, "checksum")? {
        bail!("its checksum does not match its contents (tampered or damaged)");
    }
    Ok(())
}
