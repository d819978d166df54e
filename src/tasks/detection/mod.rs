//! Fast R-CNN with a frozen conv body (Goyal et al. 2019, section 5 of protocols.md): VOC07 and
//! VOC07+12 detection with RoI heads (res5 + classifier + box regression) on cached res4 maps.

pub mod batches;
pub mod blob;
pub mod draw;
pub mod roidb;
pub mod sampling;
pub mod voc_eval;
pub mod voc_results;

/// The sections a detection task file reads.
pub const SECTIONS: &[&str] = &["detection"];
