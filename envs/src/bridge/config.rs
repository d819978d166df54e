//! What a bridge needs to know: the simulator, where its server runs (or how to start one),
//! the timeouts and the adapter's options. Read from `[env.bridge]` in a task file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::EnvError;

/// How a server the client spawns listens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A Unix socket in the temporary directory (the fastest; the default).
    #[default]
    Unix,
    /// TCP on 127.0.0.1, a port the server picks.
    Tcp,
}

/// The value of an adapter option (`frame_skip = 4`, `depth = true`, `scene = "Aloha"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OptionValue {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Anything else.
    Text(String),
}

impl OptionValue {
    /// Reads a command-line value the way `gym_bridge.py --option` does: `true`/`false`, an
    /// integer, a float, else text.
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" => return OptionValue::Bool(true),
            "false" => return OptionValue::Bool(false),
            _ => {}
        }
        if let Ok(i) = text.parse::<i64>() {
            OptionValue::Int(i)
        } else if let Ok(f) = text.parse::<f64>() {
            OptionValue::Float(f)
        } else {
            OptionValue::Text(text.to_string())
        }
    }
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Bool(b) => write!(f, "{b}"),
            OptionValue::Int(i) => write!(f, "{i}"),
            OptionValue::Float(x) => write!(f, "{x}"),
            OptionValue::Text(s) => f.write_str(s),
        }
    }
}

impl From<bool> for OptionValue {
    fn from(v: bool) -> Self {
        OptionValue::Bool(v)
    }
}

impl From<i64> for OptionValue {
    fn from(v: i64) -> Self {
        OptionValue::Int(v)
    }
}

impl From<f64> for OptionValue {
    fn from(v: f64) -> Self {
        OptionValue::Float(v)
    }
}

impl From<&str> for OptionValue {
    fn from(v: &str) -> Self {
        OptionValue::Text(v.to_string())
    }
}

/// A bridged simulator: `[env.bridge]` in a task file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// The environment id: `vizdoom:my_way_home`, `miniworld:MiniWorld-OneRoom-v0`,
    /// `gibson:Beechwood` (or a HuskyNavigateEnv YAML), `gym:<gymnasium id>`.
    pub env: String,
    /// The address of a server already running (`tcp:HOST:PORT` or `unix:PATH`); when absent
    /// the client spawns its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The Python interpreter that runs a spawned server.
    #[serde(default = "default_python")]
    pub python: String,
    /// The server script; default: `$SSLBENCH_GYM_BRIDGE`, else the copy embedded in this
    /// binary (written to a cache file in the temporary directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<PathBuf>,
    /// How a spawned server listens.
    #[serde(default)]
    pub transport: Transport,
    /// Take the observations' pixels through shared memory when the server offers it (Linux,
    /// same host: a memfd the client opens by its /proc path), else through the socket.
    #[serde(default = "default_shared_memory")]
    pub shared_memory: bool,
    /// Microseconds a client polls for a reply before it sleeps (0: sleep at once). Polling
    /// saves the wake-up of a sleeping thread (tens of microseconds a step in a VM) at the cost
    /// of a core busy meanwhile: worth it when cores outnumber the bridged environments.
    #[serde(default)]
    pub spin_us: u64,
    /// Seconds to start the server (its READY line), connect and finish the handshake: the
    /// simulator loads within it.
    #[serde(default = "default_start_timeout")]
    pub start_timeout: f64,
    /// Seconds each reset or step may take.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: f64,
    /// The adapter's options (gym_bridge.py `--option key=value`), e.g. `frame_skip`,
    /// `depth`, `resize = "128x128"`, `max_steps`.
    #[serde(default)]
    pub options: BTreeMap<String, OptionValue>,
}

fn default_python() -> String {
    "python3".into()
}

fn default_shared_memory() -> bool {
    true
}

fn default_start_timeout() -> f64 {
    120.0
}

fn default_request_timeout() -> f64 {
    60.0
}

impl BridgeConfig {
    /// A config for `env` with every default: a spawned server on a Unix socket.
    pub fn new(env: impl Into<String>) -> Self {
        Self {
            env: env.into(),
            address: None,
            python: default_python(),
            script: None,
            transport: Transport::default(),
            shared_memory: default_shared_memory(),
            spin_us: 0,
            start_timeout: default_start_timeout(),
            request_timeout: default_request_timeout(),
            options: BTreeMap::new(),
        }
    }

    /// The config with one more option.
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<OptionValue>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }

    /// Checks the values a server cannot check for us.
    pub fn validate(&self) -> Result<(), EnvError> {
        let (family, name) = self.env.split_once(':').unwrap_or(("", ""));
        if family.is_empty() || name.is_empty() {
            return Err(EnvError::Config(format!(
                "[env.bridge] env = {:?} must be <family>:<name>, e.g. vizdoom:my_way_home, \
                 miniworld:MiniWorld-OneRoom-v0, gibson:Beechwood, gym:CartPole-v1",
                self.env
            )));
        }
        self.validate_timeouts()
    }

    /// Checks the timeouts (all a client of a running server needs when `env` is empty, i.e.
    /// "whatever the server serves").
    pub(crate) fn validate_timeouts(&self) -> Result<(), EnvError> {
        for (name, value) in [
            ("start_timeout", self.start_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(EnvError::Config(format!(
                    "[env.bridge] {name} = {value} must be a positive number of seconds"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values_read_like_the_servers() {
        assert_eq!(OptionValue::parse("true"), OptionValue::Bool(true));
        assert_eq!(OptionValue::parse("4"), OptionValue::Int(4));
        assert_eq!(OptionValue::parse("0.25"), OptionValue::Float(0.25));
        assert_eq!(
            OptionValue::parse("128x128"),
            OptionValue::Text("128x128".into())
        );
        assert_eq!(OptionValue::parse("128x128").to_string(), "128x128");
    }

    #[test]
    fn a_config_round_trips_through_json_with_its_defaults() {
        let cfg: BridgeConfig = serde_json::from_str(
            r#"{"env": "vizdoom:my_way_home", "options": {"frame_skip": 4, "depth": true, "resize": "64x64", "depth_scale": 0.5}}"#,
        )
        .unwrap();
        assert_eq!(cfg.python, "python3");
        assert_eq!(cfg.transport, Transport::Unix);
        assert!(cfg.shared_memory);
        assert_eq!(cfg.options["frame_skip"], OptionValue::Int(4));
        assert_eq!(cfg.options["depth_scale"], OptionValue::Float(0.5));
        let back: BridgeConfig =
            serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        let err = serde_json::from_str::<BridgeConfig>(r#"{"env": "x:y", "frame_skip": 4}"#);
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("unknown field `frame_skip`"));
    }

    #[test]
    fn validation_names_the_field() {
        let err = BridgeConfig::new("my_way_home").validate().unwrap_err();
        assert!(err.to_string().contains("<family>:<name>"), "{err}");
        let mut cfg = BridgeConfig::new("vizdoom:my_way_home");
        cfg.request_timeout = 0.0;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("request_timeout"));
    }
}
