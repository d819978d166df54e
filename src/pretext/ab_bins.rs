//! The colorization target space of Zhang, Isola and Efros (ECCV 2016): the ab plane
//! quantised on a square grid, the empirical prior over its bins with the class-rebalancing
//! weights, soft-encoding of a pixel's ab over its K nearest bins, and the annealed-mean
//! decode of per-pixel bin probabilities back to ab.
//!
//! Bin centres are the grid points (multiples of the grid step); a colour belongs to the
//! nearest one. The bin set is either the in-gamut grid (every cell some 8-bit sRGB colour
//! falls in, at any lightness: 261 cells on the grid of 10, where Zhang et al. report 313 from
//! a construction they do not spell out) or the non-empty cells of a dataset's histogram
//! (FAIR's choice).

use super::lab;
use anyhow::{bail, ensure, Result};
use ndarray::{Array2, ArrayView2};
use std::collections::{BTreeSet, HashMap};

/// A set of ab bins on a grid: the classes a colorization network predicts.
#[derive(Debug, Clone)]
pub struct AbBins {
    /// Grid step in ab units (Zhang et al.: 10).
    pub step: f32,
    /// The bin centres (a, b), sorted by (a, b).
    pub centres: Vec<[f32; 2]>,
    /// Grid cell (round(a / step), round(b / step)) -> bin index.
    index: HashMap<(i32, i32), usize>,
}

/// Per-pixel soft targets: the K nearest bins of each pixel and their weights.
#[derive(Debug, Clone)]
pub struct SoftEncoding {
    /// Bin indices, pixels x K, nearest first.
    pub bins: Array2<u32>,
    /// Gaussian weights of those bins, pixels x K, each row summing to 1.
    pub weights: Array2<f32>,
}

impl AbBins {
    /// The bins holding the given grid cells.
    fn from_cells(step: f32, cells: BTreeSet<(i32, i32)>) -> Self {
        let centres = cells
            .iter()
            .map(|&(i, j)| [i as f32 * step, j as f32 * step])
            .collect();
        let index = cells.into_iter().enumerate().map(|(k, c)| (c, k)).collect();
        AbBins {
            step,
            centres,
            index,
        }
    }

    /// The in-gamut grid: every cell that some sRGB colour quantises into, found by
    /// sampling `levels` evenly spaced values per channel over [0, 1] (256: every 8-bit
    /// colour).
    pub fn in_gamut(step: f32, levels: usize) -> Result<Self> {
        ensure!(step > 0.0, "ab grid step must be positive, got {step}");
        ensure!(
            levels >= 2,
            "need at least 2 levels per channel, got {levels}"
        );
        let value = |i: usize| i as f32 / (levels - 1) as f32;
        let mut cells = BTreeSet::new();
        for r in 0..levels {
            for g in 0..levels {
                for b in 0..levels {
                    let [_, a, bb] = lab::srgb_to_lab([value(r), value(g), value(b)]);
                    cells.insert(cell(step, [a, bb]));
                }
            }
        }
        Ok(Self::from_cells(step, cells))
    }

    /// The non-empty cells of the histogram of the given ab values (a dataset's pixels).
    pub fn from_histogram(step: f32, ab: impl IntoIterator<Item = [f32; 2]>) -> Result<Self> {
        ensure!(step > 0.0, "ab grid step must be positive, got {step}");
        let cells: BTreeSet<_> = ab.into_iter().map(|p| cell(step, p)).collect();
        ensure!(
            !cells.is_empty(),
            "no pixels to build the ab histogram from"
        );
        Ok(Self::from_cells(step, cells))
    }

    /// Number of bins Q.
    pub fn len(&self) -> usize {
        self.centres.len()
    }

    /// Whether there are no bins (never true for a set built by this module).
    pub fn is_empty(&self) -> bool {
        self.centres.is_empty()
    }

    /// The bin nearest to `ab`.
    pub fn nearest(&self, ab: [f32; 2]) -> usize {
        if let Some(&k) = self.index.get(&cell(self.step, ab)) {
            return k;
        }
        (0..self.len())
            .min_by(|&x, &y| dist2(self.centres[x], ab).total_cmp(&dist2(self.centres[y], ab)))
            .expect("a bin set is never empty")
    }

    /// The empirical distribution over the bins of the given ab values (each value counted
    /// in its nearest bin).
    pub fn prior(&self, ab: impl IntoIterator<Item = [f32; 2]>) -> Result<Vec<f64>> {
        let mut counts = vec![0f64; self.len()];
        for p in ab {
            counts[self.nearest(p)] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        ensure!(total > 0.0, "no pixels to estimate the ab prior from");
        Ok(counts.into_iter().map(|c| c / total).collect())
    }

    /// The prior smoothed by a Gaussian of `sigma` ab units over the bin centres,
    /// renormalised (Zhang et al.: sigma 5).
    pub fn smooth(&self, prior: &[f64], sigma: f32) -> Result<Vec<f64>> {
        ensure!(
            prior.len() == self.len(),
            "prior has {} entries for {} bins",
            prior.len(),
            self.len()
        );
        ensure!(sigma > 0.0, "smoothing sigma must be positive, got {sigma}");
        let denom = 2.0 * (sigma as f64).powi(2);
        let smoothed: Vec<f64> = self
            .centres
            .iter()
            .map(|&c| {
                self.centres
                    .iter()
                    .zip(prior)
                    .map(|(&r, &p)| p * (-(dist2(c, r) as f64) / denom).exp())
                    .sum()
            })
            .collect();
        let total: f64 = smoothed.iter().sum();
        Ok(smoothed.into_iter().map(|v| v / total).collect())
    }

    /// Soft-encodes each ab value over its `k` nearest bins with Gaussian weights
    /// exp(-d^2 / (2 sigma^2)), normalised to sum to 1 (Zhang et al.: k 5, sigma 5; the
    /// benchmark's default k is 10).
    pub fn soft_encode(&self, ab: &[[f32; 2]], k: usize, sigma: f32) -> Result<SoftEncoding> {
        ensure!(
            (1..=self.len()).contains(&k),
            "soft-encoding over k = {k} bins needs 1 <= k <= {} (the number of bins)",
            self.len()
        );
        ensure!(
            sigma > 0.0,
            "soft-encoding sigma must be positive, got {sigma}"
        );
        let mut bins = Array2::zeros((ab.len(), k));
        let mut weights = Array2::zeros((ab.len(), k));
        let mut order: Vec<(f32, u32)> = Vec::with_capacity(self.len());
        for (n, &p) in ab.iter().enumerate() {
            order.clear();
            order.extend(
                self.centres
                    .iter()
                    .enumerate()
                    .map(|(q, &c)| (dist2(c, p), q as u32)),
            );
            if k < order.len() {
                order.select_nth_unstable_by(k - 1, |x, y| x.0.total_cmp(&y.0));
            }
            let nearest = &mut order[..k];
            nearest.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
            // Shift by the nearest distance so far-out colours do not underflow to 0 / 0.
            let d0 = nearest[0].0;
            let g: Vec<f32> = nearest
                .iter()
                .map(|&(d, _)| (-(d - d0) / (2.0 * sigma * sigma)).exp())
                .collect();
            let total: f32 = g.iter().sum();
            for (j, (&(_, q), w)) in nearest.iter().zip(g).enumerate() {
                bins[[n, j]] = q;
                weights[[n, j]] = w / total;
            }
        }
        Ok(SoftEncoding { bins, weights })
    }

    /// Annealed mean of per-pixel bin probabilities (pixels x Q): the mean bin centre under
    /// the distribution z^(1/T) renormalised (Zhang et al.: T = 0.38; T = 1 is the mean,
    /// T -> 0 the mode).
    pub fn annealed_mean(&self, probs: ArrayView2<f32>, temperature: f32) -> Result<Vec<[f32; 2]>> {
        ensure!(
            probs.ncols() == self.len(),
            "probabilities have {} columns for {} bins",
            probs.ncols(),
            self.len()
        );
        ensure!(
            temperature > 0.0,
            "annealing temperature must be positive, got {temperature}"
        );
        let mut out = Vec::with_capacity(probs.nrows());
        for (n, row) in probs.outer_iter().enumerate() {
            // z^(1/T) through logs, shifted by the largest, so small T does not underflow.
            let logs: Vec<f64> = row
                .iter()
                .map(|&z| (z as f64).ln() / temperature as f64)
                .collect();
            let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !top.is_finite() {
                bail!("pixel {n} has no positive bin probability (or a non-finite one)");
            }
            let (mut sa, mut sb, mut total) = (0f64, 0f64, 0f64);
            for (&l, c) in logs.iter().zip(&self.centres) {
                let w = (l - top).exp();
                sa += w * c[0] as f64;
                sb += w * c[1] as f64;
                total += w;
            }
            out.push([(sa / total) as f32, (sb / total) as f32]);
        }
        Ok(out)
    }
}

/// Class-rebalancing weights of Zhang et al.: w ∝ ((1 - lambda) p + lambda / Q)^-1 for the
/// (smoothed) prior p, scaled so that E_p[w] = sum_q p_q w_q = 1 (Zhang et al.: lambda 0.5).
pub fn rebalancing_weights(prior: &[f64], lambda: f64) -> Result<Vec<f64>> {
    ensure!(!prior.is_empty(), "empty prior");
    ensure!(
        (0.0..=1.0).contains(&lambda),
        "rebalancing lambda must be in [0, 1], got {lambda}"
    );
    let q = prior.len() as f64;
    let raw: Vec<f64> = prior
        .iter()
        .map(|&p| 1.0 / ((1.0 - lambda) * p + lambda / q))
        .collect();
    ensure!(
        raw.iter().all(|w| w.is_finite()),
        "lambda = 0 with an empty bin in the prior gives it an infinite weight: use lambda > 0"
    );
    let expectation: f64 = raw.iter().zip(prior).map(|(w, p)| w * p).sum();
    Ok(raw.into_iter().map(|w| w / expectation).collect())
}

/// The grid cell of an ab value.
fn cell(step: f32, ab: [f32; 2]) -> (i32, i32) {
    ((ab[0] / step).round() as i32, (ab[1] / step).round() as i32)
}

/// Squared Euclidean distance in the ab plane.
fn dist2(x: [f32; 2], y: [f32; 2]) -> f32 {
    (x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2)
}
