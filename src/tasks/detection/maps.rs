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
use crate::backbone::{BackboneConfig, Tap};
use crate::features::dense::{storage_dtype, TapMaps, TapMapsRequest};
use crate::features::FeatureStore;
use crate::report::CacheRef;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

/// The cached maps of one split.
pub struct FrozenMaps {
    maps: TapMaps,
    blob: BlobConfig,
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
        storage_dtype(req.storage)?;
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
        let request = TapMapsRequest {
            tap: req.tap,
            storage: req.storage,
            split: req.split,
            transform: serde_json::json!({
                "blob": format!("{:?}", req.blob),
                "trunk_input": format!("{:?}", req.trunk_input),
            }),
            dataset: hex::encode(manifest.finalize()),
        };
        let maps = TapMaps::get(store, backbone_cfg, device, request, names, |i| {
            let e = jobs[i];
            let image = load_image(&e.image, e.width, e.height, e.flipped, req.blob)?;
            trunk_tensor(&image, req.trunk_input)
        })?;
        Ok(Self {
            maps,
            blob: req.blob.clone(),
        })
    }

    /// The map (C x H x W, f32) of `entry` and the image's scale factor.
    pub fn read(&self, entry: &RoidbEntry) -> Result<(Tensor, f64)> {
        let map = self
            .maps
            .read(&item_name(&entry.id, self.blob.scale, entry.flipped))?;
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
        crate::tasks::maps_ref(&self.maps)
    }
}
