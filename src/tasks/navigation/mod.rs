//! Visual navigation (Goyal et al. 2019, section 6.5; Sax et al. 2018): a PPO agent learns to
//! reach a target from the frozen features of one backbone tap.
//!
//! Frames come from any [`sslbench_envs::Env`] (the built-in ray-cast rooms, or Gibson,
//! ViZDoom or MiniWorld through the bridge); [`perception`] turns them into tap features,
//! [`policy`] compresses, stacks and acts, [`ppo`] learns from [`rollout`]s, [`train`] runs
//! one agent with checkpoints, [`evaluate`] scores it on held-out episodes beside the random
//! policy, [`render`] shows what it does, [`curves`] averages seeds, [`task`] runs it all.

pub mod agent;
pub mod config;
pub mod curves;
pub mod envs;
pub mod evaluate;
pub mod log;
pub mod perception;
pub mod policy;
pub mod ppo;
pub mod render;
pub mod rollout;
pub mod task;
pub mod train;

pub use config::NavConfig;
pub use task::{run, RENAMED, SECTIONS};
