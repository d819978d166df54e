//! [`BridgeEnv`]: an [`Env`] whose simulator runs in a `gym_bridge.py` server.

use std::io::BufReader;
use std::time::Duration;

use super::address::Stream;
use super::protocol::{
    self, ErrorReply, Head, Hello, Kind, SharedFile, Welcome, WireError, MAGIC, PROTOCOL_VERSION,
};
use super::{Address, BridgeConfig, BridgeServer};
use crate::{Env, EnvError, Info, Observation, Spaces, Transition};

/// A simulator behind the gym bridge: a server this client spawned ([`BridgeEnv::start`]) or
/// one already running ([`BridgeEnv::connect`]).
///
/// When the server dies or hangs mid-episode, `step` fails ([`EnvError::ServerDied`],
/// [`EnvError::Timeout`]) and the episode is gone; the next `reset` restarts a spawned server
/// (or reconnects to an external one) and starts a new episode. Every observation is checked
/// against the spaces of the handshake; nothing is returned from a broken stream.
#[derive(Debug)]
pub struct BridgeEnv {
    cfg: BridgeConfig,
    address: Address,
    server: Option<BridgeServer>,
    /// This client starts its servers (else it connects to one running elsewhere).
    spawns: bool,
    conn: Option<BufReader<Stream>>,
    shared: Option<SharedFile>,
    spaces: Spaces,
    description: String,
    running: bool,
}

impl BridgeEnv {
    /// Spawns a server for `cfg.env` (or connects to `cfg.address` when set), then shakes
    /// hands.
    pub fn start(cfg: BridgeConfig) -> Result<Self, EnvError> {
        cfg.validate()?;
        if let Some(address) = cfg.address.clone() {
            return Self::connect(&address, cfg);
        }
        let server = BridgeServer::spawn(&cfg)?;
        let address = server.address().clone();
        Self::handshake_new(cfg, address, Some(server))
    }

    /// Connects to a server already listening at `address` (`tcp:HOST:PORT`, `unix:PATH`);
    /// `cfg.env` must be the environment it serves (or empty: whichever it serves), and
    /// `cfg.options` go in the HELLO (the server rebuilds its environment when they differ
    /// from its own).
    pub fn connect(address: &str, cfg: BridgeConfig) -> Result<Self, EnvError> {
        if cfg.env.is_empty() {
            cfg.validate_timeouts()?;
        } else {
            cfg.validate()?;
        }
        let address: Address = address.parse()?;
        Self::handshake_new(cfg, address, None)
    }

    fn handshake_new(
        cfg: BridgeConfig,
        address: Address,
        server: Option<BridgeServer>,
    ) -> Result<Self, EnvError> {
        let mut env = BridgeEnv {
            cfg,
            address,
            spawns: server.is_some(),
            server,
            conn: None,
            shared: None,
            spaces: placeholder_spaces(),
            description: String::new(),
            running: false,
        };
        let welcome = env.open()?;
        if env.cfg.env.is_empty() {
            env.cfg.env = welcome.env.clone();
        }
        env.spaces = welcome.spaces;
        env.description = welcome.description;
        Ok(env)
    }

    /// The process id of the server this client spawned (None for an external server).
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(BridgeServer::pid)
    }

    /// The address of the server.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The server's description of its simulator.
    pub fn server_description(&self) -> &str {
        &self.description
    }

    /// Whether observations arrive through shared memory (else through the socket).
    pub fn uses_shared_memory(&self) -> bool {
        self.shared.is_some()
    }

    /// The config this environment was built from.
    pub fn config(&self) -> &BridgeConfig {
        &self.cfg
    }

    /// Connects and shakes hands, returning the server's WELCOME.
    fn open(&mut self) -> Result<Welcome, EnvError> {
        let start = Duration::from_secs_f64(self.cfg.start_timeout);
        let spin = Duration::from_micros(self.cfg.spin_us);
        let stream = Stream::connect(&self.address, start, spin)
            .map_err(|e| self.io_failure(e, "connect"))?;
        stream
            .set_timeout(start)
            .map_err(|e| self.io_failure(e, "connect"))?;
        self.conn = Some(BufReader::with_capacity(1 << 16, stream));
        let hello = serde_json::to_value(Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            env: &self.cfg.env,
            options: &self.cfg.options,
            shm: self.cfg.shared_memory,
        })
        .map_err(|e| EnvError::Config(format!("[env.bridge] options cannot be encoded: {e}")))?;
        let head = self.exchange(Kind::Hello, &hello, "handshake")?;
        if head.kind != Kind::Welcome {
            return Err(self.unexpected(&head, "WELCOME"));
        }
        let welcome: Welcome = self.decode(&head)?;
        if welcome.version != PROTOCOL_VERSION {
            self.drop_connection();
            return Err(EnvError::Version {
                ours: PROTOCOL_VERSION,
                theirs: welcome.version.to_string(),
            });
        }
        let a = &welcome.spaces.action;
        let o = &welcome.spaces.observation;
        if a.n == 0 || a.names.len() != a.n || o.height == 0 || o.width == 0 {
            self.drop_connection();
            return Err(EnvError::Protocol(format!(
                "the server declares unusable spaces {:?}",
                welcome.spaces
            )));
        }
        self.shared = welcome.shm.as_ref().and_then(SharedFile::open);
        let request = Duration::from_secs_f64(self.cfg.request_timeout);
        if let Some(conn) = &self.conn {
            conn.get_ref()
                .set_timeout(request)
                .map_err(|e| self.io_failure(e, "connect"))?;
        }
        Ok(welcome)
    }

    /// Replaces a dead, hung or closed connection: a new server when this client spawned the
    /// old one, a new connection otherwise. The new spaces must equal the old ones.
    fn reopen(&mut self) -> Result<(), EnvError> {
        self.drop_connection();
        if self.spawns {
            if let Some(mut old) = self.server.take() {
                old.kill();
            }
            let server = BridgeServer::spawn(&self.cfg)?;
            self.address = server.address().clone();
            self.server = Some(server);
        }
        let welcome = self.open()?;
        if welcome.spaces != self.spaces {
            self.drop_connection();
            return Err(EnvError::Protocol(format!(
                "the restarted server declares the spaces {:?}, not {:?} as before",
                welcome.spaces, self.spaces
            )));
        }
        Ok(())
    }

    fn server_gone(&mut self) -> bool {
        self.server.as_mut().is_some_and(BridgeServer::has_exited)
    }

    /// Sends a request and reads the reply's head; an ERROR reply becomes its error.
    fn exchange(
        &mut self,
        kind: Kind,
        header: &impl serde::Serialize,
        what: &str,
    ) -> Result<Head, EnvError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(EnvError::NeedsReset);
        };
        let result = protocol::write_message(conn.get_mut(), kind, header)
            .and_then(|()| protocol::read_head(conn));
        let head = result.map_err(|e| self.wire_failure(e, what))?;
        if head.kind == Kind::Error {
            return Err(self.remote_error(&head));
        }
        Ok(head)
    }

    fn decode<T: serde::de::DeserializeOwned>(&mut self, head: &Head) -> Result<T, EnvError> {
        let result = protocol::parse(head).and_then(|t| {
            let conn = self
                .conn
                .as_mut()
                .ok_or_else(|| WireError::Malformed("no connection".into()))?;
            protocol::skip(conn, head.blob_bytes).map(|()| t)
        });
        result.map_err(|e| self.wire_failure(e, "handshake"))
    }

    /// RESET or STEP: sends it, reads the OBS.
    fn observe(
        &mut self,
        kind: Kind,
        header: &impl serde::Serialize,
        what: &str,
    ) -> Result<(protocol::ObsHeader, Observation), EnvError> {
        let head = self.exchange(kind, header, what)?;
        if head.kind != Kind::Obs {
            return Err(self.unexpected(&head, "OBS"));
        }
        let result = match self.conn.as_mut() {
            Some(conn) => {
                protocol::read_observation(conn, &head, &self.spaces, self.shared.as_ref())
            }
            None => Err(WireError::Malformed("no connection".into())),
        };
        result.map_err(|e| self.wire_failure(e, what))
    }

    fn unexpected(&mut self, head: &Head, wanted: &str) -> EnvError {
        self.wire_failure(
            WireError::Malformed(format!(
                "expected {wanted}, the server sent {:?}",
                head.kind
            )),
            "",
        )
    }

    /// Maps a server ERROR reply. A protocol or version error closes the connection.
    fn remote_error(&mut self, head: &Head) -> EnvError {
        let reply: ErrorReply = match protocol::parse(head) {
            Ok(r) => r,
            Err(e) => return self.wire_failure(e, "error reply"),
        };
        if let Some(conn) = self.conn.as_mut() {
            if protocol::skip(conn, head.blob_bytes).is_err() {
                self.drop_connection();
            }
        }
        let env = self.cfg.env.clone();
        match reply.kind.as_str() {
            "needs_reset" => EnvError::NeedsReset,
            "invalid_action" => EnvError::Remote {
                env,
                message: reply.message,
            },
            "version" => {
                self.drop_connection();
                let theirs = if reply.versions.is_empty() {
                    reply.message
                } else {
                    format!("{:?} ({})", reply.versions, reply.message)
                };
                EnvError::Version {
                    ours: PROTOCOL_VERSION,
                    theirs,
                }
            }
            "config" => {
                self.drop_connection();
                EnvError::Config(reply.message)
            }
            "protocol" => {
                self.drop_connection();
                EnvError::Protocol(format!("the server rejected a message: {}", reply.message))
            }
            _ => EnvError::Remote {
                env,
                message: reply.message,
            },
        }
    }

    /// A failed read or write: the connection is dropped, and the episode with it.
    fn wire_failure(&mut self, e: WireError, what: &str) -> EnvError {
        match e {
            WireError::Io(e) => self.io_failure(e, what),
            WireError::Malformed(message) => {
                self.drop_connection();
                EnvError::Protocol(message)
            }
        }
    }

    fn io_failure(&mut self, e: std::io::Error, what: &str) -> EnvError {
        use std::io::ErrorKind::*;
        self.drop_connection();
        let env = self.cfg.env.clone();
        if matches!(e.kind(), WouldBlock | TimedOut) {
            // A hung server is replaced at the next reset.
            if let Some(server) = self.server.as_mut() {
                server.kill();
            }
            let seconds = if what == "handshake" || what == "connect" {
                self.cfg.start_timeout
            } else {
                self.cfg.request_timeout
            };
            return EnvError::Timeout {
                env,
                what: what.into(),
                seconds,
            };
        }
        let detail = match self.server.as_mut() {
            Some(server) => format!(
                "{e} during {what} at {}; {}",
                self.address,
                server.exit_detail(Duration::from_secs(2))
            ),
            None => format!("{e} during {what} at {}", self.address),
        };
        EnvError::ServerDied { env, detail }
    }

    fn drop_connection(&mut self) {
        self.conn = None;
        self.shared = None;
        self.running = false;
    }

    fn reset_once(&mut self, seed: Option<u64>) -> Result<Observation, EnvError> {
        let (_, obs) = self.observe(
            Kind::Reset,
            &serde_json::json!({ "seed": seed, "shm": self.shared.is_some() }),
            "reset",
        )?;
        Ok(obs)
    }
}

impl Env for BridgeEnv {
    fn spaces(&self) -> &Spaces {
        &self.spaces
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<Observation, EnvError> {
        self.running = false;
        let mut fresh = false;
        if self.conn.is_none() || self.server_gone() {
            self.reopen()?;
            fresh = true;
        }
        let obs = match self.reset_once(seed) {
            // The server died while idle: restart it once.
            Err(EnvError::ServerDied { .. }) if !fresh => {
                self.reopen()?;
                self.reset_once(seed)?
            }
            other => other?,
        };
        self.running = true;
        Ok(obs)
    }

    fn step(&mut self, action: usize) -> Result<Transition, EnvError> {
        self.spaces.check_action(action)?;
        if !self.running {
            return Err(EnvError::NeedsReset);
        }
        self.running = false;
        let (head, observation) = self.observe(
            Kind::Step,
            &serde_json::json!({ "action": action, "shm": self.shared.is_some() }),
            "step",
        )?;
        self.running = !(head.terminated || head.truncated);
        Ok(Transition {
            observation,
            reward: head.reward,
            terminated: head.terminated,
            truncated: head.truncated,
            info: Info {
                success: head.success,
                values: head.values,
            },
        })
    }

    fn describe(&self) -> String {
        format!(
            "{} via {} ({})",
            self.cfg.env, self.address, self.description
        )
    }
}

impl Drop for BridgeEnv {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = conn.get_ref().set_timeout(Duration::from_secs(1));
            let closed =
                protocol::write_message(conn.get_mut(), Kind::Close, &serde_json::json!({}))
                    .and_then(|()| protocol::read_head(&mut conn));
            drop(closed);
        }
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
    }
}

fn placeholder_spaces() -> Spaces {
    Spaces {
        action: crate::ActionSpace {
            n: 0,
            names: vec![],
        },
        observation: crate::ObservationSpace {
            height: 0,
            width: 0,
            depth: false,
            goal: 0,
        },
    }
}
