//! Training checkpoints: the model's tensors and the optimiser's moments as safetensors, and
//! a JSON state (step, seed, config digest), written into a temporary folder that is renamed
//! into place, so a run killed at any moment leaves either the previous checkpoint or the
//! new one, never half of one. Every random draw of a run derives from (seed, step, image),
//! so the step and the seed are the whole random state.

use crate::atomic::write_atomic;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The schema tag of `state.json`.
pub const STATE_SCHEMA: &str = "sslbench.train_state/1";

/// What `state.json` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// [`STATE_SCHEMA`].
    pub schema: String,
    /// Steps completed.
    pub step: usize,
    /// The run seed every draw derives from.
    pub seed: u64,
    /// Digest of the configuration fields that shape the run (all but its length and
    /// bookkeeping), so a resume with another configuration is refused.
    pub config_digest: String,
    /// Optimiser updates taken (equal to `step` unless a step was skipped).
    pub optimizer_steps: usize,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// Its folder.
    pub dir: PathBuf,
    /// The state.
    pub state: TrainState,
    /// The model's tensors by name.
    pub model: HashMap<String, Tensor>,
    /// The optimiser's moments by name.
    pub optimizer: HashMap<String, Tensor>,
}

/// The checkpoints of one run, under `<out>/checkpoints/`.
pub struct Checkpoints {
    root: PathBuf,
    keep: usize,
}

const LATEST: &str = "latest";

impl Checkpoints {
    /// The checkpoint folder of the run writing to `out`, keeping the last `keep` (at least 1).
    pub fn new(out: &Path, keep: usize) -> Self {
        Self {
            root: out.join("checkpoints"),
            keep: keep.max(1),
        }
    }

    fn dir(&self, step: usize) -> PathBuf {
        self.root.join(format!("step_{step:08}"))
    }

    /// Writes a checkpoint at `state.step` and points `latest` at it, then removes the
    /// oldest beyond `keep`.
    pub fn save(
        &self,
        state: &TrainState,
        model: &HashMap<String, Tensor>,
        optimizer: &HashMap<String, Tensor>,
    ) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let dir = self.dir(state.step);
        let tmp = self
            .root
            .join(format!(".step_{:08}.tmp{}", state.step, std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        candle_core::safetensors::save(model, tmp.join("model.safetensors"))
            .context("cannot write the model checkpoint")?;
        candle_core::safetensors::save(optimizer, tmp.join("optimizer.safetensors"))
            .context("cannot write the optimiser checkpoint")?;
        write_atomic(&tmp.join("state.json"), &serde_json::to_vec_pretty(state)?)?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::rename(&tmp, &dir)
            .with_context(|| format!("cannot move the checkpoint into {}", dir.display()))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        write_atomic(&self.root.join(LATEST), name.as_bytes())?;
        self.prune()?;
        Ok(dir)
    }

    /// Removes finished checkpoints beyond the newest `keep`, and stale temporary folders.
    fn prune(&self) -> Result<()> {
        let mut steps: Vec<PathBuf> = std::fs::read_dir(&self.root)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        steps.sort();
        let (temps, mut done): (Vec<PathBuf>, Vec<PathBuf>) = steps.into_iter().partition(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        });
        for t in temps {
            std::fs::remove_dir_all(t)?;
        }
        while done.len() > self.keep {
            std::fs::remove_dir_all(done.remove(0))?;
        }
        Ok(())
    }

    /// The latest complete checkpoint, if any: the newest `step_*` folder (each is renamed
    /// into place only once complete). `latest` names it too, but a run killed between that
    /// rename and the pointer's write leaves the pointer one checkpoint behind.
    pub fn latest(&self) -> Result<Option<Checkpoint>> {
        if !self.root.is_dir() {
            return Ok(None);
        }
        let entries = std::fs::read_dir(&self.root)
            .with_context(|| format!("cannot list {}", self.root.display()))?;
        let newest = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                let step: usize = name.strip_prefix("step_")?.parse().ok()?;
                Some((step, p))
            })
            .max_by_key(|(step, _)| *step);
        newest.map(|(_, dir)| Self::load(&dir)).transpose()
    }

    /// Reads the checkpoint in `dir`.
    pub fn load(dir: &Path) -> Result<Checkpoint> {
        let state_path = dir.join("state.json");
        let state: TrainState = serde_json::from_slice(
            &std::fs::read(&state_path)
                .with_context(|| format!("cannot read {}", state_path.display()))?,
        )
        .with_context(|| format!("{} is not a training state", state_path.display()))?;
        if state.schema != STATE_SCHEMA {
            bail!(
                "{} has schema `{}`, this build reads `{STATE_SCHEMA}`",
                state_path.display(),
                state.schema
            );
        }
        let read = |name: &str| {
            let p = dir.join(name);
            candle_core::safetensors::load(&p, &Device::Cpu)
                .with_context(|| format!("cannot read {}: the checkpoint is damaged, delete {} to resume from an older one", p.display(), dir.display()))
        };
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            state,
            model: read("model.safetensors")?,
            optimizer: read("optimizer.safetensors")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: usize) -> TrainState {
        TrainState {
            schema: STATE_SCHEMA.to_string(),
            step,
            seed: 0,
            config_digest: "d".into(),
            optimizer_steps: step,
        }
    }

    #[test]
    fn the_newest_folder_wins_over_a_pointer_left_behind_by_a_kill() {
        let dir = tempfile::tempdir().unwrap();
        let cks = Checkpoints::new(dir.path(), 3);
        assert!(cks.latest().unwrap().is_none(), "no folder yet");
        let t = HashMap::from([("w".to_string(), Tensor::new(&[1f32], &Device::Cpu).unwrap())]);
        for step in [10, 20] {
            cks.save(&state(step), &t, &t).unwrap();
        }
        assert_eq!(cks.latest().unwrap().unwrap().state.step, 20);
        // Killed between the folder's rename and the pointer's write.
        std::fs::write(dir.path().join("checkpoints").join(LATEST), "step_00000010").unwrap();
        assert_eq!(cks.latest().unwrap().unwrap().state.step, 20);
    }
}
