//! Separable filtering of one image plane: the sampled Gaussian and its first derivative,
//! convolved along rows and columns with the border pixel repeated (Felzenszwalb's and
//! OpenCV's clamped border).

/// One image channel, row-major, `width * height` samples.
#[derive(Clone, Debug)]
pub struct Plane {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Row-major samples.
    pub data: Vec<f32>,
}

/// The half-width of a Gaussian kernel of standard deviation `sigma` cut at `truncate`
/// standard deviations (Felzenszwalb's `ceil(sigma * 4) + 1` taps each side with truncate 4).
fn radius(sigma: f32, truncate: f32) -> usize {
    (sigma * truncate).ceil() as usize
}

/// The sampled Gaussian of standard deviation `sigma`, centre tap first (taps 0..=radius),
/// normalised so that the full symmetric kernel sums to one.
pub fn gaussian_half(sigma: f32, truncate: f32) -> Vec<f32> {
    let r = radius(sigma, truncate);
    let half: Vec<f32> = (0..=r)
        .map(|i| (-0.5 * (i as f32 / sigma).powi(2)).exp())
        .collect();
    let sum = 2.0 * half.iter().sum::<f32>() - half[0];
    half.into_iter().map(|v| v / sum).collect()
}

/// The full symmetric Gaussian kernel (taps -radius..=radius).
pub fn gaussian(sigma: f32, truncate: f32) -> Vec<f32> {
    let half = gaussian_half(sigma, truncate);
    half.iter().rev().chain(&half[1..]).copied().collect()
}

/// The first derivative of the Gaussian (taps -radius..=radius), `g'(x) = -x / sigma^2 g(x)`
/// of the normalised Gaussian: positive where intensity rises with x in a correlation.
pub fn gaussian_derivative(sigma: f32, truncate: f32) -> Vec<f32> {
    let g = gaussian(sigma, truncate);
    let r = (g.len() / 2) as isize;
    g.iter()
        .enumerate()
        .map(|(i, v)| (i as isize - r) as f32 / (sigma * sigma) * v)
        .collect()
}

/// Correlates the plane with `kx` along rows then `ky` along columns (odd-length kernels,
/// centre tap in the middle), repeating border samples.
pub fn separable(plane: &Plane, kx: &[f32], ky: &[f32]) -> Plane {
    let (w, h) = (plane.width, plane.height);
    let mut rows = vec![0.0f32; w * h];
    let rx = (kx.len() / 2) as isize;
    for y in 0..h {
        let src = &plane.data[y * w..(y + 1) * w];
        let dst = &mut rows[y * w..(y + 1) * w];
        for (x, out) in dst.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (t, k) in kx.iter().enumerate() {
                let xi = (x as isize + t as isize - rx).clamp(0, w as isize - 1) as usize;
                acc += k * src[xi];
            }
            *out = acc;
        }
    }
    let mut out = vec![0.0f32; w * h];
    let ry = (ky.len() / 2) as isize;
    for (t, k) in ky.iter().enumerate() {
        for y in 0..h {
            let yi = (y as isize + t as isize - ry).clamp(0, h as isize - 1) as usize;
            let src = &rows[yi * w..(yi + 1) * w];
            let dst = &mut out[y * w..(y + 1) * w];
            for (o, s) in dst.iter_mut().zip(src) {
                *o += k * s;
            }
        }
    }
    Plane {
        width: w,
        height: h,
        data: out,
    }
}

/// Gaussian smoothing of standard deviation `sigma` (a copy when `sigma` is zero).
pub fn smooth(plane: &Plane, sigma: f32, truncate: f32) -> Plane {
    if sigma <= 0.0 {
        return plane.clone();
    }
    let g = gaussian(sigma, truncate);
    separable(plane, &g, &g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_sums_to_one_and_derivative_measures_slope() {
        let g = gaussian(0.8, 4.0);
        assert_eq!(g.len(), 2 * 4 + 1);
        assert!((g.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        // A ramp of slope 2 along x: the derivative filter returns about 2 inside.
        let ramp = Plane {
            width: 16,
            height: 3,
            data: (0..48).map(|i| 2.0 * (i % 16) as f32).collect(),
        };
        let d = separable(&ramp, &gaussian_derivative(1.0, 4.0), &gaussian(1.0, 4.0));
        let mid = d.data[16 + 8];
        assert!((mid - 2.0).abs() < 0.02, "slope {mid}");
    }
}
