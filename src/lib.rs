//! sslbench: the downstream benchmark suite of Goyal et al. (ICCV 2019) for frozen
//! self-supervised vision backbones, with one shared feature cache.

pub mod atomic;
pub mod backbone;
pub mod cli;
pub mod config;
pub mod data;
pub mod features;
pub mod linear;
pub mod metrics;
pub mod pretext;
pub mod progress;
pub mod report;
pub mod seed;
pub mod tasks;
pub mod train;
