//! The one training kit of every loop that trains (pretext training, navigation agents, the
//! linear probes, and the detection and surface-normal tasks to come): the parameter
//! registry, optimisers, learning-rate schedules, atomic checkpoints behind one resume guard,
//! the shared `[run]` section, one CSV log over a row type (with its TensorBoard events),
//! and the batch-ahead prefetcher.
//! It imports nothing above it: no report, no features, no task.

pub mod checkpoint;
pub mod log;
pub mod optim;
pub mod params;
pub mod prefetch;
pub mod run_dir;
pub mod run_section;
pub mod schedule;
pub mod stop;
pub mod tensorboard;
