//! The normals evaluation of the paper's code (research note §1.8-1.9): predictions decoded as
//! the softmax-weighted sum of the codebook's centres, and the angular error pooled over every
//! valid pixel of every test image, in float64: mean, median (`np.percentile(angle, 50)`,
//! linear interpolation) and the % of pixels under 11.25, 22.5 and 30 degrees (strict `<`).
//!
//! Memory. The exact median needs the exact float64 values of the middle one or two angles, so
//! neither a histogram alone nor angles kept as f32 (off by up to ~1e-6 degrees) will do, and
//! keeping every angle as f64 costs 8 bytes a pixel (1.6 GB for 654 frames of 480 x 640).
//! [`evaluate`] instead streams the angles in passes: the first pass accumulates the count,
//! the compensated sum and the threshold counts, and a 65,536-bin histogram over [0, 180] with
//! each bin's minimum and maximum; a middle rank that is the first or last of its bin is then
//! known exactly. Otherwise a second pass keeps, as f64, only the angles of the one or two bins
//! that hold the middle ranks (at most [`COLLECT_LIMIT`] values; more, e.g. a point mass, and
//! that pass refines the histogram within those bins instead) and selects among them. About
//! 1.5 MB plus the kept angles, whatever the number of images; the price is a second pass
//! over the images (recompute the angles, or read them back from a spill file).

use anyhow::{bail, ensure, Context, Result};

/// The thresholds of the "% within" columns, degrees; a pixel counts when its angle is
/// strictly below.
pub const THRESHOLDS_DEG: [f64; 3] = [11.25, 22.5, 30.0];

/// The most angles a pass keeps as f64 to select the median from.
pub const COLLECT_LIMIT: u64 = 1 << 20;

const BINS: usize = 1 << 16;

/// Decodes one image's class probabilities into normals: per pixel, sum_k p_k c_k in float64
/// over the codebook's centres, renormalised as n / (||n|| + eps) with eps the float64 machine
/// epsilon (the paper's `normals_evaluation_utils.py`; not the argmax centre). `probabilities`
/// is channel-first, `centres.len()` planes of `pixels` values (a softmax over the classes, as
/// the model's output for one image), so `probabilities.len()` must be a multiple of the number
/// of centres.
pub fn decode_probabilities(probabilities: &[f32], centres: &[[f64; 3]]) -> Result<Vec<[f64; 3]>> {
    let k = centres.len();
    ensure!(k > 0, "the codebook has no centres");
    ensure!(
        probabilities.len().is_multiple_of(k),
        "{} probabilities are not {k} planes (one per codebook centre)",
        probabilities.len()
    );
    let pixels = probabilities.len() / k;
    Ok((0..pixels)
        .map(|p| {
            let mut n = [0.0f64; 3];
            for (c, centre) in centres.iter().enumerate() {
                let w = probabilities[c * pixels + p] as f64;
                for (v, x) in n.iter_mut().zip(centre) {
                    *v += w * x;
                }
            }
            renormalise(n)
        })
        .collect())
}

/// `n / (||n|| + eps)`, eps the float64 machine epsilon: the paper's renormalisation (a zero
/// vector stays zero).
fn renormalise(n: [f64; 3]) -> [f64; 3] {
    let norm = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt() + f64::EPSILON;
    n.map(|v| v / norm)
}

/// The angle in degrees between a predicted and a ground-truth normal, each renormalised,
/// their dot product clamped to [-1, 1]: `degrees(arccos(clip(sum(n * g), -1, 1)))`.
pub fn angle_degrees(pred: [f64; 3], gt: [f64; 3]) -> f64 {
    let (n, g) = (renormalise(pred), renormalise(gt));
    let dot = (n[0] * g[0] + n[1] * g[1] + n[2] * g[2]).clamp(-1.0, 1.0);
    dot.acos().to_degrees()
}

/// The angular errors (degrees, float64) of one image's valid pixels, in pixel order.
/// Non-finite normals at a valid pixel are an error naming the pixel.
pub fn angular_errors<P, G>(pred: &[[P; 3]], gt: &[[G; 3]], valid: &[bool]) -> Result<Vec<f64>>
where
    P: Copy + Into<f64>,
    G: Copy + Into<f64>,
{
    ensure!(
        pred.len() == gt.len() && gt.len() == valid.len(),
        "prediction, ground truth and mask differ in size ({}, {}, {} pixels)",
        pred.len(),
        gt.len(),
        valid.len()
    );
    let mut out = Vec::with_capacity(valid.iter().filter(|&&v| v).count());
    for (i, ((p, g), _)) in pred
        .iter()
        .zip(gt)
        .zip(valid)
        .enumerate()
        .filter(|x| *x.1 .1)
    {
        let (p, g) = (p.map(Into::into), g.map(Into::into));
        if p.iter().chain(&g).any(|v| !v.is_finite()) {
            bail!("non-finite normal at valid pixel {i}: prediction {p:?}, ground truth {g:?}");
        }
        out.push(angle_degrees(p, g));
    }
    Ok(out)
}

/// The pooled metrics of the paper's evaluation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct NormalsMetrics {
    /// Valid pixels pooled.
    pub pixels: u64,
    /// Mean angle, degrees.
    pub mean: f64,
    /// `np.percentile(angle, 50)` with linear interpolation, degrees.
    pub median: f64,
    /// Pixels strictly under each of [`THRESHOLDS_DEG`].
    pub below: [u64; 3],
    /// `100 * below / pixels` for each threshold, as `np.mean(angle < t) * 100` computes it.
    pub percent_below: [f64; 3],
}

/// Runs `pass` as many times as the exact median needs (once or twice, rarely more); each call
/// must add the same angles, in any batches, through [`PooledErrors::add`] (angles of every
/// valid pixel of every image, e.g. from [`angular_errors`]). A pass that adds a different
/// number of angles than the first is an error.
pub fn evaluate(mut pass: impl FnMut(&mut PooledErrors) -> Result<()>) -> Result<NormalsMetrics> {
    let mut pooled = PooledErrors::new();
    loop {
        pass(&mut pooled)?;
        if let Some(metrics) = pooled.end_pass()? {
            return Ok(metrics);
        }
    }
}

/// The metrics of angles held in memory.
pub fn summarise(angles: &[f64]) -> Result<NormalsMetrics> {
    evaluate(|pooled| pooled.add(angles))
}

/// The state of a streamed evaluation between the angles of one pass ([`evaluate`]).
pub struct PooledErrors {
    pass: usize,
    pixels: u64,
    sum: f64,
    compensation: f64,
    below: [u64; 3],
    seen: u64,
    /// The bins an angle must fall in, level after level, to be in the current search.
    levels: Vec<Level>,
    /// Angles before the current search interval.
    offset: u64,
    /// The middle ranks (one for an odd count, two for an even one) and their values once known.
    ranks: Vec<(u64, Option<f64>)>,
    search: Search,
}

struct Level {
    lo: f64,
    hi: f64,
    first: usize,
    last: usize,
}

enum Search {
    Histogram {
        lo: f64,
        hi: f64,
        counts: Vec<u64>,
        min: Vec<f64>,
        max: Vec<f64>,
    },
    Collect {
        expected: u64,
        values: Vec<f64>,
    },
}

/// The bin of `x` among [`BINS`] over [`lo`, `hi`], clamped: monotone in `x`.
fn bin(x: f64, lo: f64, hi: f64) -> usize {
    (((x - lo) / (hi - lo) * BINS as f64) as usize).min(BINS - 1)
}

fn histogram(lo: f64, hi: f64) -> Search {
    Search::Histogram {
        lo,
        hi,
        counts: vec![0; BINS],
        min: vec![f64::INFINITY; BINS],
        max: vec![f64::NEG_INFINITY; BINS],
    }
}

impl PooledErrors {
    fn new() -> Self {
        PooledErrors {
            pass: 0,
            pixels: 0,
            sum: 0.0,
            compensation: 0.0,
            below: [0; 3],
            seen: 0,
            levels: Vec::new(),
            offset: 0,
            ranks: Vec::new(),
            search: histogram(0.0, 180.0),
        }
    }

    /// Adds angles (degrees, in [0, 180]) to the current pass.
    pub fn add(&mut self, angles: &[f64]) -> Result<()> {
        for &a in angles {
            if self.pass == 0 {
                ensure!(
                    (0.0..=180.0).contains(&a),
                    "angular error {a} is not in [0, 180] degrees"
                );
                self.pixels += 1;
                // Neumaier's compensated sum: the mean is exact to a few ulps.
                let t = self.sum + a;
                self.compensation += if self.sum.abs() >= a.abs() {
                    (self.sum - t) + a
                } else {
                    (a - t) + self.sum
                };
                self.sum = t;
                for (b, t) in self.below.iter_mut().zip(THRESHOLDS_DEG) {
                    *b += (a < t) as u64;
                }
            }
            self.seen += 1;
            if !self
                .levels
                .iter()
                .all(|l| (l.first..=l.last).contains(&bin(a, l.lo, l.hi)))
            {
                continue;
            }
            match &mut self.search {
                Search::Histogram {
                    lo,
                    hi,
                    counts,
                    min,
                    max,
                } => {
                    let i = bin(a, *lo, *hi);
                    counts[i] += 1;
                    min[i] = min[i].min(a);
                    max[i] = max[i].max(a);
                }
                Search::Collect { values, .. } => values.push(a),
            }
        }
        Ok(())
    }

    /// Ends a pass: the metrics when the median is known, else `None` and the next pass set up.
    fn end_pass(&mut self) -> Result<Option<NormalsMetrics>> {
        if self.pass == 0 {
            ensure!(self.pixels > 0, "no valid pixel to evaluate");
            let n = self.pixels;
            self.ranks = if n % 2 == 1 {
                vec![((n - 1) / 2, None)]
            } else {
                vec![(n / 2 - 1, None), (n / 2, None)]
            };
        } else {
            ensure!(
                self.seen == self.pixels,
                "pass {} added {} angles but the first added {}: every pass must add the same angles",
                self.pass + 1,
                self.seen,
                self.pixels
            );
        }
        ensure!(self.pass < 8, "the median search did not converge");
        self.pass += 1;
        self.seen = 0;
        let search = std::mem::replace(&mut self.search, histogram(0.0, 0.0));
        match search {
            Search::Collect {
                expected,
                mut values,
            } => {
                ensure!(
                    values.len() as u64 == expected,
                    "the second pass saw {} angles where the first counted {expected}: \
                     every pass must add the same angles",
                    values.len()
                );
                for (rank, value) in &mut self.ranks {
                    if value.is_none() {
                        let at = (*rank - self.offset) as usize;
                        let (_, v, _) = values.select_nth_unstable_by(at, f64::total_cmp);
                        *value = Some(*v);
                    }
                }
            }
            Search::Histogram {
                lo,
                hi,
                counts,
                min,
                max,
            } => {
                let mut pending: Vec<usize> = Vec::new();
                for (rank, value) in &mut self.ranks {
                    if value.is_some() {
                        continue;
                    }
                    let mut before = self.offset;
                    let i = (0..BINS)
                        .find(|&i| {
                            before += counts[i];
                            before > *rank
                        })
                        .context("a pass saw other angles than the first: every pass must add the same angles")?;
                    let first = before - counts[i];
                    if *rank == first || min[i] == max[i] {
                        *value = Some(min[i]);
                    } else if *rank == before - 1 {
                        *value = Some(max[i]);
                    } else {
                        pending.push(i);
                    }
                }
                if let (Some(&first), Some(&last)) = (pending.iter().min(), pending.iter().max()) {
                    self.offset += counts[..first].iter().sum::<u64>();
                    let population: u64 = counts[first..=last].iter().sum();
                    self.levels.push(Level {
                        lo,
                        hi,
                        first,
                        last,
                    });
                    self.search = if population <= COLLECT_LIMIT {
                        Search::Collect {
                            expected: population,
                            values: Vec::with_capacity(population as usize),
                        }
                    } else {
                        let width = (hi - lo) / BINS as f64;
                        histogram(lo + first as f64 * width, lo + (last + 1) as f64 * width)
                    };
                    return Ok(None);
                }
            }
        }
        let values: Vec<f64> = self.ranks.iter().filter_map(|r| r.1).collect();
        // np.percentile's linear interpolation: a + (b - a) * g, or b - (b - a) * (1 - g) when
        // g >= 0.5; g is 0 for an odd count and 0.5 for an even one.
        let median = match values[..] {
            [a] => a,
            [a, b] => b - (b - a) * 0.5,
            _ => unreachable!("one or two middle ranks"),
        };
        let n = self.pixels as f64;
        Ok(Some(NormalsMetrics {
            pixels: self.pixels,
            mean: (self.sum + self.compensation) / n,
            median,
            below: self.below,
            percent_below: self.below.map(|b| b as f64 / n * 100.0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// np.percentile(a, 50), linear: the definition, on a sorted copy.
    fn percentile_50(a: &[f64]) -> f64 {
        let mut s = a.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        if n % 2 == 1 {
            s[n / 2]
        } else {
            let (a, b) = (s[n / 2 - 1], s[n / 2]);
            b - (b - a) * 0.5
        }
    }

    fn lcg(seed: u64, n: usize) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn the_median_is_exact_in_every_case_of_the_search() {
        let cases: Vec<Vec<f64>> = vec![
            vec![3.0],
            vec![3.0, 1.0],
            lcg(1, 10_001).iter().map(|u| u * u * 90.0).collect(),
            lcg(2, 10_000).iter().map(|u| 12.0 + u * 1e-9).collect(),
            // A point mass with a few others, odd and even counts.
            (0..3001)
                .map(|i| if i % 7 == 0 { i as f64 / 100.0 } else { 0.0 })
                .collect(),
            (0..3000)
                .map(|i| if i % 3 == 0 { 5.0 } else { 7.5 })
                .collect(),
            vec![0.0, 180.0, 90.0, 90.0 + 1e-12],
            // More than COLLECT_LIMIT in the median's bin: the histogram is refined.
            lcg(4, 1_100_001).iter().map(|u| 12.0 + u * 1e-6).collect(),
        ];
        for a in &cases {
            let m = summarise(a).unwrap();
            assert_eq!(m.median, percentile_50(a), "{} angles", a.len());
            assert_eq!(m.pixels, a.len() as u64);
            let mean = a.iter().sum::<f64>() / a.len() as f64;
            assert!((m.mean - mean).abs() <= 1e-12 * mean.max(1.0));
        }
        assert!(summarise(&[]).is_err());
        assert!(summarise(&[f64::NAN]).is_err());
        assert!(summarise(&[181.0]).is_err());
    }

    #[test]
    fn a_pass_that_changes_is_refused() {
        // All in one bin: the median needs a second pass.
        let a = lcg(3, 5000)
            .iter()
            .map(|u| 20.0 + u * 1e-6)
            .collect::<Vec<_>>();
        let mut passes = 0;
        let r = evaluate(|p| {
            passes += 1;
            p.add(&a[..a.len() - (passes > 1) as usize])
        });
        assert!(format!("{:#}", r.unwrap_err()).contains("same angles"));
    }

    #[test]
    fn thresholds_are_strict_and_angles_follow_the_paper() {
        let m = summarise(&[11.25, 11.0, 22.5, 29.9, 30.0, 45.0]).unwrap();
        assert_eq!(m.below, [1, 2, 4]);
        assert_eq!(m.percent_below[0], 1.0 / 6.0 * 100.0);
        // The eps of the renormalisation leaves ~1e-6 degrees between equal directions.
        assert!(angle_degrees([0.0, 0.0, 2.0], [0.0, 0.0, 1.0]) < 1e-5);
        assert!((angle_degrees([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]) - 90.0).abs() < 1e-12);
        assert!(angle_degrees([1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]) > 179.99999);
        let e = angular_errors(
            &[[1.0f32, 0.0, 0.0], [0.0, 1.0, 0.0]],
            &[[1.0f64, 0.0, 0.0], [1.0, 0.0, 0.0]],
            &[false, true],
        )
        .unwrap();
        assert_eq!(e.len(), 1);
        assert!((e[0] - 90.0).abs() < 1e-12);
        assert!(angular_errors(&[[f32::NAN; 3]], &[[1.0f32; 3]], &[true]).is_err());
        // Two centres, two pixels: the weighted sum, renormalised.
        let c = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let n = decode_probabilities(&[1.0, 0.5, 0.0, 0.5], &c).unwrap();
        assert!((n[0][0] - 1.0).abs() < 1e-15 && n[0][1] == 0.0);
        assert!((n[1][0] - 0.5f64.sqrt()).abs() < 1e-15);
        assert!(decode_probabilities(&[1.0, 0.5, 0.0], &c).is_err());
    }
}
