//! Camera geometry of a depth map: pinhole intrinsics with their pixel convention,
//! back-projection of depth to 3-D points, and the NYU toolbox's projection crop.

use anyhow::{bail, Result};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// Pinhole intrinsics of the camera a depth map is registered to, in pixels.
///
/// Pixel (row v, column u), both 0-based array indices, back-projects at depth Z to
/// X = (u + origin - cx) Z / fx, Y = (v + origin - cy) Z / fy, Z: the camera frame with x to the
/// right, y down and z forward (OpenCV's). `origin` is the coordinate of the first pixel's centre
/// in the convention `cx`, `cy` were calibrated in: 1 for the NYU toolbox (MATLAB
/// `meshgrid(1:W, 1:H)` in `rgb_plane2rgb_world.m`), 0 for OpenCV-style calibrations. A wrong
/// origin shifts every ray by one pixel.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intrinsics {
    /// Focal length along x (columns).
    pub fx: f64,
    /// Focal length along y (rows).
    pub fy: f64,
    /// Principal point, x.
    pub cx: f64,
    /// Principal point, y.
    pub cy: f64,
    /// Coordinate of the first pixel's centre: 1.0 (1-based) or 0.0 (0-based).
    pub origin: f64,
}

impl Intrinsics {
    /// The NYU Depth v2 toolbox's RGB camera (`camera_params.m`: `fx_rgb`, `fy_rgb`, `cx_rgb`,
    /// `cy_rgb`), which the labelled set's `depths` and `rawDepths` are registered to, with the
    /// toolbox's 1-based pixel convention. (The toolbox's digits, verbatim.)
    #[allow(clippy::excessive_precision)]
    pub const NYU_RGB: Intrinsics = Intrinsics {
        fx: 5.188_579_011_745_018_8e2,
        fy: 5.194_696_111_212_748_5e2,
        cx: 3.255_824_494_111_903_4e2,
        cy: 2.537_361_663_340_046_5e2,
        origin: 1.0,
    };

    /// A camera with square pixels (one focal length `f`) and 0-based pixel centres, such as a
    /// Middlebury calibration (`calib.txt`'s `cam0`). Middlebury does not state its pixel origin;
    /// 0-based is OpenCV's convention and the one assumed here.
    pub fn pinhole(f: f64, cx: f64, cy: f64) -> Intrinsics {
        Intrinsics {
            fx: f,
            fy: f,
            cx,
            cy,
            origin: 0.0,
        }
    }

    /// Refuses non-finite values and non-positive focal lengths.
    pub fn check(&self) -> Result<()> {
        let all = [self.fx, self.fy, self.cx, self.cy, self.origin];
        if all.iter().any(|v| !v.is_finite()) || self.fx <= 0.0 || self.fy <= 0.0 {
            bail!("invalid camera intrinsics {self:?}: fx and fy must be positive, all finite");
        }
        Ok(())
    }

    /// The 3-D point of pixel (`row`, `col`) at depth `z` metres, in the camera frame.
    pub fn back_project(&self, row: usize, col: usize, z: f64) -> [f64; 3] {
        let u = col as f64 + self.origin;
        let v = row as f64 + self.origin;
        [(u - self.cx) * z / self.fx, (v - self.cy) * z / self.fy, z]
    }
}

impl Default for Intrinsics {
    /// [`Intrinsics::NYU_RGB`].
    fn default() -> Self {
        Intrinsics::NYU_RGB
    }
}

/// Whether a depth value was measured: finite and positive (0 is the Kinect's and NYU
/// `rawDepths`' "missing"; NaN and infinity are other files' "missing").
pub fn depth_is_valid(z: f32) -> bool {
    z.is_finite() && z > 0.0
}

/// Back-projects a depth map (H x W, metres) to one point per pixel, `None` where the depth is
/// missing ([`depth_is_valid`]).
pub fn back_project(depth: ArrayView2<f32>, camera: &Intrinsics) -> Array2<Option<[f64; 3]>> {
    Array2::from_shape_fn(depth.dim(), |(r, c)| {
        let z = depth[[r, c]];
        depth_is_valid(z).then(|| camera.back_project(r, c, z as f64))
    })
}

/// The rectangle of an image where the depth camera's projection is valid, 0-based and
/// inclusive of `top` and `left`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionCrop {
    /// First row inside.
    pub top: usize,
    /// First column inside.
    pub left: usize,
    /// Rows inside.
    pub height: usize,
    /// Columns inside.
    pub width: usize,
}

impl ProjectionCrop {
    /// The NYU toolbox's `get_projection_mask()` for 480 x 640 frames: 1-based rows 45:471 and
    /// columns 41:601, i.e. 0-based rows 44..=470 and columns 40..=600, 427 x 561 (the "Eigen
    /// crop").
    pub const NYU: ProjectionCrop = ProjectionCrop {
        top: 44,
        left: 40,
        height: 427,
        width: 561,
    };

    /// Whether pixel (`row`, `col`) lies inside.
    pub fn contains(&self, row: usize, col: usize) -> bool {
        (self.top..self.top + self.height).contains(&row)
            && (self.left..self.left + self.width).contains(&col)
    }

    /// Refuses a crop that does not fit an image of `height` x `width`.
    pub fn check_fits(&self, height: usize, width: usize) -> Result<()> {
        if self.height == 0
            || self.width == 0
            || self.top + self.height > height
            || self.left + self.width > width
        {
            bail!(
                "projection crop {self:?} does not fit a {height} x {width} depth map \
                 (the NYU crop is for 480 x 640 frames; give another crop or none)"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toolbox_convention_puts_the_principal_point_on_its_ray() {
        let k = Intrinsics::NYU_RGB;
        // Pixel (cy - 1, cx - 1) in 0-based indices is (cx, cy) in the toolbox's 1-based ones.
        let p = Intrinsics {
            cx: 10.0,
            cy: 20.0,
            ..k
        }
        .back_project(19, 9, 2.0);
        assert_eq!(p, [0.0, 0.0, 2.0]);
        let q = Intrinsics::pinhole(100.0, 10.0, 20.0).back_project(20, 12, 3.0);
        assert_eq!(q, [2.0 * 3.0 / 100.0, 0.0, 3.0]);
        assert!(Intrinsics { fx: 0.0, ..k }.check().is_err());
        assert!(k.check().is_ok());
    }

    #[test]
    fn the_nyu_crop_is_the_toolbox_mask() {
        let c = ProjectionCrop::NYU;
        assert!(c.check_fits(480, 640).is_ok());
        assert!(c.check_fits(427, 640).is_err());
        assert!(c.contains(44, 40) && c.contains(470, 600));
        assert!(!c.contains(43, 40) && !c.contains(471, 600) && !c.contains(44, 601));
        let depth = ndarray::array![[1.0f32, 0.0], [f32::NAN, f32::INFINITY]];
        let pts = back_project(depth.view(), &Intrinsics::pinhole(1.0, 0.0, 0.0));
        assert_eq!(pts[[0, 0]], Some([0.0, 0.0, 1.0]));
        assert!(pts[[0, 1]].is_none() && pts[[1, 0]].is_none() && pts[[1, 1]].is_none());
    }
}
