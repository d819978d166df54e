//! A split's frozen maps at one tap, one dense item per named input (an image at a scale,
//! flipped or not; a frame at a short side): computed once into the shared cache by running
//! the trunk on each input alone, then read back item by item. The detection and normals tasks
//! ask for their maps through it; what differs between them is only how an item's input is
//! made and what goes into the key's `transform` and `dataset`.

use super::{DenseDtype, DenseEntry};
use crate::backbone::{Backbone, BackboneConfig, Tap};
use crate::features::extract::Status;
use crate::features::key::{CacheKey, FORMAT_VERSION};
use crate::features::FeatureStore;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;

/// How one split's maps are asked for.
pub struct TapMapsRequest<'a> {
    /// The frozen tap.
    pub tap: Tap,
    /// `cache.storage`: "f16" or "f32".
    pub storage: &'a str,
    /// Label of the split in messages and in the cache reference ("train", "test").
    pub split: &'a str,
    /// The task's input protocol, serialised into the key's `transform`.
    pub transform: serde_json::Value,
    /// Hex digest of the data manifest the items are made from: the key's `dataset`.
    pub dataset: String,
}

/// The cached maps of one split, by item name.
pub struct TapMaps {
    entry: DenseEntry,
    index: HashMap<String, usize>,
    /// The tap.
    pub tap: Tap,
    /// The split's label.
    pub split: String,
    /// The entry's key.
    pub key: CacheKey,
    /// Read from the cache or computed now.
    pub status: Status,
}

/// `[cache]` of the tasks with frozen maps: how the maps are stored.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapsStorage {
    /// "f16" (half the disk; maps read back within 1e-3 relative) or "f32".
    pub storage: String,
}

impl Default for MapsStorage {
    fn default() -> Self {
        Self {
            storage: "f16".into(),
        }
    }
}

/// The storage type a task file's `cache.storage` names.
pub fn storage_dtype(storage: &str) -> Result<DenseDtype> {
    match storage {
        "f16" => Ok(DenseDtype::F16),
        "f32" => Ok(DenseDtype::F32),
        other => bail!("cache.storage = \"{other}\": use \"f16\" or \"f32\""),
    }
}

impl TapMaps {
    /// Opens (computing what the cache lacks) the maps of `names`. `input(i)` is the trunk's
    /// input for item `i` (1 x 3 x H x W on the CPU); the trunk is loaded only when an item
    /// must be computed, and each input runs through it alone.
    pub fn get(
        store: &FeatureStore,
        backbone_cfg: &BackboneConfig,
        device: &Device,
        req: TapMapsRequest,
        names: Vec<String>,
        mut input: impl FnMut(usize) -> Result<Tensor>,
    ) -> Result<Self> {
        let dtype = storage_dtype(req.storage)?;
        let key = CacheKey {
            format_version: FORMAT_VERSION,
            weights: backbone_cfg.weights_digest()?,
            arch: backbone_cfg.arch_id()?,
            tap: req.tap.name().to_string(),
            pooling: dtype.pooling(),
            transform: serde_json::to_string(&req.transform)?,
            dataset: req.dataset,
        };
        let mut backbone: Option<Backbone> = None;
        let (entry, status) = store.get_or_compute_dense(
            &key,
            &names,
            dtype,
            1,
            |items: &[usize]| {
                let trunk = match &mut backbone {
                    Some(b) => b,
                    None => backbone.insert(Backbone::load(backbone_cfg, device)?),
                };
                items
                    .iter()
                    .map(|&i| {
                        let x = input(i)?;
                        let map = trunk
                            .forward_taps(&x.to_device(device)?, &[req.tap])?
                            .remove(0)
                            .squeeze(0)?
                            .to_device(&Device::Cpu)?;
                        let (c, h, w) = map.dims3()?;
                        Ok((map.flatten_all()?.to_vec1::<f32>()?, [c, h, w]))
                    })
                    .collect()
            },
            true,
        )?;
        eprintln!(
            "{}: {} frozen {} maps ({status}) in {}",
            req.split,
            names.len(),
            req.tap.name(),
            store.entry_path(&key).display()
        );
        let index = names.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        Ok(Self {
            entry,
            index,
            tap: req.tap,
            split: req.split.to_string(),
            key,
            status,
        })
    }

    /// The map (C x H x W, f32, on the CPU) of item `name`.
    pub fn read(&self, name: &str) -> Result<Tensor> {
        let &i = self
            .index
            .get(name)
            .with_context(|| format!("no cached map for {name}"))?;
        self.entry.tensor(i, &Device::Cpu)
    }
}
