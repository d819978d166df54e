//! Advisory locks that let many processes (on one host or over NFS) share the cache: one
//! writer per key, readers that wait for a live writer and take over from a dead one.
//!
//! A lock is `<name>.lock`: an `flock`ed file that records its owner (host, pid, start time)
//! as JSON, and whose mtime the owner refreshes while it works (its heartbeat). `flock` alone
//! decides on one host; where it may be unreliable (NFS), a lock file written by another host
//! counts as held until its heartbeat is older than the window (`SSLBENCH_LOCK_STALE_S`,
//! 600 s by default). The owner removes the file when it lets go.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The default heartbeat window after which another host's lock counts as stale.
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// Who holds a lock, as its file records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Host name of the owner.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// When it took the lock (seconds since the Unix epoch).
    pub started: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Self {
        Self {
            host: host_name(),
            pid: std::process::id(),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)
    }
}

/// The stale rule. On this host an owner whose process is gone is stale; another host's
/// owner is stale once its heartbeat (`age`, the lock file's mtime age) exceeds `window`.
pub fn is_stale(
    owner: &Owner,
    here: &str,
    alive: impl Fn(u32) -> bool,
    age: Duration,
    window: Duration,
) -> bool {
    if owner.host == here {
        !alive(owner.pid)
    } else {
        age > window
    }
}

/// Whether process `pid` exists on this host.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This host's name.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; the name is NUL-terminated within it.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The heartbeat window: `SSLBENCH_LOCK_STALE_S` seconds, else [`STALE_AFTER`].
pub fn stale_window() -> Duration {
    std::env::var("SSLBENCH_LOCK_STALE_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(STALE_AFTER, Duration::from_secs)
}

/// What a lock file says of its owner, for `sslbench cache verify` and `gc`.
#[derive(Clone, Debug)]
pub struct LockState {
    /// The owner it records (`None` when the file is empty or unreadable).
    pub owner: Option<Owner>,
    /// Whether that owner is alive: it holds the `flock`, or passes the stale rule.
    pub alive: bool,
}

/// Reads the lock file at `path` and decides whether its owner is alive.
pub fn inspect(path: &Path) -> Result<LockState> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let owner = read_owner(&file);
    let held = !try_flock(&file)?;
    if !held {
        unlock(&file);
    }
    let alive = held || owner.as_ref().is_some_and(|o| !owner_stale(o, path));
    Ok(LockState { owner, alive })
}

/// A held lock: released (and its file removed) when dropped.
pub struct KeyLock {
    path: PathBuf,
    file: File,
    stop: Option<Sender<()>>,
    beat: Option<std::thread::JoinHandle<()>>,
}

impl KeyLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(beat) = self.beat.take() {
            let _ = beat.join();
        }
        // Removed while still held: a waiter that opened this file sees it gone and retries.
        let _ = std::fs::remove_file(&self.path);
        unlock(&self.file);
    }
}

/// The lock file of `target` (an entry file or folder): `<target>.lock`.
pub fn lock_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock at `path` if no live owner holds it; `None` when one does.
pub fn try_acquire(path: &Path) -> Result<Option<KeyLock>> {
    Ok(match try_take(path)? {
        Taken::Mine(lock) => Some(lock),
        Taken::Held(_) => None,
    })
}

/// Takes the lock at `path`, waiting (with a message naming the owner and `what`) while a
/// live owner holds it.
pub fn acquire(path: &Path, what: &str) -> Result<KeyLock> {
    let mut wait = Duration::from_millis(50);
    let mut told = None;
    loop {
        match try_take(path)? {
            Taken::Mine(lock) => return Ok(lock),
            Taken::Held(owner) => {
                if told.as_ref() != Some(&owner) {
                    let who = owner
                        .as_ref()
                        .map_or_else(|| "another process".into(), |o| o.to_string());
                    eprintln!(
                        "waiting for {who}, which is writing {what} (lock {}); if it is gone, \
                         `sslbench cache gc` clears it",
                        path.display()
                    );
                    told = Some(owner);
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}

enum Taken {
    Mine(KeyLock),
    Held(Option<Owner>),
}

fn try_take(path: &Path) -> Result<Taken> {
    let fix = || {
        format!(
            "cannot open the lock file {}: check that its folder is writable",
            path.display()
        )
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(fix)?;
    if !try_flock(&file).with_context(fix)? {
        return Ok(Taken::Held(read_owner(&file)));
    }
    // The file may have been removed (by its owner letting go) between open and flock.
    let same = std::fs::metadata(path)
        .ok()
        .is_some_and(|m| m.ino() == file.metadata().map_or(0, |f| f.ino()));
    if !same {
        unlock(&file);
        return try_take(path);
    }
    // Over NFS, flock may not see another host's holder: trust its heartbeat instead.
    if let Some(owner) = read_owner(&file) {
        if owner.host != host_name() && !owner_stale(&owner, path) {
            unlock(&file);
            return Ok(Taken::Held(Some(owner)));
        }
    }
    let mut file = file;
    let json = serde_json::to_vec(&Owner::me())?;
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(&json)?;
    file.sync_all()?;
    let (stop, beat) = heartbeat(&file)?;
    Ok(Taken::Mine(KeyLock {
        path: path.to_path_buf(),
        file,
        stop: Some(stop),
        beat: Some(beat),
    }))
}

/// Refreshes the lock file's mtime every tenth of the window until stopped.
fn heartbeat(file: &File) -> Result<(Sender<()>, std::thread::JoinHandle<()>)> {
    let file = file.try_clone()?;
    let every = (stale_window() / 10).max(Duration::from_millis(100));
    let (stop, stopped) = channel::<()>();
    let beat = std::thread::spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
            let _ = file.set_modified(SystemTime::now());
        }
    });
    Ok((stop, beat))
}

fn owner_stale(owner: &Owner, path: &Path) -> bool {
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or(Duration::MAX);
    is_stale(owner, &host_name(), pid_alive, age, stale_window())
}

fn read_owner(file: &File) -> Option<Owner> {
    let mut text = String::new();
    (&*file).rewind().ok()?;
    (&*file).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// `flock(LOCK_EX | LOCK_NB)`: true when taken, false when another holds it.
fn try_flock(file: &File) -> Result<bool> {
    // SAFETY: flock on an open descriptor.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e).context("flock failed")
    }
}

fn unlock(file: &File) {
    // SAFETY: flock on an open descriptor.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(host: &str) -> Owner {
        Owner {
            host: host.into(),
            pid: 7,
            started: 0,
        }
    }
    const W: Duration = Duration::from_secs(600);

    #[test]
    fn same_host_is_stale_exactly_when_the_pid_is_gone() {
        let fresh = Duration::ZERO;
        assert!(!is_stale(&owner("a"), "a", |_| true, Duration::MAX, W));
        assert!(is_stale(&owner("a"), "a", |_| false, fresh, W));
    }

    #[test]
    fn other_host_is_stale_once_its_heartbeat_is_older_than_the_window() {
        let dead = |_| false;
        assert!(!is_stale(
            &owner("b"),
            "a",
            dead,
            Duration::from_secs(599),
            W
        ));
        assert!(is_stale(
            &owner("b"),
            "a",
            dead,
            Duration::from_secs(601),
            W
        ));
    }

    #[test]
    fn a_second_taker_waits_and_the_file_goes_with_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let lock = try_acquire(&path).unwrap().unwrap();
        assert!(try_acquire(&path).unwrap().is_none());
        let state = inspect(&path).unwrap();
        assert!(state.alive);
        assert_eq!(state.owner.unwrap().pid, std::process::id());
        drop(lock);
        assert!(!path.exists());
        assert!(try_acquire(&path).unwrap().is_some());
    }

    #[test]
    fn a_dead_owners_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Owner { pid, ..Owner::me() };
        std::fs::write(&path, serde_json::to_vec(&dead).unwrap()).unwrap();
        assert!(!inspect(&path).unwrap().alive);
        assert!(try_acquire(&path).unwrap().is_some());
    }
}
