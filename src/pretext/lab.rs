//! sRGB <-> CIE Lab (D65 white, 2-degree observer), with scikit-image's `rgb2lab` /
//! `lab2rgb` semantics: the sRGB gamma curve (IEC 61966-2-1), its RGB -> XYZ matrix, the
//! CIE Lab curve with the 0.008856 / 7.787 linear segment, negative Z clipped to zero on the
//! way back and RGB clipped to [0, 1]. Arithmetic is in f64, values are stored as f32.
//!
//! A Lab image is an `Array3<f32>` of shape (height, width, 3) holding L in [0, 100], a, b.

use anyhow::{ensure, Result};
use image::RgbImage;
use ndarray::{Array3, ArrayView2};
use std::sync::LazyLock;

/// Linear sRGB -> XYZ (rows X, Y, Z), the matrix scikit-image uses.
const XYZ_FROM_RGB: [[f64; 3]; 3] = [
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
];

/// XYZ -> linear sRGB, the inverse of [`XYZ_FROM_RGB`] (scikit-image inverts it too).
static RGB_FROM_XYZ: LazyLock<[[f64; 3]; 3]> = LazyLock::new(|| invert3(&XYZ_FROM_RGB));

/// XYZ of the D65 reference white (2-degree observer), Y = 1.
const D65_WHITE: [f64; 3] = [0.95047, 1.0, 1.08883];

/// Below this (relative XYZ) the Lab curve is linear.
const LAB_EPSILON: f64 = 0.008856;
/// Slope of the linear segment of the Lab curve.
const LAB_KAPPA: f64 = 7.787;
/// Inverse-curve threshold on f(t) where the cube stops applying (scikit-image's value).
const LAB_INV_THRESHOLD: f64 = 0.2068966;

/// Converts one sRGB colour with channels in [0, 1] to Lab.
pub fn srgb_to_lab(rgb: [f32; 3]) -> [f32; 3] {
    let lin = rgb.map(|c| srgb_to_linear(c as f64));
    linear_to_lab(lin)
}

/// Converts one Lab colour back to sRGB in [0, 1] (out-of-gamut channels are clipped).
pub fn lab_to_srgb(lab: [f32; 3]) -> [f32; 3] {
    let [l, a, b] = lab.map(|v| v as f64);
    let fy = (l + 16.0) / 116.0;
    let fx = a / 500.0 + fy;
    let fz = (fy - b / 200.0).max(0.0);
    let xyz: [f64; 3] = std::array::from_fn(|i| lab_curve_inverse([fx, fy, fz][i]) * D65_WHITE[i]);
    std::array::from_fn(|i| {
        let lin: f64 = (0..3).map(|j| RGB_FROM_XYZ[i][j] * xyz[j]).sum();
        linear_to_srgb(lin).clamp(0.0, 1.0) as f32
    })
}

/// Lab of an 8-bit sRGB image, (height, width, 3).
pub fn from_rgb_image(img: &RgbImage) -> Array3<f32> {
    let table: Vec<f64> = (0..=255u8)
        .map(|v| srgb_to_linear(v as f64 / 255.0))
        .collect();
    let (w, h) = img.dimensions();
    let mut out = Array3::zeros((h as usize, w as usize, 3));
    for (x, y, px) in img.enumerate_pixels() {
        let lab = linear_to_lab(px.0.map(|v| table[v as usize]));
        for (c, v) in lab.into_iter().enumerate() {
            out[[y as usize, x as usize, c]] = v;
        }
    }
    out
}

/// The 8-bit sRGB image of a (height, width, 3) Lab image (clipped, rounded to nearest).
pub fn to_rgb_image(lab: &Array3<f32>) -> Result<RgbImage> {
    let (h, w, c) = lab.dim();
    ensure!(c == 3, "a Lab image has 3 channels, this one has {c}");
    Ok(RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let (x, y) = (x as usize, y as usize);
        let rgb = lab_to_srgb([lab[[y, x, 0]], lab[[y, x, 1]], lab[[y, x, 2]]]);
        image::Rgb(rgb.map(|v| (v * 255.0).round() as u8))
    }))
}

/// The (a, b) pair of every pixel of a Lab image, in row-major order.
pub fn ab_pairs(lab: &Array3<f32>) -> Vec<[f32; 2]> {
    lab.outer_iter()
        .flat_map(|row| {
            row.outer_iter()
                .map(|px| [px[1], px[2]])
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A Lab image from its lightness (height x width) and one (a, b) per pixel in row-major
/// order: how a colorization network's L input and predicted ab become an image.
pub fn compose(lightness: ArrayView2<f32>, ab: &[[f32; 2]]) -> Result<Array3<f32>> {
    let (h, w) = lightness.dim();
    ensure!(
        ab.len() == h * w,
        "{} ab values for a {h} x {w} lightness map (one per pixel expected)",
        ab.len()
    );
    Ok(Array3::from_shape_fn((h, w, 3), |(y, x, c)| match c {
        0 => lightness[[y, x]],
        _ => ab[y * w + x][c - 1],
    }))
}

/// The sRGB transfer curve, encoded value -> linear light.
fn srgb_to_linear(c: f64) -> f64 {
    if c > 0.04045 {
        ((c + 0.055) / 1.055).powf(2.4)
    } else {
        c / 12.92
    }
}

/// The inverse sRGB transfer curve, linear light -> encoded value.
fn linear_to_srgb(c: f64) -> f64 {
    if c > 0.0031308 {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    } else {
        c * 12.92
    }
}

/// Linear sRGB -> Lab.
fn linear_to_lab(lin: [f64; 3]) -> [f32; 3] {
    let f: [f64; 3] = std::array::from_fn(|i| {
        let t: f64 = (0..3).map(|j| XYZ_FROM_RGB[i][j] * lin[j]).sum::<f64>() / D65_WHITE[i];
        if t > LAB_EPSILON {
            t.cbrt()
        } else {
            LAB_KAPPA * t + 16.0 / 116.0
        }
    });
    [
        (116.0 * f[1] - 16.0) as f32,
        (500.0 * (f[0] - f[1])) as f32,
        (200.0 * (f[1] - f[2])) as f32,
    ]
}

/// The inverse of the Lab curve f(t).
fn lab_curve_inverse(f: f64) -> f64 {
    if f > LAB_INV_THRESHOLD {
        f * f * f
    } else {
        (f - 16.0 / 116.0) / LAB_KAPPA
    }
}

/// Inverse of a 3 x 3 matrix by cofactors.
fn invert3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let cof = |r: usize, c: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (c1, c2) = ((c + 1) % 3, (c + 2) % 3);
        m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]
    };
    let det: f64 = (0..3).map(|c| m[0][c] * cof(0, c)).sum();
    std::array::from_fn(|i| std::array::from_fn(|j| cof(j, i) / det))
}
