//! The region features of selective search's similarities (Uijlings et al. 2013, section
//! 3.3): per initial region its colour histogram (`colour_bins` per channel over 0..256),
//! its texture histogram (Gaussian derivatives of standard deviation `texture_sigma` in 8
//! orientations per channel, `texture_bins` each), both L1-normalised, its size in pixels and
//! its bounding box; and the region adjacency of the segmentation.

use super::felzenszwalb::Segmentation;
use super::filter::{gaussian, gaussian_derivative, separable, Plane};

/// An inclusive pixel box `[x1, y1, x2, y2]`.
pub type PixelBox = [u32; 4];

/// The smallest box holding both.
pub fn union(a: &PixelBox, b: &PixelBox) -> PixelBox {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

/// Pixels in an inclusive box.
pub fn area(b: &PixelBox) -> u64 {
    (b[2] - b[0] + 1) as u64 * (b[3] - b[1] + 1) as u64
}

/// Features of the initial regions of one segmentation, region-major.
#[derive(Clone, Debug)]
pub struct RegionFeatures {
    /// Length of one colour histogram (channels x colour bins).
    pub colour_len: usize,
    /// Colour histograms, `colour_len` per region, each summing to one.
    pub colour: Vec<f32>,
    /// Length of one texture histogram (channels x 8 x texture bins).
    pub texture_len: usize,
    /// Texture histograms, `texture_len` per region, each summing to one.
    pub texture: Vec<f32>,
    /// Pixels per region.
    pub sizes: Vec<u32>,
    /// Bounding box per region.
    pub boxes: Vec<PixelBox>,
}

/// Per pixel, its texture bin in each of the 8 orientation maps of each channel
/// (`channels * 8` maps, each `width * height`).
pub struct TextureBins {
    maps: Vec<Vec<u8>>,
    bins: usize,
}

/// The 8 oriented Gaussian-derivative responses of every channel, quantised: the derivative
/// along 0, 45, 90 and 135 degrees (steered from the x and y derivatives), each split into
/// its positive part and its negative part (the derivatives along the opposite directions,
/// 180..315 degrees), each scaled by its maximum over the image into `bins` bins.
pub fn texture_bins(planes: &[Plane], sigma: f32, truncate: f32, bins: usize) -> TextureBins {
    let g = gaussian(sigma, truncate);
    let d = gaussian_derivative(sigma, truncate);
    let diag = std::f32::consts::FRAC_1_SQRT_2;
    let mut maps = Vec::with_capacity(planes.len() * 8);
    for p in planes {
        let dx = separable(p, &d, &g).data;
        let dy = separable(p, &g, &d).data;
        let steered: [Box<dyn Fn(usize) -> f32>; 4] = [
            Box::new(|i| dx[i]),
            Box::new(|i| diag * (dx[i] + dy[i])),
            Box::new(|i| dy[i]),
            Box::new(|i| diag * (dy[i] - dx[i])),
        ];
        for f in &steered {
            let r: Vec<f32> = (0..dx.len()).map(f).collect();
            for sign in [1.0f32, -1.0] {
                let rect: Vec<f32> = r.iter().map(|v| (sign * v).max(0.0)).collect();
                let max = rect.iter().fold(0.0f32, |m, &v| m.max(v));
                let scale = if max > 0.0 { bins as f32 / max } else { 0.0 };
                maps.push(
                    rect.iter()
                        .map(|v| ((v * scale) as usize).min(bins - 1) as u8)
                        .collect(),
                );
            }
        }
    }
    TextureBins { maps, bins }
}

/// The features of every region of `seg` on the planes it was computed from.
pub fn region_features(
    planes: &[Plane],
    seg: &Segmentation,
    texture: &TextureBins,
    colour_bins: usize,
) -> RegionFeatures {
    let n = seg.count;
    let colour_len = planes.len() * colour_bins;
    let texture_len = texture.maps.len() * texture.bins;
    let mut colour = vec![0.0f32; n * colour_len];
    let mut tex = vec![0.0f32; n * texture_len];
    let mut sizes = vec![0u32; n];
    let mut boxes = vec![[u32::MAX, u32::MAX, 0, 0]; n];
    let bin_width = 256.0 / colour_bins as f32;
    for (i, &label) in seg.labels.iter().enumerate() {
        let r = label as usize;
        let (x, y) = ((i % seg.width) as u32, (i / seg.width) as u32);
        sizes[r] += 1;
        let b = &mut boxes[r];
        *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
        let hist = &mut colour[r * colour_len..(r + 1) * colour_len];
        for (c, p) in planes.iter().enumerate() {
            let bin = ((p.data[i] / bin_width) as usize).min(colour_bins - 1);
            hist[c * colour_bins + bin] += 1.0;
        }
        let hist = &mut tex[r * texture_len..(r + 1) * texture_len];
        for (m, map) in texture.maps.iter().enumerate() {
            hist[m * texture.bins + map[i] as usize] += 1.0;
        }
    }
    for (hist, len) in [(&mut colour, colour_len), (&mut tex, texture_len)] {
        for h in hist.chunks_mut(len.max(1)) {
            let total: f32 = h.iter().sum();
            if total > 0.0 {
                h.iter_mut().for_each(|v| *v /= total);
            }
        }
    }
    RegionFeatures {
        colour_len,
        colour,
        texture_len,
        texture: tex,
        sizes,
        boxes,
    }
}

/// The pairs `(a, b)`, `a < b`, of regions that touch (8-connectivity), sorted.
pub fn adjacency(seg: &Segmentation) -> Vec<(u32, u32)> {
    let (w, h) = (seg.width, seg.height);
    let l = &seg.labels;
    let mut pairs = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let p = l[y * w + x];
            let mut see = |q: u32| {
                if p != q {
                    pairs.push((p.min(q), p.max(q)));
                }
            };
            if x + 1 < w {
                see(l[y * w + x + 1]);
            }
            if y + 1 < h {
                see(l[(y + 1) * w + x]);
                if x + 1 < w {
                    see(l[(y + 1) * w + x + 1]);
                }
                if x > 0 {
                    see(l[(y + 1) * w + x - 1]);
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_sizes_boxes_and_adjacency_of_three_stripes() {
        // Columns 0..4 label 0, 4..6 label 1, 6..10 label 2; the left stripe is dark.
        let (w, h) = (10, 4);
        let labels: Vec<u32> = (0..w * h)
            .map(|i| match i % w {
                0..4 => 0,
                4..6 => 1,
                _ => 2,
            })
            .collect();
        let seg = Segmentation {
            width: w,
            height: h,
            labels,
            count: 3,
        };
        let plane = Plane {
            width: w,
            height: h,
            data: (0..w * h)
                .map(|i| if i % w < 4 { 5.0 } else { 250.0 })
                .collect(),
        };
        let tex = texture_bins(std::slice::from_ref(&plane), 1.0, 4.0, 10);
        let f = region_features(&[plane], &seg, &tex, 25);
        assert_eq!(f.sizes, vec![16, 8, 16]);
        assert_eq!(f.boxes, vec![[0, 0, 3, 3], [4, 0, 5, 3], [6, 0, 9, 3]]);
        assert_eq!((f.colour_len, f.texture_len), (25, 80));
        assert_eq!(f.colour[0], 1.0);
        assert_eq!(f.colour[25 + 24], 1.0);
        for r in 0..3 {
            let t: f32 = f.texture[r * 80..(r + 1) * 80].iter().sum();
            assert!((t - 1.0).abs() < 1e-6);
        }
        // The step rises along x: the strongest 0-degree positive response sits at the
        // edge (top bin); the 0-degree negative map is zero everywhere (bin 0), which holds
        // an eighth of each pixel's votes.
        assert!(f.texture[80 + 9] > 0.0);
        assert_eq!(f.texture[10], 0.125);
        assert_eq!(adjacency(&seg), vec![(0, 1), (1, 2)]);
    }
}
