//! Normals computed from the depth of NYUv2's labelled set, written as one HDF5 file that h5py
//! reads, for users who want them as files (`sslbench normals from-depth`).
//!
//! The file holds `normals` (N, H, W, 3) `float32`, 0 where not valid; `valid` (N, H, W)
//! `uint8`, 1 where the normal is valid; `index` (N,) `uint32`, the 1-based NYU frame numbers.
//! Its attributes state how they were made: `method`, `window`, `min_points`, `fx`, `fy`, `cx`,
//! `cy`, `pixel_origin`, `crop` (`[top, left, height, width]`, 0-based; absent without a crop),
//! `frame`, `depth_source`, `mask_source`, `source` (the labelled file's name) and `software`.
//! Datasets are chunked one frame a chunk, shuffled and deflated (when the HDF5 library has
//! deflate), without timestamps: the same inputs give the same bytes.

use super::from_depth::{NormalFrame, NormalsFromDepth, SurfaceNormals};
use crate::atomic::write_atomic_with;
use crate::data::nyuv2::{DepthSource, LabeledMat};
use crate::features::store::write_attr;
use anyhow::{bail, Context, Result};
use ndarray::{s, Array1};
use std::ops::RangeInclusive;
use std::path::Path;

/// The `method` attribute: what [`NormalsFromDepth`] computes.
pub const METHOD: &str = "computed from depth (window PCA): back-projection with the \
                          intrinsics, per pixel the smallest-eigenvalue eigenvector of the \
                          covariance of the valid points of a window x window square, oriented \
                          toward the camera; not Ladicky's ground truth";

/// What `sslbench normals from-depth` computes, and from which frames.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NormalsExport {
    /// The plane fit: window, minimum points, intrinsics, crop, output frame.
    pub fit: NormalsFromDepth,
    /// The depth map the geometry comes from; the mask also needs `rawDepths` when the file
    /// holds it.
    pub depth_source: DepthSource,
    /// The 1-based NYU frame numbers to export, both ends included; `None`: every frame.
    pub frames: Option<RangeInclusive<usize>>,
}

/// What [`NormalsExport::write`] wrote.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exported {
    /// Frames written.
    pub frames: usize,
    /// The fraction of their pixels with a valid normal.
    pub valid_fraction: f64,
}

impl NormalsExport {
    /// The 1-based NYU frame numbers to export from `mat`; a range outside its frames is an
    /// error naming the file.
    pub fn indices(&self, mat: &LabeledMat) -> Result<Vec<usize>> {
        if mat.is_empty() {
            bail!(
                "{} holds no frames: give the labelled set with its frames",
                mat.path().display()
            );
        }
        let all = 1..=mat.len();
        let Some(frames) = &self.frames else {
            return Ok(all.collect());
        };
        if frames.is_empty() || *frames.start() == 0 || *frames.end() > mat.len() {
            bail!(
                "frames {}..{} are not within the {} frames of {}: give 1-based frame numbers \
                 A..B with 1 <= A <= B <= {}",
                frames.start(),
                frames.end(),
                mat.len(),
                mat.path().display(),
                mat.len()
            );
        }
        Ok(frames.clone().collect())
    }

    /// The normals of frame `index` (1-based) of `mat`: the geometry from
    /// [`NormalsExport::depth_source`], masked by `rawDepths` when the file holds it.
    pub fn frame(&self, mat: &LabeledMat, index: usize) -> Result<SurfaceNormals> {
        if index == 0 {
            bail!(
                "frame numbers are 1-based; 0 is not a frame of {}",
                mat.path().display()
            );
        }
        let i = index - 1;
        let depth = mat.depth_from(self.depth_source, i)?;
        let raw = if mat.has_raw_depths() {
            Some(mat.raw_depth(i)?)
        } else {
            None
        };
        self.fit
            .compute(depth.view(), raw.as_ref().map(|r| r.view()))
            .with_context(|| format!("frame {index} of {}", mat.path().display()))
    }

    /// Computes the chosen frames of `mat` and writes them to `out` (a temporary sibling, then
    /// renamed: `out` is never seen half written), with a progress bar.
    pub fn write(&self, mat: &LabeledMat, out: &Path) -> Result<Exported> {
        self.fit.check()?;
        if let Some(crop) = &self.fit.crop {
            crop.check_fits(mat.height(), mat.width())
                .with_context(|| {
                    format!(
                    "the frames of {} are {} x {}: choose a projection crop inside them, or none",
                    mat.path().display(),
                    mat.height(),
                    mat.width()
                )
                })?;
        }
        let indices = self.indices(mat)?;
        let mut valid_pixels = 0u64;
        write_atomic_with(out, |tmp| {
            valid_pixels = self.write_file(mat, &indices, tmp)?;
            Ok(())
        })
        .with_context(|| format!("cannot write the normals file {}", out.display()))?;
        let pixels = (indices.len() * mat.height() * mat.width()).max(1);
        Ok(Exported {
            frames: indices.len(),
            valid_fraction: valid_pixels as f64 / pixels as f64,
        })
    }

    /// Writes the file at `tmp`; returns the number of valid pixels.
    fn write_file(&self, mat: &LabeledMat, indices: &[usize], tmp: &Path) -> Result<u64> {
        let (n, h, w) = (indices.len(), mat.height(), mat.width());
        let file = crate::h5::create(tmp).with_context(|| {
            format!(
                "cannot create {}: check that the output folder exists and is writable",
                tmp.display()
            )
        })?;
        let normals = frames_dataset::<f32>(&file, "normals", &[n, h, w, 3])?;
        let valid = frames_dataset::<u8>(&file, "valid", &[n, h, w])?;
        let numbers = Array1::from_iter(indices.iter().map(|&i| i as u32));
        file.new_dataset_builder()
            .obj_track_times(false)
            .with_data(&numbers)
            .create("index")?;
        self.write_attrs(&file, mat)?;
        let bar = crate::progress::bar(n as u64, "normals from depth", "frames");
        let mut valid_pixels = 0u64;
        for (k, &index) in indices.iter().enumerate() {
            bar.set_message(format!("frame {index}"));
            let fit = self.frame(mat, index)?;
            let mask = fit.valid.mapv(u8::from);
            valid_pixels += mask.iter().map(|&v| v as u64).sum::<u64>();
            normals.write_slice(&fit.normals, s![k, .., .., ..])?;
            valid.write_slice(&mask, s![k, .., ..])?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(valid_pixels)
    }

    /// The attributes that state how the normals were made.
    fn write_attrs(&self, file: &hdf5::File, mat: &LabeledMat) -> Result<()> {
        let fit = &self.fit;
        let source = mat
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let frame = match fit.frame {
            NormalFrame::Camera => "camera: x right, y down, z forward (OpenCV)",
            NormalFrame::Codebook => "codebook: x right, y up, z toward the viewer",
        };
        let mask_source = if mat.has_raw_depths() {
            "rawDepths"
        } else {
            self.depth_source.name()
        };
        for (name, value) in [
            ("method", METHOD),
            ("frame", frame),
            ("depth_source", self.depth_source.name()),
            ("mask_source", mask_source),
            ("source", &source),
            ("software", concat!("sslbench ", env!("CARGO_PKG_VERSION"))),
        ] {
            write_attr(file, name, value)?;
        }
        for (name, value) in [("window", fit.window), ("min_points", fit.min_points)] {
            file.new_attr::<u64>()
                .create(name)?
                .write_scalar(&(value as u64))?;
        }
        let k = &fit.intrinsics;
        for (name, value) in [
            ("fx", k.fx),
            ("fy", k.fy),
            ("cx", k.cx),
            ("cy", k.cy),
            ("pixel_origin", k.origin),
        ] {
            file.new_attr::<f64>().create(name)?.write_scalar(&value)?;
        }
        if let Some(c) = &fit.crop {
            let crop = [c.top, c.left, c.height, c.width].map(|v| v as u64);
            file.new_attr_builder()
                .with_data(&crop[..])
                .create("crop")?;
        }
        Ok(())
    }
}

/// A dataset of `shape` whose first axis is the frame, one frame a chunk, deflated when the
/// HDF5 library has the filter, without timestamps.
fn frames_dataset<T: hdf5::H5Type>(
    file: &hdf5::File,
    name: &str,
    shape: &[usize],
) -> Result<hdf5::Dataset> {
    let mut chunk = shape.to_vec();
    chunk[0] = 1;
    let builder = file
        .new_dataset::<T>()
        .shape(shape)
        .chunk(chunk)
        .obj_track_times(false);
    let builder = if hdf5::filters::deflate_available() {
        builder.shuffle().deflate(4)
    } else {
        builder
    };
    Ok(builder.create(name)?)
}
