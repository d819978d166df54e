//! The official labelled set, `nyu_depth_v2_labeled.mat`: MATLAB v7.3, an HDF5 file behind a
//! 512-byte user block (the HDF5 library finds the superblock at offset 512 by itself).
//!
//! MATLAB stores arrays column-major, so HDF5 shows their dimensions reversed: the H x W x 3 x N
//! `images` are an (N, 3, W, H) `uint8` dataset, the H x W x N `depths` (in-painted, metres) and
//! `rawDepths` (the Kinect's, 0 where it measured nothing) are (N, W, H) `single`. Frames are
//! read one at a time (the real file is 2.8 GB) and turned back to rows first.

use anyhow::{bail, Context, Result};
use hdf5::Dataset;
use ndarray::{s, Array2, Array3, Ix2, Ix3};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// NYUv2's frame size, rows x columns.
const NYU_HW: (usize, usize) = (480, 640);

/// Which depth map of the labelled set to read, by its dataset name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DepthSource {
    /// `depths`: in-painted (the toolbox's colorization fill), defined everywhere.
    #[default]
    #[serde(rename = "depths")]
    Depths,
    /// `rawDepths`: the Kinect's measurements, 0 where it measured nothing.
    #[serde(rename = "rawDepths")]
    RawDepths,
}

impl DepthSource {
    /// The dataset's name in the file.
    pub fn name(self) -> &'static str {
        match self {
            DepthSource::Depths => "depths",
            DepthSource::RawDepths => "rawDepths",
        }
    }
}

impl FromStr for DepthSource {
    type Err = anyhow::Error;

    /// `depths` or `rawDepths`.
    fn from_str(s: &str) -> Result<DepthSource> {
        match s {
            "depths" => Ok(DepthSource::Depths),
            "rawDepths" => Ok(DepthSource::RawDepths),
            _ => bail!("unknown depth source {s:?}: use `depths` (in-painted) or `rawDepths`"),
        }
    }
}

/// An open `nyu_depth_v2_labeled.mat` (or a file in its layout).
pub struct LabeledMat {
    path: PathBuf,
    images: Dataset,
    depths: Dataset,
    raw_depths: Option<Dataset>,
    len: usize,
    height: usize,
    width: usize,
}

impl LabeledMat {
    /// Opens the file and checks the layout of `images`, `depths` and (when present)
    /// `rawDepths`: a missing file or dataset, a wrong rank or shape, or a 480 x 640 set stored
    /// rows-first (a file written from row-major arrays without MATLAB's transpose) is an error
    /// naming the file and the fix.
    pub fn open(path: &Path) -> Result<LabeledMat> {
        if !path.is_file() {
            bail!(
                "{} does not exist: download nyu_depth_v2_labeled.mat from the NYU Depth v2 \
                 site, or fix the path",
                path.display()
            );
        }
        let file = crate::h5::open(path).with_context(|| {
            format!(
                "{} is not an HDF5 (MATLAB v7.3) file: the labelled set is read as \
                 MATLAB v7.3; re-save it in MATLAB with save(FILE, '-v7.3')",
                path.display()
            )
        })?;
        let dataset = |name: &str| -> Result<Dataset> {
            file.dataset(name).with_context(|| {
                format!(
                    "{} has no dataset `{name}`: it is not the NYUv2 labelled set \
                     (nyu_depth_v2_labeled.mat holds images, depths and rawDepths)",
                    path.display()
                )
            })
        };
        let images = dataset("images")?;
        let depths = dataset("depths")?;
        let raw_depths = file.dataset("rawDepths").ok();
        let shape = images.shape();
        if shape.len() != 4 || shape[1] != 3 {
            bail!(
                "`images` in {} has shape {shape:?}; the NYUv2 layout is (N, 3, W, H) as HDF5 \
                 shows MATLAB's H x W x 3 x N: write the images in that layout",
                path.display()
            );
        }
        let (len, width, height) = (shape[0], shape[2], shape[3]);
        if (width, height) == NYU_HW {
            bail!(
                "`images` in {} has shape {shape:?}, which looks transposed: MATLAB's \
                 480 x 640 frames show as (N, 3, 640, 480). The file was probably written \
                 from row-major arrays; write images.transpose(0, 3, 2, 1) and \
                 depths.transpose(0, 2, 1) (numpy), or save it from MATLAB with -v7.3",
                path.display()
            );
        }
        for (name, d) in [
            ("depths", Some(&depths)),
            ("rawDepths", raw_depths.as_ref()),
        ] {
            let Some(d) = d else { continue };
            if d.shape() != [len, width, height] {
                bail!(
                    "`{name}` in {} has shape {:?} but `images` has {shape:?}: both must be \
                     the (N, W, H) / (N, 3, W, H) layout of MATLAB's H x W x N and \
                     H x W x 3 x N arrays; write them with the same frames",
                    path.display(),
                    d.shape()
                );
            }
        }
        Ok(LabeledMat {
            path: path.to_owned(),
            images,
            depths,
            raw_depths,
            len,
            height,
            width,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of frames (1449 in the official file).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the file holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frame height H (rows).
    pub fn height(&self) -> usize {
        self.height
    }

    /// Frame width W (columns).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Frame `i` (0-based; NYU index i + 1) as H x W x 3 RGB.
    pub fn image(&self, i: usize) -> Result<Array3<u8>> {
        self.check(i)?;
        let stored = self
            .images
            .read_slice::<u8, _, Ix3>(s![i, .., .., ..])
            .with_context(|| self.read_error("images", i))?;
        Ok(stored
            .permuted_axes([2, 1, 0])
            .as_standard_layout()
            .into_owned())
    }

    /// The in-painted depth of frame `i` (0-based), H x W, metres.
    pub fn depth(&self, i: usize) -> Result<Array2<f32>> {
        self.plane(&self.depths, "depths", i)
    }

    /// The raw Kinect depth of frame `i` (0-based), H x W, metres, 0 where unmeasured; an
    /// error when the file has no `rawDepths`.
    pub fn raw_depth(&self, i: usize) -> Result<Array2<f32>> {
        let d = self.raw_depths.as_ref().with_context(|| {
            format!(
                "{} has no dataset `rawDepths`: use the official labelled set, which holds it",
                self.path.display()
            )
        })?;
        self.plane(d, "rawDepths", i)
    }

    /// Whether the file holds `rawDepths`.
    pub fn has_raw_depths(&self) -> bool {
        self.raw_depths.is_some()
    }

    /// Frame `i` (0-based) of the depth map `source`, H x W, metres.
    pub fn depth_from(&self, source: DepthSource, i: usize) -> Result<Array2<f32>> {
        match source {
            DepthSource::Depths => self.depth(i),
            DepthSource::RawDepths => self.raw_depth(i),
        }
    }

    fn plane(&self, d: &Dataset, name: &str, i: usize) -> Result<Array2<f32>> {
        self.check(i)?;
        let stored = d
            .read_slice::<f32, _, Ix2>(s![i, .., ..])
            .with_context(|| self.read_error(name, i))?;
        Ok(stored.reversed_axes().as_standard_layout().into_owned())
    }

    fn check(&self, i: usize) -> Result<()> {
        if i >= self.len {
            bail!(
                "frame {i} (0-based) is past the {} frames of {}",
                self.len,
                self.path.display()
            );
        }
        Ok(())
    }

    fn read_error(&self, name: &str, i: usize) -> String {
        format!(
            "cannot read frame {i} of `{name}` in {}: the file may be truncated",
            self.path.display()
        )
    }
}
