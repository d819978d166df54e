//! Image decoding, alone and in parallel batches through a [`TransformConfig`].

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageFormat, ImageReader, RgbImage};
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
/// alpha dropped, 16-bit samples rounded to 8 bits (PIL keeps the high byte: at most one level
/// apart). EXIF orientation is not applied (neither PIL nor torchvision apply it). A JPEG cut
/// short is an error, as in PIL, although the decoder would fill the missing part with grey.
pub fn decode(path: &Path) -> Result<RgbImage, ImageError> {
    let corrupt = |reason: String| ImageError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ImageError::Missing {
            path: path.to_owned(),
        },
        _ => corrupt(e.to_string()),
    })?;
    let reader = ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| corrupt(e.to_string()))?;
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_reaches_end(&bytes) {
        return Err(corrupt(
            "the JPEG data stops before its end-of-image marker (truncated)".into(),
        ));
    }
    let image = reader.decode().map_err(|e| corrupt(e.to_string()))?;
    Ok(image.into_rgb8())
}

/// Whether a JPEG stream reaches its end-of-image marker: segments are skipped by their
/// length, entropy-coded data (where 0xFF is always followed by 0x00 or a restart marker) and
/// stray bytes are scanned, as libjpeg's marker reader does.
fn jpeg_reaches_end(bytes: &[u8]) -> bool {
    let mut i = 2; // past the start-of-image marker
    while i + 1 < bytes.len() {
        i += match (bytes[i], bytes[i + 1]) {
            (0xFF, 0xD9) => return true,
            (0xFF, 0xFF) => 1,                      // fill byte
            (0xFF, 0x00 | 0x01 | 0xD0..=0xD7) => 2, // stuffing, TEM, restart: no length
            (0xFF, _) => match bytes.get(i + 2..i + 4) {
                Some(&[hi, lo]) => 2 + usize::from(u16::from_be_bytes([hi, lo])),
                _ => return false,
            },
            _ => 1,
        };
    }
    false
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
