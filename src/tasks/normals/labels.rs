//! What training needs from the ground truth, in one pass over the training frames: the
//! codebook (`vocab40.mat`, or k-means fitted on every `sample_every`-th valid training
//! normal), each (frame, short side)'s class labels at 1/8 resolution as the paper's loader
//! makes them (nearest resize of the full-resolution labels, padding, then PIL's nearest x8
//! downsampling, which takes source pixel 8j + 4), and the two baselines' statistics: the
//! most common cluster of the training pixels and the mean training normal per pixel
//! position.

use super::codebook::{Codebook, KMeans, IGNORE_LABEL};
use super::config::NormalsConfig;
use super::dataset::{NyuFrames, Placement};
use crate::data::nyuv2::NormalsImage;
use anyhow::{Context, Result};
use std::collections::HashMap;

/// One training frame's labels at one short side.
#[derive(Clone, Debug)]
pub struct ItemLabels {
    /// Labels, h x w row-major (`IGNORE_LABEL` for pixels without ground truth).
    pub labels: Vec<u8>,
    /// (h, w): the trunk's input over `label_downsample`.
    pub size: (usize, usize),
}

/// The supervision of a run.
pub struct Supervision {
    /// The clusters.
    pub codebook: Codebook,
    /// Labels by (NYU index, short side).
    pub items: HashMap<(usize, usize), ItemLabels>,
    /// The training pixels' most common cluster.
    pub most_common: usize,
    /// The mean training normal per pixel (H x W, renormalised; the mean of all training
    /// normals where no training frame has one).
    pub mean_normal: Vec<[f64; 3]>,
}

/// The full-resolution labels of a frame.
fn frame_labels(codebook: &Codebook, f: &NormalsImage) -> Result<Vec<u8>> {
    let normals: Vec<[f32; 3]> = f
        .normals
        .as_standard_layout()
        .as_slice()
        .expect("standard layout")
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let valid: Vec<bool> = f.valid.iter().copied().collect();
    codebook.labels(&normals, &valid)
}

/// The 1/8 labels of full-resolution `labels` (H x W) at `p`.
pub fn downsampled(
    labels: &[u8],
    (h, w): (usize, usize),
    p: &Placement,
    down: usize,
    pad_label: u8,
) -> ItemLabels {
    let (rh, rw) = p.size;
    let (ph, pw) = p.input;
    let (oh, ow) = (ph / down, pw / down);
    // PIL nearest: source index floor((dst + 0.5) * in / out).
    let near = |dst: usize, out: usize, len: usize| {
        ((dst as f64 + 0.5) * len as f64 / out as f64) as usize
    };
    let mut out = vec![pad_label; oh * ow];
    for y in 0..oh {
        let ry = y * down + down / 2;
        if ry >= rh {
            continue;
        }
        let sy = near(ry, rh, h).min(h - 1);
        for x in 0..ow {
            let rx = x * down + down / 2;
            if rx >= rw {
                continue;
            }
            let sx = near(rx, rw, w).min(w - 1);
            out[y * ow + x] = labels[sy * w + sx];
        }
    }
    ItemLabels {
        labels: out,
        size: (oh, ow),
    }
}

/// The codebook of the run: `data.codebook` when set, else k-means on the training normals,
/// written to `save` (the run's `codebook.json`).
fn codebook(cfg: &NormalsConfig, frames: &NyuFrames, save: &std::path::Path) -> Result<Codebook> {
    if let Some(path) = cfg.data.codebook.as_deref().filter(|p| !p.is_empty()) {
        let path = cfg.data.resolve(path)?;
        return Codebook::from_vocab_mat(&path, cfg.codebook.k);
    }
    if save.exists() {
        let c = Codebook::load(save)?;
        if c.centres.len() == cfg.codebook.k {
            return Ok(c);
        }
    }
    let mut sample: Vec<[f32; 3]> = Vec::new();
    let mut seen = 0usize;
    for &i in &frames.splits.train {
        let f = frames.frame(i)?;
        for ((y, x), &v) in f.valid.indexed_iter() {
            if v {
                if seen % cfg.codebook.sample_every == 0 {
                    sample.push([
                        f.normals[[y, x, 0]],
                        f.normals[[y, x, 1]],
                        f.normals[[y, x, 2]],
                    ]);
                }
                seen += 1;
            }
        }
    }
    let c = KMeans {
        k: cfg.codebook.k,
        seed: cfg.codebook.seed,
        max_iterations: cfg.codebook.max_iterations,
    }
    .fit(&sample)
    .context("fitting the normals codebook (k-means on the training normals)")?;
    c.save(save)?;
    Ok(c)
}

impl Supervision {
    /// Builds the supervision of the training split (the codebook saved beside `codebook_file`
    /// when fitted).
    pub fn build(
        cfg: &NormalsConfig,
        frames: &NyuFrames,
        codebook_file: &std::path::Path,
    ) -> Result<Self> {
        let codebook = codebook(cfg, frames, codebook_file)?;
        let (h, w) = frames.size();
        let pad_label = if cfg.input.ignore_padding {
            IGNORE_LABEL
        } else {
            0
        };
        let mut items = HashMap::new();
        let mut counts = vec![0u64; codebook.centres.len()];
        let mut sums = vec![[0f64; 3]; h * w];
        let mut total = [0f64; 3];
        for &i in &frames.splits.train {
            let f = frames.frame(i)?;
            let labels = frame_labels(&codebook, &f)?;
            for (p, &l) in labels.iter().enumerate() {
                if l != IGNORE_LABEL {
                    counts[l as usize] += 1;
                    let (y, x) = (p / w, p % w);
                    for c in 0..3 {
                        let v = f.normals[[y, x, c]] as f64;
                        sums[p][c] += v;
                        total[c] += v;
                    }
                }
            }
            for &s in &cfg.input.train_short_sides {
                let place = Placement::train(h, w, s, &cfg.input);
                items.insert(
                    (i, s),
                    downsampled(
                        &labels,
                        (h, w),
                        &place,
                        cfg.input.label_downsample,
                        pad_label,
                    ),
                );
            }
        }
        let most_common = (0..counts.len())
            .max_by_key(|&k| (counts[k], std::cmp::Reverse(k)))
            .unwrap_or(0);
        let unit = |n: [f64; 3]| {
            let l = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
            (l > 0.0).then(|| n.map(|v| v / l))
        };
        let fallback = unit(total).unwrap_or([0.0, 0.0, 1.0]);
        let mean_normal = sums
            .into_iter()
            .map(|s| unit(s).unwrap_or(fallback))
            .collect();
        Ok(Self {
            codebook,
            items,
            most_common,
            mean_normal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::normals::config::InputConfig;

    #[test]
    fn labels_are_taken_at_the_centre_of_each_8x8_cell_and_padded() {
        let (h, w) = (16, 16);
        let labels: Vec<u8> = (0..h * w).map(|p| p as u8).collect();
        let i = InputConfig::default();
        // Short side 12: 12 x 12 padded to 16 x 16, labels 2 x 2; the second row and column
        // fall in the pad.
        let p = Placement::train(h, w, 12, &i);
        assert_eq!(p.input, (16, 16));
        let d = downsampled(&labels, (h, w), &p, 8, 0);
        assert_eq!(d.size, (2, 2));
        // Resized pixel 4 of 12 is source floor(4.5 * 16 / 12) = 6.
        assert_eq!(d.labels, vec![(6 * 16 + 6) as u8, 0, 0, 0]);
    }
}
