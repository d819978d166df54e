//! The content address of a cache entry.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped whenever the stored layout or the meaning of a key field changes.
pub const FORMAT_VERSION: u32 = 1;

/// Everything that determines the stored features. Two requests with equal keys get the same
/// entry; any change (weights, architecture, tap, pooling, transform, dataset) gets another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    /// Layout version of the entry.
    pub format_version: u32,
    /// Digest of the weights (`sha256:...` of the checkpoint, or `random:seed=N`).
    pub weights: String,
    /// Architecture identity, e.g. `resnet50(w=1,os=32)`.
    pub arch: String,
    /// Tap name.
    pub tap: String,
    /// Pooling, e.g. `avg:10/10/4`, `flat` or `dense`.
    pub pooling: String,
    /// The image transform, as canonical JSON.
    pub transform: String,
    /// Digest of the dataset manifest (image ids and file sizes, classes).
    pub dataset: String,
}

/// The key's fields in a fixed order, for HDF5 attributes and listings.
pub const KEY_FIELDS: [&str; 7] = [
    "format_version",
    "weights",
    "arch",
    "tap",
    "pooling",
    "transform",
    "dataset",
];

impl CacheKey {
    /// The content address: the first 32 hex digits of the sha256 of the key's JSON.
    pub fn digest(&self) -> String {
        let json = serde_json::to_string(self).expect("a key serialises");
        hex::encode(Sha256::digest(json.as_bytes()))[..32].to_string()
    }

    /// The fields as (name, value) strings, in `KEY_FIELDS` order.
    pub fn fields(&self) -> [(&'static str, String); 7] {
        [
            (KEY_FIELDS[0], self.format_version.to_string()),
            (KEY_FIELDS[1], self.weights.clone()),
            (KEY_FIELDS[2], self.arch.clone()),
            (KEY_FIELDS[3], self.tap.clone()),
            (KEY_FIELDS[4], self.pooling.clone()),
            (KEY_FIELDS[5], self.transform.clone()),
            (KEY_FIELDS[6], self.dataset.clone()),
        ]
    }
}
