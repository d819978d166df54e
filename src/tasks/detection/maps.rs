//! The frozen body's maps of every (image, scale, flip) a run reads, computed once into a
//! dense entry of the shared feature cache: a second run, another seed or another head
//! setting reads them back and runs no trunk.
//!
//! Each image goes through the trunk alone, at its own size. Detectron runs a minibatch's
//! images zero-padded to a common size, which changes the maps near the padded border
//! slightly; caching needs maps that do not depend on the minibatch, so ours are those of the
//! unpadded image (the maps, not the images, are padded when a minibatch is stacked).

use super::blob::{im_list_to_blob, image_scale, load_image, BlobConfig, PreparedImage};
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

/// The cached maps of one split.
pub struct FrozenMaps {
    entry: DenseEntry,
    index: HashMap<String, usize>,
    blob: BlobConfig,
    cache: CacheRef,
}

/// The item name of an image at a scale (its shorter side), flipped or not.
pub fn item_name(id: &str, scale: u32, flipped: bool) -> String {
    format!("{id}@{scale}{}", if flipped { ":flip" } else { "" })
}

/// The blob of one image as the trunk's input: 1 x 3 x H x W, divided by `255 std` per
/// channel when the trunk was trained on normalised inputs.
fn trunk_tensor(image: &PreparedImage, t: &TrunkInput) -> Result<Tensor> {
    let blob = im_list_to_blob(std::slice::from_ref(image));
    let x = Tensor::from_vec(blob.data, (1, 3, blob.height, blob.width), &Device::Cpu)?;
    if !t.absorb_std {
        return Ok(x);
    }
    let inv: Vec<f32> = t.std.iter().map(|s| 1.0 / (255.0 * s)).collect();
    Ok(x.broadcast_mul(&Tensor::from_vec(inv, (1, 3, 1, 1), &Device::Cpu)?)?)
}

/// How one split's maps are asked for.
pub struct MapRequest<'a> {
    /// The entries, flipped ones included.
    pub roidb: &'a [RoidbEntry],
    /// The blob protocol (its scale and max size included).
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
            let name = item_name(&e.id, req.blob.scale, e.flipped);
            if seen.insert(name.clone()) {
                names.push(name);
                jobs.push(e);
            }
        }
        let mut manifest = Sha256::new();
        for (e, name) in jobs.iter().zip(&names) {
            let size = std::fs::metadata(&e.image)
                .with_context(|| format!("image {} is missing", e.image.display()))?
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
                        let e = jobs[i];
                        let image = load_image(&e.image, e.width, e.height, e.flipped, req.blob)?;
                        let x = trunk_tensor(&image, req.trunk_input)?;
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
            blob: req.blob.clone(),
            cache,
        })
    }

    /// The map (C x H x W, f32) of `entry` and the image's scale factor.
    pub fn read(&self, entry: &RoidbEntry) -> Result<(Tensor, f64)> {
        let name = item_name(&entry.id, self.blob.scale, entry.flipped);
        let &i = self
            .index
            .get(&name)
            .with_context(|| format!("no cached map for {name}"))?;
        let map = self.entry.tensor(i, &Device::Cpu)?;
        let scale = image_scale(
            entry.height,
            entry.width,
            self.blob.scale,
            self.blob.max_size,
        );
        Ok((map, scale))
    }

    /// The cache reference of the entry, for the results.
    pub fn cache_ref(&self) -> CacheRef {
        self.cache.clone()
    }
}
