//! Spawning and supervising a `gym_bridge.py` server: the script (embedded in the binary), its
//! READY line, the tail of its stderr for error messages, and its end.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{Address, BridgeConfig, Transport};
use crate::EnvError;

/// The server script, embedded so an installed binary needs no checkout.
pub const GYM_BRIDGE_PY: &str = include_str!("../../bridge/gym_bridge.py");

/// The environment variable that points at another server script.
pub const SCRIPT_ENV: &str = "SSLBENCH_GYM_BRIDGE";

const STDERR_LINES: usize = 40;

/// A server process this client started. Dropping it stops the process.
#[derive(Debug)]
pub struct BridgeServer {
    child: Child,
    stdin: Option<ChildStdin>,
    address: Address,
    stderr: Arc<Mutex<VecDeque<String>>>,
    status: Option<ExitStatus>,
}

impl BridgeServer {
    /// Starts `gym_bridge.py` for `cfg.env` and waits for its READY line.
    pub fn spawn(cfg: &BridgeConfig) -> Result<Self, EnvError> {
        let listen = match cfg.transport {
            Transport::Tcp => "tcp:127.0.0.1:0".to_string(),
            Transport::Unix => format!("unix:{}", socket_path().display()),
        };
        let mut command = command(cfg, &listen)?;
        command.arg("--exit-on-stdin-eof");
        // Its own process group, so the simulator's processes can be killed with it.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EnvError::Config(format!(
                "cannot run the Python interpreter `{}`: not found; install Python 3 or set \
                 [env.bridge] python = \"/path/to/python3\"",
                cfg.python
            )),
            _ => EnvError::Io {
                context: format!("cannot start `{}`", cfg.python),
                source: e,
            },
        })?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(err) = child.stderr.take() {
            let tail = stderr.clone();
            thread::spawn(move || keep_tail(err, &tail));
        }
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            let tail = stderr.clone();
            thread::spawn(move || read_ready(out, tx, &tail));
        }
        let mut server = BridgeServer {
            stdin: child.stdin.take(),
            child,
            address: Address::Unix(PathBuf::new()),
            stderr,
            status: None,
        };
        let timeout = Duration::from_secs_f64(cfg.start_timeout);
        match rx.recv_timeout(timeout) {
            Ok(Ready::Listening(address)) => {
                server.address = address.parse()?;
                Ok(server)
            }
            Ok(Ready::Failed { kind, message }) => {
                server.wait_exit(Duration::from_secs(5));
                Err(match kind.as_str() {
                    "config" => EnvError::Config(message),
                    _ => EnvError::Remote {
                        env: cfg.env.clone(),
                        message,
                    },
                })
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                server.kill();
                Err(EnvError::Timeout {
                    env: cfg.env.clone(),
                    what: "the server's READY line (start_timeout)".into(),
                    seconds: cfg.start_timeout,
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let detail = server.exit_detail(Duration::from_secs(5));
                Err(EnvError::Remote {
                    env: cfg.env.clone(),
                    message: format!(
                        "`{} {}` ended before printing READY ({detail})",
                        cfg.python,
                        script_path(cfg)?.display()
                    ),
                })
            }
        }
    }

    /// The address the server listens on.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines the server wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let lines = self
            .stderr
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>());
        lines.unwrap_or_default().join("\n")
    }

    /// Waits up to `wait` for the process to end; returns its status if it has. A server that
    /// died leaves its simulator's processes (ViZDoom's engine) behind: they are killed with
    /// its process group before the server is reaped.
    pub(crate) fn wait_exit(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + wait;
        while self.status.is_none() {
            if process_state(self.pid()).is_some_and(|state| matches!(state, 'Z' | 'X')) {
                self.kill_group();
            }
            match self.child.try_wait() {
                Ok(Some(status)) => self.status = Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => break,
            }
        }
        self.status
    }

    /// Sends SIGKILL to the server's process group (it leads its own). Called only while the
    /// server's pid is reserved (running, or dead and not yet reaped), so the group id cannot
    /// have passed to anyone else.
    fn kill_group(&self) {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.pid())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Whether the process has ended.
    pub(crate) fn has_exited(&mut self) -> bool {
        self.wait_exit(Duration::ZERO).is_some()
    }

    /// What became of the process, for an error message: its exit status (or that it still
    /// runs) and the tail of its stderr.
    pub(crate) fn exit_detail(&mut self, wait: Duration) -> String {
        let state = match self.wait_exit(wait) {
            Some(status) => format!("process {} exited: {status}", self.pid()),
            None => format!("process {} still running", self.pid()),
        };
        // Give the stderr reader a moment to take the last lines.
        thread::sleep(Duration::from_millis(20));
        let tail = self.stderr_tail();
        if tail.is_empty() {
            state
        } else {
            format!("{state}; its stderr ends with:\n{tail}")
        }
    }

    /// Kills the process and its simulator (it hung, or it is being replaced) and reaps it.
    pub(crate) fn kill(&mut self) {
        if !self.has_exited() {
            self.kill_group();
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        self.remove_socket();
    }

    /// Asks the process to end (its stdin closes: it closes the simulator and exits), then
    /// kills it after three seconds.
    pub(crate) fn stop(&mut self) {
        self.stdin = None;
        self.wait_exit(Duration::from_secs(3));
        self.kill();
    }

    fn remove_socket(&self) {
        if let Address::Unix(path) = &self.address {
            if !path.as_os_str().is_empty() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl Drop for BridgeServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The command that runs the server for `cfg.env`, listening on `listen` (`sslbench env serve`
/// runs it in the foreground).
pub fn command(cfg: &BridgeConfig, listen: &str) -> Result<Command, EnvError> {
    let script = script_path(cfg)?;
    let options = serde_json::to_string(&cfg.options)
        .map_err(|e| EnvError::Config(format!("[env.bridge] options cannot be encoded: {e}")))?;
    let mut command = Command::new(&cfg.python);
    command
        .arg(script)
        .args([
            "--env",
            &cfg.env,
            "--listen",
            listen,
            "--options-json",
            &options,
        ])
        .env("PYTHONUNBUFFERED", "1");
    Ok(command)
}

/// The server script: `cfg.script`, else `$SSLBENCH_GYM_BRIDGE`, else the embedded copy
/// written once to `<tmp>/sslbench-gym-bridge-<content hash>/gym_bridge.py`.
pub fn script_path(cfg: &BridgeConfig) -> Result<PathBuf, EnvError> {
    if let Some(path) = cfg
        .script
        .clone()
        .or_else(|| std::env::var_os(SCRIPT_ENV).map(PathBuf::from))
    {
        if !path.is_file() {
            return Err(EnvError::Config(format!(
                "the bridge script {} does not exist (from [env.bridge] script or ${SCRIPT_ENV})",
                path.display()
            )));
        }
        return Ok(path);
    }
    let dir =
        std::env::temp_dir().join(format!("sslbench-gym-bridge-{:016x}", fnv1a(GYM_BRIDGE_PY)));
    let path = dir.join("gym_bridge.py");
    if std::fs::read_to_string(&path).is_ok_and(|s| s == GYM_BRIDGE_PY) {
        return Ok(path);
    }
    let io = |context: String| move |source| EnvError::Io { context, source };
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    // One partial name per call: threads of one process may write the script at once.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let partial = dir.join(format!(
        "gym_bridge.py.{}.{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&partial, GYM_BRIDGE_PY)
        .map_err(io(format!("cannot write {}", partial.display())))?;
    std::fs::rename(&partial, &path).map_err(io(format!("cannot write {}", path.display())))?;
    Ok(path)
}

/// A process's state letter from /proc (`R`, `S`, `Z`, ...); None without /proc.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// A fresh socket path in the temporary directory (`/tmp` when that one is too long for a
/// Unix socket address).
fn socket_path() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "sslbench-bridge-{}-{}.sock",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir();
    let path = dir.join(&name);
    if path.as_os_str().len() < 100 {
        path
    } else {
        Path::new("/tmp").join(name)
    }
}

enum Ready {
    Listening(String),
    Failed { kind: String, message: String },
}

/// Reads stdout until READY or ERROR; other lines (a simulator's chatter) join the tail.
fn read_ready(out: impl Read, tx: mpsc::Sender<Ready>, tail: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { return };
        if let Some(address) = line.strip_prefix("READY ") {
            let _ = tx.send(Ready::Listening(address.trim().to_string()));
        } else if let Some(json) = line.strip_prefix("ERROR ") {
            let parsed: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
            let text = |k: &str| parsed.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let _ = tx.send(Ready::Failed {
                kind: text("kind").unwrap_or_else(|| "remote".into()),
                message: text("message").unwrap_or_else(|| json.to_string()),
            });
        } else {
            push_line(tail, line);
        }
    }
}

fn keep_tail(err: impl Read, tail: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(err).lines() {
        let Ok(line) = line else { return };
        push_line(tail, line);
    }
}

fn push_line(tail: &Mutex<VecDeque<String>>, line: String) {
    if let Ok(mut lines) = tail.lock() {
        if lines.len() == STDERR_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}
