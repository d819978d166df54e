//! Colorization samples (Zhang, Isola and Efros 2016): the lightness-only input, the
//! soft-encoded ab targets with their class-rebalancing weights, and the decode of predicted
//! bin probabilities back into a colour image.
//!
//! Geometry: an image is first brought to `size` x `size` by resizing its shorter side to
//! `size` and cutting the central square ([`ColorizeConfig::crop`]); the network sees
//! [`grey_input`] of that square and predicts on a grid of `size / output_stride` cells a
//! side. A cell's target is the soft encoding of the mean ab of its `output_stride` x
//! `output_stride` pixels (Zhang et al.'s Caffe net instead keeps the top-left pixel of each
//! cell, a stride-4 1x1 convolution `data_ab_ss`). Zhang et al.'s mask that zeroes the loss
//! of grey images is left to the caller.

use super::ab_bins::{rebalancing_weights, AbBins};
use super::lab;
use crate::data::transform::resize_shorter;
use anyhow::{ensure, Result};
use image::{imageops, Rgb, RgbImage};
use ndarray::{ArrayView2, ArrayView3};
use serde::{Deserialize, Serialize};

/// The colorization pretext (a pretext config's `[colorize]` table).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColorizeConfig {
    /// Side of the square network input (shorter side resized to it, centre crop).
    pub size: u32,
    /// Soft-encoding neighbours K (Zhang et al.: 5; the benchmark's default: 10).
    pub k: usize,
    /// Soft-encoding Gaussian sigma in ab units (Zhang et al.: 5).
    pub sigma: f32,
    /// Class-rebalancing mix lambda (Zhang et al.: 0.5); leave the key out for no rebalancing.
    pub rebalance_lambda: Option<f64>,
    /// Stride of the trunk at the colour head: targets are `size / output_stride` a side.
    pub output_stride: u32,
    /// Annealed-mean temperature of the decode (Zhang et al.: 0.38).
    pub temperature: f32,
}

/// The targets of one image on the output grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Targets {
    /// Soft-encoded bin probabilities, Q x h x w, bin-major (each cell sums to 1).
    pub soft: Vec<f32>,
    /// Per-cell loss weight, h x w: the rebalancing weight of the cell's nearest bin, 1 when
    /// rebalancing is off.
    pub weight: Vec<f32>,
    /// Rows of the output grid.
    pub h: usize,
    /// Columns of the output grid.
    pub w: usize,
}

impl ColorizeConfig {
    /// Checks positivity, that the stride divides the size, and that lambda is in [0, 1].
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.output_stride >= 1 && self.size >= self.output_stride,
            "colorize.output_stride = {} must be between 1 and colorize.size = {}",
            self.output_stride,
            self.size
        );
        ensure!(
            self.size.is_multiple_of(self.output_stride),
            "colorize.size = {} is not a multiple of colorize.output_stride = {}",
            self.size,
            self.output_stride
        );
        ensure!(self.k >= 1, "colorize.k must be at least 1");
        ensure!(
            self.sigma > 0.0 && self.temperature > 0.0,
            "colorize.sigma = {} and colorize.temperature = {} must be positive",
            self.sigma,
            self.temperature
        );
        if let Some(lambda) = self.rebalance_lambda {
            ensure!(
                (0.0..=1.0).contains(&lambda),
                "colorize.rebalance_lambda = {lambda} must be in [0, 1]"
            );
        }
        Ok(())
    }

    /// `img` with its shorter side resized to `size` and its central `size` x `size` square
    /// cut out (torchvision's `Resize` then `CenterCrop` offsets).
    pub fn crop(&self, img: &RgbImage) -> Result<RgbImage> {
        self.validate()?;
        ensure!(
            img.width() > 0 && img.height() > 0,
            "cannot colourise an empty image"
        );
        let img = resize_shorter(img, self.size);
        let offset = |d: u32| (f64::from(d - self.size) / 2.0).round_ties_even() as u32;
        let (x, y) = (offset(img.width()), offset(img.height()));
        Ok(imageops::crop_imm(&*img, x, y, self.size, self.size).to_image())
    }

    /// Per-bin loss weights from the bins' smoothed prior ([`AbBins::smooth`]), or `None`
    /// when rebalancing is off: what [`ColorizeConfig::targets`] takes.
    pub fn class_weights(&self, smoothed_prior: &[f64]) -> Result<Option<Vec<f64>>> {
        self.rebalance_lambda
            .map(|lambda| rebalancing_weights(smoothed_prior, lambda))
            .transpose()
    }

    /// The targets of a `size` x `size` image (see [`ColorizeConfig::crop`]) over `bins`;
    /// `class_weights` (from [`ColorizeConfig::class_weights`]) must be given exactly when
    /// rebalancing is on.
    pub fn targets(
        &self,
        img: &RgbImage,
        bins: &AbBins,
        class_weights: Option<&[f64]>,
    ) -> Result<Targets> {
        self.validate()?;
        ensure!(
            img.dimensions() == (self.size, self.size),
            "colorization targets need a {0} x {0} image (ColorizeConfig::crop), got {1} x {2}",
            self.size,
            img.width(),
            img.height()
        );
        ensure!(
            class_weights.is_some() == self.rebalance_lambda.is_some(),
            "class weights must be given exactly when colorize.rebalance_lambda is set"
        );
        if let Some(cw) = class_weights {
            ensure!(
                cw.len() == bins.len(),
                "{} class weights for {} bins",
                cw.len(),
                bins.len()
            );
        }
        let stride = self.output_stride as usize;
        let side = self.size as usize / stride;
        let lab = lab::from_rgb_image(img);
        let norm = (stride * stride) as f32;
        let ab: Vec<[f32; 2]> = (0..side * side)
            .map(|n| {
                let (y0, x0) = ((n / side) * stride, (n % side) * stride);
                let mut sum = [0f32; 2];
                for y in y0..y0 + stride {
                    for x in x0..x0 + stride {
                        sum[0] += lab[[y, x, 1]];
                        sum[1] += lab[[y, x, 2]];
                    }
                }
                sum.map(|s| s / norm)
            })
            .collect();
        let enc = bins.soft_encode(&ab, self.k, self.sigma)?;
        let cells = side * side;
        let mut soft = vec![0f32; bins.len() * cells];
        for (n, (qs, ws)) in enc
            .bins
            .outer_iter()
            .zip(enc.weights.outer_iter())
            .enumerate()
        {
            for (&q, &wt) in qs.iter().zip(ws.iter()) {
                soft[q as usize * cells + n] += wt;
            }
        }
        let weight = match class_weights {
            Some(cw) => enc
                .bins
                .column(0)
                .iter()
                .map(|&q| cw[q as usize] as f32)
                .collect(),
            None => vec![1.0; cells],
        };
        Ok(Targets {
            soft,
            weight,
            h: side,
            w: side,
        })
    }

    /// A colour image from full-resolution lightness `grey_l` (H x W) and predicted bin
    /// probabilities `probs` (Q x h x w): the annealed mean of each cell, ab upsampled to
    /// H x W bilinearly (pixel centres aligned, edges clamped, as `F.interpolate` with
    /// `align_corners=False`), composed with the lightness and converted to sRGB.
    pub fn colourise(
        &self,
        grey_l: ArrayView2<f32>,
        probs: ArrayView3<f32>,
        bins: &AbBins,
    ) -> Result<RgbImage> {
        self.validate()?;
        let (q, h, w) = probs.dim();
        ensure!(
            q == bins.len(),
            "probabilities over {q} bins for a set of {} bins",
            bins.len()
        );
        ensure!(h > 0 && w > 0, "probabilities on an empty {h} x {w} grid");
        let flat = probs.to_shape((q, h * w))?;
        let ab = bins.annealed_mean(flat.t(), self.temperature)?;
        let full = upsample(&ab, (h, w), grey_l.dim());
        lab::to_rgb_image(&lab::compose(grey_l, &full)?)
    }
}

/// Bilinear upsampling of an h x w grid of ab values (row-major) to `to` = (H, W): output
/// pixel centres mapped onto the grid (`align_corners=False`), coordinates clamped at edges.
fn upsample(ab: &[[f32; 2]], (h, w): (usize, usize), to: (usize, usize)) -> Vec<[f32; 2]> {
    let source = |out: usize, big: usize, small: usize| {
        let s =
            ((out as f32 + 0.5) * small as f32 / big as f32 - 0.5).clamp(0.0, (small - 1) as f32);
        let i = s.floor() as usize;
        (i, (i + 1).min(small - 1), s - i as f32)
    };
    let cols: Vec<_> = (0..to.1).map(|x| source(x, to.1, w)).collect();
    let mut out = Vec::with_capacity(to.0 * to.1);
    for y in 0..to.0 {
        let (y0, y1, ty) = source(y, to.0, h);
        for &(x0, x1, tx) in &cols {
            let at = |yy: usize, xx: usize, c: usize| ab[yy * w + xx][c];
            out.push(std::array::from_fn(|c| {
                let top = at(y0, x0, c) * (1.0 - tx) + at(y0, x1, c) * tx;
                let bottom = at(y1, x0, c) * (1.0 - tx) + at(y1, x1, c) * tx;
                top * (1.0 - ty) + bottom * ty
            }));
        }
    }
    out
}

/// The network input of `img`: its lightness alone, rendered as the sRGB grey of that L
/// (a = b = 0), so that the usual three-channel trunk and normalisation apply.
pub fn grey_input(img: &RgbImage) -> RgbImage {
    let lab = lab::from_rgb_image(img);
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let rgb = lab::lab_to_srgb([lab[[y as usize, x as usize, 0]], 0.0, 0.0]);
        // The D65 white maps to R = G = B up to the matrices' rounding: take their mean.
        let grey = rgb.iter().sum::<f32>() / 3.0;
        Rgb([(grey * 255.0).round() as u8; 3])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array3};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Zhang et al.'s values at the benchmark's K, on a small input.
    fn config(size: u32, k: usize, rebalance_lambda: Option<f64>) -> ColorizeConfig {
        ColorizeConfig {
            size,
            k,
            sigma: 5.0,
            rebalance_lambda,
            output_stride: 8,
            temperature: 0.38,
        }
    }

    /// A `side` x `side` image of uniform 8 x 8 blocks of random colours, and those colours.
    fn blocks(side: u32, seed: u64) -> (RgbImage, Vec<Rgb<u8>>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = (side / 8) as usize;
        let colours: Vec<Rgb<u8>> = (0..n * n).map(|_| Rgb(rng.random())).collect();
        let img = RgbImage::from_fn(side, side, |x, y| {
            colours[(y / 8) as usize * n + (x / 8) as usize]
        });
        (img, colours)
    }

    fn ab_of(p: Rgb<u8>) -> [f32; 2] {
        let [_, a, b] = lab::srgb_to_lab(p.0.map(|v| v as f32 / 255.0));
        [a, b]
    }

    #[test]
    fn soft_targets_sum_to_one_and_weights_follow_the_nearest_bin() {
        let bins = AbBins::in_gamut(10.0, 32).unwrap();
        let (img, _) = blocks(64, 1);
        let cfg = config(64, 10, Some(0.5));
        let prior = bins
            .prior(lab::ab_pairs(&lab::from_rgb_image(&img)))
            .unwrap();
        let cw = cfg
            .class_weights(&bins.smooth(&prior, 5.0).unwrap())
            .unwrap()
            .unwrap();
        let t = cfg.targets(&img, &bins, Some(&cw)).unwrap();
        assert_eq!((t.h, t.w, t.soft.len()), (8, 8, bins.len() * 64));
        for n in 0..64 {
            let sum: f32 = (0..bins.len()).map(|q| t.soft[q * 64 + n]).sum();
            assert!((sum - 1.0).abs() < 1e-5, "cell {n} sums to {sum}");
        }
        let unweighted = config(64, 10, None).targets(&img, &bins, None).unwrap();
        assert!(unweighted.weight.iter().all(|&w| w == 1.0));
        assert_eq!(unweighted.soft, t.soft);
        assert!(cfg.targets(&img, &bins, None).is_err());
        assert!(config(64, 10, None)
            .targets(&img, &bins, Some(&cw))
            .is_err());
        assert!(cfg.targets(&blocks(72, 1).0, &bins, Some(&cw)).is_err());
    }

    #[test]
    fn k_one_targets_are_one_hot_at_the_nearest_bin() {
        let bins = AbBins::in_gamut(10.0, 32).unwrap();
        let (img, colours) = blocks(64, 2);
        let t = config(64, 1, None).targets(&img, &bins, None).unwrap();
        for (n, &c) in colours.iter().enumerate() {
            let nearest = bins.nearest(ab_of(c));
            for q in 0..bins.len() {
                let want = if q == nearest { 1.0 } else { 0.0 };
                assert_eq!(t.soft[q * 64 + n], want, "cell {n}, bin {q}");
            }
        }
    }

    #[test]
    fn one_hot_decodes_to_the_bin_centre() {
        let bins = AbBins::in_gamut(10.0, 32).unwrap();
        let cfg = config(16, 1, None);
        let l = ndarray::Array2::from_elem((16, 16), 60f32);
        // A colourful in-gamut bin at L = 60.
        let q = bins.nearest([30.0, 40.0]);
        let mut probs = Array3::zeros((bins.len(), 2, 2));
        probs.slice_mut(s![q, .., ..]).fill(1.0);
        let img = cfg.colourise(l.view(), probs.view(), &bins).unwrap();
        for &p in img.pixels() {
            let [a, b] = ab_of(p);
            let [ca, cb] = bins.centres[q];
            assert!(
                (a - ca).abs() < 1.5 && (b - cb).abs() < 1.5,
                "{a} {b} vs {ca} {cb}"
            );
        }
    }

    #[test]
    fn upsampling_matches_bilinear_interpolate_without_aligned_corners() {
        // F.interpolate([[0, 1], [2, 3]], size=(4, 4), mode="bilinear", align_corners=False).
        let want = [
            [0.0, 0.25, 0.75, 1.0],
            [0.5, 0.75, 1.25, 1.5],
            [1.5, 1.75, 2.25, 2.5],
            [2.0, 2.25, 2.75, 3.0],
        ];
        let grid = [0.0, 1.0, 2.0, 3.0].map(|v| [v, -v]);
        let out = upsample(&grid, (2, 2), (4, 4));
        for (n, ab) in out.iter().enumerate() {
            let v = want[n / 4][n % 4];
            assert_eq!(*ab, [v, -v], "pixel {n}");
        }
    }

    #[test]
    fn grey_input_keeps_lightness_and_drops_colour() {
        let (img, _) = blocks(64, 3);
        let grey = grey_input(&img);
        assert!(grey.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        let (l0, l1) = (lab::from_rgb_image(&img), lab::from_rgb_image(&grey));
        let worst = (&l0.slice(s![.., .., 0]) - &l1.slice(s![.., .., 0]))
            .iter()
            .fold(0f32, |m, d| m.max(d.abs()));
        assert!(worst < 1.0, "lightness moved by {worst}");
    }

    /// Encoding a photo with K = 1 and decoding the one-hot targets gives back what the same
    /// pipeline gives on a near-continuous grid (step 0.5: the cell means' own ab), within the
    /// quantisation of the step-10 grid: a cell's centre is at most step / 2 from its mean in
    /// a and in b, and bilinear upsampling (a convex mix) keeps that bound, so the mean
    /// absolute difference per ab channel is at most step / 2 (measured: 1.6). Against
    /// the photo itself the stride-8 chroma adds its own error, yet the colourised image must
    /// stay far closer to the photo than its grey input (measured RGB MAE 5.6, 2.8, 7.2
    /// against 24.9, 10.9, 24.1 for grey).
    #[test]
    fn one_hot_targets_of_a_photo_colourise_back_to_it() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/samples/skimage/astronaut.png"
        );
        if !std::path::Path::new(path).exists() {
            eprintln!("skipped: {path} is missing (fetch the sample data with data-scripts/)");
            return;
        }
        let cfg = config(256, 1, None);
        let photo = cfg
            .crop(&crate::data::decode(path.as_ref()).unwrap())
            .unwrap();
        let lab = lab::from_rgb_image(&photo);
        let roundtrip = |step: f32| {
            let bins = AbBins::from_histogram(step, lab::ab_pairs(&lab)).unwrap();
            let t = cfg.targets(&photo, &bins, None).unwrap();
            let probs = Array3::from_shape_vec((bins.len(), t.h, t.w), t.soft).unwrap();
            cfg.colourise(lab.slice(s![.., .., 0]), probs.view(), &bins)
                .unwrap()
        };
        let step = 10.0;
        let (back, reference) = (roundtrip(step), roundtrip(0.5));
        let (lab_back, lab_ref) = (lab::from_rgb_image(&back), lab::from_rgb_image(&reference));
        for c in 1..3 {
            let diff =
                (&lab_back.slice(s![.., .., c]) - &lab_ref.slice(s![.., .., c])).mapv(f32::abs);
            let mean = diff.mean().unwrap();
            eprintln!("ab channel {c}: mean |one-hot - reference| {mean:.2}");
            assert!(
                mean <= 10.0 / 2.0,
                "ab channel {c} off by {mean} on average"
            );
        }
        let mae = |img: &RgbImage, c: usize| {
            let total: f64 = img
                .pixels()
                .zip(photo.pixels())
                .map(|(p, o)| (p[c] as f64 - o[c] as f64).abs())
                .sum();
            total / photo.pixels().len() as f64
        };
        let grey = grey_input(&photo);
        for c in 0..3 {
            let (err, grey_err) = (mae(&back, c), mae(&grey, c));
            eprintln!("RGB channel {c}: colourised MAE {err:.2}, grey MAE {grey_err:.2}");
            assert!(
                err < grey_err / 2.0,
                "channel {c}: {err} vs grey {grey_err}"
            );
        }
    }
}
