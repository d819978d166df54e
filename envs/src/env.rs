//! The environment interface: gym's `reset(seed)` / `step(action)` in Rust types.

use std::collections::BTreeMap;

use crate::{EnvError, Spaces};

/// An RGB frame: `height x width x 3` bytes, row-major, channels last (gym's layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// `height * width * 3` bytes, RGB, row by row.
    pub data: Vec<u8>,
}

impl Frame {
    /// The pixel at (`y`, `x`) as `[r, g, b]`.
    pub fn pixel(&self, y: usize, x: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

/// One observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The first-person RGB frame.
    pub rgb: Frame,
    /// Metric depth, `height x width`, when the space declares it.
    pub depth: Option<Vec<f32>>,
    /// A goal vector (e.g. the target's relative position), when the space declares it.
    pub goal: Option<Vec<f32>>,
}

/// Side information of a step: whether the target was reached, plus any numeric extras the
/// environment reports (distance to target, position, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    /// The episode reached its target (the success-rate numerator).
    pub success: bool,
    /// Numeric extras by name.
    pub values: BTreeMap<String, f64>,
}

/// What `step` returns (gymnasium's five-tuple).
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The observation after the action.
    pub observation: Observation,
    /// The reward for the action.
    pub reward: f64,
    /// The episode ended in a terminal state (target reached, or failure).
    pub terminated: bool,
    /// The episode was cut by the time limit; the state is not terminal.
    pub truncated: bool,
    /// Side information.
    pub info: Info,
}

/// An environment: the built-in one, or a simulator behind the bridge.
pub trait Env: Send {
    /// The spaces, fixed for the environment's life.
    fn spaces(&self) -> &Spaces;

    /// Starts a new episode. The same seed gives the same episode (layout, start, target);
    /// `None` continues the environment's own random stream.
    fn reset(&mut self, seed: Option<u64>) -> Result<Observation, EnvError>;

    /// Takes one action. After an episode ends, `step` fails with [`EnvError::NeedsReset`].
    fn step(&mut self, action: usize) -> Result<Transition, EnvError>;

    /// A short description for logs ("builtin:train", "vizdoom:my_way_home via unix:...").
    fn describe(&self) -> String;
}
