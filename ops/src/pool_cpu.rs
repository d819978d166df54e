//! The engine's CPU pools, forward and backward, as custom ops over the planes of a 4-D map
//! (any layout whose last two dimensions are H x W), with PyTorch's semantics exactly:
//! - max-pool: padding is minus infinity, windows are scanned row by row and the first maximum
//!   wins, so the whole gradient of a window goes to its first maximal input (a flat image
//!   region gives exact ties);
//! - average pool with `count_include_pad=True`: padding counts as zeros, every window divides
//!   by k x k.
//!
//! Parallel over planes, each plane written by one thread: the result does not depend on the
//! thread count.

use crate::element::Element;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// One pool (max or average) at one input shape.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pool {
    /// Planes: the product of the two leading dimensions.
    pub planes: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Square window.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding on each side.
    pub pad: usize,
    /// The input's dimensions (to shape the gradient).
    pub dims: [usize; 4],
}

impl Pool {
    /// The pool of a square `kernel`, `stride` and `pad` over an input of `dims`, output size
    /// floor((H + 2 pad - kernel) / stride) + 1 as PyTorch's; fails, naming `op`, where the
    /// window does not fit.
    pub fn fit(
        op: &str,
        dims: (usize, usize, usize, usize),
        kernel: usize,
        stride: usize,
        pad: usize,
    ) -> Result<Self> {
        let (a, b, h, w) = dims;
        let (hp, wp) = (h + 2 * pad, w + 2 * pad);
        if kernel == 0 || stride == 0 || hp < kernel || wp < kernel {
            candle_core::bail!(
                "{op}: kernel {kernel} stride {stride} pad {pad} does not fit {h}x{w}"
            );
        }
        Ok(Self {
            planes: a * b,
            h,
            w,
            oh: (hp - kernel) / stride + 1,
            ow: (wp - kernel) / stride + 1,
            kernel,
            stride,
            pad,
            dims: [a, b, h, w],
        })
    }

    /// The index within its plane of the first maximum of output (oy, ox)'s window, or None
    /// for a window wholly in the padding (impossible when pad < kernel).
    #[inline]
    fn argmax<T: Element>(&self, plane: &[T], oy: usize, ox: usize) -> Option<usize> {
        let (mut best, mut at) = (T::LOWEST, None);
        for ky in 0..self.kernel {
            let iy = (oy * self.stride + ky) as isize - self.pad as isize;
            if iy < 0 || iy as usize >= self.h {
                continue;
            }
            for kx in 0..self.kernel {
                let ix = (ox * self.stride + kx) as isize - self.pad as isize;
                if ix < 0 || ix as usize >= self.w {
                    continue;
                }
                let i = iy as usize * self.w + ix as usize;
                if at.is_none() || plane[i] > best {
                    (best, at) = (plane[i], Some(i));
                }
            }
        }
        at
    }

    fn forward<T: Element>(&self, x: &[T]) -> Vec<T> {
        let (hw, ohw) = (self.h * self.w, self.oh * self.ow);
        let mut y = vec![T::LOWEST; self.planes * ohw];
        y.par_chunks_mut(ohw.max(1))
            .zip(x.par_chunks(hw.max(1)))
            .for_each(|(out, plane)| {
                for (o, v) in out.iter_mut().enumerate() {
                    if let Some(i) = self.argmax(plane, o / self.ow, o % self.ow) {
                        *v = plane[i];
                    }
                }
            });
        y
    }

    fn backward<T: Element>(&self, dy: &[T], x: &[T]) -> Vec<T> {
        let (hw, ohw) = (self.h * self.w, self.oh * self.ow);
        let mut dx = vec![T::default(); x.len()];
        dx.par_chunks_mut(hw.max(1))
            .zip(x.par_chunks(hw.max(1)).zip(dy.par_chunks(ohw.max(1))))
            .for_each(|(grad, (plane, g))| {
                for (o, v) in g.iter().enumerate() {
                    if let Some(i) = self.argmax(plane, o / self.ow, o % self.ow) {
                        grad[i] += *v;
                    }
                }
            });
        dx
    }
}

/// The forward op.
pub(crate) struct MaxPoolOp(pub(crate) Pool);

impl CustomOp1 for MaxPoolOp {
    fn name(&self) -> &'static str {
        "sslbench-max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = crate::with_element!(s, "max_pool2d", |T| T::storage(
            self.0.forward::<T>(T::slice(s, l, "max_pool2d", "input")?)
        ));
        let [a, b, _, _] = self.0.dims;
        Ok((y, (a, b, self.0.oh, self.0.ow).into()))
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            grad.contiguous()?
                .apply_op2_no_bwd(x, &MaxPoolBackward(self.0))?,
        ))
    }
}

/// (dy, x) -> dx.
struct MaxPoolBackward(Pool);

impl CustomOp2 for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "sslbench-max-pool2d-backward"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dx = crate::with_element!(gs, "max_pool2d", |T| T::storage(self.0.backward::<T>(
            T::slice(gs, gl, "max_pool2d", "output gradient")?,
            T::slice(xs, xl, "max_pool2d", "input")?
        )));
        Ok((dx, Shape::from(self.0.dims.to_vec())))
    }
}

impl Pool {
    /// Each output's window inside the input: rows and columns, clipped to the map.
    #[inline]
    fn window(&self, oy: usize, ox: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let clip = |o: usize, size: usize| {
            let start = (o * self.stride) as isize - self.pad as isize;
            let end = (start + self.kernel as isize).clamp(0, size as isize) as usize;
            start.clamp(0, size as isize) as usize..end
        };
        (clip(oy, self.h), clip(ox, self.w))
    }

    fn average<T: Element>(&self, x: &[T]) -> Vec<T> {
        let (hw, ohw) = (self.h * self.w, self.oh * self.ow);
        let scale = T::from_f64(1.0 / (self.kernel * self.kernel) as f64);
        let mut y = vec![T::default(); self.planes * ohw];
        y.par_chunks_mut(ohw.max(1))
            .zip(x.par_chunks(hw.max(1)))
            .for_each(|(out, plane)| {
                for (o, v) in out.iter_mut().enumerate() {
                    let (rows, cols) = self.window(o / self.ow, o % self.ow);
                    let mut sum = T::default();
                    for iy in rows {
                        for value in &plane[iy * self.w + cols.start..iy * self.w + cols.end] {
                            sum += *value;
                        }
                    }
                    *v = sum * scale;
                }
            });
        y
    }

    fn average_backward<T: Element>(&self, dy: &[T]) -> Vec<T> {
        let (hw, ohw) = (self.h * self.w, self.oh * self.ow);
        let scale = T::from_f64(1.0 / (self.kernel * self.kernel) as f64);
        let mut dx = vec![T::default(); self.planes * hw];
        dx.par_chunks_mut(hw.max(1))
            .zip(dy.par_chunks(ohw.max(1)))
            .for_each(|(grad, g)| {
                for (o, v) in g.iter().enumerate() {
                    let (rows, cols) = self.window(o / self.ow, o % self.ow);
                    let share = *v * scale;
                    for iy in rows {
                        for d in &mut grad[iy * self.w + cols.start..iy * self.w + cols.end] {
                            *d += share;
                        }
                    }
                }
            });
        dx
    }
}

/// The average pool (padding counted as zeros).
pub(crate) struct AvgPoolOp(pub(crate) Pool);

impl CustomOp1 for AvgPoolOp {
    fn name(&self) -> &'static str {
        "sslbench-avg-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = crate::with_element!(s, "avg_pool2d", |T| T::storage(
            self.0.average::<T>(T::slice(s, l, "avg_pool2d", "input")?)
        ));
        let [a, b, _, _] = self.0.dims;
        Ok((y, (a, b, self.0.oh, self.0.ow).into()))
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            grad.contiguous()?
                .apply_op1_no_bwd(&AvgPoolBackward(self.0))?,
        ))
    }
}

/// dy -> dx of the average pool.
struct AvgPoolBackward(Pool);

impl CustomOp1 for AvgPoolBackward {
    fn name(&self) -> &'static str {
        "sslbench-avg-pool2d-backward"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let dx = crate::with_element!(s, "avg_pool2d", |T| T::storage(
            self.0
                .average_backward::<T>(T::slice(s, l, "avg_pool2d", "output gradient")?)
        ));
        Ok((dx, Shape::from(self.0.dims.to_vec())))
    }
}
