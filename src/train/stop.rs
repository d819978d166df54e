//! Stopping a training loop cleanly: SIGTERM (what Slurm sends before a preemption or a time
//! limit, `--signal=TERM@60`) sets a flag that every loop reads once per step; on it the loop
//! saves a checkpoint and returns [`Stopped`], which the command line turns into exit code
//! [`EXIT_REQUEUE`] (the sweep's sbatch scripts requeue the task on it). A [`Cadence`] also
//! asks for a checkpoint every `checkpoint_seconds` besides every N steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The exit code of a run stopped by SIGTERM after its checkpoint: requeue it.
pub const EXIT_REQUEUE: u8 = 75;

static STOP: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

extern "C" fn on_term(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the SIGTERM handler (once per process).
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(
                libc::SIGTERM,
                on_term as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    });
}

/// Whether SIGTERM has arrived.
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The error a loop returns after checkpointing on SIGTERM.
#[derive(Debug)]
pub struct Stopped {
    /// The steps done (the checkpoint's).
    pub step: usize,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "stopped by SIGTERM after step {} (checkpoint saved; rerun to continue)",
            self.step
        )
    }
}

impl std::error::Error for Stopped {}

/// When a loop checkpoints: every `every` steps, every `seconds` of wall time (0: never),
/// at the last step, and on SIGTERM.
pub struct Cadence {
    every: usize,
    seconds: f64,
    last: Instant,
}

impl Cadence {
    /// The cadence of a loop; installs the SIGTERM handler.
    pub fn new(every: usize, seconds: f64) -> Cadence {
        install();
        Cadence {
            every: every.max(1),
            seconds,
            last: Instant::now(),
        }
    }

    /// Whether to checkpoint after `done` of `total` steps (restarts the timer when so).
    pub fn due(&mut self, done: usize, total: usize) -> bool {
        let timer =
            self.seconds > 0.0 && self.last.elapsed() >= Duration::from_secs_f64(self.seconds);
        let due = done.is_multiple_of(self.every) || done == total || timer || requested();
        if due {
            self.last = Instant::now();
        }
        due
    }

    /// After a checkpoint at `done`: the [`Stopped`] error when SIGTERM has arrived.
    pub fn check(&self, done: usize) -> anyhow::Result<()> {
        if requested() {
            return Err(Stopped { step: done }.into());
        }
        Ok(())
    }
}
