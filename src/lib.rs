//! sslbench: the downstream benchmark suite of Goyal et al. (ICCV 2019) for frozen
//! self-supervised vision backbones, with one shared feature cache.
//!
//! # The house, bottom-up
//!
//! - `sslbench_ops` (the `ops/` crate, candle only): convolution with its slow reference,
//!   the channel-major layout, pools; the engine's kernels, RoI ops, adaptive pooling and
//!   resize go there too. `sslbench_envs` (the `envs/` crate, no candle): environments.
//! - Ground floor: [`config`] (TOML, `base =`, `--set`, the shipped task files), [`atomic`]
//!   (atomic writes, file digests), [`lock`] (the cache's per-key locks), [`h5`] (HDF5 files
//!   opened without HDF5's own locks), [`seed`] (the
//!   seeded streams), [`progress`] (the one progress bar), [`metrics`] (AP, top-k).
//! - [`data`] (dataset SPECs, decoding, transforms), [`train`] (the one training kit: run
//!   folder and resume guard, checkpoints, CSV log, prefetcher, optimisers, schedules,
//!   parameters, the `[run]` section).
//! - [`backbone`] (trunks by published names over `ops`, frozen or trainable).
//! - [`features`] (extraction into the content-addressed cache), [`linear`] (SVM, the SVM
//!   protocol and its low-shot chains, probes), [`report`] (results JSON, tables, plots).
//! - [`pretext`] (Jigsaw, Colorization, Rotation training) and [`tasks`] (one module per task
//!   kind, named after it: `features`, `svm`, `lowshot`, `linear_probe`, `navigation`; the
//!   typed header, the registry, the shared setup).
//! - [`sweep`] (every task on every backbone of a sweep file), then [`cli`] (flags only).
//!
//! # What must never happen
//!
//! 1. Nothing below `tasks/` imports `tasks/` (linear, train, features, backbone, ops, data,
//!    report, config and the ground floor), and no task imports another task: what two tasks
//!    share goes down a floor.
//! 2. `ops` imports only candle (and the engine's libraries); it never reads a config and
//!    knows no trunk, feature cache or task. `backbone` imports `ops`, never the reverse.
//! 3. `train/` never imports `report/`, `features/` or a task.
//! 4. No task builds ResNet blocks or loads a checkpoint itself: trunks and their stages come
//!    from `backbone/`, cached maps through `tasks::Setup` and `features/`.
//! 5. The CLI holds no protocol logic: no precedence, no dispatch table, no result assembly.
//! 6. The report never reads a task's `details` JSON by key: tasks hand it typed tables.
//! 7. There is never a second seed mixer, progress bar, atomic writer, CSV log, resume guard
//!    or prefetcher.
//! 8. No protocol number is a literal in code: each sits in `tasks/*.toml` with the paper's
//!    value.

pub mod atomic;
pub mod backbone;
pub mod cli;
pub mod config;
pub mod data;
pub mod features;
pub mod h5;
pub mod linear;
pub mod lock;
pub mod metrics;
pub mod pretext;
pub mod progress;
pub mod proposals;
pub mod report;
pub mod seed;
pub mod sweep;
pub mod tasks;
pub mod train;
