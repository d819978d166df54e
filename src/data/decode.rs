//! Image decoding, alone and in parallel batches through a [`TransformConfig`].

use std::path::{Path, PathBuf};

use image::{ImageReader, RgbImage};
use rayon::prelude::*;

use super::{TransformConfig, TransformError};

/// Why one image could not become a backbone input.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file does not exist.
    #[error(
        "image {} is missing: restore it (or fix the dataset root), or pass \
         --set data.skip_bad_images=true to skip and record it",
        path.display()
    )]
    Missing {
        /// The image path.
        path: PathBuf,
    },
    /// The file exists but cannot be read or decoded.
    #[error(
        "cannot decode image {}: {reason}; re-download it, or pass \
         --set data.skip_bad_images=true to skip and record it",
        path.display()
    )]
    Corrupt {
        /// The image path.
        path: PathBuf,
        /// The reader's or decoder's message.
        reason: String,
    },
    /// The decoded image does not fit the transform.
    #[error("cannot transform image {}: {source}", path.display())]
    Transform {
        /// The image path.
        path: PathBuf,
        /// What the transform rejected.
        source: TransformError,
    },
}

/// Decodes an image file (format sniffed from its bytes) to 8-bit RGB: grey is replicated,
/// alpha dropped and 16-bit samples scaled to 8 bits, as PIL's `convert("RGB")` does.
/// EXIF orientation is not applied (neither PIL nor torchvision apply it).
pub fn decode(path: &Path) -> Result<RgbImage, ImageError> {
    let corrupt = |reason: String| ImageError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let reader = ImageReader::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ImageError::Missing {
            path: path.to_owned(),
        },
        _ => corrupt(e.to_string()),
    })?;
    let image = reader
        .with_guessed_format()
        .map_err(|e| corrupt(e.to_string()))?
        .decode()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(image.into_rgb8())
}

/// Decodes and transforms `paths` in parallel (rayon); one result per path, in order.
pub fn decode_batch(paths: &[&Path], tf: &TransformConfig) -> Vec<Result<Vec<f32>, ImageError>> {
    paths
        .par_iter()
        .map(|path| {
            tf.apply(&decode(path)?)
                .map_err(|source| ImageError::Transform {
                    path: path.to_path_buf(),
                    source,
                })
        })
        .collect()
}
