//! One training subset swept over the cost grid, from the smallest cost up, each cost
//! warm-started from the previous one's dual point; resumable after every cost.
//!
//! A chain's state (the scores so far and the last dual point) lives in one file that is
//! replaced atomically after each cost, so a killed run continues at the first unfinished
//! (subset, cost) and, with per-cost seeds, ends with the same numbers as an uninterrupted one.

use super::svm::{train, Kernel, Solution, SvmParams};
use crate::atomic::write_atomic;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One cost of a chain: its score and how training went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostPoint {
    /// The cost.
    pub cost: f64,
    /// What the caller's evaluation returned (APs on held-out or test rows).
    pub scores: Vec<f64>,
    /// Passes over the data.
    pub iterations: usize,
    /// False when `max_iter` stopped training.
    pub converged: bool,
}

/// The saved state of a chain.
#[derive(Serialize, Deserialize)]
struct ChainHeader {
    rows: usize,
    costs: Vec<f64>,
    points: Vec<CostPoint>,
}

/// A training subset and its labels.
pub struct Subset<'a> {
    /// The training rows (features or their Gram matrix).
    pub kernel: Kernel<'a>,
    /// Row indices of the subset.
    pub index: &'a [usize],
    /// Labels, parallel to `index`.
    pub positive: &'a [bool],
}

/// Trains `subset` at `costs` (ascending), each but the first warm-started from the previous
/// dual point when `warm_start`, and calls `evaluate` with each cost's position and solution. `params.cost` and
/// `params.seed` are replaced per cost (the seed by `seed_of(cost index)`). `state` is the
/// chain's resume file: points already in it are returned without training. `on_cost` is
/// called once per cost trained or found (for progress).
#[allow(clippy::too_many_arguments)]
pub fn sweep(
    subset: &Subset,
    costs: &[f64],
    params: &SvmParams,
    warm_start: bool,
    seed_of: impl Fn(usize) -> u64,
    state: &Path,
    mut evaluate: impl FnMut(usize, &Solution) -> Vec<f64>,
    on_cost: &(dyn Fn() + Sync),
) -> Result<Vec<CostPoint>> {
    if costs.windows(2).any(|w| w[0] > w[1]) {
        bail!("internal: the cost sweep needs ascending costs, got {costs:?}");
    }
    let (mut points, mut alpha) = load(state, subset.index.len(), costs)?;
    for _ in &points {
        on_cost();
    }
    for (k, &cost) in costs.iter().enumerate().skip(points.len()) {
        let p = SvmParams {
            cost,
            seed: seed_of(k),
            ..*params
        };
        let warm = (warm_start && !alpha.is_empty()).then_some(alpha.as_slice());
        let solution = train(subset.kernel, subset.index, subset.positive, &p, warm);
        points.push(CostPoint {
            cost,
            scores: evaluate(k, &solution),
            iterations: solution.iterations,
            converged: solution.converged,
        });
        alpha = solution.alpha;
        save(state, subset.index.len(), costs, &points, &alpha)?;
        on_cost();
    }
    Ok(points)
}

fn save(
    path: &Path,
    rows: usize,
    costs: &[f64],
    points: &[CostPoint],
    alpha: &[f64],
) -> Result<()> {
    let header = ChainHeader {
        rows,
        costs: costs.to_vec(),
        points: points.to_vec(),
    };
    let mut bytes = serde_json::to_vec(&header)?;
    bytes.push(b'\n');
    for a in alpha {
        bytes.extend_from_slice(&a.to_le_bytes());
    }
    write_atomic(path, &bytes)
}

/// Reads a chain state; a missing file is a fresh chain. A state written for other costs or
/// another subset size is ignored (started afresh).
fn load(path: &Path, rows: usize, costs: &[f64]) -> Result<(Vec<CostPoint>, Vec<f64>)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], vec![])),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let parsed = bytes.iter().position(|&b| b == b'\n').and_then(|nl| {
        let header: ChainHeader = serde_json::from_slice(&bytes[..nl]).ok()?;
        let body = &bytes[nl + 1..];
        let same = header.rows == rows
            && header.costs == costs
            && body.len() == rows * 8
            && header.points.len() <= costs.len();
        same.then(|| {
            let alpha = body
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect();
            (header.points, alpha)
        })
    });
    match parsed {
        Some(state) => Ok(state),
        None => {
            eprintln!(
                "warning: ignoring the unreadable or stale SVM state {} (training that chain afresh)",
                path.display()
            );
            Ok((vec![], vec![]))
        }
    }
}
