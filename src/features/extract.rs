//! `get_or_extract`: the features of some taps of one backbone on one dataset, read from
//! the cache when present, otherwise computed in one forward pass per batch for all missing
//! taps together, chunk by resumable chunk.

use super::key::{CacheKey, FORMAT_VERSION};
use super::partial::{ChunkHeader, PartialEntry, Skipped};
use super::pooling::{pool, Pooling};
use super::store::FeatureStore;
use crate::backbone::{Backbone, BackboneConfig, Family, Tap};
use crate::data::{decode_batch, Dataset, ImageError, TransformConfig};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

/// The extraction protocol: batching, chunking, bad-image policy, transform and pooling.
#[derive(Clone, Debug)]
pub struct ExtractConfig {
    /// Images per forward pass.
    pub batch_size: usize,
    /// Images per resumable chunk.
    pub chunk_size: usize,
    /// Skip and record missing or corrupt images instead of failing.
    pub skip_bad_images: bool,
    /// The image transform.
    pub transform: TransformConfig,
    /// The pooling of each tap.
    pub pooling: Pooling,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtractSection {
    batch_size: usize,
    chunk_size: usize,
}

impl ExtractConfig {
    /// Reads `[extract]`, `[transform]`, `[pooling]` and `data.skip_bad_images` from a
    /// config document (defaults, arch overrides and `--set` already merged).
    pub fn from_doc(doc: &toml::Table, family: Family) -> Result<Self> {
        let section: ExtractSection = crate::config::section(doc, "extract")?;
        if section.batch_size == 0 || section.chunk_size == 0 {
            anyhow::bail!("extract.batch_size and extract.chunk_size must be positive");
        }
        let transform: TransformConfig = crate::config::section(doc, "transform")?;
        transform.validate()?;
        let skip_bad_images = doc
            .get("data")
            .and_then(|d| d.get("skip_bad_images"))
            .map(|v| {
                v.as_bool()
                    .context("data.skip_bad_images must be true or false")
            })
            .transpose()?
            .unwrap_or(false);
        Ok(Self {
            batch_size: section.batch_size,
            chunk_size: section.chunk_size,
            skip_bad_images,
            transform,
            pooling: Pooling::from_doc(doc, family)?,
        })
    }
}

/// How an entry was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Read from the cache: no forward pass.
    Cached,
    /// Computed now, starting at this sample index (non-zero after an interruption).
    Extracted {
        /// First sample computed in this run.
        resumed_from: usize,
    },
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Cached => f.write_str("cached"),
            Status::Extracted { resumed_from: 0 } => f.write_str("extracted"),
            Status::Extracted { resumed_from } => {
                write!(f, "extracted, resumed from image {resumed_from}")
            }
        }
    }
}

/// One tap's entry in the store.
#[derive(Clone, Debug)]
pub struct Extracted {
    /// The tap.
    pub tap: Tap,
    /// Its cache key.
    pub key: CacheKey,
    /// The entry file.
    pub path: PathBuf,
    /// Cached or computed.
    pub status: Status,
}

/// The cache key of `tap` for this backbone, dataset and protocol.
pub fn cache_key(
    backbone: &BackboneConfig,
    weights_digest: &str,
    tap: Tap,
    cfg: &ExtractConfig,
    manifest: &str,
) -> Result<CacheKey> {
    Ok(CacheKey {
        format_version: FORMAT_VERSION,
        weights: weights_digest.to_string(),
        arch: backbone.arch_id()?,
        tap: tap.name().to_string(),
        pooling: cfg.pooling.describe(tap),
        transform: serde_json::to_string(&cfg.transform)?,
        dataset: manifest.to_string(),
    })
}

/// Returns the entries of `taps`, extracting only those not cached. All missing taps come
/// from the same forward passes; an interrupted extraction resumes at its last chunk.
pub fn get_or_extract(
    store: &FeatureStore,
    backbone: &BackboneConfig,
    device: &Device,
    dataset: &Dataset,
    taps: &[Tap],
    cfg: &ExtractConfig,
) -> Result<Vec<Extracted>> {
    let (family, _) = backbone.family()?;
    cfg.pooling.check(family, taps)?;
    // A key asked for twice would wait on its own lock.
    if let Some(t) = taps
        .iter()
        .enumerate()
        .find_map(|(i, t)| taps[..i].contains(t).then_some(t))
    {
        bail!("tap {t} is asked for twice: name each tap once");
    }
    let weights = backbone.weights_digest()?;
    let manifest = dataset.manifest_digest()?;
    let mut done = Vec::new();
    let mut missing = Vec::new();
    for &tap in taps {
        let key = cache_key(backbone, &weights, tap, cfg, &manifest)?;
        if store.contains(&key) {
            done.push(cached(store, tap, key));
        } else {
            missing.push((tap, key));
        }
    }
    // One writer per key: the locks are taken in digest order (no two processes deadlock),
    // and a key that a process we waited for finished is read, not extracted again.
    missing.sort_by_key(|(_, key)| key.digest());
    let mut _locks = Vec::new();
    let mut pending = Vec::new();
    for (tap, key) in missing {
        _locks.push(store.lock(&key)?);
        if store.contains(&key) {
            done.push(cached(store, tap, key));
        } else {
            let partial = store.partial(&key)?;
            pending.push((tap, key, partial));
        }
    }
    if pending.is_empty() {
        done.sort_by_key(|e| taps.iter().position(|t| *t == e.tap));
        return Ok(done);
    }
    pending.sort_by_key(|p| taps.iter().position(|t| *t == p.0));
    let n = dataset.samples.len();
    let start = pending
        .iter()
        .map(|p| p.2.resume_point())
        .min()
        .unwrap_or(0);
    if start > 0 && start < n {
        eprintln!("resuming from image {start} of {n} (finished chunks kept from an earlier run)");
    }
    if start < n {
        let net = Backbone::load(backbone, device)?;
        let pending_taps: Vec<Tap> = pending.iter().map(|p| p.0).collect();
        let mut partials: Vec<&mut PartialEntry> = pending.iter_mut().map(|p| &mut p.2).collect();
        run_chunks(&net, dataset, &pending_taps, cfg, start, &mut partials)?;
    }
    for (tap, key, partial) in pending {
        let path = store.finish(&key, partial, &dataset.samples)?;
        done.push(Extracted {
            tap,
            key,
            path,
            status: Status::Extracted {
                resumed_from: start,
            },
        });
    }
    done.sort_by_key(|e| taps.iter().position(|t| *t == e.tap));
    Ok(done)
}

fn cached(store: &FeatureStore, tap: Tap, key: CacheKey) -> Extracted {
    Extracted {
        tap,
        path: store.entry_path(&key),
        key,
        status: Status::Cached,
    }
}

/// A decoded batch: its first sample index and one result per image.
type Decoded = (usize, Vec<Result<Vec<f32>, ImageError>>);

/// Rows of one chunk being accumulated, per tap.
struct ChunkRows {
    start: usize,
    kept: Vec<usize>,
    skipped: Vec<Skipped>,
    rows: Vec<Vec<f32>>,
    row_shapes: Vec<Vec<usize>>,
}

fn run_chunks(
    net: &Backbone,
    dataset: &Dataset,
    taps: &[Tap],
    cfg: &ExtractConfig,
    start: usize,
    partials: &mut [&mut PartialEntry],
) -> Result<()> {
    let n = dataset.samples.len();
    let size = cfg.transform.size as usize;
    let bar = crate::progress::bar(n as u64, "extracting", "images");
    bar.set_position(start as u64);
    bar.reset_eta();
    std::thread::scope(|scope| -> Result<()> {
        // Decoding runs one batch ahead of the forward pass, itself in parallel (rayon).
        let (tx, rx) = sync_channel::<Decoded>(1);
        scope.spawn(move || {
            for chunk in (start..n).step_by(cfg.chunk_size) {
                let chunk_end = (chunk + cfg.chunk_size).min(n);
                for b in (chunk..chunk_end).step_by(cfg.batch_size) {
                    let e = (b + cfg.batch_size).min(chunk_end);
                    let paths: Vec<&std::path::Path> = dataset.samples[b..e]
                        .iter()
                        .map(|s| s.path.as_path())
                        .collect();
                    if tx.send((b, decode_batch(&paths, &cfg.transform))).is_err() {
                        return;
                    }
                }
            }
        });
        let mut chunk = ChunkRows::new(start, taps.len());
        for (b, results) in rx {
            let batch_end = b + results.len();
            let mut inputs = Vec::with_capacity(results.len() * 3 * size * size);
            let mut batch_kept = Vec::new();
            for (i, r) in results.into_iter().enumerate() {
                match r {
                    Ok(x) => {
                        inputs.extend(x);
                        batch_kept.push(b + i);
                    }
                    Err(e) if cfg.skip_bad_images => {
                        bar.println(format!("skipped: {e}"));
                        chunk.skipped.push(Skipped {
                            index: b + i,
                            reason: e.to_string(),
                        });
                    }
                    Err(e) => {
                        return Err(e).context(format!(
                            "extraction stopped at image {} of {n}; finished chunks are kept and \
                             the next run resumes from them",
                            b + i + 1
                        ))
                    }
                }
            }
            if !batch_kept.is_empty() {
                let x = Tensor::from_vec(inputs, (batch_kept.len(), 3, size, size), net.device())?;
                let maps = net.forward_taps(&x, taps)?;
                for (t, (tap, map)) in taps.iter().zip(maps).enumerate() {
                    let pooled = pool(&map, cfg.pooling.get(*tap))?.to_device(&Device::Cpu)?;
                    chunk.row_shapes[t] = pooled.dims()[1..].to_vec();
                    chunk.rows[t].extend(pooled.flatten_all()?.to_vec1::<f32>()?);
                }
                chunk.kept.extend(batch_kept);
            }
            bar.set_position(batch_end as u64);
            if batch_end == (chunk.start + cfg.chunk_size).min(n) {
                chunk.write(partials)?;
                chunk = ChunkRows::new(batch_end, taps.len());
            }
        }
        Ok(())
    })?;
    bar.finish();
    Ok(())
}

impl ChunkRows {
    fn new(start: usize, taps: usize) -> Self {
        Self {
            start,
            kept: Vec::new(),
            skipped: Vec::new(),
            rows: vec![Vec::new(); taps],
            row_shapes: vec![Vec::new(); taps],
        }
    }

    fn write(&self, partials: &mut [&mut PartialEntry]) -> Result<()> {
        for (t, partial) in partials.iter_mut().enumerate() {
            let header = ChunkHeader {
                start: self.start,
                count: self.kept.len() + self.skipped.len(),
                kept: self.kept.clone(),
                skipped: self.skipped.clone(),
                row_shape: self.row_shapes[t].clone(),
            };
            partial.write_chunk(header, &self.rows[t])?;
        }
        Ok(())
    }
}
