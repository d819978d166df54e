//! Self-supervised pretext tasks (protocols.md section 8): Jigsaw, Colorization and Rotation.
//! The data side turns images into pretext inputs and targets (and predictions back into
//! images); the model side puts a head on a trainable trunk; [`run`] trains it along the
//! paper's three axes and writes a checkpoint the benchmarks load as it is.

pub mod ab_bins;
pub mod batch;
pub mod colorize;
pub mod config;
pub mod evaluate;
pub mod jigsaw;
pub mod lab;
pub mod loader;
pub mod log;
pub mod model;
pub mod permutations;
mod preview;
pub mod rotation;
pub mod run;
