//! The normals codebook file `vocab40.mat` (Wang et al.'s 40 cluster centres; research note
//! §1.1): only its reading. The codebook itself, nearest-centre labels and k-means live in
//! `tasks::normals::codebook`.
//!
//! `vocab40.mat` is MATLAB v5: a 1x1 cell `vocabs` holding a 1x1 struct whose field `normals`
//! is the K x 3 double array of centres (its field `faces` is a triangulation, unused here), as
//! FAIR's code reads it: `loadmat(f)['vocabs'][0][0]['normals'][0][0]`.

use crate::data::mat5::{self, MatValue};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// How far from 1 a centre's length may be.
const CENTRE_TOLERANCE: f64 = 1e-6;

/// What the reader expects, for its error messages.
const LAYOUT: &str = "the layout of vocab40.mat: a cell `vocabs` holding a struct with a \
                      K x 3 double field `normals`";

/// Reads `vocabs{1}.normals` from a codebook file such as `vocab40.mat`: `k` unit rows (within
/// 1e-6), in file order. A missing variable, another shape, another count or a centre that is
/// not a unit vector is an error naming the file.
pub fn read_vocab_centres(path: &Path, k: usize) -> Result<Vec<[f64; 3]>> {
    let vars = mat5::read(path)?;
    let mut value = vars
        .get("vocabs")
        .with_context(|| format!("{} has no variable `vocabs`: use {LAYOUT}", path.display()))?;
    loop {
        value = match value {
            MatValue::Cell { cells, .. } if cells.len() == 1 => &cells[0],
            MatValue::Struct { elements, .. } if elements.len() == 1 => {
                elements[0].get("normals").with_context(|| {
                    format!(
                        "`vocabs` in {} has no field `normals`: use {LAYOUT}",
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
            "`vocabs.normals` in {} is a {} of dimensions {:?}, not K x 3: use {LAYOUT}",
            path.display(),
            value.class_name(),
            value.dims()
        );
    };
    let rows = array.dims[0];
    if rows != k {
        bail!(
            "{} holds {rows} centres, not {k}: use the {k}-centre codebook \
             (vocab{k}.mat), or set the number of clusters to {rows}",
            path.display()
        );
    }
    // Column-major: column c of row r is at c * rows + r.
    let data = array.to_f64_vec();
    let centres: Vec<[f64; 3]> = (0..rows)
        .map(|r| [data[r], data[rows + r], data[2 * rows + r]])
        .collect();
    check_unit(&centres).with_context(|| {
        format!(
            "in {}: a normals codebook holds unit vectors; use the file as published",
            path.display()
        )
    })?;
    Ok(centres)
}

/// Refuses a centre whose length is not 1 within [`CENTRE_TOLERANCE`].
fn check_unit(centres: &[[f64; 3]]) -> Result<()> {
    for (i, c) in centres.iter().enumerate() {
        let length = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt();
        if !length.is_finite() || (length - 1.0).abs() > CENTRE_TOLERANCE {
            bail!("centre {i} {c:?} has length {length}, not 1");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres_must_be_unit_vectors() {
        assert!(check_unit(&[[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]]).is_ok());
        let err = format!(
            "{:#}",
            check_unit(&[[1.0, 0.0, 0.0], [0.5, 0.0, 0.0]]).unwrap_err()
        );
        assert!(err.contains("centre 1") && err.contains("not 1"), "{err}");
        assert!(check_unit(&[[f64::NAN, 0.0, 0.0]]).is_err());
    }
}
