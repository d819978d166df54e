//! The one resume guard of every training loop (pretext training, navigation agents, and the
//! dense tasks to come): a run folder refuses to be trained again without `--resume`,
//! refuses a resume under another configuration, reloads the parameters and the optimiser's
//! moments of its latest checkpoint, and saves new ones.

use super::checkpoint::{Checkpoints, TrainState, STATE_SCHEMA};
use super::optim::Optimizer;
use super::params::Params;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A digest of the parts of a configuration that shape a run's trajectory (sha256 over the
/// parts in order, 16 hex digits), stored in each checkpoint so that only the run that
/// wrote a checkpoint resumes it.
pub fn config_digest<P: AsRef<[u8]>>(parts: impl IntoIterator<Item = P>) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_ref());
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// How a run folder is opened.
pub struct RunSpec<'a> {
    /// What trains there, for messages ("pretext", "navigation").
    pub what: &'a str,
    /// The run seed, recorded in each checkpoint and checked on resume.
    pub seed: u64,
    /// [`config_digest`] of the run's configuration.
    pub digest: String,
    /// Checkpoints kept.
    pub keep: usize,
    /// Continue from the latest checkpoint.
    pub resume: bool,
    /// The run's log file: its presence, like a checkpoint's, marks the folder as used.
    pub log: &'a str,
}

/// A training run's folder with its checkpoints.
pub struct RunDir {
    checkpoints: Checkpoints,
    seed: u64,
    digest: String,
}

impl RunDir {
    /// Opens the run in `dir`. Without `resume`, a folder that holds a run (a checkpoint or
    /// the log) is refused; with it, the latest checkpoint's parameters and optimiser moments
    /// are loaded into `params` and `optim`. Returns the folder and the step to start at.
    pub fn open(
        dir: &Path,
        spec: RunSpec,
        params: &Params,
        optim: &mut Optimizer,
    ) -> Result<(Self, usize)> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let checkpoints = Checkpoints::new(dir, spec.keep);
        let latest = checkpoints.latest()?;
        let run = Self {
            checkpoints,
            seed: spec.seed,
            digest: spec.digest,
        };
        if !spec.resume {
            if let Some(ck) = &latest {
                bail!(
                    "{} already holds a {} run (checkpoint at step {}): pass --resume to continue \
                     it, or choose another --out",
                    dir.display(),
                    spec.what,
                    ck.state.step
                );
            }
            if dir.join(spec.log).exists() {
                bail!(
                    "{} already holds a {} run ({}): pass --resume to continue it, or choose \
                     another --out",
                    dir.display(),
                    spec.what,
                    spec.log
                );
            }
            return Ok((run, 0));
        }
        let Some(ck) = latest else {
            return Ok((run, 0));
        };
        if ck.state.config_digest != run.digest || ck.state.seed != run.seed {
            bail!(
                "{} was written under another configuration (digest {}, seed {}; here {}, seed \
                 {}): resume with the same config, backbone and tap, or choose another --out",
                ck.dir.display(),
                ck.state.config_digest,
                ck.state.seed,
                run.digest,
                run.seed
            );
        }
        params.load(&ck.model, &ck.dir.join("model.safetensors"))?;
        optim.load_state(&ck.optimizer, ck.state.optimizer_steps)?;
        eprintln!("resuming {} from step {}", dir.display(), ck.state.step);
        Ok((run, ck.state.step))
    }

    /// Saves a checkpoint after `step` steps.
    pub fn save(&self, step: usize, params: &Params, optim: &Optimizer) -> Result<()> {
        let state = TrainState {
            schema: STATE_SCHEMA.to_string(),
            step,
            seed: self.seed,
            config_digest: self.digest.clone(),
            optimizer_steps: optim.steps(),
        };
        self.checkpoints
            .save(&state, &params.tensors()?, &optim.state())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::optim::{Method, OptimizerConfig};
    use candle_core::{Device, Tensor};
    use std::collections::HashMap;

    /// A one-tensor model `w` starting at `value`, with its SGD optimiser.
    fn model(value: f32) -> (Params, Optimizer) {
        let params = Params::new();
        let init: HashMap<String, Tensor> = [(
            "w".to_string(),
            Tensor::full(value, (2, 3), &Device::Cpu).unwrap(),
        )]
        .into();
        let vb = params.var_builder(Box::new(init), &Device::Cpu);
        vb.get((2, 3), "w").unwrap();
        let mut optim = Optimizer::new(OptimizerConfig {
            method: Method::Sgd {
                momentum: 0.9,
                nesterov: false,
            },
            weight_decay: 0.0,
            decay_vectors: false,
            clip_norm: None,
        });
        for (name, var, _) in params.all() {
            optim.add(&name, var, true).unwrap();
        }
        (params, optim)
    }

    fn spec(digest: &str, resume: bool) -> RunSpec<'static> {
        RunSpec {
            what: "test",
            seed: 3,
            digest: digest.into(),
            keep: 2,
            resume,
            log: "log.csv",
        }
    }

    fn w(params: &Params) -> Vec<f32> {
        params.tensors().unwrap()["w"]
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    /// The message of an open that must be refused.
    fn refusal(dir: &Path, spec: RunSpec, params: &Params, optim: &mut Optimizer) -> String {
        match RunDir::open(dir, spec, params, optim) {
            Ok(_) => panic!("{} was opened", dir.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_guard_refuses_a_used_folder_and_another_config_and_resumes_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let (params, mut optim) = model(1.5);
        let (run, start) =
            RunDir::open(dir.path(), spec("abc", false), &params, &mut optim).unwrap();
        assert_eq!(start, 0);
        run.save(5, &params, &optim).unwrap();

        let (fresh, mut fresh_optim) = model(0.0);
        let err = refusal(dir.path(), spec("abc", false), &fresh, &mut fresh_optim);
        assert!(err.contains("--resume") && err.contains("step 5"), "{err}");
        let err = refusal(dir.path(), spec("xyz", true), &fresh, &mut fresh_optim);
        assert!(err.contains("another configuration"), "{err}");
        assert_eq!(w(&fresh), vec![0.0; 6], "a refused resume loads nothing");

        let (_, start) =
            RunDir::open(dir.path(), spec("abc", true), &fresh, &mut fresh_optim).unwrap();
        assert_eq!(start, 5);
        assert_eq!(w(&fresh), vec![1.5; 6]);
    }

    #[test]
    fn a_log_without_a_checkpoint_marks_the_folder_as_used() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("log.csv"), "step\n").unwrap();
        let (params, mut optim) = model(0.0);
        let err = refusal(dir.path(), spec("abc", false), &params, &mut optim);
        assert!(err.contains("log.csv") && err.contains("--resume"), "{err}");
        let (_, start) = RunDir::open(dir.path(), spec("abc", true), &params, &mut optim).unwrap();
        assert_eq!(start, 0);
    }

    #[test]
    fn the_digest_is_the_sha256_of_the_parts_in_order() {
        assert_eq!(config_digest(["ab", "c"]), config_digest(["abc"]));
        assert_ne!(config_digest(["ab", "c"]), config_digest(["c", "ab"]));
        // sha256("abc"), first 16 hex digits.
        assert_eq!(config_digest(["abc"]), "ba7816bf8f01cfea");
    }
}
