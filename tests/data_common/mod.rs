//! Helpers shared by the `data_*` integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};

use sslbench::data::{ChannelOrder, Crop, Resize, TransformConfig};

/// `data/samples/<sub>`, fetched by `data-scripts/fetch_samples.sh`; fails loudly when absent.
pub fn samples(sub: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/samples")
        .join(sub);
    assert!(
        path.exists(),
        "{} is missing: run `bash data-scripts/fetch_samples.sh` first",
        path.display()
    );
    path
}

/// Copies a directory tree (the sample sets are a few files).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A tempdir holding a copy of the labelme VOC sample set.
pub fn voc_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&samples("labelme-voc"), dir.path());
    dir
}

/// Strings from string literals.
pub fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// torchvision's ImageNet evaluation transform: Resize(256), CenterCrop(224), ToTensor,
/// Normalize.
pub fn imagenet_center() -> TransformConfig {
    TransformConfig {
        resize: Resize::Shorter(256),
        crop: Crop::Center,
        size: 224,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        pixel_scale: 1.0 / 255.0,
        channel_order: ChannelOrder::Rgb,
    }
}
