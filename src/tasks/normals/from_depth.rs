//! Surface normals computed from a depth map by a local plane fit (PCA over a pixel window),
//! for users without a ground-truth normals set. These are "normals computed from depth
//! (window PCA)", not Ladicky's ground truth, whose exact procedure is unpublished.

use super::geometry::{back_project, depth_is_valid, Intrinsics, ProjectionCrop};
use anyhow::{bail, Result};
use nalgebra::{Matrix3, SymmetricEigen};
use ndarray::{Array2, Array3, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The frame the normals are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalFrame {
    /// The camera frame of [`Intrinsics`]: x right, y down, z forward (OpenCV's).
    #[default]
    Camera,
    /// x right, y up, z toward the viewer, i.e. (x, -y, -z) of the camera frame: the frame
    /// `vocab40.mat`'s centres appear to be in (inferred from the centres in the research note
    /// §2.7; confirm on a real ground-truth file before relying on it).
    Codebook,
}

impl NormalFrame {
    /// A camera-frame vector in this frame.
    pub fn from_camera(self, n: [f64; 3]) -> [f64; 3] {
        match self {
            NormalFrame::Camera => n,
            NormalFrame::Codebook => [n[0], -n[1], -n[2]],
        }
    }
}

/// Normals from depth by a local plane fit, and their valid mask.
///
/// Method, per pixel: back-project every pixel with [`Intrinsics`]; the pixel's neighbours are
/// the pixels of the `window` x `window` square centred on it that lie inside the image and
/// have a valid depth ([`depth_is_valid`]), the pixel itself included; take their mean and
/// their covariance sum((p - mean)(p - mean)^T) / count in float64, both summed in row-major
/// window order; the normal is the unit eigenvector of the covariance's smallest eigenvalue
/// (nalgebra's `SymmetricEigen`), flipped so that n . p < 0 with p the pixel's own point
/// (toward the camera), then written in [`NormalFrame`].
///
/// A pixel is valid when its depth is valid, at least `min_points` neighbours are, its raw
/// depth (if a raw map is given, e.g. NYU's `rawDepths`; 0 = missing) was measured, and it lies
/// inside the projection crop (if one is given). The normal is computed only there and is 0
/// elsewhere. The geometry always comes from the depth map given (NYU: the in-painted `depths`
/// or `rawDepths` themselves); the raw map only masks. Rows run in parallel; the result does not
/// depend on the thread count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalsFromDepth {
    /// The camera the depth is registered to.
    pub intrinsics: Intrinsics,
    /// The region where the projection is valid; `None` keeps the whole frame.
    pub crop: Option<ProjectionCrop>,
    /// Side of the square window in pixels, odd, at least 3.
    pub window: usize,
    /// Valid neighbours (the pixel included) a fit needs, at least 3.
    pub min_points: usize,
    /// The frame of the output.
    pub frame: NormalFrame,
}

impl Default for NormalsFromDepth {
    /// NYU: the toolbox's RGB intrinsics and projection crop, a 7 x 7 window (the toolbox's
    /// `compute_local_planes` radius 3), at least 25 valid neighbours (half the window), the
    /// camera frame.
    fn default() -> Self {
        NormalsFromDepth {
            intrinsics: Intrinsics::NYU_RGB,
            crop: Some(ProjectionCrop::NYU),
            window: 7,
            min_points: 25,
            frame: NormalFrame::Camera,
        }
    }
}

/// Normals and their mask for one depth map.
#[derive(Clone, Debug, PartialEq)]
pub struct SurfaceNormals {
    /// H x W x 3 unit normals, 0 where not valid.
    pub normals: Array3<f32>,
    /// H x W, true where the normal is valid.
    pub valid: Array2<bool>,
}

impl NormalsFromDepth {
    /// Refuses an even or too small window, a `min_points` the window cannot hold or below 3,
    /// and invalid intrinsics.
    pub fn check(&self) -> Result<()> {
        self.intrinsics.check()?;
        if self.window < 3 || self.window.is_multiple_of(2) {
            bail!("normals window {} must be odd and at least 3", self.window);
        }
        if self.min_points < 3 || self.min_points > self.window * self.window {
            bail!(
                "min_points {} must lie in 3..={} (a plane needs 3 points; a {w} x {w} window holds {})",
                self.min_points,
                self.window * self.window,
                self.window * self.window,
                w = self.window
            );
        }
        Ok(())
    }

    /// The normals of `depth` (H x W metres), masked by `raw` (H x W, 0 = missing) when given.
    pub fn compute(
        &self,
        depth: ArrayView2<f32>,
        raw: Option<ArrayView2<f32>>,
    ) -> Result<SurfaceNormals> {
        self.check()?;
        let (h, w) = depth.dim();
        if let Some(raw) = raw {
            if raw.dim() != (h, w) {
                bail!(
                    "raw depth is {:?} but depth is {:?}: they must be the same frame",
                    raw.dim(),
                    (h, w)
                );
            }
        }
        if let Some(crop) = &self.crop {
            crop.check_fits(h, w)?;
        }
        let points = back_project(depth, &self.intrinsics);
        let r = (self.window / 2) as isize;
        let rows: Vec<Vec<Option<[f64; 3]>>> = (0..h)
            .into_par_iter()
            .map(|row| {
                (0..w)
                    .map(|col| {
                        let centre = points[[row, col]]?;
                        let measured = raw.is_none_or(|m| depth_is_valid(m[[row, col]]));
                        let inside = self.crop.is_none_or(|c| c.contains(row, col));
                        if !(measured && inside) {
                            return None;
                        }
                        let n = plane_normal(&points, row, col, r, self.min_points)?;
                        let dot = n[0] * centre[0] + n[1] * centre[1] + n[2] * centre[2];
                        let n = if dot > 0.0 { n.map(|v| -v) } else { n };
                        Some(self.frame.from_camera(n))
                    })
                    .collect()
            })
            .collect();
        let mut normals = Array3::<f32>::zeros((h, w, 3));
        let mut valid = Array2::from_elem((h, w), false);
        for (row, fits) in rows.iter().enumerate() {
            for (col, fit) in fits.iter().enumerate() {
                if let Some(n) = fit {
                    valid[[row, col]] = true;
                    for (c, v) in n.iter().enumerate() {
                        normals[[row, col, c]] = *v as f32;
                    }
                }
            }
        }
        Ok(SurfaceNormals { normals, valid })
    }
}

/// The unit normal (unoriented) of the plane fitted to the valid points of the window of
/// radius `r` around (`row`, `col`); `None` below `min_points` valid points.
fn plane_normal(
    points: &Array2<Option<[f64; 3]>>,
    row: usize,
    col: usize,
    r: isize,
    min_points: usize,
) -> Option<[f64; 3]> {
    let (h, w) = points.dim();
    let window = || {
        (-r..=r).flat_map(move |dy| {
            (-r..=r).filter_map(move |dx| {
                let (y, x) = (row as isize + dy, col as isize + dx);
                if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                    return None;
                }
                points[[y as usize, x as usize]]
            })
        })
    };
    let mut count = 0usize;
    let mut sum = [0.0f64; 3];
    for p in window() {
        count += 1;
        for c in 0..3 {
            sum[c] += p[c];
        }
    }
    if count < min_points {
        return None;
    }
    let mean = sum.map(|s| s / count as f64);
    let mut cov = [[0.0f64; 3]; 3];
    for p in window() {
        let d = [p[0] - mean[0], p[1] - mean[1], p[2] - mean[2]];
        for a in 0..3 {
            for b in 0..3 {
                cov[a][b] += d[a] * d[b];
            }
        }
    }
    let n = count as f64;
    let m = Matrix3::from_fn(|a, b| cov[a][b] / n);
    let eig = SymmetricEigen::new(m);
    let smallest = (0..3).fold(0, |best, i| {
        if eig.eigenvalues[i] < eig.eigenvalues[best] {
            i
        } else {
            best
        }
    });
    let v = eig.eigenvectors.column(smallest);
    let norm = v.norm();
    if !(norm.is_finite() && norm > 0.0) {
        return None;
    }
    Some([v[0] / norm, v[1] / norm, v[2] / norm])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Depth of the plane n . X = d seen through `k`, per pixel.
    fn plane_depth(k: &Intrinsics, h: usize, w: usize, n: [f64; 3], d: f64) -> Array2<f32> {
        Array2::from_shape_fn((h, w), |(r, c)| {
            let ray = k.back_project(r, c, 1.0);
            (d / (n[0] * ray[0] + n[1] * ray[1] + n[2] * ray[2])) as f32
        })
    }

    #[test]
    fn a_tilted_plane_gives_its_normal_toward_the_camera() {
        let k = Intrinsics::pinhole(500.0, 32.0, 24.0);
        let n = {
            let v = [0.3f64, -0.4, -1.0];
            let l = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
            v.map(|x| x / l)
        };
        // n . X = -2 with n_z < 0: the plane lies in front of the camera, n faces it.
        let depth = plane_depth(&k, 48, 64, n, -2.0);
        let fit = NormalsFromDepth {
            intrinsics: k,
            crop: None,
            window: 5,
            min_points: 9,
            frame: NormalFrame::Camera,
        };
        let out = fit.compute(depth.view(), None).unwrap();
        assert!(out.valid.iter().all(|&v| v));
        for row in [0, 20, 47] {
            for col in [0, 31, 63] {
                for (c, want) in n.iter().enumerate() {
                    assert!((out.normals[[row, col, c]] as f64 - want).abs() < 1e-4);
                }
            }
        }
        let flipped = NormalsFromDepth {
            frame: NormalFrame::Codebook,
            ..fit.clone()
        }
        .compute(depth.view(), None)
        .unwrap();
        assert_eq!(flipped.normals[[5, 5, 1]], -out.normals[[5, 5, 1]]);
        assert_eq!(flipped.normals[[5, 5, 2]], -out.normals[[5, 5, 2]]);
    }

    #[test]
    fn the_mask_needs_depth_raw_depth_neighbours_and_the_crop() {
        let k = Intrinsics::pinhole(100.0, 5.0, 5.0);
        let mut depth = Array2::from_elem((10, 10), 2.0f32);
        // An isolated valid pixel: 1 valid neighbour, below min_points.
        for r in 0..4 {
            for c in 0..4 {
                depth[[r, c]] = 0.0;
            }
        }
        depth[[0, 0]] = 2.0;
        let mut raw = Array2::from_elem((10, 10), 1.0f32);
        raw[[7, 7]] = 0.0;
        let fit = NormalsFromDepth {
            intrinsics: k,
            crop: Some(ProjectionCrop {
                top: 0,
                left: 0,
                height: 10,
                width: 9,
            }),
            window: 3,
            min_points: 4,
            frame: NormalFrame::Camera,
        };
        let out = fit.compute(depth.view(), Some(raw.view())).unwrap();
        assert!(!out.valid[[0, 0]], "too few neighbours");
        assert!(!out.valid[[1, 1]], "no depth");
        assert!(!out.valid[[7, 7]], "no raw depth");
        assert!(!out.valid[[5, 9]], "outside the crop");
        assert!(out.valid[[5, 5]] && out.valid[[9, 0]]);
        assert_eq!(out.normals[[7, 7, 2]], 0.0);
        assert!((out.normals[[5, 5, 2]] + 1.0).abs() < 1e-6);
        let bad = |f: NormalsFromDepth| f.compute(depth.view(), None).is_err();
        assert!(bad(NormalsFromDepth {
            window: 4,
            ..fit.clone()
        }));
        assert!(bad(NormalsFromDepth {
            min_points: 10,
            ..fit.clone()
        }));
        assert!(bad(NormalsFromDepth {
            crop: Some(ProjectionCrop::NYU),
            ..fit
        }));
    }
}
