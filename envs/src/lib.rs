//! Environments for sslbench's visual-navigation task, free of candle.
//!
//! - [`Env`]: `reset(seed)` and `step(action)` over first-person observations (an RGB frame,
//!   optionally depth and a goal vector), with gym's reward / terminated / truncated / info.
//! - [`Spaces`]: the discrete action space and the observation space an environment declares.
//! - [`VecEnv`]: N environments stepped in parallel, reset automatically at episode ends.
//! - [`builtin`]: the embedded ray-cast indoor environment, the default when no Python
//!   simulator is installed.
//! - [`bridge`]: the client of `envs/bridge/gym_bridge.py`, which serves Gibson, ViZDoom,
//!   MiniWorld or any gym environment over a versioned, length-prefixed socket protocol.
//!
//! The policy code never knows which one it talks to.

pub mod bridge;
pub mod builtin;
mod env;
mod error;
mod rng;
mod space;
mod vector;

pub use env::{Env, Frame, Info, Observation, Transition};
pub use error::EnvError;
pub use space::{ActionSpace, ObservationSpace, Spaces};
pub use vector::{episode_seed, EpisodeEnd, VecEnv, VecStep};
