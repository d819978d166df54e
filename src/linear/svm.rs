//! A binary linear SVM with LIBLINEAR's semantics for the L2-regularised squared-hinge loss
//! (solver `L2R_L2LOSS_SVC_DUAL`, scikit-learn's `LinearSVC(dual=True)`): dual coordinate
//! descent with shrinking (Hsieh et al., ICML 2008), per-class costs, and the bias as a
//! regularised extra feature of constant value.
//!
//! The dual is `min_a 1/2 a'Qa - sum a_i` with `a_i >= 0`, `Q = yy'(XX' + bias^2) + D`,
//! `D_ii = 1 / (2 C_i)`; the primal weights are `w = sum_i y_i a_i x_i`. Training stops when
//! the spread of the projected gradient over the active set falls below `tol`, or after
//! `max_iter` passes.

use super::simd::{axpy, dot, dot_f32};
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

/// The solver's settings that hold for a whole protocol (LIBLINEAR / `LinearSVC` names).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Solver {
    /// Weight of positive examples: their cost is `cost * pos_weight`
    /// (`class_weight={1: 2, -1: 1}`).
    pub pos_weight: f64,
    /// Weight of negative examples.
    pub neg_weight: f64,
    /// Stopping tolerance on the projected-gradient spread (`tol`, LIBLINEAR's `eps`).
    pub tol: f64,
    /// Most passes over the data (`max_iter`).
    pub max_iter: usize,
    /// Value of the regularised bias feature (`intercept_scaling`); 0 trains without a bias.
    pub bias: f64,
    /// Shrink the active set (LIBLINEAR's shrinking heuristic; LIBLINEAR always does).
    pub shrinking: bool,
}

/// The parameters of one training: a cost and a seed over the protocol's solver settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SvmParams {
    /// The cost C.
    pub cost: f64,
    /// Seed of the per-pass random order.
    pub seed: u64,
    /// Everything else.
    pub solver: Solver,
}

/// How the solver reaches the training rows: through the features (`w` kept explicitly,
/// each step costs O(dim)), or through their Gram matrix (each step costs O(rows); worth it
/// when many SVMs share one training set, as the cost grid, folds and classes do).
#[derive(Clone, Copy)]
pub enum Kernel<'a> {
    /// The feature rows.
    Primal(&'a Rows),
    /// The Gram matrix of the feature rows.
    Gram(&'a Gram),
}

/// How a [`Gram`] stores its entries. They are always computed in float64; `F32` rounds
/// them for storage (half the memory traffic of the solver, which is bound by it), and the
/// solver still accumulates in float64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 8 bytes an entry.
    F64,
    /// 4 bytes an entry.
    F32,
}

#[derive(Clone, Debug)]
enum Entries {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

/// Dot products between two sets of rows (row-major, `rows x cols`): the Gram matrix `XX'`
/// of a training set, or the cross products of test and training rows.
#[derive(Clone, Debug)]
pub struct Gram {
    k: Entries,
    rows: usize,
    cols: usize,
}

impl Gram {
    /// `XX'` of `x`.
    pub fn of(x: &Rows, precision: Precision) -> candle_core::Result<Gram> {
        Gram::cross(x, x, precision)
    }

    /// `AB'`: row `i` holds the dot products of `a`'s row `i` with every row of `b`, by one
    /// float64 matrix product (the engine's, whose sums do not depend on the machine).
    pub fn cross(a: &Rows, b: &Rows, precision: Precision) -> candle_core::Result<Gram> {
        use candle_core::{Device, Tensor};
        let ta = Tensor::from_slice(&a.data, (a.len(), a.dim), &Device::Cpu)?;
        let tb = Tensor::from_slice(&b.data, (b.len(), b.dim), &Device::Cpu)?;
        let k = sslbench_ops::mm(&ta, &tb.t()?)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let k = match precision {
            Precision::F64 => Entries::F64(k),
            Precision::F32 => Entries::F32(k.into_iter().map(|v| v as f32).collect()),
        };
        Ok(Gram {
            k,
            rows: a.len(),
            cols: b.len(),
        })
    }

    /// The sub-matrix of `rows` x `cols`, compact (so a fold's solver reads short rows).
    pub fn gather(&self, rows: &[usize], cols: &[usize]) -> Gram {
        fn pick<T: Copy>(k: &[T], n: usize, rows: &[usize], cols: &[usize]) -> Vec<T> {
            let mut out = Vec::with_capacity(rows.len() * cols.len());
            for &r in rows {
                let row = &k[r * n..(r + 1) * n];
                out.extend(cols.iter().map(|&c| row[c]));
            }
            out
        }
        let k = match &self.k {
            Entries::F64(k) => Entries::F64(pick(k, self.cols, rows, cols)),
            Entries::F32(k) => Entries::F32(pick(k, self.cols, rows, cols)),
        };
        Gram {
            k,
            rows: rows.len(),
            cols: cols.len(),
        }
    }

    /// `sum_j K_ij v_j`, accumulated in float64.
    #[inline]
    pub fn row_dot(&self, i: usize, v: &[f64]) -> f64 {
        let span = i * self.cols..(i + 1) * self.cols;
        match &self.k {
            Entries::F64(k) => dot(&k[span], v),
            Entries::F32(k) => dot_f32(&k[span], v),
        }
    }

    /// Entry `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        match &self.k {
            Entries::F64(k) => k[i * self.cols + j],
            Entries::F32(k) => k[i * self.cols + j] as f64,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// A trained SVM and how training went.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// The dual point expanded over all rows the kernel indexes: `y_i alpha_i` at the
    /// subset's rows, 0 elsewhere. The weights are `w = sum_i coef_i x_i`.
    pub coef: Vec<f64>,
    /// Weights over the features when the solver kept them (primal kernel).
    pub w: Option<Vec<f64>>,
    /// Intercept: the bias feature's weight times its value.
    pub intercept: f64,
    /// Dual variables, one per subset row (a warm start for a nearby cost).
    pub alpha: Vec<f64>,
    /// Passes over the data.
    pub iterations: usize,
    /// False when `max_iter` stopped training (scikit-learn's ConvergenceWarning).
    pub converged: bool,
}

impl Solution {
    /// Decision values from a cross product `(rows x kernel rows)` with the kernel's rows:
    /// `sum_j cross_ij coef_j + intercept`.
    pub fn decisions(&self, cross: &Gram) -> Vec<f64> {
        (0..cross.rows)
            .map(|i| cross.row_dot(i, &self.coef) + self.intercept)
            .collect()
    }

    /// The weights over the features, from the dual point when they were not kept.
    pub fn weights(&self, train: &Rows) -> Vec<f64> {
        if let Some(w) = &self.w {
            return w.clone();
        }
        let mut w = vec![0.0; train.dim];
        for (i, &c) in self.coef.iter().enumerate() {
            if c != 0.0 {
                axpy(c, train.row(i), &mut w);
            }
        }
        w
    }
}

/// The current point of the dual: what a coordinate step reads and changes.
struct State<'a> {
    kernel: Kernel<'a>,
    subset: &'a [usize],
    /// `y_i alpha_i` over all training rows.
    coef: Vec<f64>,
    /// Primal weights (primal kernel only).
    w: Vec<f64>,
    /// `sum coef_i * bias`: the bias feature's weight.
    wb: f64,
    bias: f64,
}

impl State<'_> {
    /// `w.x_i + wb * bias` for subset position `s`.
    #[inline]
    fn margin(&self, s: usize) -> f64 {
        let i = self.subset[s];
        let linear = match self.kernel {
            Kernel::Primal(x) => dot(&self.w, x.row(i)),
            Kernel::Gram(g) => g.row_dot(i, &self.coef),
        };
        linear + self.wb * self.bias
    }

    /// Moves `coef` at subset position `s` by `d`.
    #[inline]
    fn step(&mut self, s: usize, d: f64) {
        let i = self.subset[s];
        self.coef[i] += d;
        if let Kernel::Primal(x) = self.kernel {
            axpy(d, x.row(i), &mut self.w);
        }
        self.wb += d * self.bias;
    }

    fn sq_norm(&self, s: usize) -> f64 {
        let i = self.subset[s];
        match self.kernel {
            Kernel::Primal(x) => x.sq_norms[i],
            Kernel::Gram(g) => g.get(i, i),
        }
    }
}

/// Trains on the rows `subset` of the training set with labels `positive` (parallel to
/// `subset`), starting from the dual point `warm` when given (e.g. the solution at the
/// previous cost).
pub fn train(
    kernel: Kernel,
    subset: &[usize],
    positive: &[bool],
    params: &SvmParams,
    warm: Option<&[f64]>,
) -> Solution {
    let l = subset.len();
    let (n, dim) = match kernel {
        Kernel::Primal(x) => (x.len(), x.dim),
        Kernel::Gram(g) => (g.cols, 0),
    };
    let y: Vec<f64> = positive
        .iter()
        .map(|&p| if p { 1.0 } else { -1.0 })
        .collect();
    let diag: Vec<f64> = positive
        .iter()
        .map(|&p| {
            0.5 / (params.cost
                * if p {
                    params.solver.pos_weight
                } else {
                    params.solver.neg_weight
                })
        })
        .collect();
    let mut st = State {
        kernel,
        subset,
        coef: vec![0.0; n],
        w: vec![0.0; dim],
        wb: 0.0,
        bias: params.solver.bias,
    };
    let qd: Vec<f64> = (0..l)
        .map(|s| diag[s] + st.sq_norm(s) + params.solver.bias * params.solver.bias)
        .collect();
    let mut alpha = match warm {
        Some(a) if a.len() == l => a.to_vec(),
        _ => vec![0.0; l],
    };
    for s in 0..l {
        if alpha[s] != 0.0 {
            st.step(s, y[s] * alpha[s]);
        }
    }
    let mut index: Vec<usize> = (0..l).collect();
    let mut active = l;
    let mut rng = crate::seed::SplitMix(params.seed);
    // Without an upper bound on alpha (squared hinge) only the lower shrinking test applies.
    let mut pg_max_old = f64::INFINITY;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < params.solver.max_iter {
        let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
        for i in 0..active {
            let j = i + rng.below(active - i);
            index.swap(i, j);
        }
        let mut k = 0;
        while k < active {
            let s = index[k];
            let g = y[s] * st.margin(s) - 1.0 + alpha[s] * diag[s];
            let mut pg = g;
            if alpha[s] == 0.0 {
                if params.solver.shrinking && g > pg_max_old {
                    active -= 1;
                    index.swap(k, active);
                    continue;
                }
                pg = g.min(0.0);
            }
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[s];
                alpha[s] = (old - g / qd[s]).max(0.0);
                st.step(s, (alpha[s] - old) * y[s]);
            }
            k += 1;
        }
        iterations += 1;
        if pg_max - pg_min <= params.solver.tol {
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
        w: matches!(kernel, Kernel::Primal(_)).then_some(st.w),
        coef: st.coef,
        intercept: st.wb * params.solver.bias,
        alpha,
        iterations,
        converged,
    }
}
