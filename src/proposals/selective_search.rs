//! Selective search (Uijlings, van de Sande, Gevers & Smeulders, IJCV 2013): class-agnostic
//! object proposals from hierarchical grouping of Felzenszwalb-Huttenlocher segments under
//! several colour spaces, segmentation scales and similarity measures.
//!
//! One module per step: [`colour`] (colour spaces), [`filter`] (Gaussian filtering),
//! [`felzenszwalb`] (the initial segmentation), [`features`] (histograms, sizes, boxes,
//! adjacency), [`grouping`] (the hierarchy), [`search`] (strategies and ranking),
//! [`config`] (parameters), [`dataset`] (a dataset in parallel, resumable).

pub mod colour;
pub mod config;
pub mod dataset;
pub mod features;
pub mod felzenszwalb;
pub mod filter;
pub mod grouping;
pub mod search;

pub use colour::ColourSpace;
pub use config::{SegmentationParams, SelectiveSearchConfig};
pub use dataset::run_dataset;
pub use grouping::Similarity;
pub use search::selective_search;
