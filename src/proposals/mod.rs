//! Region proposals: selective search and the proposal files of Detectron and py-faster-rcnn.

pub mod file;
pub mod selective_search;

pub use selective_search::{run_dataset, selective_search, SelectiveSearchConfig};
