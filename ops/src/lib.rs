//! sslbench-ops: the tensor ops below sslbench's trunks, flat like candle-nn's `lib.rs`.
//!
//! Each op is a candle op with its backward. On the CPU, in f32 and f64, it runs the engine's
//! kernels as candle custom ops (`conv_cpu`, `im2col`, `pool_cpu`, [`batch_norm`], [`lrn`],
//! [`activation`], all over [`gemm::matmul`]); on other devices it runs candle ops (`*_generic`,
//! which also keep CUDA working). The RoI ops and the dense resampling ops of the normals
//! decoder ([`adaptive_pool`], [`resize`]) have CPU and CUDA kernels of their own; channel
//! dropout ([`dropout`]) is candle ops. Each kernel is tested against a slow, obviously
//! correct reference or the candle-op path under autograd (`*_slow`, `*_generic`), in
//! candle-nn's way.
//!
//! Every kernel gives each output element to one thread and sums in an order fixed by the
//! shapes alone, so results do not depend on the thread count or on the CPU's cache sizes.
//!
//! This crate depends on candle, gemm and rayon only: it never reads a config and knows no
//! trunk, feature cache or task.

pub mod activation;
pub mod adaptive_pool;
pub mod batch_norm;
pub mod boxes;
pub mod conv;
mod conv_cpu;
mod custom;
pub mod dropout;
pub mod element;
pub mod gemm;
mod im2col;
pub mod layout;
pub mod lrn;
mod matmul_op;
pub mod pool;
mod pool_cpu;
mod resample;
pub mod resize;
pub mod roi_align;
mod roi_common;
pub mod roi_pool;
#[cfg(test)]
mod testing;

pub use activation::{add_relu, relu};
pub use adaptive_pool::{adaptive_avg_pool2d, adaptive_avg_pool2d_slow};
pub use batch_norm::{batch_norm_train, BatchStats};
pub use conv::{conv2d, conv2d_generic, conv2d_slow, ConvInit, ConvSpec};
pub use dropout::{apply_channel_mask, Dropout2d};
pub use layout::{from_channel_major, pad_spatial, to_channel_major};
pub use lrn::local_response_norm;
pub use matmul_op::mm;
pub use pool::{avg_pool_padded, global_avg_pool, max_pool2d};
pub use resize::{resize_bilinear, resize_bilinear_slow};
pub use roi_align::roi_align;
pub use roi_pool::roi_pool;
