//! Colorization's colour machinery (protocols.md section 8) on real photos: Lab against
//! scikit-image's rgb2lab (through data-scripts/lab_reference.py), the ab bins, priors,
//! rebalancing weights, soft-encoding and the annealed-mean decode.

mod common;

use common::{ok, sample};
use image::RgbImage;
use ndarray::{s, Array2};
use sslbench::pretext::ab_bins::{rebalancing_weights, AbBins};
use sslbench::pretext::lab;
use std::process::Command;
use std::sync::LazyLock;

/// Zhang et al.'s numbers: ab grid step, soft-encoding sigma, prior smoothing sigma,
/// rebalancing lambda, annealing temperature; K is the benchmark's default.
const STEP: f32 = 10.0;
const SIGMA: f32 = 5.0;
const LAMBDA: f64 = 0.5;
const TEMPERATURE: f32 = 0.38;
const K: usize = 10;

/// Real 8-bit RGB photos from the scikit-image wheel (PNG, so decoding is exact).
const PHOTOS: [&str; 3] = ["astronaut", "chelsea", "coffee"];

/// The in-gamut grid from every 8-bit sRGB colour (computed once: 16.7M conversions).
static GAMUT: LazyLock<AbBins> = LazyLock::new(|| AbBins::in_gamut(STEP, 256).unwrap());

fn photo(name: &str) -> RgbImage {
    image::open(sample(&format!("skimage/{name}.png")))
        .unwrap()
        .to_rgb8()
}

/// Every pixel's ab over all photos.
fn photo_ab() -> Vec<[f32; 2]> {
    PHOTOS
        .iter()
        .flat_map(|p| lab::ab_pairs(&lab::from_rgb_image(&photo(p))))
        .collect()
}

#[test]
fn lab_matches_scikit_image_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = PHOTOS
        .iter()
        .map(|p| sample(&format!("skimage/{p}.png")))
        .collect();
    ok(Command::new("python3")
        .arg("data-scripts/lab_reference.py")
        .args(&paths)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap());
    let mut worst = 0f64;
    for name in PHOTOS {
        let img = photo(name);
        let ours = lab::from_rgb_image(&img);
        let reference = sslbench::data::npy::read(&dir.path().join(format!("{name}_lab.npy")))
            .unwrap()
            .into_dimensionality::<ndarray::Ix3>()
            .unwrap();
        assert_eq!(ours.dim(), reference.dim(), "{name}");
        let err = ours
            .iter()
            .zip(&reference)
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0.0, f64::max);
        worst = worst.max(err);
        // The per-colour conversion agrees with the per-image one.
        let px = img.get_pixel(100, 200).0.map(|v| v as f32 / 255.0);
        let one = lab::srgb_to_lab(px);
        for c in 0..3 {
            assert!((one[c] - ours[[200, 100, c]]).abs() < 1e-4, "{name}");
        }
        // RGB -> Lab -> RGB within 1/255.
        let back = lab::to_rgb_image(&ours).unwrap();
        let round_trip = img
            .as_raw()
            .iter()
            .zip(back.as_raw())
            .map(|(&a, &b)| a.abs_diff(b))
            .max()
            .unwrap();
        assert!(
            round_trip <= 1,
            "{name}: round trip off by {round_trip}/255"
        );
    }
    println!("max |Lab - scikit-image| over {PHOTOS:?}: {worst:.3e}");
    assert!(worst < 1e-3, "Lab differs from scikit-image by {worst}");
}

#[test]
fn in_gamut_grid_and_dataset_histogram() {
    let q = GAMUT.len();
    // Zhang et al. report 313; every 8-bit sRGB colour in its nearest cell gives 261 (a
    // cell counted when its centre lies within 10 of some colour would give 292).
    println!("in-gamut ab bins on a grid of {STEP}: {q} (Zhang et al.: 313)");
    assert!((240..=320).contains(&q), "{q} in-gamut bins");
    // FAIR's bins: the photos' non-empty cells, all inside the gamut, and fewer of them.
    let ab = photo_ab();
    let fair = AbBins::from_histogram(STEP, ab.iter().copied()).unwrap();
    println!("non-empty bins of {PHOTOS:?}: {}", fair.len());
    assert!(fair.len() > 20 && fair.len() < q);
    for c in &fair.centres {
        assert_eq!(GAMUT.centres[GAMUT.nearest(*c)], *c, "{c:?} out of gamut");
    }
    // A coarse sampling of sRGB reaches fewer cells.
    assert!(AbBins::in_gamut(STEP, 8).unwrap().len() < q);
}

#[test]
fn soft_encoding_spreads_over_k_nearest() {
    let ab: Vec<_> = photo_ab().into_iter().step_by(7).collect();
    let enc = GAMUT.soft_encode(&ab, K, SIGMA).unwrap();
    assert_eq!(enc.bins.dim(), (ab.len(), K));
    for (n, &p) in ab.iter().enumerate() {
        let w = enc.weights.row(n);
        let bins = enc.bins.row(n);
        assert!(
            (w.sum() - 1.0).abs() < 1e-5,
            "pixel {n}: weights sum {}",
            w.sum()
        );
        let mut distinct = bins.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), K, "pixel {n}: repeated bins");
        assert_eq!(bins[0] as usize, GAMUT.nearest(p), "pixel {n}");
        assert!(
            w.iter().all(|&x| x <= w[0]),
            "pixel {n}: nearest is not heaviest"
        );
    }
    // K is honoured at both ends.
    assert!(GAMUT.soft_encode(&ab[..1], 0, SIGMA).is_err());
    let one = GAMUT.soft_encode(&ab[..1], 1, SIGMA).unwrap();
    assert_eq!(one.weights[[0, 0]], 1.0);
}

#[test]
fn rebalancing_weights_have_unit_expectation() {
    let ab = photo_ab();
    let prior = GAMUT.prior(ab.iter().copied()).unwrap();
    assert!((prior.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let smoothed = GAMUT.smooth(&prior, SIGMA).unwrap();
    let w = rebalancing_weights(&smoothed, LAMBDA).unwrap();
    let expectation: f64 = w.iter().zip(&smoothed).map(|(w, p)| w * p).sum();
    assert!((expectation - 1.0).abs() < 1e-9, "E[w] = {expectation}");
    // Rare colours weigh more than common ones: the greys' bin is the most frequent.
    let grey = GAMUT.nearest([0.0, 0.0]);
    let rarest = (0..w.len())
        .min_by(|&a, &b| smoothed[a].total_cmp(&smoothed[b]))
        .unwrap();
    assert!(w[rarest] > w[grey], "{} vs {}", w[rarest], w[grey]);
    // lambda = 1: the prior is ignored, every weight is 1.
    let flat = rebalancing_weights(&smoothed, 1.0).unwrap();
    assert!(flat.iter().all(|&x| (x - 1.0).abs() < 1e-9));
}

#[test]
fn annealed_mean_between_mode_and_mean_and_decodes_photo() {
    let img = photo("chelsea");
    let lab_img = lab::from_rgb_image(&img);
    let ab = lab::ab_pairs(&lab_img);
    let enc = GAMUT.soft_encode(&ab, K, SIGMA).unwrap();
    // Dense per-pixel distributions: the soft targets plus a little mass everywhere.
    let q = GAMUT.len();
    let mut probs = Array2::from_elem((ab.len(), q), 1e-4f32);
    for n in 0..ab.len() {
        for j in 0..K {
            probs[[n, enc.bins[[n, j]] as usize]] += enc.weights[[n, j]];
        }
        let total = probs.row(n).sum();
        probs.row_mut(n).mapv_inplace(|v| v / total);
    }
    let rows = probs.slice(s![..500, ..]);
    let mean = GAMUT.annealed_mean(rows, 1.0).unwrap();
    let mode = GAMUT.annealed_mean(rows, 1e-3).unwrap();
    let mut modes = 0;
    for (n, row) in rows.outer_iter().enumerate() {
        let expect: [f32; 2] = std::array::from_fn(|c| {
            row.iter()
                .zip(&GAMUT.centres)
                .map(|(p, centre)| p * centre[c])
                .sum()
        });
        let mut order: Vec<usize> = (0..q).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        for c in 0..2 {
            assert!((mean[n][c] - expect[c]).abs() < 1e-3, "pixel {n}: mean");
        }
        // The mode is only defined where no other bin comes within 1% of it.
        if row[order[1]] < 0.99 * row[order[0]] {
            modes += 1;
            for (got, want) in mode[n].iter().zip(GAMUT.centres[order[0]]) {
                assert!((got - want).abs() < 1e-3, "pixel {n}: mode");
            }
        }
    }
    assert!(modes > 250, "only {modes} of 500 pixels have a clear mode");
    // Decoding at T = 0.38 and writing the image gets the photo's colours back closely.
    let decoded = GAMUT.annealed_mean(probs.view(), TEMPERATURE).unwrap();
    let lab_out = lab::compose(lab_img.slice(s![.., .., 0]), &decoded).unwrap();
    let out = lab::to_rgb_image(&lab_out).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decoded.png");
    out.save(&path).unwrap();
    let err: f64 = img
        .as_raw()
        .iter()
        .zip(image::open(&path).unwrap().to_rgb8().as_raw())
        .map(|(&a, &b)| a.abs_diff(b) as f64)
        .sum::<f64>()
        / img.as_raw().len() as f64;
    println!("mean |RGB - decoded| on chelsea: {err:.2}/255");
    assert!(err < 6.0, "decoded photo is off by {err}/255 on average");
}
