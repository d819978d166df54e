//! The navigation task's config: `tasks/gibson_nav.toml` read into typed sections. Every
//! number is protocols.md section 7's value in the shipped file; nothing here is a default
//! the file does not show.

use crate::train::run_section::RunSection;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sslbench_envs::bridge::BridgeConfig;
use sslbench_envs::builtin::BuiltinConfig;

/// The whole task: which environment, the features, the policy, PPO, runs and evaluation.
#[derive(Clone, Debug)]
pub struct NavConfig {
    /// `[env]`.
    pub env: EnvSection,
    /// `[compress]`.
    pub compress: CompressSection,
    /// `[policy]`.
    pub policy: PolicySection,
    /// `[ppo]`.
    pub ppo: PpoConfig,
    /// `[run]`.
    pub run: RunSection,
    /// `[eval]`.
    pub eval: EvalSection,
}

/// Which environment the agent lives in.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EnvKind {
    /// The embedded ray-cast environment (`[env.builtin]`).
    Builtin,
    /// A Python simulator behind the gym bridge (`[env.bridge]`): Gibson, ViZDoom, MiniWorld.
    Bridge,
}

/// `[env]`: the environment and how many run in parallel.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSection {
    /// `builtin` or `bridge`.
    pub kind: EnvKind,
    /// Environments stepped in parallel; a rollout holds `ppo.rollout * envs` frames.
    pub envs: usize,
    /// The built-in environment (training layouts; evaluation uses the held-out split).
    #[serde(default)]
    pub builtin: BuiltinConfig,
    /// The bridge: simulator id and options.
    pub bridge: Option<BridgeConfig>,
    /// Bridge options that turn the training simulator into the held-out one (e.g. another
    /// Gibson scene); held-out episodes also draw their seeds from a separate stream.
    #[serde(default)]
    pub heldout_options: toml::Table,
}

/// `[compress]`: frozen tap -> compress conv -> GroupNorm -> frame stack.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressSection {
    /// Output channels of the 3x3 compress conv (8).
    pub channels: usize,
    /// GroupNorm groups over those channels.
    pub groups: usize,
    /// Side of the compressed map (16): the conv's stride shrinks a larger tap, a smaller
    /// tap is repeated up to it.
    pub size: usize,
    /// Frames stacked as the policy's input (4).
    pub stack: usize,
}

/// `[policy]`: the network after the stack.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Channels of the policy's conv (32).
    pub conv_channels: usize,
    /// Its kernel (4).
    pub kernel: usize,
    /// Its stride (2).
    pub stride: usize,
    /// Widths of the fully connected layers ([1024, 512]).
    pub hidden: Vec<usize>,
    /// Scale of the actor head's initial weights (small: a near-uniform first policy).
    pub actor_init_scale: f64,
}

/// `[ppo]`: the optimisation (Schulman et al. 2017 with GAE).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoConfig {
    /// Adam learning rate.
    pub lr: f64,
    /// Adam epsilon.
    pub adam_eps: f64,
    /// Adam's moment decays (beta1, beta2).
    pub adam_betas: [f64; 2],
    /// Clip range of the probability ratio.
    pub clip: f64,
    /// Entropy bonus coefficient.
    pub entropy_coef: f64,
    /// Value loss coefficient.
    pub value_coef: f64,
    /// Discount.
    pub gamma: f64,
    /// GAE lambda.
    pub gae_lambda: f64,
    /// Steps per environment per rollout.
    pub rollout: usize,
    /// Minibatches per epoch.
    pub minibatches: usize,
    /// Passes over each rollout.
    pub epochs: usize,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Training length in environment frames.
    pub frames: usize,
    /// Normalise advantages per rollout (mean 0, std 1).
    pub normalize_advantages: bool,
    /// Clip the value update around the rollout's values, as the clipped objective does.
    pub clip_value: bool,
}

/// `[eval]`: held-out evaluation and the rendered rollout.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Held-out episodes per trained agent (the random policy runs the same ones); 0 skips
    /// the evaluation (benchmarks).
    pub episodes: usize,
    /// Act by the most probable action instead of sampling.
    pub greedy: bool,
    /// Frames of the rendered rollout (GIF and PNGs); 0 for none.
    pub rollout_frames: usize,
}

impl NavConfig {
    /// Reads the sections from a merged config document and checks what serde cannot.
    pub fn from_doc(doc: &toml::Table) -> Result<Self> {
        let cfg = Self {
            env: crate::config::section(doc, "env")?,
            compress: crate::config::section(doc, "compress")?,
            policy: crate::config::section(doc, "policy")?,
            ppo: crate::config::section(doc, "ppo")?,
            run: crate::config::section(doc, "run")?,
            eval: crate::config::section(doc, "eval")?,
        };
        cfg.validate().context("in the navigation task config")?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let positive = [
            ("env.envs", self.env.envs),
            ("compress.channels", self.compress.channels),
            ("compress.groups", self.compress.groups),
            ("compress.size", self.compress.size),
            ("compress.stack", self.compress.stack),
            ("policy.conv_channels", self.policy.conv_channels),
            ("policy.kernel", self.policy.kernel),
            ("policy.stride", self.policy.stride),
            ("ppo.rollout", self.ppo.rollout),
            ("ppo.minibatches", self.ppo.minibatches),
            ("ppo.epochs", self.ppo.epochs),
            ("ppo.frames", self.ppo.frames),
            ("run.seeds", self.run.seeds),
            ("run.checkpoint_every", self.run.checkpoint_every),
            ("run.log_every", self.run.log_every),
        ];
        for (name, v) in positive {
            if v == 0 {
                bail!("{name} must be positive");
            }
        }
        if self.compress.channels % self.compress.groups != 0 {
            bail!(
                "compress.groups = {} does not divide compress.channels = {}",
                self.compress.groups,
                self.compress.channels
            );
        }
        if self.compress.size < self.policy.kernel {
            bail!(
                "compress.size = {} is smaller than the policy's kernel {}",
                self.compress.size,
                self.policy.kernel
            );
        }
        let batch = self.ppo.rollout * self.env.envs;
        if self.ppo.minibatches > batch {
            bail!(
                "ppo.minibatches = {} exceeds the {batch} samples of a rollout",
                self.ppo.minibatches
            );
        }
        if self.env.kind == EnvKind::Bridge && self.env.bridge.is_none() {
            bail!("env.kind = \"bridge\" needs an [env.bridge] table with the simulator id");
        }
        if !(0.0..=1.0).contains(&self.ppo.gamma) || !(0.0..=1.0).contains(&self.ppo.gae_lambda) {
            bail!("ppo.gamma and ppo.gae_lambda must lie in [0, 1]");
        }
        Ok(())
    }

    /// PPO updates in a run: `frames` rounded up to whole rollouts.
    pub fn updates(&self) -> usize {
        self.ppo.frames.div_ceil(self.frames_per_update())
    }

    /// Frames per PPO update (`rollout * envs`).
    pub fn frames_per_update(&self) -> usize {
        self.ppo.rollout * self.env.envs
    }
}
