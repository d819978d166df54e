//! sslbench-ops: the tensor ops below sslbench's trunks, flat like candle-nn's `lib.rs`.
//!
//! Each op is a candle op with its backward (through autograd or, for the engine's kernels
//! to come, a custom op), and keeps a slow, obviously correct reference beside it for the
//! tests, in candle-nn's way (`*_slow`). This crate depends on candle only: it never reads a
//! config and knows no trunk, feature cache or task.

pub mod activation;
pub mod batch_norm;
pub mod conv;
mod conv_cpu;
pub mod element;
pub mod gemm;
mod im2col;
pub mod layout;
pub mod lrn;
pub mod pool;
mod pool_cpu;
#[cfg(test)]
mod testing;

pub use activation::{add_relu, relu};
pub use batch_norm::{batch_norm_train, BatchStats};
pub use conv::{conv2d, conv2d_generic, conv2d_slow, ConvInit, ConvSpec};
pub use layout::{from_channel_major, pad_spatial, to_channel_major};
pub use lrn::local_response_norm;
pub use pool::{avg_pool_padded, global_avg_pool, max_pool2d};
