//! The one error type of every environment: the caller can tell a user mistake (a wrong
//! action) from a dead simulator (restart it) from a protocol fault (a bug on one side).

/// An environment failure. Each message names what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The action is outside the discrete action space.
    #[error("action {action} is outside the action space (0..{n})")]
    InvalidAction {
        /// The action given.
        action: usize,
        /// The number of actions.
        n: usize,
    },
    /// `step` was called before `reset`, or after the episode ended.
    #[error("no episode is running: call reset first (episodes end on terminated or truncated)")]
    NeedsReset,
    /// A configuration value is wrong; the message names it and its valid values.
    #[error("{0}")]
    Config(String),
    /// The bridge server process exited or closed the connection. `reset` restarts a server the
    /// client launched itself; the episode that was running is lost, never continued.
    #[error("the bridge server for `{env}` died ({detail}); the running episode is discarded, reset to restart it")]
    ServerDied {
        /// The environment the server was serving.
        env: String,
        /// What was seen: the exit status, the last lines of its stderr, or the socket error.
        detail: String,
    },
    /// The server did not answer within the client's timeout.
    #[error("the bridge server for `{env}` did not answer {what} within {seconds} s; raise --timeout if the simulator is slow to load")]
    Timeout {
        /// The environment.
        env: String,
        /// The request that timed out (connect, handshake, reset, step).
        what: String,
        /// The timeout.
        seconds: f64,
    },
    /// The two sides speak different protocol versions.
    #[error("bridge protocol version mismatch: this client speaks {ours}, the server {theirs}; use the gym_bridge.py from the same sslbench release")]
    Version {
        /// The client's version.
        ours: u32,
        /// The server's version, or what it rejected.
        theirs: String,
    },
    /// A malformed frame or message: a bug on one side, never retried silently.
    #[error("bridge protocol error: {0}")]
    Protocol(String),
    /// The simulator raised an error; the server passed its message along.
    #[error("the environment `{env}` failed on the server: {message}")]
    Remote {
        /// The environment.
        env: String,
        /// The server's message (exception type and text).
        message: String,
    },
    /// An I/O failure that is none of the above (spawning the server, a socket).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl EnvError {
    /// True when the environment cannot go on without a restart (the server died or hung).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            EnvError::ServerDied { .. } | EnvError::Timeout { .. } | EnvError::Protocol(_)
        )
    }
}
