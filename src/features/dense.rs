//! Dense cache entries: one feature map per item (an image at a scale, maybe flipped), each
//! of its own size, for the detection and normals tasks' frozen trunks. An entry is computed
//! once, batch by resumable batch, and then read one item at a time (never whole).
//!
//! The file (`<digest>.h5`, readable by h5py) holds `features` (1-D, f32 or f16: every map
//! flattened in C x H x W order, one after the other), `names` (N strings), `shapes`
//! (N x 3 u64: C, H, W) and `offsets` (N + 1 u64: item `i` is
//! `features[offsets[i]:offsets[i+1]].reshape(shapes[i])`), the key's fields and `layout`,
//! `dtype`, `checksum` as string attributes, and `items` and `bytes` (of `features`) as u64.

use super::extract::Status;
use super::key::CacheKey;
use super::store::{read_attr, read_key, text, write_attr, FeatureStore};
use crate::atomic::write_atomic;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use half::f16;
use half::slice::HalfFloatSliceExt;
use hdf5::types::VarLenUnicode;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

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
            let file = hdf5::File::open(path).context("not a readable HDF5 file")?;
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
                DenseDtype::F32 => self.features.read_slice_1d::<f32, _>(range)?.to_vec(),
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
struct Checksum(Sha256);

impl Checksum {
    fn new(dtype: DenseDtype) -> Self {
        Self(Sha256::new_with_prefix(dtype.name().as_bytes()))
    }
    fn item(&mut self, name: &str, shape: [usize; 3], bytes: &[u8]) {
        self.0.update(name.as_bytes());
        self.0.update([0u8]);
        for d in shape {
            self.0.update((d as u64).to_le_bytes());
        }
        self.0.update(bytes);
    }
    fn finish(self) -> String {
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
    let file = hdf5::File::open(path)?;
    let mut sum = Checksum::new(entry.dtype);
    for i in 0..entry.len() {
        sum.item(&entry.names[i], entry.shapes[i], &stored_bytes(&entry, i)?);
    }
    if sum.finish() != read_attr(&file, "checksum")? {
        bail!("its checksum does not match its contents (tampered or damaged)");
    }
    Ok(())
}

/// The header line of a finished batch file of a dense entry being computed; the stored
/// values of its items follow, little-endian.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct BatchHeader {
    /// First item index covered.
    start: usize,
    /// Storage type of the values.
    dtype: DenseDtype,
    /// (C, H, W) of each item covered, in order.
    shapes: Vec<[usize; 3]>,
}

impl BatchHeader {
    fn payload(&self) -> u64 {
        let values: usize = self
            .shapes
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum();
        (values * self.dtype.size()) as u64
    }
}

/// The finished batches of a dense entry being computed: one file each, written under a
/// temporary name and renamed, so a killed run loses at most the batch it was computing.
struct DensePartial {
    dir: PathBuf,
    batches: BTreeMap<usize, BatchHeader>,
}

impl DensePartial {
    /// Opens (or creates) the batch folder, keeping every complete batch of `dtype` found.
    fn open(dir: PathBuf, key: &CacheKey, names: &[String], dtype: DenseDtype) -> Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create cache folder {}", dir.display()))?;
        for (file, json) in [
            ("key.json", serde_json::to_string_pretty(key)?),
            ("names.json", serde_json::to_string(names)?),
        ] {
            let path = dir.join(file);
            match std::fs::read_to_string(&path) {
                Ok(existing) if existing == json => {}
                Ok(_) => bail!(
                    "{} belongs to another entry (its {file} differs): remove that folder and \
                     compute again",
                    dir.display()
                ),
                Err(_) => write_atomic(&path, json.as_bytes())?,
            }
        }
        let mut batches = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "items") {
                // A batch that cannot be read is computed again, not trusted.
                if let Ok((h, _)) = open_batch(&path) {
                    if h.dtype == dtype {
                        batches.insert(h.start, h);
                    }
                }
            }
        }
        Ok(Self { dir, batches })
    }

    /// The finished batches that follow each other from item 0 (a batch left over from a run
    /// with another batch size, beyond a gap, is not part of it).
    fn chain(&self) -> Vec<&BatchHeader> {
        let mut chain = Vec::new();
        let mut next = 0;
        while let Some(h) = self.batches.get(&next) {
            next += h.shapes.len();
            chain.push(h);
            if h.shapes.is_empty() {
                break;
            }
        }
        chain
    }

    /// The number of leading items covered by the chain of finished batches.
    fn resume_point(&self) -> usize {
        self.chain().iter().map(|h| h.shapes.len()).sum()
    }

    /// The channel count of the items finished so far, if any.
    fn channels(&self) -> Option<usize> {
        self.chain()
            .first()
            .and_then(|h| h.shapes.first())
            .map(|s| s[0])
    }

    fn write(&mut self, header: BatchHeader, payload: &[u8]) -> Result<()> {
        let mut bytes = serde_json::to_vec(&header)?;
        bytes.push(b'\n');
        bytes.extend_from_slice(payload);
        write_atomic(&self.path(header.start), &bytes)?;
        self.batches.insert(header.start, header);
        Ok(())
    }

    fn path(&self, start: usize) -> PathBuf {
        self.dir.join(format!("{start:010}.items"))
    }
}

/// Opens a batch file, checks its length against its header, and returns the header with the
/// reader at the first value.
fn open_batch(path: &Path) -> Result<(BatchHeader, BufReader<std::fs::File>)> {
    let mut reader = BufReader::new(std::fs::File::open(path)?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let header: BatchHeader = serde_json::from_str(&line)?;
    if std::fs::metadata(path)?.len() != line.len() as u64 + header.payload() {
        bail!("truncated batch {}", path.display());
    }
    Ok((header, reader))
}

/// Writes the chain of finished batches as one entry file at `tmp`, item by item.
fn assemble(
    tmp: &Path,
    key: &CacheKey,
    names: &[String],
    dtype: DenseDtype,
    partial: &DensePartial,
) -> Result<()> {
    let chain = partial.chain();
    let shapes: Vec<[usize; 3]> = chain
        .iter()
        .flat_map(|h| h.shapes.iter().copied())
        .collect();
    let mut offsets = vec![0u64];
    for s in &shapes {
        offsets.push(offsets[offsets.len() - 1] + s.iter().product::<usize>() as u64);
    }
    let total = offsets[shapes.len()] as usize;
    let file = hdf5::File::create(tmp)?;
    let features = match dtype {
        DenseDtype::F32 => file.new_dataset::<f32>(),
        DenseDtype::F16 => file.new_dataset::<f16>(),
    }
    .shape(total)
    .obj_track_times(false)
    .create("features")?;
    let mut sum = Checksum::new(dtype);
    let mut item = 0;
    for batch in chain {
        let (header, mut reader) = open_batch(&partial.path(batch.start))?;
        ensure!(
            &header == batch,
            "batch file {} changed while assembling",
            partial.path(batch.start).display()
        );
        for &shape in &header.shapes {
            let mut bytes = vec![0u8; shape.iter().product::<usize>() * dtype.size()];
            reader.read_exact(&mut bytes)?;
            sum.item(&names[item], shape, &bytes);
            let at = offsets[item] as usize..offsets[item + 1] as usize;
            match dtype {
                DenseDtype::F32 => features.write_slice(
                    &Array1::from_iter(
                        bytes
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    ),
                    at,
                )?,
                DenseDtype::F16 => features.write_slice(
                    &Array1::from_iter(
                        bytes
                            .chunks_exact(2)
                            .map(|b| f16::from_le_bytes([b[0], b[1]])),
                    ),
                    at,
                )?,
            }
            item += 1;
        }
    }
    let names: Vec<VarLenUnicode> = names.iter().map(|n| text(n)).collect::<Result<_>>()?;
    let shapes = Array2::from_shape_fn((shapes.len(), 3), |(r, c)| shapes[r][c] as u64);
    file.new_dataset_builder()
        .obj_track_times(false)
        .with_data(&names)
        .create("names")?;
    file.new_dataset_builder()
        .obj_track_times(false)
        .with_data(&shapes)
        .create("shapes")?;
    file.new_dataset_builder()
        .obj_track_times(false)
        .with_data(&offsets)
        .create("offsets")?;
    for (name, value) in key.fields() {
        write_attr(&file, name, &value)?;
    }
    write_attr(&file, "key_digest", &key.digest())?;
    write_attr(&file, "layout", LAYOUT)?;
    write_attr(&file, "dtype", dtype.name())?;
    write_attr(&file, "checksum", &sum.finish())?;
    for (name, value) in [
        ("items", names.len() as u64),
        ("bytes", (total * dtype.size()) as u64),
    ] {
        file.new_attr::<u64>().create(name)?.write_scalar(&value)?;
    }
    file.flush()?;
    Ok(())
}

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
