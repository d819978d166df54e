//! Surface normals on NYUv2 (protocols.md section 6, research/normals.md): normals computed
//! from depth for users without a ground-truth set ([`geometry`], [`from_depth`]), the
//! 40-cluster codebook and its labels ([`codebook`]), the paper's evaluation ([`metrics`]),
//! normals from depth written as HDF5 files ([`export`]); the PSPNet task on cached res4 maps:
//! [`config`], [`dataset`], [`labels`], [`maps`], [`model`], [`train`], and the task that runs
//! them.

pub mod codebook;
pub mod config;
pub mod dataset;
pub mod export;
pub mod from_depth;
pub mod geometry;
pub mod labels;
pub mod maps;
pub mod metrics;
pub mod model;
pub mod supervision_file;
mod task;
pub mod train;

pub use config::{NormalsConfig, SECTIONS};
pub use task::run;
