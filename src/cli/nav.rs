//! `sslbench nav tasks/gibson_nav.toml --backbone B.toml --taps res3,res4,res5 --seeds 5`:
//! the short form of `sslbench run` for the navigation task; the flags are the same.

pub use super::run::{run, RunArgs as NavArgs};
