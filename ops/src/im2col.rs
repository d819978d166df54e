//! The im2col matrix of a channel-major map (C x N x H x W) and its adjoint, col2im, for a
//! block of output lines (an output line is one output row of one image): rows (c, kh, kw),
//! columns (image, y, x). Written by plain loops, in
//! parallel over rows (im2col) or channels (col2im), so no thread ever adds into another's
//! output and the result does not depend on the thread count.

use crate::element::Element;
use rayon::prelude::*;

/// Where one convolution's kernel reads its input.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// Input channels.
    pub channels: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub ho: usize,
    /// Output width.
    pub wo: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Dilation.
    pub dilation: usize,
}

impl Geometry {
    /// Rows of the im2col matrix: C x k x k.
    pub fn rows(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    /// The input row (or column) that output row (column) `o` reads at kernel offset `kk`, if
    /// inside the map.
    #[inline]
    fn source(&self, o: usize, kk: usize, size: usize) -> Option<usize> {
        let i = (o * self.stride + kk * self.dilation) as isize - self.padding as isize;
        (i >= 0 && (i as usize) < size).then_some(i as usize)
    }

    /// Output positions `o` whose input `o * stride + shift` lies in `0..size`, as a range,
    /// for the kernel offset with `shift = kk * dilation - padding`.
    #[inline]
    fn inside(&self, kk: usize, size: usize, outs: usize) -> std::ops::Range<usize> {
        let shift = (kk * self.dilation) as isize - self.padding as isize;
        let s = self.stride as isize;
        let first = if shift >= 0 { 0 } else { (-shift + s - 1) / s } as usize;
        let last = ((size as isize - shift + s - 1) / s).clamp(0, outs as isize) as usize;
        first.min(last)..last
    }
}

/// Fills `cols` ((C.k.k) x (lines.Wo), row-major) for the output lines
/// `first..first + lines` (line `l` is output row `l % Ho` of image `l / Ho`) of the
/// channel-major map `x` holding `batch` images.
pub fn im2col<T: Element>(
    x: &[T],
    batch: usize,
    first: usize,
    lines: usize,
    g: &Geometry,
    cols: &mut [T],
) {
    let (hw, kk) = (g.h * g.w, g.kernel * g.kernel);
    let width = lines * g.wo;
    cols[..g.rows() * width]
        .par_chunks_mut(width)
        .enumerate()
        .for_each(|(row, out)| {
            let (c, kh, kw) = (row / kk, row % kk / g.kernel, row % g.kernel);
            let xs = g.inside(kw, g.w, g.wo);
            for (i, line) in out.chunks_mut(g.wo).enumerate() {
                let (img, oy) = ((first + i) / g.ho, (first + i) % g.ho);
                let iy = match g.source(oy, kh, g.h) {
                    Some(iy) if !xs.is_empty() => iy,
                    _ => {
                        line.fill(T::default());
                        continue;
                    }
                };
                let src = &x[(c * batch + img) * hw + iy * g.w..][..g.w];
                line[..xs.start].fill(T::default());
                line[xs.end..].fill(T::default());
                let ix0 = xs.start * g.stride + kw * g.dilation - g.padding;
                if g.stride == 1 {
                    line[xs.clone()].copy_from_slice(&src[ix0..ix0 + xs.len()]);
                } else {
                    for (j, v) in line[xs.clone()].iter_mut().enumerate() {
                        *v = src[ix0 + j * g.stride];
                    }
                }
            }
        });
}

/// Adds the columns `cols` (as [`im2col`] lays them out for the output lines
/// `first..first + lines`) back onto the channel-major map `dx` holding `batch` images: the
/// adjoint of [`im2col`], the input gradient of a convolution.
pub fn col2im<T: Element>(
    cols: &[T],
    batch: usize,
    first: usize,
    lines: usize,
    g: &Geometry,
    dx: &mut [T],
) {
    let (hw, kk) = (g.h * g.w, g.kernel * g.kernel);
    let width = lines * g.wo;
    dx[..g.channels * batch * hw]
        .par_chunks_mut(batch * hw)
        .enumerate()
        .for_each(|(c, slab)| {
            for kh in 0..g.kernel {
                for kw in 0..g.kernel {
                    let xs = g.inside(kw, g.w, g.wo);
                    if xs.is_empty() {
                        continue;
                    }
                    let ix0 = xs.start * g.stride + kw * g.dilation - g.padding;
                    let row = &cols[(c * kk + kh * g.kernel + kw) * width..][..width];
                    for (i, line) in row.chunks(g.wo).enumerate() {
                        let (img, oy) = ((first + i) / g.ho, (first + i) % g.ho);
                        let Some(iy) = g.source(oy, kh, g.h) else {
                            continue;
                        };
                        let dst = &mut slab[img * hw + iy * g.w..][..g.w];
                        for (j, v) in line[xs.clone()].iter().enumerate() {
                            dst[ix0 + j * g.stride] += *v;
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)> for random x and c,
    /// over strided, padded and dilated geometries.
    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        for (kernel, stride, padding, dilation) in [
            (3, 1, 1, 1),
            (7, 2, 3, 1),
            (3, 2, 2, 2),
            (1, 2, 0, 1),
            (5, 3, 1, 1),
        ] {
            let (channels, h, w, batch) = (3, 9, 8, 3);
            let span = dilation * (kernel - 1) + 1;
            let g = Geometry {
                channels,
                h,
                w,
                ho: (h + 2 * padding - span) / stride + 1,
                wo: (w + 2 * padding - span) / stride + 1,
                kernel,
                stride,
                padding,
                dilation,
            };
            let x: Vec<f32> = (0..channels * batch * h * w)
                .map(|i| (i as f32 * 0.71).sin())
                .collect();
            // Output lines 3.. of image 0 up to the end of image 1: the block starts mid-image.
            let (first, lines) = (3, 2 * g.ho - 3);
            let width = lines * g.wo;
            let c: Vec<f32> = (0..g.rows() * width)
                .map(|i| (i as f32 * 1.3).cos())
                .collect();
            let mut cols = vec![f32::NAN; g.rows() * width];
            im2col(&x, batch, first, lines, &g, &mut cols);
            let mut dx = vec![0f32; x.len()];
            col2im(&c, batch, first, lines, &g, &mut dx);
            let lhs: f64 = cols
                .iter()
                .zip(&c)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| *a as f64 * *b as f64).sum();
            assert!(
                (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
                "{kernel} {stride} {padding} {dilation}: {lhs} {rhs}"
            );
            // Image 2 is outside the block: its gradient stays zero.
            assert!(dx[2 * h * w..3 * h * w].iter().all(|v| *v == 0.0));
        }
    }
}
