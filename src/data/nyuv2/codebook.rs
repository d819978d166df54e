//! The surface-normal codebook: K unit centres (Wang et al.'s `vocab40.mat`, K = 40), and the
//! nearest-centre label of a normal.
//!
//! `vocab40.mat` is MATLAB v5: a 1x1 cell `vocabs` holding a 1x1 struct whose field `normals`
//! is the K x 3 double array of centres (its field `faces` is a triangulation, unused here), as
//! FAIR's code reads it: `loadmat(f)['vocabs'][0][0]['normals'][0][0]`.
//!
//! A label is the centre at the smallest squared Euclidean distance, computed in f64, the first
//! centre on a tie: what scikit-learn's `pairwise_distances_argmin` gives, which FAIR's
//! `make_SN_labels.py` calls.

use super::NormalsMap;
use crate::data::mat5::{self, MatValue};
use anyhow::{bail, Context, Result};
use ndarray::Array2;
use std::path::Path;

/// The label of a pixel without ground truth (FAIR's `IGNORE_LABEL_NORMALS`).
pub const IGNORE_LABEL: u8 = 255;

/// How far from 1 a centre's length may be.
const CENTRE_TOLERANCE: f64 = 1e-6;

/// K unit normals.
#[derive(Clone, Debug, PartialEq)]
pub struct Codebook {
    /// The centres, in file order.
    pub centres: Vec<[f64; 3]>,
}

impl Codebook {
    /// Reads `vocabs{1}.normals` from a codebook file such as `vocab40.mat` and checks that it
    /// holds `k` unit rows; anything else is an error naming the file.
    pub fn read(path: &Path, k: usize) -> Result<Codebook> {
        let vars = mat5::read(path)?;
        let layout = "the layout of vocab40.mat: a cell `vocabs` holding a struct with a \
                      K x 3 double field `normals`";
        let mut value = vars.get("vocabs").with_context(|| {
            format!("{} has no variable `vocabs`: use {layout}", path.display())
        })?;
        loop {
            value = match value {
                MatValue::Cell { cells, .. } if cells.len() == 1 => &cells[0],
                MatValue::Struct { elements, .. } if elements.len() == 1 => {
                    elements[0].get("normals").with_context(|| {
                        format!(
                            "`vocabs` in {} has no field `normals`: use {layout}",
                            path.display()
                        )
                    })?
                }
                _ => break,
            }
        }
        let array = value
            .numeric()
            .filter(|a| a.dims.len() == 2 && a.dims[1] == 3);
        let Some(array) = array else {
            bail!(
                "`vocabs.normals` in {} is a {} of dimensions {:?}, not K x 3: use {layout}",
                path.display(),
                value.class_name(),
                value.dims()
            );
        };
        let rows = array.dims[0];
        let data = array.to_f64_vec();
        let centres: Vec<[f64; 3]> = (0..rows)
            .map(|r| [data[r], data[rows + r], data[2 * rows + r]])
            .collect();
        if rows != k {
            bail!(
                "{} holds {rows} centres, not {k}: use the {k}-centre codebook \
                 (vocab{k}.mat), or set the number of clusters to {rows}",
                path.display()
            );
        }
        Self::from_centres(centres).with_context(|| format!("in {}", path.display()))
    }

    /// A codebook of `centres`, which must be 1 to 254 unit vectors (within 1e-6): labels are
    /// `u8`, with 255 for ignored pixels.
    pub fn from_centres(centres: Vec<[f64; 3]>) -> Result<Codebook> {
        if centres.is_empty() || centres.len() >= IGNORE_LABEL as usize {
            bail!(
                "a codebook of {} centres: it must hold 1 to 254 (labels are 8-bit, 255 ignored)",
                centres.len()
            );
        }
        for (i, c) in centres.iter().enumerate() {
            let length = dot(c, c).sqrt();
            if (length - 1.0).abs() > CENTRE_TOLERANCE {
                bail!(
                    "centre {i} {c:?} has length {length}, not 1: a normals codebook holds \
                     unit vectors"
                );
            }
        }
        Ok(Codebook { centres })
    }

    /// The number of centres K.
    pub fn len(&self) -> usize {
        self.centres.len()
    }

    /// True when there is no centre.
    pub fn is_empty(&self) -> bool {
        self.centres.is_empty()
    }

    /// The index of the centre nearest to `n` (squared Euclidean distance, first on a tie).
    pub fn nearest(&self, n: [f64; 3]) -> usize {
        let mut best = (0, f64::INFINITY);
        for (i, c) in self.centres.iter().enumerate() {
            let d = [n[0] - c[0], n[1] - c[1], n[2] - c[2]];
            let d2 = dot(&d, &d);
            if d2 < best.1 {
                best = (i, d2);
            }
        }
        best.0
    }

    /// Each pixel's nearest centre, [`IGNORE_LABEL`] outside the mask (FAIR's label PNGs).
    pub fn labels(&self, map: &NormalsMap) -> Array2<u8> {
        Array2::from_shape_fn(map.valid.dim(), |(y, x)| {
            if !map.valid[[y, x]] {
                return IGNORE_LABEL;
            }
            let n = map.normals.slice(ndarray::s![y, x, ..]);
            self.nearest([n[0] as f64, n[1] as f64, n[2] as f64]) as u8
        })
    }
}

fn dot(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
