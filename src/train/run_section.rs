//! The `[run]` sections of the trainable tasks: navigation's (seeds, checkpoint cadence,
//! logging and resume), and the resume flag alone of detection and normals, whose cadence
//! lives in their `[train]`, and the checkpoint cadence of the linear probes.

use serde::{Deserialize, Serialize};

/// `[run]`: seeds, checkpoints, logging.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Independent runs per tap (seeds 0..seeds).
    pub seeds: usize,
    /// Checkpoint every this many steps (PPO updates for navigation).
    pub checkpoint_every: usize,
    /// Also checkpoint every this many seconds (0: only every `checkpoint_every`); a SIGTERM
    /// always checkpoints before the run stops.
    #[serde(default)]
    pub checkpoint_seconds: f64,
    /// Checkpoints kept per run.
    pub keep_checkpoints: usize,
    /// Curve resolution: steps are averaged in windows of this many.
    pub log_every: usize,
    /// Continue each run from its last checkpoint (`sslbench run --resume`).
    #[serde(default)]
    pub resume: bool,
}

/// `[run]` of detection and normals: the run folder.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResumeSection {
    /// Continue from the latest checkpoint (`sslbench run --resume`).
    pub resume: bool,
}

/// `[run]` of the linear probes: the checkpoint cadence and resume of a run folder whose
/// seed and logging live in the task's own section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSection {
    /// Checkpoint every this many iterations (FAIR's `CHECKPOINT_PERIOD`).
    pub checkpoint_every: usize,
    /// Also checkpoint every this many seconds (0: only every `checkpoint_every`); a SIGTERM
    /// always checkpoints before the run stops.
    #[serde(default)]
    pub checkpoint_seconds: f64,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
    /// Continue from the latest checkpoint (`sslbench run --resume`; a sweep's cells set it).
    #[serde(default)]
    pub resume: bool,
}
