//! The normals codebook: the cluster centres each pixel is classified into, nearest-centre
//! labels, and k-means on training normals for users without `vocab40.mat`, saved as a small
//! JSON file with its seed and a digest of the data it was fitted on.

use crate::atomic::{file_sha256, write_atomic};
use crate::data::nyuv2::read_vocab_centres;
use crate::seed::SplitMix;
use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The label of a pixel without a valid normal (the paper's code writes 255, read as ignore).
pub const IGNORE_LABEL: u8 = 255;

/// The format tag of a saved codebook file.
const FORMAT: &str = "sslbench-normals-codebook-1";

/// Where a codebook's centres came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CodebookSource {
    /// Read from a file such as `vocab40.mat`.
    File {
        /// The file's name as given.
        path: String,
        /// SHA-256 of its bytes, hex.
        sha256: String,
    },
    /// Fitted by [`KMeans::fit`].
    KMeans {
        /// The k-means++ seed.
        seed: u64,
        /// Lloyd iterations run.
        iterations: usize,
        /// Whether the labels stopped changing before `max_iterations`.
        converged: bool,
        /// Normals fitted on.
        samples: usize,
        /// SHA-256 (hex) of the normals fitted on, as little-endian float64 triples in order.
        data_sha256: String,
    },
}

/// Cluster centres of surface normals, at most 255 so that labels fit a byte beside
/// [`IGNORE_LABEL`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Codebook {
    /// The centres, in label order.
    pub centres: Vec<[f64; 3]>,
    /// Their provenance.
    pub source: CodebookSource,
}

#[derive(Serialize, Deserialize)]
struct CodebookFile {
    format: String,
    #[serde(flatten)]
    codebook: Codebook,
}

fn squared_distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
}

/// The index of the centre nearest to `n` by squared Euclidean distance, the first on ties
/// (`sklearn.metrics.pairwise_distances_argmin`), and that distance.
fn nearest(centres: &[[f64; 3]], n: [f64; 3]) -> (usize, f64) {
    centres
        .iter()
        .enumerate()
        .fold((0, f64::INFINITY), |best, (i, &c)| {
            let d = squared_distance(n, c);
            if d < best.1 {
                (i, d)
            } else {
                best
            }
        })
}

impl Codebook {
    /// A codebook of 1 to 255 finite centres.
    pub fn new(centres: Vec<[f64; 3]>, source: CodebookSource) -> Result<Codebook> {
        ensure!(
            (1..=IGNORE_LABEL as usize).contains(&centres.len()),
            "a codebook needs 1 to {} centres, not {}",
            IGNORE_LABEL,
            centres.len()
        );
        if let Some(i) = centres
            .iter()
            .position(|c| c.iter().any(|v| !v.is_finite()))
        {
            bail!("codebook centre {i} is not finite: {:?}", centres[i]);
        }
        Ok(Codebook { centres, source })
    }

    /// The `k` centres of a codebook file such as `vocab40.mat` (MATLAB v5, `vocabs{1}.normals`,
    /// checked as unit vectors by [`read_vocab_centres`]), with the file's name and SHA-256 as
    /// the source.
    pub fn from_vocab_mat(path: &Path, k: usize) -> Result<Codebook> {
        let centres = read_vocab_centres(path, k)?;
        let sha256 = file_sha256(path, || {
            format!("cannot read the codebook {}", path.display())
        })?;
        let source = CodebookSource::File {
            path: path.display().to_string(),
            sha256,
        };
        Codebook::new(centres, source).with_context(|| format!("in {}", path.display()))
    }

    /// The label of one normal: its nearest centre ([`Codebook::labels`]).
    pub fn nearest(&self, n: [f64; 3]) -> usize {
        nearest(&self.centres, n).0
    }

    /// Per pixel, the nearest centre (squared Euclidean distance, the first on ties, as
    /// `sklearn.metrics.pairwise_distances_argmin` assigns), or [`IGNORE_LABEL`] where `valid`
    /// is false.
    pub fn labels<T: Copy + Into<f64> + Sync>(
        &self,
        normals: &[[T; 3]],
        valid: &[bool],
    ) -> Result<Vec<u8>> {
        ensure!(
            normals.len() == valid.len(),
            "{} normals but {} mask values",
            normals.len(),
            valid.len()
        );
        Ok(normals
            .par_iter()
            .zip(valid)
            .map(|(n, &v)| {
                if v {
                    self.nearest(n.map(Into::into)) as u8
                } else {
                    IGNORE_LABEL
                }
            })
            .collect())
    }

    /// Writes the codebook as JSON (centres as exact float64 decimals, with the source).
    pub fn save(&self, path: &Path) -> Result<()> {
        let file = CodebookFile {
            format: FORMAT.into(),
            codebook: self.clone(),
        };
        write_atomic(path, &serde_json::to_vec_pretty(&file)?)
            .with_context(|| format!("cannot write the codebook {}", path.display()))
    }

    /// Reads a codebook written by [`Codebook::save`].
    pub fn load(path: &Path) -> Result<Codebook> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the codebook {}", path.display()))?;
        let file: CodebookFile = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a codebook file written by sslbench (format {FORMAT})",
                path.display()
            )
        })?;
        ensure!(
            file.format == FORMAT,
            "{} has format {:?}, expected {FORMAT:?}",
            path.display(),
            file.format
        );
        let c = file.codebook;
        Codebook::new(c.centres, c.source).with_context(|| format!("in {}", path.display()))
    }
}

/// k-means on unit normals, for a codebook when `vocab40.mat` is not at hand.
///
/// Seeded k-means++ initialisation (Arthur & Vassilvitskii 2007: the first centre uniform, each
/// next one drawn with probability proportional to the squared distance to the nearest chosen
/// centre, one candidate a step) from [`SplitMix`] seeded with `seed`, then Lloyd iterations
/// until no label changes or `max_iterations`. After every update each centre is renormalised to
/// unit length (normals are directions, and so are `vocab40.mat`'s rows; on unit data the
/// nearest centre by Euclidean distance is then the nearest by angle); a cluster left empty
/// takes the normal farthest from its centre. Assignments run in parallel, sums are reduced in a
/// fixed order: the result depends only on the data and the seed. Fitting on every pixel of a
/// training set is slow: pass a seeded sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KMeans {
    /// Centres (the paper: 40).
    pub k: usize,
    /// Seed of the initialisation.
    pub seed: u64,
    /// Most Lloyd iterations.
    pub max_iterations: usize,
}

impl Default for KMeans {
    /// k = 40, seed 0, 300 iterations (scikit-learn's default cap).
    fn default() -> Self {
        KMeans {
            k: 40,
            seed: 0,
            max_iterations: 300,
        }
    }
}

/// Points per parallel chunk of the update step: the reduction order is fixed by it.
const CHUNK: usize = 1 << 14;

impl KMeans {
    /// Fits the codebook to `normals` (any length; renormalised centres, see [`KMeans`]).
    pub fn fit<T: Copy + Into<f64> + Sync>(&self, normals: &[[T; 3]]) -> Result<Codebook> {
        ensure!(
            (1..=IGNORE_LABEL as usize).contains(&self.k),
            "k-means k = {} must lie in 1..=255",
            self.k
        );
        let data: Vec<[f64; 3]> = normals.iter().map(|n| n.map(Into::into)).collect();
        ensure!(
            data.len() >= self.k,
            "k-means needs at least k = {} normals, got {}",
            self.k,
            data.len()
        );
        if let Some(i) = data.iter().position(|n| n.iter().any(|v| !v.is_finite())) {
            bail!("normal {i} is not finite: {:?}", data[i]);
        }
        let mut hash = Sha256::new();
        for n in &data {
            for v in n {
                hash.update(v.to_le_bytes());
            }
        }
        let mut centres = self.init(&data)?;
        let mut labels = vec![usize::MAX; data.len()];
        let (mut iterations, mut converged) = (0, false);
        while iterations < self.max_iterations {
            iterations += 1;
            let assigned: Vec<(usize, f64)> =
                data.par_iter().map(|&n| nearest(&centres, n)).collect();
            let changed = assigned
                .iter()
                .zip(&labels)
                .filter(|((l, _), old)| l != *old)
                .count();
            labels = assigned.iter().map(|a| a.0).collect();
            if changed == 0 {
                converged = true;
                break;
            }
            let k = self.k;
            let partial: Vec<(Vec<[f64; 3]>, Vec<usize>)> = data
                .par_chunks(CHUNK)
                .zip(labels.par_chunks(CHUNK))
                .map(|(pts, ls)| {
                    let mut sums = vec![[0.0; 3]; k];
                    let mut counts = vec![0usize; k];
                    for (p, &l) in pts.iter().zip(ls) {
                        counts[l] += 1;
                        for c in 0..3 {
                            sums[l][c] += p[c];
                        }
                    }
                    (sums, counts)
                })
                .collect();
            let mut sums = vec![[0.0; 3]; k];
            let mut counts = vec![0usize; k];
            for (s, c) in partial {
                for j in 0..k {
                    counts[j] += c[j];
                    for a in 0..3 {
                        sums[j][a] += s[j][a];
                    }
                }
            }
            let mut taken = Vec::new();
            for j in 0..k {
                if counts[j] == 0 {
                    // The normal farthest from its centre (first on ties), not yet taken.
                    let far = (0..data.len())
                        .filter(|i| !taken.contains(i))
                        .fold((0, f64::NEG_INFINITY), |best, i| {
                            if assigned[i].1 > best.1 {
                                (i, assigned[i].1)
                            } else {
                                best
                            }
                        })
                        .0;
                    taken.push(far);
                    centres[j] = unit(data[far]).unwrap_or(data[far]);
                } else if let Some(c) = unit(sums[j]) {
                    centres[j] = c;
                }
            }
        }
        Codebook::new(
            centres,
            CodebookSource::KMeans {
                seed: self.seed,
                iterations,
                converged,
                samples: data.len(),
                data_sha256: hex::encode(hash.finalize()),
            },
        )
    }

    /// k-means++ seeding.
    fn init(&self, data: &[[f64; 3]]) -> Result<Vec<[f64; 3]>> {
        let mut rng = SplitMix(self.seed);
        let uniform = |rng: &mut SplitMix| rng.below(1 << 53) as f64 / (1u64 << 53) as f64;
        let mut centres = vec![data[rng.below(data.len())]];
        let mut dist: Vec<f64> = data
            .par_iter()
            .map(|&n| squared_distance(n, centres[0]))
            .collect();
        while centres.len() < self.k {
            let total: f64 = dist.iter().sum();
            ensure!(
                total > 0.0,
                "only {} distinct normals for k = {} centres",
                centres.len(),
                self.k
            );
            let target = uniform(&mut rng) * total;
            let mut acc = 0.0;
            let pick = dist
                .iter()
                .position(|&d| {
                    acc += d;
                    acc > target
                })
                .unwrap_or_else(|| dist.iter().rposition(|&d| d > 0.0).unwrap_or(0));
            let c = data[pick];
            centres.push(c);
            dist.par_iter_mut()
                .zip(data)
                .for_each(|(d, &n)| *d = d.min(squared_distance(n, c)));
        }
        Ok(centres)
    }
}

/// `v / ||v||`, or `None` for a zero vector.
fn unit(v: [f64; 3]) -> Option<[f64; 3]> {
    let l = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    (l > 0.0).then(|| v.map(|x| x / l))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Normals scattered around three directions, from a fixed generator.
    fn sample() -> (Vec<[f32; 3]>, [[f64; 3]; 3]) {
        let truth = [[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]];
        let mut rng = SplitMix(7);
        let mut noise = || (rng.below(1 << 20) as f64 / (1 << 20) as f64 - 0.5) * 0.2;
        let pts = (0..3000)
            .map(|i| {
                let t = truth[i % 3];
                let v = unit([t[0] + noise(), t[1] + noise(), t[2] + noise()]).unwrap();
                v.map(|x| x as f32)
            })
            .collect();
        (pts, truth)
    }

    #[test]
    fn kmeans_finds_the_directions_and_is_deterministic() {
        let (pts, truth) = sample();
        let km = KMeans {
            k: 3,
            seed: 1,
            max_iterations: 100,
        };
        let a = km.fit(&pts).unwrap();
        assert_eq!(a, km.fit(&pts).unwrap());
        let CodebookSource::KMeans {
            converged, samples, ..
        } = &a.source
        else {
            panic!("{:?}", a.source)
        };
        assert!(*converged && *samples == 3000);
        for c in &a.centres {
            assert!((squared_distance(*c, [0.0; 3]) - 1.0).abs() < 1e-12, "unit");
            let (_, d) = nearest(&truth, *c);
            assert!(d < 1e-3, "{c:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("codebook.json");
        a.save(&p).unwrap();
        assert_eq!(Codebook::load(&p).unwrap(), a);
        std::fs::write(&p, "{}").unwrap();
        assert!(Codebook::load(&p).is_err());
        assert!(KMeans { k: 4, ..km }.fit(&pts[..3]).is_err());
        assert!(KMeans { k: 2, ..km }.fit(&[[1.0f32, 0.0, 0.0]; 5]).is_err());
    }

    #[test]
    fn labels_take_the_first_nearest_centre_and_ignore_invalid_pixels() {
        let src = CodebookSource::File {
            path: "test".into(),
            sha256: String::new(),
        };
        let book = Codebook::new(
            vec![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]],
            src.clone(),
        )
        .unwrap();
        let l = book
            .labels(
                &[[0.9f32, 0.0, 0.1], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0]],
                &[true, true, false],
            )
            .unwrap();
        assert_eq!(l, vec![1, 0, IGNORE_LABEL]);
        // Equidistant from centres 0 and 1: the first.
        assert_eq!(book.nearest([1.0, 0.0, 1.0]), 0);
        assert!(Codebook::new(vec![], src.clone()).is_err());
        assert!(Codebook::new(vec![[f64::NAN, 0.0, 0.0]], src).is_err());
    }
}
