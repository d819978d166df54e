//! An agent: the actor-critic network, its parameters and its Adam optimiser, with the
//! acting and valuing passes over a rollout's current frame stacks.

use super::config::NavConfig;
use super::policy::ActorCritic;
use super::ppo;
use super::rollout::Rollout;
use crate::backbone::RandomInit;
use crate::train::optim::{Method, Optimizer, OptimizerConfig};
use crate::train::params::{ParamKind, Params};
use anyhow::Result;
use candle_core::{Device, Tensor, D};
use rand::Rng;

/// The trained part of a navigation agent.
pub struct Agent {
    /// The registry of its variables (checkpointed).
    pub params: Params,
    /// The network.
    pub net: ActorCritic,
    /// Adam with the gradient clip.
    pub optimizer: Optimizer,
    device: Device,
}

/// One environment's decision.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    /// The action.
    pub action: u32,
    /// Its log-probability.
    pub logp: f32,
    /// The critic's value of the observation.
    pub value: f32,
}

impl Agent {
    /// A freshly initialised agent (seeded) for taps of `shape` and `actions` actions.
    pub fn new(
        cfg: &NavConfig,
        shape: (usize, usize, usize),
        actions: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let params = Params::new();
        let vb = params.var_builder(Box::new(RandomInit::new(seed)), device);
        let net = ActorCritic::new(cfg, shape, actions, vb.pp("policy"))?;
        let p = &cfg.ppo;
        let mut optimizer = Optimizer::new(OptimizerConfig {
            method: Method::Adamw {
                beta1: p.adam_betas[0],
                beta2: p.adam_betas[1],
                eps: p.adam_eps,
            },
            weight_decay: 0.0,
            decay_vectors: false,
            clip_norm: Some(p.max_grad_norm),
        });
        for (name, var, kind) in params.all() {
            if kind != ParamKind::Buffer {
                optimizer.add(&name, var, false)?;
            }
        }
        Ok(Self {
            params,
            net,
            optimizer,
            device: device.clone(),
        })
    }

    fn forward(&self, rollout: &Rollout, stacks: &[&[usize]]) -> Result<(Tensor, Tensor)> {
        let (frames, index) = rollout.gather(stacks, &self.device)?;
        self.net
            .heads(&self.net.compress(&frames)?, &index, stacks.len())
    }

    /// Decides an action for every environment's current stack: sampled from the policy, or
    /// its most probable action when `greedy`.
    pub fn act(
        &self,
        rollout: &Rollout,
        rng: &mut impl Rng,
        greedy: bool,
    ) -> Result<Vec<Decision>> {
        let stacks: Vec<&[usize]> = (0..rollout.envs()).map(|e| rollout.current(e)).collect();
        let (logits, values) = self.forward(rollout, &stacks)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
        let values = values.to_vec1::<f32>()?;
        Ok(logp
            .iter()
            .zip(values)
            .map(|(row, value)| {
                let action = if greedy {
                    argmax(row)
                } else {
                    sample(row, rng)
                };
                Decision {
                    action: action as u32,
                    logp: row[action],
                    value,
                }
            })
            .collect())
    }

    /// The critic's values of some stacks.
    pub fn values(&self, rollout: &Rollout, stacks: &[&[usize]]) -> Result<Vec<f32>> {
        Ok(self.forward(rollout, stacks)?.1.to_vec1::<f32>()?)
    }

    /// One PPO update over a finished rollout (see [`ppo::update`]).
    pub fn learn(
        &mut self,
        rollout: &Rollout,
        adv: &[f32],
        ret: &[f32],
        cfg: &NavConfig,
        rng: &mut impl Rng,
    ) -> Result<ppo::UpdateStats> {
        ppo::update(
            &self.net,
            &mut self.optimizer,
            rollout,
            adv,
            ret,
            &cfg.ppo,
            rng,
            &self.device,
        )
    }
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

/// Samples an index from log-probabilities.
fn sample(logp: &[f32], rng: &mut impl Rng) -> usize {
    let u: f32 = rng.random();
    let mut acc = 0.0;
    for (i, l) in logp.iter().enumerate() {
        acc += l.exp();
        if u < acc {
            return i;
        }
    }
    logp.len() - 1
}
