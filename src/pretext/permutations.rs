//! Jigsaw permutation sets (Noroozi and Favaro 2016, Algorithm 1; FAIR
//! `extra_scripts/generate_jigsaw_permutations.py`): the |P| tile orders a Jigsaw network
//! classifies, chosen greedily among all 9! orders of the 3x3 tiles so that they are far apart
//! in Hamming distance.
//!
//! Selection starts from one permutation drawn from the seed and repeatedly adds the
//! not-yet-chosen permutation whose Hamming distance to the chosen set is largest, by mean
//! ([`Criterion::Mean`], FAIR's `max_avg`) or by minimum ([`Criterion::Min`], `max_min`). Ties
//! go to the first candidate in lexicographic order, as numpy's `argmax` does in FAIR's script.
//! Each candidate keeps a running distance sum (or minimum) that is updated once per added
//! permutation, so a step costs one pass over the 9! candidates.
//!
//! A set is stored as an int32 `.npy` of shape (|P|, 9), the layout FAIR's Jigsaw data layer
//! reads, beside a JSON sidecar with the same stem (`perms.npy` and `perms.json`) holding the
//! criterion, seed and size it was generated with.

use crate::data::npy;
use anyhow::{bail, ensure, Context, Result};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Number of Jigsaw tiles (a 3x3 grid).
pub const TILES: usize = 9;

/// One order of the tiles: entry `i` is the tile shown at position `i`.
pub type Permutation = [u8; TILES];

/// Number of orders of the tiles, 9!.
const ALL: usize = 362_880;

/// Candidates scored per rayon task in one selection step.
const CHUNK: usize = 1 << 14;

/// How a candidate's distance to the chosen set is summarised before taking the largest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// Largest mean Hamming distance to the chosen permutations (FAIR's `max_avg`, the paper's).
    Mean,
    /// Largest minimum Hamming distance to the chosen permutations (FAIR's `max_min`).
    Min,
}

/// A Jigsaw permutation set and how it was generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermutationSet {
    /// The chosen permutations, in selection order (a smaller set is a prefix of a larger one).
    pub perms: Vec<Permutation>,
    /// The greedy criterion that chose them.
    pub criterion: Criterion,
    /// The seed that drew the first permutation.
    pub seed: u64,
}

/// The sidecar written next to a set's `.npy`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Sidecar {
    size: usize,
    criterion: Criterion,
    seed: u64,
}

impl PermutationSet {
    /// Greedily selects `size` permutations (1 to 9!) under `criterion`, starting from the
    /// permutation that `seed` draws uniformly.
    pub fn generate(size: usize, criterion: Criterion, seed: u64) -> Result<Self> {
        ensure!(
            (1..=ALL).contains(&size),
            "a Jigsaw permutation set has 1 to {ALL} permutations, not {size}"
        );
        let first = rand::rngs::StdRng::seed_from_u64(seed).random_range(0..ALL);
        let candidates = Candidates::new();
        let mut score = vec![
            match criterion {
                Criterion::Mean => 0u32,
                Criterion::Min => u32::MAX,
            };
            ALL
        ];
        let mut taken = vec![false; ALL];
        let mut chosen = vec![first];
        while chosen.len() < size {
            let last = *chosen.last().expect("chosen starts non-empty");
            taken[last] = true;
            chosen.push(candidates.add(&mut score, &taken, last, criterion));
        }
        Ok(Self {
            perms: chosen.iter().map(|&i| candidates.get(i)).collect(),
            criterion,
            seed,
        })
    }

    /// Writes the set to `path` (int32 `.npy`, shape (|P|, 9)) and its sidecar.
    pub fn save(&self, path: &Path) -> Result<()> {
        let data: Vec<i32> = self.perms.iter().flatten().map(|&t| t as i32).collect();
        npy::write_i32(path, &[self.perms.len(), TILES], &data)?;
        let sidecar = Sidecar {
            size: self.perms.len(),
            criterion: self.criterion,
            seed: self.seed,
        };
        let side = sidecar_path(path);
        std::fs::write(&side, serde_json::to_string_pretty(&sidecar)?)
            .with_context(|| format!("cannot write {}", side.display()))
    }

    /// Reads a set written by [`PermutationSet::save`], checking that every row is a distinct
    /// permutation of the tiles and that the sidecar matches the array.
    pub fn load(path: &Path) -> Result<Self> {
        let side = sidecar_path(path);
        let text = std::fs::read_to_string(&side).with_context(|| {
            format!(
                "cannot read {}, the sidecar of {}: regenerate the set or delete both files",
                side.display(),
                path.display()
            )
        })?;
        let sidecar: Sidecar = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a permutation-set sidecar", side.display()))?;
        let array = npy::read(path)?;
        ensure!(
            array.shape() == [sidecar.size, TILES],
            "{} has shape {:?}, but its sidecar {} says ({}, {TILES})",
            path.display(),
            array.shape(),
            side.display(),
            sidecar.size
        );
        let flat: Vec<f64> = array.iter().copied().collect();
        let perms: Vec<Permutation> = flat
            .chunks_exact(TILES)
            .map(|row| {
                let mut perm = [0u8; TILES];
                for (p, &v) in perm.iter_mut().zip(row) {
                    *p = v as u8;
                }
                perm
            })
            .collect();
        check(&perms, &flat).with_context(|| format!("{} is corrupt", path.display()))?;
        Ok(Self {
            perms,
            criterion: sidecar.criterion,
            seed: sidecar.seed,
        })
    }

    /// Loads the set at `path` if it was generated with these arguments, otherwise generates
    /// and saves it there. A file made with other arguments is an error rather than
    /// overwritten.
    pub fn load_or_generate(
        path: &Path,
        size: usize,
        criterion: Criterion,
        seed: u64,
    ) -> Result<Self> {
        if path.exists() {
            let set = Self::load(path)?;
            if set.perms.len() != size || set.criterion != criterion || set.seed != seed {
                bail!(
                    "{} holds {} permutations ({:?}, seed {}), not the {size} ({criterion:?}, \
                     seed {seed}) asked for: point the task at another file or delete this one",
                    path.display(),
                    set.perms.len(),
                    set.criterion,
                    set.seed
                );
            }
            return Ok(set);
        }
        let set = Self::generate(size, criterion, seed)?;
        set.save(path)?;
        Ok(set)
    }
}

/// Mean Hamming distance, in tiles, over pairs of distinct members of `perms` (NaN for fewer
/// than two), the "avg dist" FAIR's script reports.
pub fn mean_hamming(perms: &[Permutation]) -> f64 {
    let total: u64 = (0..perms.len())
        .into_par_iter()
        .map(|i| {
            perms[i + 1..]
                .iter()
                .map(|q| hamming(&perms[i], q) as u64)
                .sum::<u64>()
        })
        .sum();
    let pairs = perms.len() * perms.len().saturating_sub(1) / 2;
    total as f64 / pairs as f64
}

/// Minimum Hamming distance, in tiles, over pairs of distinct members of `perms` (NaN for
/// fewer than two), the "min dist" FAIR's script reports.
pub fn min_hamming(perms: &[Permutation]) -> f64 {
    (0..perms.len())
        .into_par_iter()
        .flat_map_iter(|i| perms[i + 1..].iter().map(move |q| hamming(&perms[i], q)))
        .min()
        .map_or(f64::NAN, f64::from)
}

/// Number of positions at which `a` and `b` show different tiles.
fn hamming(a: &Permutation, b: &Permutation) -> u8 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as u8
}

/// Checks that `perms` (decoded from `raw`) are distinct permutations of 0..9.
fn check(perms: &[Permutation], raw: &[f64]) -> Result<()> {
    if let Some(v) = raw
        .iter()
        .find(|&&v| v.fract() != 0.0 || !(0.0..9.0).contains(&v))
    {
        bail!("{v} is not a tile index 0..9");
    }
    for (i, perm) in perms.iter().enumerate() {
        let mut seen = [false; TILES];
        for &t in perm {
            ensure!(!seen[t as usize], "row {i} {perm:?} repeats tile {t}");
            seen[t as usize] = true;
        }
    }
    let mut sorted = perms.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        bail!("permutation {:?} appears twice", w[0]);
    }
    Ok(())
}

/// The sidecar of a set stored at `path`: same stem, `.json` extension.
fn sidecar_path(path: &Path) -> PathBuf {
    path.with_extension("json")
}

/// All 9! permutations in lexicographic order, stored by position (column `p` holds the tile
/// at position `p` of every candidate) so that distances vectorise.
struct Candidates {
    columns: Vec<Vec<u8>>,
}

impl Candidates {
    fn new() -> Self {
        let mut columns: Vec<Vec<u8>> = (0..TILES).map(|_| Vec::with_capacity(ALL)).collect();
        let mut perm: Permutation = std::array::from_fn(|i| i as u8);
        loop {
            for (column, &t) in columns.iter_mut().zip(&perm) {
                column.push(t);
            }
            if !next_permutation(&mut perm) {
                break;
            }
        }
        Self { columns }
    }

    fn get(&self, index: usize) -> Permutation {
        std::array::from_fn(|p| self.columns[p][index])
    }

    /// Folds the distances to candidate `added` into `score` and returns the best candidate
    /// not yet `taken` (the first in lexicographic order among equals).
    fn add(&self, score: &mut [u32], taken: &[bool], added: usize, criterion: Criterion) -> usize {
        let pick = self.get(added);
        let (_, best) = score
            .par_chunks_mut(CHUNK)
            .zip(taken.par_chunks(CHUNK))
            .enumerate()
            .map(|(c, (score, taken))| {
                let start = c * CHUNK;
                let mut dist = [0u8; CHUNK];
                let dist = &mut dist[..score.len()];
                for (column, &t) in self.columns.iter().zip(&pick) {
                    let column = &column[start..start + score.len()];
                    for (d, &x) in dist.iter_mut().zip(column) {
                        *d += (x != t) as u8;
                    }
                }
                let mut best = (0u32, usize::MAX);
                for (i, ((s, &d), &gone)) in score.iter_mut().zip(&*dist).zip(taken).enumerate() {
                    *s = match criterion {
                        Criterion::Mean => *s + d as u32,
                        Criterion::Min => (*s).min(d as u32),
                    };
                    if !gone && (*s > best.0 || best.1 == usize::MAX) {
                        best = (*s, start + i);
                    }
                }
                best
            })
            .reduce(
                || (0, usize::MAX),
                |a, b| {
                    if b.1 != usize::MAX
                        && (a.1 == usize::MAX || b.0 > a.0 || (b.0 == a.0 && b.1 < a.1))
                    {
                        b
                    } else {
                        a
                    }
                },
            );
        best
    }
}

/// Steps `perm` to its lexicographic successor; false when it was the last.
fn next_permutation(perm: &mut Permutation) -> bool {
    let Some(i) = (1..TILES).rev().find(|&i| perm[i - 1] < perm[i]) else {
        return false;
    };
    let j = (i..TILES)
        .rev()
        .find(|&j| perm[j] > perm[i - 1])
        .expect("a larger tile follows");
    perm.swap(i - 1, j);
    perm[i..].reverse();
    true
}
