//! Feature extraction into one content-addressed cache: a frozen trunk is computed once.

pub mod dense;
pub mod derived;
pub mod extract;
pub mod key;
pub mod leftovers;
pub mod partial;
pub mod pooling;
pub mod store;

pub use extract::{get_or_extract, ExtractConfig, Extracted};
pub use key::CacheKey;
pub use store::{verify, Entry, FeatureStore};
