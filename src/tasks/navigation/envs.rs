//! The environments a navigation run steps: the built-in one or a bridged simulator, for
//! training or for the held-out evaluation, N at a time.

use super::config::{EnvKind, EnvSection};
use anyhow::{Context, Result};
use sslbench_envs::bridge::{BridgeConfig, BridgeEnv};
use sslbench_envs::builtin::{BuiltinConfig, BuiltinEnv, Split};
use sslbench_envs::{Env, VecEnv};

/// Training or held-out evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Training layouts / the training simulator.
    Train,
    /// Held-out layouts / the simulator with `[env] heldout_options`.
    Heldout,
}

/// The built-in config of a phase.
pub fn builtin_config(section: &EnvSection, phase: Phase) -> BuiltinConfig {
    let mut cfg = section.builtin.clone();
    cfg.split = match phase {
        Phase::Train => Split::Train,
        Phase::Heldout => Split::Heldout,
    };
    cfg
}

/// The bridge config of a phase: `heldout_options` merged over the options when held out.
pub fn bridge_config(section: &EnvSection, phase: Phase) -> Result<BridgeConfig> {
    let cfg = section
        .bridge
        .clone()
        .context("env.kind = \"bridge\" needs an [env.bridge] table")?;
    if phase == Phase::Train || section.heldout_options.is_empty() {
        return Ok(cfg);
    }
    let mut table = toml::Table::try_from(&cfg).context("cannot re-read [env.bridge]")?;
    let options = table
        .entry("options")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(options) = options {
        crate::config::merge(options, section.heldout_options.clone());
    }
    table
        .try_into()
        .context("[env] heldout_options do not fit [env.bridge] options")
}

/// One environment of a phase.
pub fn make_one(section: &EnvSection, phase: Phase) -> Result<Box<dyn Env>> {
    Ok(match section.kind {
        EnvKind::Builtin => Box::new(BuiltinEnv::new(builtin_config(section, phase))?),
        EnvKind::Bridge => Box::new(BridgeEnv::start(bridge_config(section, phase)?)?),
    })
}

/// `section.envs` environments of a phase, their episodes seeded from `seed`.
pub fn make(section: &EnvSection, phase: Phase, seed: u64) -> Result<VecEnv> {
    let envs = (0..section.envs)
        .map(|_| make_one(section, phase))
        .collect::<Result<Vec<_>>>()?;
    Ok(VecEnv::new(envs, seed)?)
}
