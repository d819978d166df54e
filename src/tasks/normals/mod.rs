//! Surface normals on NYUv2 (protocols.md section 6, research/normals.md): normals computed
//! from depth for users without a ground-truth set ([`geometry`], [`from_depth`]), the
//! 40-cluster codebook and its labels ([`codebook`]), the paper's evaluation ([`metrics`]),
//! and normals from depth written as HDF5 files ([`export`]).

pub mod codebook;
pub mod export;
pub mod from_depth;
pub mod geometry;
pub mod metrics;
