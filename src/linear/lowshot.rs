//! Low-shot training sets (protocols.md section 3): per sample and k, which training rows
//! each class's SVM sees. Drawn with recorded seeds, or imported from FAIR's fixed draws.

use anyhow::{bail, Result};
use ndarray::{Array2, ArrayView2};
use rand::seq::index::sample;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How a low-shot training set is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// VOC07: per class independently, k positives and `negatives_per_positive x k`
    /// negatives (difficult-only images are never drawn).
    Positives,
    /// Places205: k images of every class; each class's SVM sees them all, one-vs-rest.
    Images,
}

/// The training rows of each class for one (sample, k).
#[derive(Clone, Debug, PartialEq)]
pub struct Draw {
    /// Row positions per class, ascending.
    pub rows: Vec<Vec<usize>>,
}

/// Mixes a sample's recorded seed with k and a class into one generator seed.
fn seed_of(seed: u64, k: usize, class: usize) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for v in [k as u64, class as u64] {
        h = (h ^ v).wrapping_mul(0x1000_0000_01B3).rotate_left(23);
    }
    h
}

/// Draws without replacement `count` of `pool` (ascending result), or fails naming the class.
fn pick(pool: &[usize], count: usize, seed: u64, what: &str) -> Result<Vec<usize>> {
    if count > pool.len() {
        bail!(
            "low-shot k asks for {count} {what} but the training set has {}: lower lowshot.k",
            pool.len()
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut rows: Vec<usize> = sample(&mut rng, pool.len(), count)
        .into_iter()
        .map(|i| pool[i])
        .collect();
    rows.sort_unstable();
    Ok(rows)
}

/// Draws one (sample, k) from VOC-style labels (`rows x classes`, 1 / -1 / 0).
pub fn draw(
    labels: ArrayView2<i32>,
    sampling: Sampling,
    k: usize,
    negatives_per_positive: usize,
    seed: u64,
    classes: &[String],
) -> Result<Draw> {
    let nc = labels.ncols();
    let pool = |c: usize, v: i32| -> Vec<usize> {
        (0..labels.nrows())
            .filter(|&i| labels[[i, c]] == v)
            .collect()
    };
    match sampling {
        Sampling::Positives => {
            let rows = (0..nc)
                .map(|c| {
                    let what = format!("positives of class {}", classes[c]);
                    let mut rows = pick(&pool(c, 1), k, seed_of(seed, k, 2 * c), &what)?;
                    let what = format!("negatives of class {}", classes[c]);
                    let negatives = k * negatives_per_positive;
                    rows.extend(pick(
                        &pool(c, -1),
                        negatives,
                        seed_of(seed, k, 2 * c + 1),
                        &what,
                    )?);
                    rows.sort_unstable();
                    Ok(rows)
                })
                .collect::<Result<_>>()?;
            Ok(Draw { rows })
        }
        Sampling::Images => {
            let mut all = Vec::new();
            for c in 0..nc {
                let what = format!("images of class {}", classes[c]);
                all.extend(pick(&pool(c, 1), k, seed_of(seed, k, c), &what)?);
            }
            all.sort_unstable();
            Ok(Draw {
                rows: vec![all; nc],
            })
        }
    }
}

/// Labels of a single-label set (`[class]` targets) as one-vs-rest VOC labels (1 / -1);
/// multi-label targets (`rows x classes`) pass through.
pub fn one_vs_rest(targets: ArrayView2<i32>, classes: usize) -> Array2<i32> {
    if targets.ncols() == classes && classes > 1 {
        return targets.to_owned();
    }
    Array2::from_shape_fn((targets.nrows(), classes), |(i, c)| {
        if targets[[i, 0]] == c as i32 {
            1
        } else {
            -1
        }
    })
}

/// Reads FAIR's fixed draws `dir/train_targets_sample{s}_k{k}.npy` (s = 1..=samples, one
/// per seed position; k in `ks`; written by FAIR's `create_voc_low_shot_samples.py`: images x classes int32,
/// rows in the training split's order). FAIR marks a drawn positive 1, a drawn negative 0 and
/// an image left out -1: per class, the rows marked 1 or 0 form that class's training set.
pub fn import_fair(
    dir: &Path,
    samples: usize,
    ks: &[usize],
    labels: &Array2<i32>,
) -> Result<Vec<Vec<Draw>>> {
    (1..=samples)
        .map(|s| {
            ks.iter()
                .map(|&k| {
                    let path = dir.join(format!("train_targets_sample{s}_k{k}.npy"));
                    let marks = crate::data::npy::read(&path)?;
                    if marks.shape() != labels.shape() {
                        bail!(
                            "{} has shape {:?} but the training split has {} images x {} \
                             classes: use the draws made for this split",
                            path.display(),
                            marks.shape(),
                            labels.nrows(),
                            labels.ncols()
                        );
                    }
                    let marks = marks.into_dimensionality::<ndarray::Ix2>()?;
                    // A drawn positive must be present, a drawn negative absent.
                    let misaligned = ndarray::Zip::from(&marks).and(labels).fold(0, |n, &m, &l| {
                        n + usize::from((m == 1.0 && l != 1) || (m == 0.0 && l != -1))
                    });
                    if misaligned > 0 {
                        bail!(
                            "{}: {misaligned} drawn images disagree with the training labels: \
                             the draws were made for another image order or class list",
                            path.display()
                        );
                    }
                    let rows = (0..labels.ncols())
                        .map(|c| {
                            (0..labels.nrows())
                                .filter(|&i| marks[[i, c]] == 1.0 || marks[[i, c]] == 0.0)
                                .collect()
                        })
                        .collect();
                    Ok(Draw { rows })
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|c| format!("c{c}")).collect()
    }

    #[test]
    fn positives_sampling_draws_k_and_ratio_negatives_never_difficult() {
        // 12 images, 2 classes; class 0 has 4 positives, 2 difficult, 6 negatives.
        let labels = Array2::from_shape_fn((12, 2), |(i, c)| match (c, i) {
            (0, 0..=3) => 1,
            (0, 4 | 5) => 0,
            (0, _) => -1,
            (_, i) if i % 2 == 0 => 1,
            _ => -1,
        });
        let d = draw(labels.view(), Sampling::Positives, 2, 2, 7, &names(2)).unwrap();
        for c in 0..2 {
            let rows = &d.rows[c];
            assert_eq!(rows.len(), 6);
            assert_eq!(rows.iter().filter(|&&i| labels[[i, c]] == 1).count(), 2);
            assert!(rows.iter().all(|&i| labels[[i, c]] != 0));
        }
        // Recorded seeds reproduce; another seed draws differently somewhere.
        assert_eq!(
            d,
            draw(labels.view(), Sampling::Positives, 2, 2, 7, &names(2)).unwrap()
        );
        let other: Vec<Draw> = (0..8)
            .map(|s| draw(labels.view(), Sampling::Positives, 2, 2, s, &names(2)).unwrap())
            .collect();
        assert!(other.iter().any(|o| o != &d));
        // Asking for more than there are names the class and the fix.
        let err = draw(labels.view(), Sampling::Positives, 5, 1, 7, &names(2)).unwrap_err();
        assert!(err.to_string().contains("positives of class c0"), "{err}");
    }

    #[test]
    fn images_sampling_and_one_vs_rest() {
        let targets = array![[0], [1], [2], [0], [1], [2], [0], [1], [2]];
        let labels = one_vs_rest(targets.view(), 3);
        assert_eq!(labels.row(1).to_vec(), vec![-1, 1, -1]);
        let d = draw(labels.view(), Sampling::Images, 2, 0, 1, &names(3)).unwrap();
        assert_eq!(d.rows[0].len(), 6);
        assert!(d.rows.iter().all(|r| r == &d.rows[0]));
    }

    #[test]
    fn fair_draws_are_read_with_fair_encoding() {
        let dir = tempfile::tempdir().unwrap();
        // 4 images x 1 class: image 0 drawn positive, 2 drawn negative, 1 and 3 left out.
        let labels = array![[1], [1], [-1], [-1]];
        let path = dir.path().join("train_targets_sample1_k1.npy");
        crate::data::npy::write_i32(&path, &[4, 1], &[1, -1, 0, -1]).unwrap();
        let draws = import_fair(dir.path(), 1, &[1], &labels).unwrap();
        assert_eq!(draws[0][0].rows, vec![vec![0, 2]]);
        // A draw that disagrees with the labels (misaligned rows) is refused.
        crate::data::npy::write_i32(&path, &[4, 1], &[0, -1, 1, -1]).unwrap();
        assert!(import_fair(dir.path(), 1, &[1], &labels).is_err());
    }
}
