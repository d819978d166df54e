//! One PPO rollout: the frozen tap features of every frame seen, and per sample (step t,
//! environment e, at index `t * envs + e`) the stack of frame ids it was acting on, the
//! action, its log-probability, the value, the reward and the episode boundary.
//!
//! Frame stacks are kept as ids, not copies: the compress conv trains, so each update
//! recomputes the compressed maps from the stored tap features. An episode's first
//! observation fills its whole stack (gym's `FrameStack` convention).

use anyhow::Result;
use candle_core::{Device, Tensor};
use std::collections::HashMap;

/// One step of one environment.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Frame ids of the observation acted on, oldest first.
    pub stack: Vec<usize>,
    /// The action taken.
    pub action: u32,
    /// Its log-probability under the acting policy.
    pub logp: f32,
    /// The critic's value of the observation.
    pub value: f32,
    /// The reward received.
    pub reward: f32,
    /// The episode ended here (terminated, truncated or aborted): no value flows back
    /// across this step from the next observation.
    pub boundary: bool,
    /// For a truncated episode: the value of its last observation, discounted into the
    /// return (the state was not terminal). Zero otherwise.
    pub bootstrap: f32,
}

/// The frames and samples of one rollout, and each environment's current stack.
pub struct Rollout {
    frames: Vec<Tensor>,
    /// The samples, `t * envs + e`.
    pub samples: Vec<Sample>,
    envs: usize,
    stack: usize,
    current: Vec<Vec<usize>>,
}

impl Rollout {
    /// An empty rollout for `envs` environments and stacks of `stack` frames.
    pub fn new(envs: usize, stack: usize) -> Self {
        Self {
            frames: Vec::new(),
            samples: Vec::new(),
            envs,
            stack,
            current: vec![Vec::new(); envs],
        }
    }

    /// Number of environments.
    pub fn envs(&self) -> usize {
        self.envs
    }

    /// Stores a batch of tap features (N, C, h, w) as N frames; returns their ids.
    pub fn push_frames(&mut self, features: &Tensor) -> Result<Vec<usize>> {
        let n = features.dim(0)?;
        let first = self.frames.len();
        for i in 0..n {
            self.frames.push(features.get(i)?);
        }
        Ok((first..first + n).collect())
    }

    /// Makes `frame` environment `env`'s newest observation; a new episode fills the stack.
    pub fn advance(&mut self, env: usize, frame: usize, new_episode: bool) {
        self.current[env] = self.stacked(env, frame, new_episode);
    }

    /// Environment `env`'s stack with `frame` appended (the oldest dropped), or filled with
    /// `frame` when it starts an episode (or nothing came before).
    pub fn stacked(&self, env: usize, frame: usize, new_episode: bool) -> Vec<usize> {
        let cur = &self.current[env];
        if new_episode || cur.is_empty() {
            return vec![frame; self.stack];
        }
        cur[1..].iter().copied().chain([frame]).collect()
    }

    /// The stack environment `env` acts on now.
    pub fn current(&self, env: usize) -> &[usize] {
        &self.current[env]
    }

    /// Starts the next rollout: drops the samples and every frame no current stack uses.
    pub fn carry_over(&mut self) {
        let mut remap = HashMap::new();
        let mut kept = Vec::new();
        for stack in &mut self.current {
            for id in stack.iter_mut() {
                let new = *remap.entry(*id).or_insert_with(|| {
                    kept.push(self.frames[*id].clone());
                    kept.len() - 1
                });
                *id = new;
            }
        }
        self.frames = kept;
        self.samples.clear();
    }

    /// The distinct frames of `stacks` as one (K, C, h, w) tensor on `device`, and the
    /// stacks as u32 indices into it (B * stack values, row by row).
    pub fn gather(&self, stacks: &[&[usize]], device: &Device) -> Result<(Tensor, Tensor)> {
        let mut local = HashMap::new();
        let mut picked = Vec::new();
        let mut index = Vec::with_capacity(stacks.len() * self.stack);
        for stack in stacks {
            for &id in *stack {
                let l = *local.entry(id).or_insert_with(|| {
                    picked.push(self.frames[id].clone());
                    picked.len() - 1
                });
                index.push(l as u32);
            }
        }
        let frames = Tensor::stack(&picked, 0)?;
        let n = index.len();
        Ok((frames, Tensor::from_vec(index, n, device)?))
    }
}
