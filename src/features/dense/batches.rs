//! The finished batches of a dense entry being computed, and their assembly into the entry
//! file.

use super::entry::Checksum;
use super::{DenseDtype, LAYOUT};
use crate::atomic::write_atomic;
use crate::features::key::CacheKey;
use crate::features::store::{text, write_attr};
use anyhow::{bail, ensure, Context, Result};
use half::f16;
use hdf5::types::VarLenUnicode;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The header line of a finished batch file of a dense entry being computed; the stored
/// values of its items follow, little-endian.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct BatchHeader {
    /// First item index covered.
    pub start: usize,
    /// Storage type of the values.
    pub dtype: DenseDtype,
    /// (C, H, W) of each item covered, in order.
    pub shapes: Vec<[usize; 3]>,
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
pub(super) struct DensePartial {
    dir: PathBuf,
    batches: BTreeMap<usize, BatchHeader>,
}

impl DensePartial {
    /// Opens (or creates) the batch folder, keeping every complete batch of `dtype` found.
    pub(super) fn open(
        dir: PathBuf,
        key: &CacheKey,
        names: &[String],
        dtype: DenseDtype,
    ) -> Result<Self> {
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
    pub(super) fn resume_point(&self) -> usize {
        self.chain().iter().map(|h| h.shapes.len()).sum()
    }

    /// The channel count of the items finished so far, if any.
    pub(super) fn channels(&self) -> Option<usize> {
        self.chain()
            .first()
            .and_then(|h| h.shapes.first())
            .map(|s| s[0])
    }

    pub(super) fn write(&mut self, header: BatchHeader, payload: &[u8]) -> Result<()> {
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
pub(super) fn assemble(
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
    let file = crate::h5::create(tmp)?;
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
