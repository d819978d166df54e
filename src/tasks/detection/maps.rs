//! The frozen body's maps of every (image, scale, flip) a run reads, computed once into a
//! dense entry of the shared feature cache: a second run, another seed or another head
//! setting reads them back and runs no trunk.
//!
//! Each image goes through the trunk alone, at its own size. Detectron runs a minibatch's
//! images zero-padded to a common size, which changes the maps near the padded border
//! slightly; caching needs maps that do not depend on the minibatch, so ours are those of the
//! unpadded image (the maps, not the images, are padded when a minibatch is stacked).

use super::blob::{image_blob, BlobConfig};
use super::config::TrunkInput;
use super::roidb::RoidbEntry;
use crate::backbone::{Backbone, BackboneConfig, Tap};
use crate::features::dense::{DenseDtype, DenseEntry};
use crate::features::key::{CacheKey, FORMAT_VERSION};
use crate::features::FeatureStore;
use crate::report::CacheRef;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The cached maps of one split at its scales.
pub struct FrozenMaps {
    entry: DenseEntry,
    index: HashMap<String, usize>,
    scales: Vec<u32>,
    max_size: u32,
    cache: CacheRef,
}

/// The item name of an image at a scale, flipped or not.
pub fn item_name(id: &str, scale: u32, flipped: bool) -> String {
    format!("{id}@{scale}{}", if flipped { ":flip" } else { "" })
}

/// What turns a trunk trained on normalised RGB into one that reads Detectron's blob.
fn trunk_tensor(blob: Vec<f32>, h: usize, w: usize, t: &TrunkInput) -> Result<Tensor> {
    let bgr = Tensor::from_vec(blob, (1, 3, h, w), &Device::Cpu)?;
    let x = match t.channels.as_str() {
        "bgr" => bgr,
        "rgb" => Tensor::cat(
            &[bgr.narrow(1, 2, 1)?, bgr.narrow(1, 1, 1)?, bgr.narrow(1, 0, 1)?],
            1,
        )?,
        other => bail!("trunk_input.channels = \"{other}\": use \"rgb\" or \"bgr\""),
    };
    if !t.absorb_std {
        return Ok(x);
    }
    let mut std = t.std;
    if t.channels == "bgr" {
        std.reverse();
    }
    let inv: Vec<f32> = std.iter().map(|s| 1.0 / (255.0 * s)).collect();
    Ok(x.broadcast_mul(&Tensor::from_vec(inv, (1, 3, 1, 1), &Device::Cpu)?)?)
}

/// How one split's maps are asked for.
pub struct MapRequest<'a> {
    /// The entries, flipped ones included.
    pub roidb: &'a [RoidbEntry],
    /// The shorter sides.
    pub scales: &'a [u32],
    /// The longest side allowed.
    pub max_size: u32,
    /// The blob protocol.
    pub blob: &'a BlobConfig,
    /// The trunk's input convention.
    pub trunk_input: &'a TrunkInput,
    /// The frozen tap.
    pub tap: Tap,
    /// "f16" or "f32".
    pub storage: &'a str,
    /// Label of the split in messages.
    pub split: &'a str,
}

impl FrozenMaps {
    /// Opens (computing what the cache lacks) the maps of `req`.
    pub fn get(
        store: &FeatureStore,
        backbone_cfg: &BackboneConfig,
        device: &Device,
        req: &MapRequest,
    ) -> Result<Self> {
        let dtype = match req.storage {
            "f16" => DenseDtype::F16,
            "f32" => DenseDtype::F32,
            other => bail!("cache.storage = \"{other}\": use \"f16\" or \"f32\""),
        };
        let mut names = Vec::new();
        let mut jobs = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for e in req.roidb {
            for &s in req.scales {
                let name = item_name(&e.id, s, e.flipped);
                if seen.insert(name.clone()) {
                    names.push(name);
                    jobs.push((e.image.clone(), e.flipped, s));
                }
            }
        }
        let mut manifest = Sha256::new();
        for ((path, _, _), name) in jobs.iter().zip(&names) {
            let size = std::fs::metadata(path)
                .with_context(|| format!("image {} is missing", path.display()))?
                .len();
            manifest.update(format!("{name}\t{size}\n").as_bytes());
        }
        let key = CacheKey {
            format_version: FORMAT_VERSION,
            weights: backbone_cfg.weights_digest()?,
            arch: backbone_cfg.arch_id()?,
            tap: req.tap.name().to_string(),
            pooling: dtype.pooling(),
            transform: serde_json::to_string(&serde_json::json!({
                "blob": format!("{:?}", req.blob),
                "trunk_input": format!("{:?}", req.trunk_input),
                "max_size": req.max_size,
            }))?,
            dataset: hex::encode(manifest.finalize()),
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
                        let (path, flipped, scale) = &jobs[i];
                        let img = crate::data::decode::decode(path).with_context(|| {
                            format!("cannot read image {}: restore or remove it", path.display())
                        })?;
                        let b = image_blob(&img, *flipped, *scale, req.max_size, req.blob);
                        let x = trunk_tensor(b.data, b.height, b.width, req.trunk_input)?;
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
        let cache = CacheRef {
            tap: req.tap.name().to_string(),
            spec: format!("{} maps", req.split),
            digest: key.digest(),
            status: status.to_string(),
        };
        let index = names.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        Ok(Self {
            entry,
            index,
            scales: req.scales.to_vec(),
            max_size: req.max_size,
            cache,
        })
    }

    /// The map (C x H x W, f32) of `entry` at its `scale_index`-th scale, and the image's
    /// scale factor.
    pub fn read(&self, entry: &RoidbEntry, scale_index: usize) -> Result<(Tensor, f32)> {
        let scale = self.scales[scale_index];
        let name = item_name(&entry.id, scale, entry.flipped);
        let &i = self
            .index
            .get(&name)
            .with_context(|| format!("no cached map for {name}"))?;
        let map = self.entry.tensor(i, &Device::Cpu)?;
        let im_scale =
            super::blob::image_scale(entry.width, entry.height, scale, self.max_size);
        Ok((map, im_scale))
    }

    /// The cache reference of the entry, for the results.
    pub fn cache_ref(&self) -> CacheRef {
        self.cache.clone()
    }
}
