//! The frozen trunk's res4 maps (output stride 8, dilated) of every (frame, short side) a run
//! reads, computed once into a dense entry of the shared feature cache: a second run, another
//! seed or another decoder setting reads them back and runs no trunk.

use super::config::InputConfig;
use super::dataset::{trunk_input, NyuFrames, Placement};
use crate::backbone::{BackboneConfig, Tap};
use crate::features::dense::{storage_dtype, TapMaps, TapMapsRequest};
use crate::features::FeatureStore;
use crate::report::CacheRef;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

/// The item name of frame `index` at short side `side` (0: the test size).
pub fn item_name(index: usize, side: usize) -> String {
    if side == 0 {
        format!("{index:06}@test")
    } else {
        format!("{index:06}@{side}")
    }
}

/// The cached maps of one split.
pub struct FrozenMaps(TapMaps);

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
        storage_dtype(storage)?;
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
        let request = TapMapsRequest {
            tap,
            storage,
            split,
            transform: serde_json::json!({
                "normals_input": format!("{input:?}"),
            }),
            dataset: hex::encode(manifest.finalize()),
        };
        let maps = TapMaps::get(store, backbone_cfg, device, request, names, |i| {
            let (f, s) = jobs[i];
            let frame = data.frame(f)?;
            let p = if s == 0 {
                Placement::test(h, w, input)
            } else {
                Placement::train(h, w, s, input)
            };
            trunk_input(&frame.rgb, p.size, p.input, input)
        })?;
        Ok(Self(maps))
    }

    /// The map (C x h x w, f32, on the CPU) of frame `index` at short side `side`.
    pub fn read(&self, index: usize, side: usize) -> Result<Tensor> {
        self.0.read(&item_name(index, side))
    }

    /// The cache reference of the entry, for the results.
    pub fn cache_ref(&self) -> CacheRef {
        crate::tasks::maps_ref(&self.0)
    }
}
