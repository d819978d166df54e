//! NYU Depth v2 in the files users have: the official `nyu_depth_v2_labeled.mat` (MATLAB v7.3,
//! i.e. HDF5), `splits.mat`, the 40-centre normals codebook `vocab40.mat`, and the ground-truth
//! normals the paper's code reads (`all_normals.pklz`) or that other codes read (per-image
//! `.mat` files with `nx`, `ny`, `nz`, `depthValid`; Ladicky's PNGs with separate masks).
//!
//! Every ground-truth reader yields a [`NormalsMap`]; [`NormalsImage::pair`] joins one with its
//! RGB frame from the labelled set. Arrays are in the usual orientation, rows first: an image is
//! H x W x 3 `u8`, a depth map H x W `f32` in metres, a normals map H x W x 3 `f32` in the
//! codebook's frame, a mask H x W `bool`. NYU indices are 1-based, as in `splits.mat` and the
//! file names; positions in the labelled file are 0-based.

mod ground_truth;
mod labeled;
mod splits;
mod vocab;

pub use ground_truth::{read_normals_mat, read_normals_png, AllNormals, UNIT_TOLERANCE};
pub use labeled::{DepthSource, LabeledMat};
pub use splits::Splits;
pub use vocab::read_vocab_centres;

use anyhow::{bail, Context, Result};
use ndarray::{Array2, Array3};
use std::path::Path;

/// One image's ground-truth normals, as a reader returns them.
#[derive(Clone, Debug, PartialEq)]
pub struct NormalsMap {
    /// The name the source gives the image: the pklz's `all_filenames` entry (e.g. `000001`)
    /// or the file stem (`000001`, `nm_000001`, `00001`).
    pub name: String,
    /// The 1-based NYU index, the first number in the name.
    pub index: usize,
    /// Unit normals (nx, ny, nz), H x W x 3; pixels outside the mask hold whatever the file
    /// holds there.
    pub normals: Array3<f32>,
    /// Where the normal is ground truth (`depthValid` != 0, or the PNG mask).
    pub valid: Array2<bool>,
}

/// One labelled frame with its ground truth: what training and evaluation read.
#[derive(Clone, Debug, PartialEq)]
pub struct NormalsImage {
    /// The 1-based NYU index.
    pub index: usize,
    /// The ground truth's name for the image.
    pub name: String,
    /// The RGB frame, H x W x 3.
    pub rgb: Array3<u8>,
    /// Unit normals, H x W x 3.
    pub normals: Array3<f32>,
    /// The valid mask, H x W.
    pub valid: Array2<bool>,
}

impl NormalsImage {
    /// The frame of `labeled` that `gt` names (by its NYU index), with `gt`'s normals; a
    /// size mismatch is an error naming both files.
    pub fn pair(labeled: &LabeledMat, gt: NormalsMap) -> Result<NormalsImage> {
        if gt.index == 0 || gt.index > labeled.len() {
            bail!(
                "ground truth '{}' has NYU index {}, outside the {} frames of {}: \
                 use the labelled file the ground truth was made from",
                gt.name,
                gt.index,
                labeled.len(),
                labeled.path().display()
            );
        }
        let rgb = labeled.image(gt.index - 1)?;
        let (h, w) = gt.valid.dim();
        if rgb.dim() != (h, w, 3) {
            bail!(
                "ground truth '{}' is {h}x{w} but frame {} of {} is {}x{}: \
                 pair ground truth and images of the same size",
                gt.name,
                gt.index,
                labeled.path().display(),
                rgb.dim().0,
                rgb.dim().1
            );
        }
        Ok(NormalsImage {
            index: gt.index,
            name: gt.name,
            rgb,
            normals: gt.normals,
            valid: gt.valid,
        })
    }
}

/// The first run of decimal digits in `name`, as a 1-based NYU index.
fn nyu_index(name: &str, file: &Path) -> Result<usize> {
    let digits: String = name
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let index: usize = digits.parse().with_context(|| {
        format!(
            "image name '{name}' in {} holds no NYU index: name the images by their \
             1-based NYU index (000001, nm_000001, 00001)",
            file.display()
        )
    })?;
    if index == 0 {
        bail!(
            "image name '{name}' in {} gives NYU index 0, but NYU indices start at 1",
            file.display()
        );
    }
    Ok(index)
}
