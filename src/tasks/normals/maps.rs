//! The frozen trunk's res4 maps (output stride 8, dilated) of every (frame, short side) a run
//! reads, computed once into a dense entry of the shared feature cache: a second run, another
//! seed or another decoder setting reads them back and runs no trunk.

use super::config::InputConfig;
use super::dataset::{trunk_input, NyuFrames, Placement};
use crate::backbone::{Backbone, BackboneConfig, Tap};
use crate::features::dense::{DenseDtype, DenseEntry};
use crate::features::key::{CacheKey, FORMAT_VERSION};
use crate::features::FeatureStore;
use crate::report::CacheRef;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The item name of frame `index` at short side `side` (0: the test size).
pub fn item_name(index: usize, side: usize) -> String {
    if side == 0 {
        format!("{index:06}@test")
    } else {
        format!("{index:06}@{side}")
    }
}

/// The cached maps of one split.
pub struct FrozenMaps {
    entry: DenseEntry,
    index: HashMap<String, usize>,
    cache: CacheRef,
}

impl FrozenMaps {
    /// Opens (computing what the cache lacks) the maps of `frames` at each of `sides`
    /// (training short sides, or `[0]` for the test size).
    #[allow(clippy::too_many_arguments)]
    pub fn get(
        store: &FeatureStore,
        backbone_cfg: &BackboneConfig,
        device: &Device,
        data: &NyuFrames,
        frames: &[usize],
        sides: &[usize],
        input: &InputConfig,
        tap: Tap,
        storage: &str,
        split: &str,
    ) -> Result<Self> {
        let dtype = match storage {
            "f16" => DenseDtype::F16,
            "f32" => DenseDtype::F32,
            other => bail!("cache.storage = \"{other}\": use \"f16\" or \"f32\""),
        };
        let (h, w) = data.size();
        let jobs: Vec<(usize, usize)> = frames
            .iter()
            .flat_map(|&f| sides.iter().map(move |&s| (f, s)))
            .collect();
        let names: Vec<String> = jobs.iter().map(|&(f, s)| item_name(f, s)).collect();
        let labeled = data.labeled_path();
        let size = std::fs::metadata(labeled)
            .with_context(|| format!("{} is missing", labeled.display()))?
            .len();
        let mut manifest = Sha256::new();
        manifest.update(format!("{}\t{size}\t{h}x{w}\n", labeled.display()).as_bytes());
        for n in &names {
            manifest.update(format!("{n}\n").as_bytes());
        }
        let key = CacheKey {
            format_version: FORMAT_VERSION,
            weights: backbone_cfg.weights_digest()?,
            arch: backbone_cfg.arch_id()?,
            tap: tap.name().to_string(),
            pooling: dtype.pooling(),
            transform: serde_json::to_string(&serde_json::json!({
                "normals_input": format!("{input:?}"),
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
                        let (f, s) = jobs[i];
                        let frame = data.frame(f)?;
                        let p = if s == 0 {
                            Placement::test(h, w, input)
                        } else {
                            Placement::train(h, w, s, input)
                        };
                        let x = trunk_input(&frame.rgb, p.size, p.input, input)?;
                        let map = trunk
                            .forward_taps(&x.to_device(device)?, &[tap])?
                            .remove(0)
                            .squeeze(0)?
                            .to_device(&Device::Cpu)?;
                        let (c, mh, mw) = map.dims3()?;
                        Ok((map.flatten_all()?.to_vec1::<f32>()?, [c, mh, mw]))
                    })
                    .collect()
            },
            true,
        )?;
        eprintln!(
            "{split}: {} frozen {} maps ({status}) in {}",
            names.len(),
            tap.name(),
            store.entry_path(&key).display()
        );
        let cache = CacheRef {
            tap: tap.name().to_string(),
            spec: format!("{split} maps"),
            digest: key.digest(),
            status: status.to_string(),
        };
        let index = names.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        Ok(Self {
            entry,
            index,
            cache,
        })
    }

    /// The map (C x h x w, f32, on the CPU) of frame `index` at short side `side`.
    pub fn read(&self, index: usize, side: usize) -> Result<Tensor> {
        let name = item_name(index, side);
        let &i = self
            .index
            .get(&name)
            .with_context(|| format!("no cached map for {name}"))?;
        Ok(self.entry.tensor(i, &Device::Cpu)?)
    }

    /// The cache reference of the entry, for the results.
    pub fn cache_ref(&self) -> CacheRef {
        self.cache.clone()
    }
}
