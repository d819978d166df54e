//! Held-out evaluation: an agent (or the uniform random policy, the baseline) on the same
//! held-out episodes, whatever the tap or seed.

use super::agent::Agent;
use super::config::NavConfig;
use super::envs::{self, Phase};
use super::perception::Perception;
use super::rollout::Rollout;
use super::train;
use crate::report::Spread;
use crate::seed::stream as seeded;
use anyhow::Result;
use rand::Rng;
use serde::Serialize;
use sslbench_envs::{EpisodeEnd, Frame};

/// The base seed of every held-out episode (shared by all agents and the random policy).
pub const EVAL_SEED: u64 = 0x0E7A_1000;

/// Held-out results of one policy.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    /// `agent` or `random`.
    pub policy: String,
    /// Episodes run.
    pub episodes: usize,
    /// Mean return.
    pub return_mean: f64,
    /// Population std of the returns.
    pub return_std: f64,
    /// Success rate in percent.
    pub success_rate: f64,
    /// Mean episode length in steps.
    pub length_mean: f64,
}

impl Evaluation {
    fn of(policy: &str, ends: &[EpisodeEnd]) -> Self {
        let returns: Vec<f64> = ends.iter().map(|e| e.total).collect();
        let (return_mean, spread) = Spread::of(&returns).unwrap_or((
            f64::NAN,
            Spread {
                std: f64::NAN,
                min: 0.0,
                max: 0.0,
                n: 0,
            },
        ));
        let n = ends.len().max(1) as f64;
        Self {
            policy: policy.to_string(),
            episodes: ends.len(),
            return_mean,
            return_std: spread.std,
            success_rate: 100.0 * ends.iter().filter(|e| e.success).count() as f64 / n,
            length_mean: ends.iter().map(|e| e.length as f64).sum::<f64>() / n,
        }
    }
}

/// Runs `cfg.eval.episodes` held-out episodes with `agent` (trunk features through
/// `perception`), or with uniformly random actions when `agent` is `None`.
pub fn evaluate(
    cfg: &NavConfig,
    perception: &Perception<'_>,
    agent: Option<&Agent>,
) -> Result<Evaluation> {
    let mut venv = envs::make(&cfg.env, Phase::Heldout, EVAL_SEED)?;
    let n = venv.len();
    let per_env = cfg.eval.episodes.div_ceil(n);
    let actions = venv.spaces().action.n;
    let mut rng = seeded(EVAL_SEED, &[agent.is_some() as u64]);
    let mut rollout = Rollout::new(n, cfg.compress.stack);
    let first = venv.reset()?;
    if agent.is_some() {
        train::start(perception, &mut rollout, &first)?;
    }
    let mut ends: Vec<Vec<EpisodeEnd>> = vec![Vec::new(); n];
    while ends.iter().any(|e| e.len() < per_env) {
        let chosen: Vec<usize> = match agent {
            Some(a) => a
                .act(&rollout, &mut rng, cfg.eval.greedy)?
                .iter()
                .map(|d| d.action as usize)
                .collect(),
            None => (0..n).map(|_| rng.random_range(0..actions)).collect(),
        };
        let steps = venv.step(&chosen)?;
        if agent.is_some() {
            rollout.carry_over();
            let frames: Vec<&Frame> = steps.iter().map(|s| &s.observation.rgb).collect();
            let ids = train::observe(perception, &mut rollout, &frames)?;
            for (e, s) in steps.iter().enumerate() {
                rollout.advance(e, ids[e], s.terminated || s.truncated);
            }
        }
        for (e, s) in steps.into_iter().enumerate() {
            if let Some(end) = s.end {
                if ends[e].len() < per_env {
                    ends[e].push(end);
                }
            }
        }
    }
    let all: Vec<EpisodeEnd> = ends.into_iter().flatten().take(cfg.eval.episodes).collect();
    Ok(Evaluation::of(
        if agent.is_some() { "agent" } else { "random" },
        &all,
    ))
}
