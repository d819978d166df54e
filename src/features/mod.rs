//! Feature extraction into one content-addressed cache: a frozen trunk is computed once.

pub mod extract;
pub mod key;
pub mod partial;
pub mod pooling;
pub mod store;

pub use extract::{get_or_extract, ExtractConfig, Extracted};
pub use key::CacheKey;
pub use store::{verify, Entry, FeatureStore};

/// The shipped extraction protocol (`tasks/extract.toml`), embedded in the binary.
pub const DEFAULT_EXTRACT_TOML: &str = include_str!("../../tasks/extract.toml");

/// The shipped extraction protocol as a TOML document.
pub fn default_extract_doc() -> toml::Table {
    crate::config::parse_table(DEFAULT_EXTRACT_TOML).expect("tasks/extract.toml is valid TOML")
}
