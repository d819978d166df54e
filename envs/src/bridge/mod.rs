//! The gym bridge: Python simulators (ViZDoom, MiniWorld, Gibson, any gymnasium environment
//! with image observations) behind the [`Env`](crate::Env) trait.
//!
//! `envs/bridge/gym_bridge.py` serves one simulator over a socket (TCP on loopback or a Unix
//! socket) in length-prefixed frames: a small JSON header with the metadata, then the raw
//! pixels (envs/bridge/PROTOCOL.md, version [`PROTOCOL_VERSION`]). [`BridgeEnv`] is its client:
//! it spawns the server (the script is embedded in the binary) or connects to a running one,
//! checks every observation against the handshake's spaces, and restarts a dead server at
//! the next reset.
//!
//! ```no_run
//! use sslbench_envs::bridge::{BridgeConfig, BridgeEnv};
//! use sslbench_envs::Env;
//! let cfg = BridgeConfig::new("vizdoom:my_way_home").with_option("frame_skip", 4i64);
//! let mut env = BridgeEnv::start(cfg)?;
//! let first = env.reset(Some(7))?;
//! let t = env.step(0)?; // forward
//! # Ok::<(), sslbench_envs::EnvError>(())
//! ```

mod address;
mod client;
mod config;
mod protocol;
mod server;

pub use address::Address;
pub use client::BridgeEnv;
pub use config::{BridgeConfig, OptionValue, Transport};
pub use protocol::{MAGIC, MAX_FRAME, PROTOCOL_VERSION};
pub use server::{command as server_command, script_path, BridgeServer, GYM_BRIDGE_PY, SCRIPT_ENV};
