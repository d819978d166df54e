//! An entry being extracted: one file per finished chunk, each written to a temporary name
//! and renamed, so that a killed extraction loses at most the chunk it was computing.

use super::key::CacheKey;
use crate::atomic::write_atomic;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// An image left out of an entry, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Index of the sample in the dataset.
    pub index: usize,
    /// The error that caused the skip (it names the file).
    pub reason: String,
}

/// The header line of a chunk file; the rows follow as little-endian f32.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChunkHeader {
    /// First sample index covered.
    pub start: usize,
    /// Number of samples covered (kept + skipped).
    pub count: usize,
    /// Sample indices whose rows are stored, in order.
    pub kept: Vec<usize>,
    /// Samples covered but left out.
    pub skipped: Vec<Skipped>,
    /// Shape of one row (D for pooled taps, C x H x W for dense maps).
    pub row_shape: Vec<usize>,
}

/// The chunks written so far for one cache key.
pub struct PartialEntry {
    dir: PathBuf,
    chunks: BTreeMap<usize, ChunkHeader>,
}

impl PartialEntry {
    /// Opens (or creates) the chunk folder of `key`, keeping every complete chunk found.
    pub fn open(dir: PathBuf, key: &CacheKey) -> Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create cache folder {}", dir.display()))?;
        let key_file = dir.join("key.json");
        let json = serde_json::to_string_pretty(key)?;
        match std::fs::read_to_string(&key_file) {
            Ok(existing) if existing == json => {}
            Ok(_) => bail!(
                "{} belongs to another key: remove that folder and extract again",
                dir.display()
            ),
            Err(_) => write_atomic(&key_file, json.as_bytes())?,
        }
        let mut chunks = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "chunk") {
                // A chunk that cannot be read is redone, not trusted.
                if let Ok(h) = read_header(&path) {
                    chunks.insert(h.start, h);
                }
            }
        }
        Ok(Self { dir, chunks })
    }

    /// The number of leading samples already covered by contiguous finished chunks.
    pub fn resume_point(&self) -> usize {
        let mut next = 0;
        for (start, h) in &self.chunks {
            if *start != next {
                break;
            }
            next += h.count;
        }
        next
    }

    /// Stores one finished chunk atomically.
    pub fn write_chunk(&mut self, header: ChunkHeader, rows: &[f32]) -> Result<()> {
        let row_len: usize = header.row_shape.iter().product();
        if rows.len() != header.kept.len() * row_len {
            bail!("internal: chunk rows do not match its header");
        }
        let mut bytes = serde_json::to_vec(&header)?;
        bytes.push(b'\n');
        bytes.reserve(rows.len() * 4);
        for v in rows {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        write_atomic(&self.chunk_path(header.start), &bytes)?;
        self.chunks.insert(header.start, header);
        Ok(())
    }

    /// The finished chunks, by first sample index, once they cover `0..n` exactly.
    pub fn complete(&self, n: usize) -> Result<&BTreeMap<usize, ChunkHeader>> {
        if self.resume_point() != n {
            bail!(
                "internal: entry covers {} of {n} samples",
                self.resume_point()
            );
        }
        Ok(&self.chunks)
    }

    /// Reads the rows of the chunk starting at `start`.
    pub fn rows(&self, start: usize) -> Result<Vec<f32>> {
        let (_, mut reader) = open_chunk(&self.chunk_path(start))?;
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// Removes the chunk folder (after the entry was assembled).
    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("cannot remove {}", self.dir.display()))
    }

    fn chunk_path(&self, start: usize) -> PathBuf {
        self.dir.join(format!("{start:010}.chunk"))
    }
}

fn read_header(path: &Path) -> Result<ChunkHeader> {
    Ok(open_chunk(path)?.0)
}

/// Opens a chunk file, checks its length against its header, and returns the header with
/// the reader positioned at the first row.
fn open_chunk(path: &Path) -> Result<(ChunkHeader, BufReader<std::fs::File>)> {
    let mut reader = BufReader::new(std::fs::File::open(path)?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let header: ChunkHeader = serde_json::from_str(&line)?;
    let row_len: usize = header.row_shape.iter().product();
    let expected = (line.len() + header.kept.len() * row_len * 4) as u64;
    if std::fs::metadata(path)?.len() != expected {
        bail!("truncated chunk {}", path.display());
    }
    Ok((header, reader))
}
