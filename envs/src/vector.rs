//! N environments stepped in parallel (gym's `VectorEnv` with auto-reset).
//!
//! Every episode's seed derives from (base seed, environment index, episode number), so a run
//! is reproducible whatever the thread timing. When an episode ends, the environment is reset
//! at once and the step carries the new episode's first observation, the finished episode's
//! statistics and, for a truncated episode, its last observation (to bootstrap the value).
//! When a simulator dies mid-episode, that episode is discarded (never counted, never
//! continued): the environment is restarted and the step is marked `aborted`.

use crate::rng::{mix, GOLDEN};
use rayon::prelude::*;

use crate::{Env, EnvError, Info, Observation, Spaces};

/// The statistics of a finished episode.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeEnd {
    /// The sum of rewards.
    pub total: f64,
    /// The number of steps.
    pub length: usize,
    /// Whether the target was reached.
    pub success: bool,
    /// The seed the episode was reset with.
    pub seed: u64,
}

/// One environment's part of a vectorised step.
#[derive(Debug, Clone)]
pub struct VecStep {
    /// The next observation: after an episode end, the new episode's first one.
    pub observation: Observation,
    /// The reward for the action.
    pub reward: f64,
    /// The episode ended in a terminal state.
    pub terminated: bool,
    /// The episode was cut by the time limit (or aborted, see `aborted`).
    pub truncated: bool,
    /// Side information of the step.
    pub info: Info,
    /// The finished episode, when this step ended one.
    pub end: Option<EpisodeEnd>,
    /// The last observation of a truncated episode (its value bootstraps the return).
    pub final_observation: Option<Observation>,
    /// The simulator died during this step and was restarted; the message says why. The
    /// episode is dropped: treat the step as a boundary with no bootstrap.
    pub aborted: Option<String>,
}

/// N environments with the same spaces, stepped in parallel.
pub struct VecEnv {
    envs: Vec<Box<dyn Env>>,
    spaces: Spaces,
    seed: u64,
    episodes: Vec<u64>,
    current: Vec<Episode>,
}

#[derive(Debug, Clone, Default)]
struct Episode {
    seed: u64,
    total: f64,
    length: usize,
}

/// The seed of episode `episode` of environment `env` under a run's base seed (SplitMix64 of
/// the three, so neighbouring seeds give unrelated episodes).
pub fn episode_seed(base: u64, env: usize, episode: u64) -> u64 {
    let mut z = base;
    for v in [env as u64, episode] {
        z = mix(z ^ mix(v.wrapping_add(GOLDEN)));
    }
    z
}

impl VecEnv {
    /// Wraps environments that declare the same spaces; `seed` seeds every episode.
    pub fn new(envs: Vec<Box<dyn Env>>, seed: u64) -> Result<Self, EnvError> {
        let first = envs.first().ok_or_else(|| {
            EnvError::Config("a vectorised environment needs at least one".into())
        })?;
        let spaces = first.spaces().clone();
        for (i, env) in envs.iter().enumerate() {
            if env.spaces() != &spaces {
                return Err(EnvError::Config(format!(
                    "environment {i} ({}) declares other spaces than environment 0 ({})",
                    env.describe(),
                    first.describe()
                )));
            }
        }
        let n = envs.len();
        Ok(Self {
            envs,
            spaces,
            seed,
            episodes: vec![0; n],
            current: vec![Episode::default(); n],
        })
    }

    /// The number of environments.
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    /// Always false: a `VecEnv` holds at least one environment.
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// The shared spaces.
    pub fn spaces(&self) -> &Spaces {
        &self.spaces
    }

    /// The environments' descriptions, for logs.
    pub fn describe(&self) -> String {
        self.envs.first().map(|e| e.describe()).unwrap_or_default()
            + &format!(" x{}", self.envs.len())
    }

    /// Resets every environment into its next seeded episode.
    pub fn reset(&mut self) -> Result<Vec<Observation>, EnvError> {
        let seeds: Vec<u64> = (0..self.len()).map(|i| self.next_seed(i)).collect();
        let obs: Result<Vec<_>, _> = self
            .envs
            .par_iter_mut()
            .zip(seeds.par_iter())
            .map(|(env, &seed)| env.reset(Some(seed)))
            .collect();
        for (cur, seed) in self.current.iter_mut().zip(seeds) {
            *cur = Episode {
                seed,
                ..Episode::default()
            };
        }
        obs
    }

    /// Steps every environment with its action, resetting those whose episode ends.
    pub fn step(&mut self, actions: &[usize]) -> Result<Vec<VecStep>, EnvError> {
        if actions.len() != self.len() {
            return Err(EnvError::Config(format!(
                "{} actions for {} environments",
                actions.len(),
                self.len()
            )));
        }
        let seeds: Vec<u64> = (0..self.len()).map(|i| self.peek_seed(i)).collect();
        let results: Vec<Result<(VecStep, bool), EnvError>> = self
            .envs
            .par_iter_mut()
            .zip(actions.par_iter().zip(seeds.par_iter()))
            .map(|(env, (&action, &seed))| step_one(env.as_mut(), action, seed))
            .collect();
        let mut steps = Vec::with_capacity(results.len());
        for (i, result) in results.into_iter().enumerate() {
            let (mut step, reset) = result?;
            let cur = &mut self.current[i];
            if step.aborted.is_none() {
                cur.total += step.reward;
                cur.length += 1;
            }
            if (step.terminated || step.truncated) && step.aborted.is_none() {
                step.end = Some(EpisodeEnd {
                    total: cur.total,
                    length: cur.length,
                    success: step.info.success,
                    seed: cur.seed,
                });
            }
            if reset {
                let seed = self.next_seed(i);
                self.current[i] = Episode {
                    seed,
                    ..Episode::default()
                };
            }
            steps.push(step);
        }
        Ok(steps)
    }

    fn peek_seed(&self, i: usize) -> u64 {
        episode_seed(self.seed, i, self.episodes[i])
    }

    fn next_seed(&mut self, i: usize) -> u64 {
        let seed = self.peek_seed(i);
        self.episodes[i] += 1;
        seed
    }
}

/// Steps one environment; on an episode end or a dead simulator, resets it with `seed`.
/// Returns the step and whether a reset happened (so the caller advances the seed).
fn step_one(env: &mut dyn Env, action: usize, seed: u64) -> Result<(VecStep, bool), EnvError> {
    match env.step(action) {
        Ok(t) => {
            let done = t.terminated || t.truncated;
            let (observation, final_observation) = if done {
                let first = env.reset(Some(seed))?;
                (first, t.truncated.then_some(t.observation))
            } else {
                (t.observation, None)
            };
            let step = VecStep {
                observation,
                reward: t.reward,
                terminated: t.terminated,
                truncated: t.truncated,
                info: t.info,
                end: None,
                final_observation,
                aborted: None,
            };
            Ok((step, done))
        }
        Err(e) if e.is_fatal() => {
            let why = e.to_string();
            let observation = env.reset(Some(seed))?;
            let step = VecStep {
                observation,
                reward: 0.0,
                terminated: false,
                truncated: true,
                info: Info::default(),
                end: None,
                final_observation: None,
                aborted: Some(why),
            };
            Ok((step, true))
        }
        Err(e) => Err(e),
    }
}
