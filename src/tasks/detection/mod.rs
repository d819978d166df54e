//! Fast R-CNN with a frozen conv body (Goyal et al. 2019, section 5 of protocols.md): VOC07 and
//! VOC07+12 detection with RoI heads (res5 + classifier + box regression) on cached res4 maps.
//!
//! Bottom-up: [`roidb`] (ground truth and proposals as Detectron merges them), [`blob`] (the
//! image as the trunk sees it), [`maps`] (the frozen body's maps in the feature cache),
//! [`sampling`] (64 RoIs per image), [`head`] (the C4 model), [`train`] (Detectron's
//! solver), [`infer`] (test-time detection), [`voc_eval`] and [`voc_results`] (the devkit's
//! AP and files), [`draw`], and [`task`], which runs them.

pub mod batches;
pub mod blob;
pub mod config;
pub mod draw;
pub mod head;
pub mod infer;
pub mod maps;
pub mod roidb;
pub mod sampling;
mod task;
pub mod train;
pub mod voc_eval;
pub mod voc_results;

pub use config::{DetectionConfig, SECTIONS};
pub use task::run;
