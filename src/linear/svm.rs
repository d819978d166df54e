//! A binary linear SVM with LIBLINEAR's semantics for the L2-regularised squared-hinge loss
//! (solver `L2R_L2LOSS_SVC_DUAL`, scikit-learn's `LinearSVC(dual=True)`): dual coordinate
//! descent with shrinking (Hsieh et al., ICML 2008), per-class costs, and the bias as a
//! regularised extra feature of constant value.
//!
//! The dual is `min_a 1/2 a'Qa - sum a_i` with `a_i >= 0`, `Q = yy'(XX' + bias^2) + D`,
//! `D_ii = 1 / (2 C_i)`; the primal weights are `w = sum_i y_i a_i x_i`. Training stops when
//! the spread of the projected gradient over the active set falls below `tol`, or after
//! `max_iter` passes.

use super::simd::{axpy, dot};
use serde::{Deserialize, Serialize};

/// Training rows: a dense row-major `n x dim` matrix in float64, with squared row norms.
#[derive(Clone, Debug)]
pub struct Rows {
    data: Vec<f64>,
    dim: usize,
    sq_norms: Vec<f64>,
}

impl Rows {
    /// Wraps row-major `data` of `dim` columns (`data.len()` must be a multiple of `dim`).
    pub fn new(data: Vec<f64>, dim: usize) -> Rows {
        let dim = dim.max(1);
        let sq_norms = data.chunks_exact(dim).map(|r| dot(r, r)).collect();
        Rows {
            data,
            dim,
            sq_norms,
        }
    }

    /// Row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.sq_norms.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.sq_norms.is_empty()
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// The solver's parameters (LIBLINEAR / `LinearSVC` names).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SvmParams {
    /// The cost C.
    pub cost: f64,
    /// Weight of positive examples: their cost is `cost * pos_weight`.
    pub pos_weight: f64,
    /// Weight of negative examples.
    pub neg_weight: f64,
    /// Stopping tolerance on the projected-gradient spread (`tol`, LIBLINEAR's `eps`).
    pub tol: f64,
    /// Most passes over the data (`max_iter`).
    pub max_iter: usize,
    /// Value of the bias feature (`intercept_scaling`); 0 trains without a bias.
    pub bias: f64,
    /// Shrink the active set (LIBLINEAR always does).
    pub shrinking: bool,
    /// Seed of the per-pass random order.
    pub seed: u64,
}

/// A trained SVM and how training went.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// Weights over the features.
    pub w: Vec<f64>,
    /// Intercept: the bias feature's weight times its value.
    pub intercept: f64,
    /// Dual variables, one per training row (a warm start for a nearby cost).
    pub alpha: Vec<f64>,
    /// Passes over the data.
    pub iterations: usize,
    /// False when `max_iter` stopped training (scikit-learn's ConvergenceWarning).
    pub converged: bool,
}

impl Solution {
    /// The decision value `w.x + intercept`.
    #[inline]
    pub fn decision(&self, x: &[f64]) -> f64 {
        dot(&self.w, x) + self.intercept
    }
}

/// SplitMix64: a tiny, version-stable generator for the per-pass order.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z as u128 * n as u128) >> 64) as usize
    }
}

/// Trains on the rows `subset` of `x` with labels `positive` (parallel to `subset`),
/// starting from the dual point `warm` when given (e.g. the solution at the previous cost).
pub fn train(
    x: &Rows,
    subset: &[usize],
    positive: &[bool],
    params: &SvmParams,
    warm: Option<&[f64]>,
) -> Solution {
    let l = subset.len();
    let bias2 = params.bias * params.bias;
    let y: Vec<f64> = positive
        .iter()
        .map(|&p| if p { 1.0 } else { -1.0 })
        .collect();
    let diag: Vec<f64> = positive
        .iter()
        .map(|&p| {
            let c = params.cost
                * if p {
                    params.pos_weight
                } else {
                    params.neg_weight
                };
            0.5 / c
        })
        .collect();
    let qd: Vec<f64> = (0..l)
        .map(|i| diag[i] + x.sq_norms[subset[i]] + bias2)
        .collect();
    let mut alpha = match warm {
        Some(a) if a.len() == l => a.to_vec(),
        _ => vec![0.0; l],
    };
    let mut w = vec![0.0; x.dim];
    let mut wb = 0.0;
    for i in 0..l {
        if alpha[i] != 0.0 {
            axpy(y[i] * alpha[i], x.row(subset[i]), &mut w);
            wb += y[i] * alpha[i] * params.bias;
        }
    }
    let mut index: Vec<usize> = (0..l).collect();
    let mut active = l;
    let mut rng = SplitMix(params.seed);
    // Without an upper bound on alpha (squared hinge) only the lower shrinking test applies.
    let mut pg_max_old = f64::INFINITY;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < params.max_iter {
        let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
        for i in 0..active {
            let j = i + rng.below(active - i);
            index.swap(i, j);
        }
        let mut s = 0;
        while s < active {
            let i = index[s];
            let xi = x.row(subset[i]);
            let g = y[i] * (dot(&w, xi) + wb * params.bias) - 1.0 + alpha[i] * diag[i];
            let mut pg = g;
            if alpha[i] == 0.0 {
                if params.shrinking && g > pg_max_old {
                    active -= 1;
                    index.swap(s, active);
                    continue;
                }
                pg = g.min(0.0);
            }
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (old - g / qd[i]).max(0.0);
                let d = (alpha[i] - old) * y[i];
                axpy(d, xi, &mut w);
                wb += d * params.bias;
            }
            s += 1;
        }
        iterations += 1;
        if pg_max - pg_min <= params.tol {
            if active == l {
                converged = true;
                break;
            }
            active = l;
            pg_max_old = f64::INFINITY;
            continue;
        }
        pg_max_old = if pg_max <= 0.0 { f64::INFINITY } else { pg_max };
    }
    Solution {
        w,
        intercept: wb * params.bias,
        alpha,
        iterations,
        converged,
    }
}
