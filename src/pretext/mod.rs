//! Self-supervised pretext tasks (protocols.md section 8): the data-side machinery that turns
//! images into pretext inputs and targets, and predictions back into images.

pub mod ab_bins;
pub mod lab;
pub mod permutations;
