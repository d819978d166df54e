//! Bilinear resize to an output size with the arithmetic of PyTorch's
//! `F.interpolate(mode="bilinear", size=..., align_corners=...)` (ATen's `UpSample.h` and its
//! CPU kernel), forward and backward, as a candle custom op on the CPU (f32, f64) and on CUDA.
//!
//! Along each axis of `In` cells resized to `Out`, in the map's type:
//! - the scale is `(In - 1) / (Out - 1)` with corners aligned (0 when `Out == 1`), else
//!   `In / Out`;
//! - output `o` reads the source coordinate `scale * o` (aligned) or
//!   `scale * (o + 0.5) - 0.5` clamped at 0 (not aligned); the same size copies;
//! - the low cell is `min(floor(src), In - 1)`, the high one the next cell unless the low one
//!   is the last, the high weight `src - low` clamped to [0, 1] and the low weight one minus it.
//!
//! An output is `(x[y0, x0] * wx0 + x[y0, x1] * wx1) * wy0 + (x[y1, x0] * wx0 + x[y1, x1] *
//! wx1) * wy1`. The backward gives each input cell the sum of `wy * wx * dy` over the outputs
//! that read it, in the order ATen's scatter adds them (output row, column, then the corners
//! (y0, x0), (y0, x1), (y1, x0), (y1, x1)): here a gather, each input cell summed by one
//! thread, so the results do not depend on the thread count and CUDA needs no atomics. Both
//! devices read per-axis tables of cells and weights computed once per call on the host.

use crate::custom::{apply, MapKernel};
use crate::resample::Resample;
use crate::roi_common::{MapView, RoiFloat};
use candle_core::{Result, Shape, Tensor};
use rayon::prelude::*;
use std::ops::Range;

/// Bilinear resize of `x` (N x C x H x W, f32 or f64, any strides) to `output` = (oh, ow),
/// as `torch.nn.functional.interpolate(x, size=output, mode="bilinear",
/// align_corners=align_corners)`: up or down, any ratio. Returns N x C x oh x ow.
/// Differentiable. Fails on an empty map or a zero output size.
pub fn resize_bilinear(x: &Tensor, output: (usize, usize), align_corners: bool) -> Result<Tensor> {
    let shape = Resample::check("resize_bilinear", x, output)?;
    let op = Resize {
        shape,
        align_corners,
    };
    apply(x, op)
}

/// [`resize_bilinear`] from candle ops, slow and obviously correct: `My · x · Mxᵀ` with each
/// axis's interpolation matrix written from the textbook formulas in f64; autograd gives its
/// backward. The tests' reference.
pub fn resize_bilinear_slow(
    x: &Tensor,
    output: (usize, usize),
    align_corners: bool,
) -> Result<Tensor> {
    let s = Resample::check("resize_bilinear_slow", x, output)?;
    let matrix = |len: usize, out: usize| -> Result<Tensor> {
        let mut m = vec![0f64; out * len];
        for o in 0..out {
            let src = if align_corners {
                if out > 1 {
                    o as f64 * (len - 1) as f64 / (out - 1) as f64
                } else {
                    0.0
                }
            } else {
                ((o as f64 + 0.5) * len as f64 / out as f64 - 0.5).max(0.0)
            };
            let low = (src.floor() as usize).min(len - 1);
            let high = (low + 1).min(len - 1);
            let t = (src - low as f64).clamp(0.0, 1.0);
            m[o * len + low] += 1.0 - t;
            m[o * len + high] += t;
        }
        Tensor::from_vec(m, (out, len), x.device())?.to_dtype(x.dtype())
    };
    let (my, mx) = (matrix(s.h, s.oh)?, matrix(s.w, s.ow)?);
    let rows = x.broadcast_matmul(&mx.t()?)?;
    my.broadcast_matmul(&rows)
}

/// One bilinear resize call: its shapes and corner mode.
#[derive(Clone, Copy, Debug)]
struct Resize {
    shape: Resample,
    align_corners: bool,
}

/// Output coordinate `o`'s two source cells along one axis and their weights.
#[derive(Clone, Copy, Debug)]
struct Tap<T> {
    low: usize,
    high: usize,
    w_low: T,
    w_high: T,
}

/// One axis of a resize: each output's tap, and each input cell's range of outputs that may
/// read it (every output outside it reads other cells).
struct Axis<T> {
    taps: Vec<Tap<T>>,
    readers: Vec<Range<usize>>,
}

impl<T: RoiFloat> Axis<T> {
    /// The axis of `len` input cells resized to `out`, ATen's `area_pixel_compute_scale`,
    /// `area_pixel_compute_source_index` and `compute_source_index_and_lambda` in `T`.
    fn new(len: usize, out: usize, align_corners: bool) -> Self {
        let scale = if align_corners {
            if out > 1 {
                T::from_i64(len as i64 - 1) / T::from_i64(out as i64 - 1)
            } else {
                T::default()
            }
        } else {
            T::from_i64(len as i64) / T::from_i64(out as i64)
        };
        let taps: Vec<Tap<T>> = (0..out)
            .map(|o| {
                if out == len {
                    return Tap {
                        low: o,
                        high: o,
                        w_low: T::ONE,
                        w_high: T::default(),
                    };
                }
                let src = if align_corners {
                    scale * T::from_i64(o as i64)
                } else {
                    let s = scale * (T::from_i64(o as i64) + T::HALF) - T::HALF;
                    if s < T::default() {
                        T::default()
                    } else {
                        s
                    }
                };
                // ATen floors in f32 (`floorf`) for either type.
                let floor = (src.to_f64() as f32).floor() as i64;
                let low = floor.min(len as i64 - 1).max(0) as usize;
                let t = src - T::from_i64(low as i64);
                let t = if t < T::default() { T::default() } else { t };
                let w_high = if t > T::ONE { T::ONE } else { t };
                Tap {
                    low,
                    high: low + (low + 1 < len) as usize,
                    w_low: T::ONE - w_high,
                    w_high,
                }
            })
            .collect();
        let mut readers = vec![
            Range {
                start: usize::MAX,
                end: 0
            };
            len
        ];
        for (o, t) in taps.iter().enumerate() {
            for i in [t.low, t.high] {
                let r = &mut readers[i];
                *r = r.start.min(o)..r.end.max(o + 1);
            }
        }
        for r in &mut readers {
            if r.start >= r.end {
                *r = 0..0;
            }
        }
        Self { taps, readers }
    }

    /// The weights with which output `o` reads cell `i`: (low, high), 0 where it reads the
    /// other cell.
    #[inline]
    fn weights(&self, o: usize, i: usize) -> [Option<T>; 2] {
        let t = &self.taps[o];
        [
            (t.low == i).then_some(t.w_low),
            (t.high == i).then_some(t.w_high),
        ]
    }
}

impl Resize {
    fn axes<T: RoiFloat>(&self) -> (Axis<T>, Axis<T>) {
        let s = &self.shape;
        (
            Axis::new(s.h, s.oh, self.align_corners),
            Axis::new(s.w, s.ow, self.align_corners),
        )
    }
}

impl MapKernel for Resize {
    const OP: &'static str = "resize_bilinear";
    const NAME: &'static str = "sslbench-resize-bilinear";
    const BACKWARD_NAME: &'static str = "sslbench-resize-bilinear-backward";

    fn output(&self) -> Shape {
        self.shape.output().into()
    }

    fn input(&self) -> Shape {
        self.shape.input().into()
    }

    fn forward<T: RoiFloat>(&self, x: &[T], v: MapView, _: &[T]) -> Result<Vec<T>> {
        let s = self.shape;
        let (ay, ax) = self.axes::<T>();
        let cells = s.oh * s.ow;
        let mut y = vec![T::default(); s.planes() * cells];
        y.par_chunks_mut(cells).enumerate().for_each(|(p, out)| {
            let plane = &x[v.plane(p / s.c, p % s.c)..];
            for (i, o) in out.iter_mut().enumerate() {
                let (ty, tx) = (&ay.taps[i / s.ow], &ax.taps[i % s.ow]);
                let row = |r: usize| {
                    plane[v.at(r, tx.low)] * tx.w_low + plane[v.at(r, tx.high)] * tx.w_high
                };
                *o = row(ty.low) * ty.w_low + row(ty.high) * ty.w_high;
            }
        });
        Ok(y)
    }

    fn backward<T: RoiFloat>(&self, dy: &[T], _: &[T], _: MapView, _: &[T]) -> Result<Vec<T>> {
        let s = self.shape;
        let (ay, ax) = self.axes::<T>();
        let (hw, cells) = (s.h * s.w, s.oh * s.ow);
        let mut dx = vec![T::default(); s.planes() * hw];
        dx.par_chunks_mut(hw).enumerate().for_each(|(p, grad)| {
            let dy = &dy[p * cells..(p + 1) * cells];
            for (i, g) in grad.iter_mut().enumerate() {
                let (iy, ix) = (i / s.w, i % s.w);
                let mut acc = T::default();
                for oy in ay.readers[iy].clone() {
                    let wy = ay.weights(oy, iy);
                    for ox in ax.readers[ix].clone() {
                        let wx = ax.weights(ox, ix);
                        let d = dy[oy * s.ow + ox];
                        for a in wy.iter().flatten() {
                            for b in wx.iter().flatten() {
                                acc += *a * *b * d;
                            }
                        }
                    }
                }
                *g = acc;
            }
        });
        Ok(dx)
    }

    #[cfg(feature = "cuda")]
    fn cuda<T: crate::roi_common::cuda::CudaFloat>(
        &self,
        dy: Option<crate::custom::CudaArg>,
        x: crate::custom::CudaArg,
        _: crate::custom::CudaArg,
    ) -> Result<candle_core::CudaStorage> {
        cuda::launch::<T>(self, dy, x)
    }
}

/// The tables of both axes flattened for a kernel: integers (for y then x: each output's low
/// and high cell, then each input cell's first and one-past-last reader) and weights (for y
/// then x: each output's low and high weight).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn flat_tables<T: RoiFloat>(ay: &Axis<T>, ax: &Axis<T>) -> (Vec<i32>, Vec<T>) {
    let mut ints = Vec::new();
    let mut weights = Vec::new();
    for a in [ay, ax] {
        ints.extend(a.taps.iter().map(|t| t.low as i32));
        ints.extend(a.taps.iter().map(|t| t.high as i32));
        weights.extend(a.taps.iter().map(|t| t.w_low));
        weights.extend(a.taps.iter().map(|t| t.w_high));
    }
    for a in [ay, ax] {
        ints.extend(a.readers.iter().map(|r| r.start as i32));
        ints.extend(a.readers.iter().map(|r| r.end as i32));
    }
    (ints, weights)
}

/// The CUDA kernels: one thread per output (forward) or input cell (backward, a gather), the
/// CPU's arithmetic in the CPU's order, over the host's tables.
#[cfg(feature = "cuda")]
mod cuda {
    use super::{flat_tables, Resize};
    use crate::custom::CudaArg;
    use crate::roi_common::cuda::{grid, CudaFloat, Module};
    use crate::roi_common::MapView;
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
    use candle_core::cuda_backend::WrapErr;
    use candle_core::{CudaStorage, Result};
    use std::sync::OnceLock;

    static MODULE: Module = Module {
        name: "sslbench_resize_bilinear",
        source: super::CUDA_SOURCE,
        ptx: OnceLock::new(),
    };

    /// The forward (`dy` None: the resized map) or the backward (`dy`, contiguous: the input
    /// gradient).
    pub(super) fn launch<T: CudaFloat>(
        op: &Resize,
        dy: Option<CudaArg>,
        x: CudaArg,
    ) -> Result<CudaStorage> {
        let sh = op.shape;
        let (kernel, len, s, v) = match dy {
            Some((gs, gl)) => {
                let v = MapView::contiguous(gl.start_offset(), sh.output());
                ("resize_bilinear_bwd", sh.planes() * sh.h * sh.w, gs, v)
            }
            None => {
                let v = MapView::of("resize_bilinear", x.1)?;
                ("resize_bilinear_fwd", sh.planes() * sh.oh * sh.ow, x.0, v)
            }
        };
        let dev = s.device().clone();
        let (ay, ax) = op.axes::<T>();
        let (ints, weights) = flat_tables(&ay, &ax);
        let ints = dev.clone_htod(&ints)?;
        let weights = dev.clone_htod(&weights)?;
        let src = s.as_cuda_slice::<T>()?.slice(v.start..);
        let out = dev.alloc_zeros::<T>(len)?;
        let func = MODULE.function(&dev, kernel, T::DTYPE)?;
        let dims = [sh.n, sh.c, sh.h, sh.w, sh.oh, sh.ow].map(|d| d as i64);
        let strides = [v.sn, v.sc, v.sh, v.sw].map(|d| d as i64);
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&func);
        b.arg(&src).arg(&out).arg(&ints).arg(&weights);
        for d in dims.iter().chain(&strides) {
            b.arg(d);
        }
        // SAFETY: the kernel reads and writes within the shapes checked by `Resample::check`
        // and the tables built for them.
        unsafe { b.launch(grid(len)) }.w()?;
        drop(b);
        Ok(CudaStorage::wrap_cuda_slice(out, dev))
    }
}

/// The CUDA source (compiled by NVRTC after roi_common's prelude); the tables' layout is
/// [`flat_tables`]'s. Outside the `cuda` module so that the tests can check it without a GPU.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) const CUDA_SOURCE: &str = r#"
template <typename T>
__device__ void rb_fwd(const T* x, T* y, const int* ints, const T* wts, long long N,
                       long long C, long long H, long long W, long long OH, long long OW,
                       long long sn, long long sc, long long sh, long long sw) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N * C * OH * OW) return;
    long long ox = i % OW, oy = (i / OW) % OH, p = i / OW / OH;
    const int *ylow = ints, *yhigh = ints + OH, *xlow = ints + 2 * OH, *xhigh = xlow + OW;
    const T *wylow = wts, *wyhigh = wts + OH, *wxlow = wts + 2 * OH, *wxhigh = wxlow + OW;
    const T* plane = x + (p / C) * sn + (p % C) * sc;
    long long x0 = xlow[ox] * sw, x1 = xhigh[ox] * sw;
    T a = wxlow[ox], b = wxhigh[ox];
    const T* r0 = plane + ylow[oy] * sh;
    const T* r1 = plane + yhigh[oy] * sh;
    T t0 = r0[x0] * a + r0[x1] * b;
    T t1 = r1[x0] * a + r1[x1] * b;
    y[i] = t0 * wylow[oy] + t1 * wyhigh[oy];
}

template <typename T>
__device__ void rb_bwd(const T* dy, T* dx, const int* ints, const T* wts, long long N,
                       long long C, long long H, long long W, long long OH, long long OW) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N * C * H * W) return;
    long long ix = i % W, iy = (i / W) % H, p = i / W / H;
    const int *ylow = ints, *yhigh = ints + OH, *xlow = ints + 2 * OH, *xhigh = xlow + OW;
    const T *wylow = wts, *wyhigh = wts + OH, *wxlow = wts + 2 * OH, *wxhigh = wxlow + OW;
    const int *yfirst = ints + 2 * (OH + OW), *yend = yfirst + H;
    const int *xfirst = yend + H, *xend = xfirst + W;
    const T* g = dy + p * OH * OW;
    T acc = 0;
    for (long long oy = yfirst[iy]; oy < yend[iy]; ++oy) {
        for (long long ox = xfirst[ix]; ox < xend[ix]; ++ox) {
            T d = g[oy * OW + ox];
            for (int a = 0; a < 2; ++a) {
                if ((a ? yhigh[oy] : ylow[oy]) != iy) continue;
                T wy = a ? wyhigh[oy] : wylow[oy];
                for (int b = 0; b < 2; ++b) {
                    if ((b ? xhigh[ox] : xlow[ox]) != ix) continue;
                    acc += wy * (b ? wxhigh[ox] : wxlow[ox]) * d;
                }
            }
        }
    }
    dx[i] = acc;
}

#define RB_KERNELS(T, S)                                                                      \
extern "C" __global__ void resize_bilinear_fwd_##S(const T* src, T* out, const int* ints,     \
        const T* wts, long long N, long long C, long long H, long long W, long long OH,        \
        long long OW, long long sn, long long sc, long long sh, long long sw) {                \
    rb_fwd<T>(src, out, ints, wts, N, C, H, W, OH, OW, sn, sc, sh, sw);                        \
}                                                                                             \
extern "C" __global__ void resize_bilinear_bwd_##S(const T* src, T* out, const int* ints,     \
        const T* wts, long long N, long long C, long long H, long long W, long long OH,        \
        long long OW, long long sn, long long sc, long long sh, long long sw) {                \
    rb_bwd<T>(src, out, ints, wts, N, C, H, W, OH, OW);                                        \
}
RB_KERNELS(float, f32)
RB_KERNELS(double, f64)
"#;

#[cfg(test)]
mod tests {
    use super::{Axis, CUDA_SOURCE};

    /// Every output that reads a cell lies in that cell's reader range.
    #[test]
    fn reader_ranges_hold_every_reader() {
        for len in 1..30 {
            for out in 1..30 {
                for aligned in [false, true] {
                    let a = Axis::<f32>::new(len, out, aligned);
                    for (o, t) in a.taps.iter().enumerate() {
                        assert!(t.low < len && t.high < len);
                        for i in [t.low, t.high] {
                            assert!(a.readers[i].contains(&o), "{len} -> {out} {aligned}");
                        }
                    }
                }
            }
        }
    }

    /// The source defines the kernels `launch` asks for, in both types (NVRTC compiles it
    /// only on a GPU machine).
    #[test]
    fn cuda_source_defines_the_launched_kernels() {
        for name in ["resize_bilinear_fwd_##S", "resize_bilinear_bwd_##S"] {
            assert!(CUDA_SOURCE.contains(name), "{name}");
        }
        assert!(CUDA_SOURCE.contains("RB_KERNELS(float, f32)"));
        assert!(CUDA_SOURCE.contains("RB_KERNELS(double, f64)"));
    }
}
