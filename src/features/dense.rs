//! Dense cache entries: one feature map per item (an image at a scale, maybe flipped), each
//! of its own size, for the detection and normals tasks' frozen trunks. An entry is computed
//! once, batch by resumable batch, and then read one item at a time (never whole).
//!
//! The file (`<digest>.h5`, readable by h5py) holds `features` (1-D, f32 or f16: every map
//! flattened in C x H x W order, one after the other), `names` (N strings), `shapes`
//! (N x 3 u64: C, H, W) and `offsets` (N + 1 u64: item `i` is
//! `features[offsets[i]:offsets[i+1]].reshape(shapes[i])`), the key's fields and `layout`,
//! `dtype`, `checksum` as string attributes, and `items` and `bytes` (of `features`) as u64.

mod batches;
mod entry;
pub mod tap_maps;

pub use entry::{check_contents, is_dense, listed_shape, DenseEntry};
pub use tap_maps::{storage_dtype, MapsStorage, TapMaps, TapMapsRequest};

use super::extract::Status;
use super::key::CacheKey;
use super::store::FeatureStore;
use anyhow::{bail, ensure, Context, Result};
use batches::{assemble, BatchHeader, DensePartial};
use half::f16;
use half::slice::HalfFloatSliceExt;
use serde::{Deserialize, Serialize};

/// The value of the `layout` attribute that marks a dense entry.
pub const LAYOUT: &str = "dense";

/// The storage type of a dense entry's values (they are computed and read as f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DenseDtype {
    /// Stored exactly.
    F32,
    /// Stored as IEEE half precision, rounded to nearest even: half the bytes.
    F16,
}

impl DenseDtype {
    /// `f32` or `f16`.
    pub fn name(self) -> &'static str {
        match self {
            DenseDtype::F32 => "f32",
            DenseDtype::F16 => "f16",
        }
    }

    /// The key's `pooling` for entries of this type (`dense:f32`, `dense:f16`), so that the
    /// two never share an entry, nor with the pooled extractor's whole-tensor `dense`.
    pub fn pooling(self) -> String {
        format!("{LAYOUT}:{}", self.name())
    }

    /// Bytes per stored value.
    pub fn size(self) -> usize {
        match self {
            DenseDtype::F32 => 4,
            DenseDtype::F16 => 2,
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(DenseDtype::F32),
            "f16" => Ok(DenseDtype::F16),
            _ => bail!("unknown dense dtype `{s}` (expected f32 or f16)"),
        }
    }

    /// Appends `values` as little-endian stored values; a value that is not finite, or that
    /// overflows f16, is refused naming `item`.
    fn encode(self, values: &[f32], item: &str, out: &mut Vec<u8>) -> Result<()> {
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            bail!("map `{item}` holds the non-finite value {v}");
        }
        match self {
            DenseDtype::F32 => values
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
            DenseDtype::F16 => {
                let mut half = vec![f16::ZERO; values.len()];
                half.convert_from_f32_slice(values);
                if let Some(i) = half.iter().position(|h| h.is_infinite()) {
                    bail!(
                        "map `{item}` holds {} beyond the f16 range (±65504): store it as f32",
                        values[i]
                    );
                }
                half.iter()
                    .for_each(|h| out.extend_from_slice(&h.to_le_bytes()));
            }
        }
        Ok(())
    }
}

/// One item's map as `compute` returns it: values in C x H x W order, and (C, H, W).
pub type Map = (Vec<f32>, [usize; 3]);

/// Checks one batch of maps from `compute` and encodes it.
fn encode_batch(
    maps: Vec<Map>,
    indices: &[usize],
    names: &[String],
    dtype: DenseDtype,
    channels: &mut Option<usize>,
) -> Result<(BatchHeader, Vec<u8>)> {
    ensure!(
        maps.len() == indices.len(),
        "compute returned {} maps for {} items",
        maps.len(),
        indices.len()
    );
    let mut payload = Vec::new();
    let mut shapes = Vec::with_capacity(maps.len());
    for (&i, (values, shape)) in indices.iter().zip(maps) {
        let name = &names[i];
        ensure!(
            values.len() == shape.iter().product::<usize>(),
            "map `{name}` has {} values for the shape {shape:?}",
            values.len()
        );
        let c = *channels.get_or_insert(shape[0]);
        ensure!(
            shape[0] == c,
            "map `{name}` has {} channels, the entry's others {c}",
            shape[0]
        );
        dtype.encode(&values, name, &mut payload)?;
        shapes.push(shape);
    }
    let header = BatchHeader {
        start: indices[0],
        dtype,
        shapes,
    };
    Ok((header, payload))
}

impl FeatureStore {
    /// Returns the dense entry of `key` holding one map per name in `names`, computing the
    /// missing items with `compute`: it is called on batches of at most `batch` item indices,
    /// in order, and returns one (C, H, W) f32 map per index. An interrupted computation
    /// resumes from its finished batches; a complete entry is opened without calling
    /// `compute`. `key.pooling` must be `dtype.pooling()`.
    pub fn get_or_compute_dense(
        &self,
        key: &CacheKey,
        names: &[String],
        dtype: DenseDtype,
        batch: usize,
        mut compute: impl FnMut(&[usize]) -> Result<Vec<Map>>,
        progress: bool,
    ) -> Result<(DenseEntry, Status)> {
        ensure!(
            key.pooling == dtype.pooling(),
            "a dense {} entry needs the key's pooling `{}`, not `{}`",
            dtype.name(),
            dtype.pooling(),
            key.pooling
        );
        ensure!(!names.is_empty(), "a dense entry needs at least one item");
        ensure!(batch > 0, "the batch of a dense entry must be positive");
        let path = self.entry_path(key);
        if self.contains(key) {
            return Ok((DenseEntry::open_as(&path, key, names)?, Status::Cached));
        }
        // One writer per key; a process we waited for may have finished the entry.
        let _lock = self.lock(key)?;
        if self.contains(key) {
            return Ok((DenseEntry::open_as(&path, key, names)?, Status::Cached));
        }
        let dir = self.root().join(format!("{}.dense-partial", key.digest()));
        let mut partial = DensePartial::open(dir.clone(), key, names, dtype)?;
        let resumed_from = partial.resume_point().min(names.len());
        let mut channels = partial.channels();
        let bar = progress.then(|| {
            crate::progress::bar((names.len() - resumed_from) as u64, "computing", "maps")
        });
        for start in (resumed_from..names.len()).step_by(batch) {
            let indices: Vec<usize> = (start..(start + batch).min(names.len())).collect();
            let (header, payload) = compute(&indices)
                .and_then(|maps| encode_batch(maps, &indices, names, dtype, &mut channels))
                .with_context(|| {
                    format!(
                        "cannot compute items {start}..{} of dense entry {}: the {start} \
                         finished ones are kept in {} and a rerun resumes from them",
                        start + indices.len(),
                        key.digest(),
                        dir.display()
                    )
                })?;
            partial.write(header, &payload)?;
            if let Some(bar) = &bar {
                bar.inc(indices.len() as u64);
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        ensure!(
            partial.resume_point() == names.len(),
            "internal: dense entry covers {} of {} items",
            partial.resume_point(),
            names.len()
        );
        let tmp = path.with_extension(format!("h5.tmp{}", std::process::id()));
        assemble(&tmp, key, names, dtype, &partial)
            .with_context(|| format!("cannot write cache entry {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot rename onto {}", path.display()))?;
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
        Ok((
            DenseEntry::open_as(&path, key, names)?,
            Status::Extracted { resumed_from },
        ))
    }
}
