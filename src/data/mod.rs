//! Datasets in their published layouts, and the image pipeline that feeds a backbone.
//!
//! A dataset is named by a SPEC string (see [`open`]); every reader yields the same
//! [`Dataset`]: an ordered list of [`Sample`]s with their targets, and the class list.

pub mod augment;
pub mod coco;
pub mod decode;
pub mod imagefolder;
pub mod list;
pub mod mat5;
pub mod npy;
pub mod nyuv2;
pub mod pickle;
pub mod transform;
pub mod voc;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

pub use decode::{decode, decode_batch, ImageError};
pub use transform::{ChannelOrder, Crop, Resize, TransformConfig, TransformError};
pub use voc::VocObject;

/// One image of a dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Stable identifier: the VOC image id, the COCO `file_name`, or the path relative to the
    /// dataset root for ImageFolder trees and list files.
    pub id: String,
    /// Where the image lies on disk.
    pub path: PathBuf,
    /// Single-label sets: `[class index]`. Multi-label sets (VOC, COCO): one entry per class,
    /// 1 present, -1 absent, 0 difficult-only (VOC).
    pub target: Vec<i32>,
}

/// An ordered, labelled set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The SPEC string it was opened from.
    pub spec: String,
    /// Class names; target indices and target positions refer to this list.
    pub classes: Vec<String>,
    /// The images, in the dataset's canonical order.
    pub samples: Vec<Sample>,
    /// VOC boxes per image (parallel to `samples`), kept for detection; `None` for other sets.
    pub objects: Option<Vec<Vec<VocObject>>>,
}

/// The SPEC forms, for error messages.
const SPEC_FORMS: &str = "imagefolder:DIR, voc:ROOT:SPLIT, coco:ANNOTATIONS.json:IMAGES_DIR \
                          or list:FILE:ROOT";

/// Opens a dataset from its SPEC:
///
/// - `imagefolder:DIR`: `DIR/<class>/<image>`, classes = sorted sub-folder names;
/// - `voc:ROOT:SPLIT`: a VOC year folder (e.g. `VOCdevkit/VOC2007`) and an `ImageSets/Main` split;
/// - `coco:ANNOTATIONS.json:IMAGES_DIR`: COCO instances JSON, multi-label presence;
/// - `list:FILE:ROOT`: lines `relative/path label` (Places205 / ImageNet lists).
///
/// The kind ends at the first ':'; the two-part forms split the rest at the last ':'.
/// `classes` replaces the default class list (VOC: the 20 standard classes; COCO: the
/// categories sorted by id; ImageFolder: the sub-folders; lists: the label numbers).
pub fn open(spec: &str, classes: Option<Vec<String>>) -> Result<Dataset> {
    let (kind, rest) = spec
        .split_once(':')
        .with_context(|| format!("dataset spec '{spec}' has no kind: use {SPEC_FORMS}"))?;
    let two = |what: &str| {
        rest.rsplit_once(':')
            .filter(|(a, b)| !a.is_empty() && !b.is_empty())
            .with_context(|| format!("dataset spec '{spec}' must be {kind}:{what}"))
    };
    let mut dataset = match kind {
        "imagefolder" => imagefolder::load(Path::new(rest), classes)?,
        "voc" => {
            let (root, split) = two("ROOT:SPLIT")?;
            voc::load(Path::new(root), split, classes)?
        }
        "coco" => {
            let (annotations, images) = two("ANNOTATIONS.json:IMAGES_DIR")?;
            coco::load(Path::new(annotations), Path::new(images), classes)?
        }
        "list" => {
            let (file, root) = two("FILE:ROOT")?;
            list::load(Path::new(file), Path::new(root), classes)?
        }
        _ => bail!("unknown dataset kind '{kind}' in spec '{spec}': use {SPEC_FORMS}"),
    };
    dataset.spec = spec.to_owned();
    Ok(dataset)
}

impl Dataset {
    /// A reader's result before [`open`] records the spec.
    fn new(classes: Vec<String>, samples: Vec<Sample>) -> Self {
        Dataset {
            spec: String::new(),
            classes,
            samples,
            objects: None,
        }
    }

    /// SHA-256 (hex) over the class list and, for every sample in order, its id and file size
    /// in bytes: a cheap fingerprint of the data for feature-cache keys, independent of where
    /// the dataset lies. A missing image file is an error naming it.
    pub fn manifest_digest(&self) -> Result<String> {
        let mut hash = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        for class in &self.classes {
            field(class.as_bytes());
        }
        for sample in &self.samples {
            let size = std::fs::metadata(&sample.path)
                .with_context(|| {
                    format!(
                        "image {} of dataset '{}' is missing: restore it, or fix the dataset root",
                        sample.path.display(),
                        self.spec
                    )
                })?
                .len();
            field(sample.id.as_bytes());
            field(&size.to_le_bytes());
        }
        Ok(hex::encode(hash.finalize()))
    }
}

/// Reads a text file, with an error naming it and what to check.
fn read_text(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {what} {}: check the dataset path and layout",
            path.display()
        )
    })
}
