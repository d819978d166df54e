//! Proximal policy optimisation (Schulman et al. 2017): generalised advantage estimation
//! (Schulman et al. 2016), the clipped surrogate, the (optionally clipped) value loss, the
//! entropy bonus, Adam with a global gradient-norm clip.

use super::config::PpoConfig;
use super::policy::ActorCritic;
use super::rollout::{Rollout, Sample};
use crate::train::optim::Optimizer;
use anyhow::{bail, Result};
use candle_core::{Device, Tensor, D};
use rand::seq::SliceRandom;
use rand::Rng;

/// GAE advantages and returns for samples laid out `t * envs + e`; `last_values[e]` is the
/// value of environment e's observation after the rollout.
pub fn gae(
    samples: &[Sample],
    envs: usize,
    last_values: &[f32],
    gamma: f64,
    lambda: f64,
) -> (Vec<f32>, Vec<f32>) {
    let (gamma, lambda) = (gamma as f32, lambda as f32);
    let steps = samples.len() / envs;
    let mut adv = vec![0f32; samples.len()];
    for e in 0..envs {
        let mut next_value = last_values[e];
        let mut running = 0f32;
        for t in (0..steps).rev() {
            let s = &samples[t * envs + e];
            let carry = if s.boundary { 0.0 } else { 1.0 };
            let delta = s.reward + gamma * (next_value * carry + s.bootstrap) - s.value;
            running = delta + gamma * lambda * carry * running;
            adv[t * envs + e] = running;
            next_value = s.value;
        }
    }
    let returns = adv.iter().zip(samples).map(|(a, s)| a + s.value).collect();
    (adv, returns)
}

/// Means over one update's minibatches.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct UpdateStats {
    /// The clipped surrogate loss.
    pub policy_loss: f64,
    /// The value loss (before its coefficient).
    pub value_loss: f64,
    /// The policy's entropy (nats).
    pub entropy: f64,
    /// Mean (old log-prob - new log-prob): an estimate of the KL moved.
    pub approx_kl: f64,
    /// Fraction of samples whose ratio left the clip range.
    pub clip_fraction: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
}

/// Log-probabilities of `actions` and the entropy per row, from logits (B, A).
pub fn log_probs(logits: &Tensor, actions: &Tensor) -> Result<(Tensor, Tensor)> {
    let logp_all = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let logp = logp_all.gather(&actions.unsqueeze(1)?, 1)?.squeeze(1)?;
    let entropy = (logp_all.exp()? * &logp_all)?.sum(D::Minus1)?.neg()?;
    Ok((logp, entropy))
}

/// `epochs` passes of `minibatches` shuffled minibatches over the rollout.
pub fn update(
    net: &ActorCritic,
    opt: &mut Optimizer,
    rollout: &Rollout,
    advantages: &[f32],
    returns: &[f32],
    cfg: &PpoConfig,
    rng: &mut impl Rng,
    device: &Device,
) -> Result<UpdateStats> {
    let n = rollout.samples.len();
    let mut adv = advantages.to_vec();
    if cfg.normalize_advantages && n > 1 {
        let mean = adv.iter().sum::<f32>() / n as f32;
        let var = adv.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / (n - 1) as f32;
        let std = var.sqrt() + 1e-5;
        adv.iter_mut().for_each(|a| *a = (*a - mean) / std);
    }
    let per = n / cfg.minibatches;
    let mut order: Vec<usize> = (0..n).collect();
    let mut sums = UpdateStats::default();
    let mut count = 0usize;
    for _ in 0..cfg.epochs {
        order.shuffle(rng);
        for mb in order.chunks(per).take(cfg.minibatches) {
            let stats = minibatch(net, opt, rollout, mb, &adv, returns, cfg, device)?;
            sums.policy_loss += stats.policy_loss;
            sums.value_loss += stats.value_loss;
            sums.entropy += stats.entropy;
            sums.approx_kl += stats.approx_kl;
            sums.clip_fraction += stats.clip_fraction;
            sums.grad_norm += stats.grad_norm;
            count += 1;
        }
    }
    let k = count.max(1) as f64;
    Ok(UpdateStats {
        policy_loss: sums.policy_loss / k,
        value_loss: sums.value_loss / k,
        entropy: sums.entropy / k,
        approx_kl: sums.approx_kl / k,
        clip_fraction: sums.clip_fraction / k,
        grad_norm: sums.grad_norm / k,
    })
}

#[allow(clippy::too_many_arguments)]
fn minibatch(
    net: &ActorCritic,
    opt: &mut Optimizer,
    rollout: &Rollout,
    picks: &[usize],
    adv: &[f32],
    returns: &[f32],
    cfg: &PpoConfig,
    device: &Device,
) -> Result<UpdateStats> {
    let b = picks.len();
    let col = |f: &dyn Fn(usize) -> f32| {
        Tensor::from_vec(picks.iter().map(|&i| f(i)).collect::<Vec<_>>(), b, device)
    };
    let samples = &rollout.samples;
    let actions = Tensor::from_vec(
        picks.iter().map(|&i| samples[i].action).collect::<Vec<_>>(),
        b,
        device,
    )?;
    let old_logp = col(&|i| samples[i].logp)?;
    let old_value = col(&|i| samples[i].value)?;
    let adv_t = col(&|i| adv[i])?;
    let ret = col(&|i| returns[i])?;
    let stacks: Vec<&[usize]> = picks.iter().map(|&i| samples[i].stack.as_slice()).collect();
    let (frames, index) = rollout.gather(&stacks, device)?;
    let (logits, values) = net.heads(&net.compress(&frames)?, &index, b)?;
    let (logp, entropy) = log_probs(&logits, &actions)?;

    let ratio = (&logp - &old_logp)?.exp()?;
    let surr1 = (&ratio * &adv_t)?;
    let surr2 = (ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip)? * &adv_t)?;
    let policy_loss = surr1.minimum(&surr2)?.mean_all()?.neg()?;
    let err = (&values - &ret)?.sqr()?;
    let value_loss = if cfg.clip_value {
        let clipped = (&old_value + (&values - &old_value)?.clamp(-cfg.clip, cfg.clip)?)?;
        err.maximum(&(clipped - &ret)?.sqr()?)?
    } else {
        err
    };
    let value_loss = (value_loss.mean_all()? * 0.5)?;
    let entropy = entropy.mean_all()?;
    let loss =
        ((&policy_loss + (&value_loss * cfg.value_coef)?)? - (&entropy * cfg.entropy_coef)?)?;
    let loss_value = loss.to_scalar::<f32>()?;
    if !loss_value.is_finite() {
        bail!("the PPO loss became {loss_value}: lower ppo.lr, or check the rewards");
    }
    let grads = loss.backward()?;
    let grad_norm = opt.step(&grads, cfg.lr)?.unwrap_or(f64::NAN);

    let log_ratio: Vec<f32> = (&old_logp - &logp)?.to_vec1()?;
    let ratios: Vec<f32> = ratio.to_vec1()?;
    let clipped = ratios
        .iter()
        .filter(|r| (**r - 1.0).abs() as f64 > cfg.clip)
        .count();
    Ok(UpdateStats {
        policy_loss: policy_loss.to_scalar::<f32>()? as f64,
        value_loss: value_loss.to_scalar::<f32>()? as f64,
        entropy: entropy.to_scalar::<f32>()? as f64,
        approx_kl: log_ratio.iter().map(|v| *v as f64).sum::<f64>() / b as f64,
        clip_fraction: clipped as f64 / b as f64,
        grad_norm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(reward: f32, value: f32, boundary: bool, bootstrap: f32) -> Sample {
        Sample {
            stack: vec![],
            action: 0,
            logp: 0.0,
            value,
            reward,
            boundary,
            bootstrap,
        }
    }

    #[test]
    fn gae_matches_the_recursion_by_hand() {
        // One environment, three steps, the episode ends (terminal) after step 1.
        let s = [
            sample(1.0, 0.5, false, 0.0),
            sample(2.0, 0.25, true, 0.0),
            sample(0.5, 1.0, false, 0.0),
        ];
        let (g, l) = (0.9f32, 0.8f32);
        let (adv, ret) = gae(&s, 1, &[2.0], g as f64, l as f64);
        let d2 = 0.5 + g * 2.0 - 1.0;
        let d1 = 2.0 - 0.25;
        let d0 = 1.0 + g * 0.25 - 0.5;
        let a2 = d2;
        let a1 = d1;
        let a0 = d0 + g * l * a1;
        for (got, want) in adv.iter().zip([a0, a1, a2]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert!((ret[0] - (a0 + 0.5)).abs() < 1e-6);
    }

    #[test]
    fn truncation_bootstraps_from_the_final_observation() {
        // Two environments interleaved; env 1 is truncated at step 0 with final value 3.
        let s = [
            sample(0.0, 0.0, false, 0.0),
            sample(-1.0, 0.5, true, 3.0),
            sample(0.0, 0.0, false, 0.0),
            sample(0.0, 0.0, false, 0.0),
        ];
        let (adv, _) = gae(&s, 2, &[0.0, 7.0], 0.5, 1.0);
        // env 1 step 0: delta = -1 + 0.5 * 3 - 0.5, nothing flows back from step 1.
        assert!((adv[1] - 0.0).abs() < 1e-6, "{}", adv[1]);
        // env 1 step 1: delta = 0 + 0.5 * 7 - 0.
        assert!((adv[3] - 3.5).abs() < 1e-6);
    }
}
