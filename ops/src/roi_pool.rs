//! RoIPool with Detectron's RoIPoolF arithmetic (the same as torchvision's `roi_pool` CPU
//! kernel), forward and backward, as a candle custom op on the CPU (f32, f64) and on CUDA.
//!
//! For each RoI `(batch, x1, y1, x2, y2)`: the corners are scaled and rounded half away from
//! zero (`roundf(coord * spatial_scale)`, in the input's type), the size is the inclusive
//! `x2 - x1 + 1` at least 1, a bin is `size / bins` wide as a float, bin `p` spans
//! `[floor(p * bin), ceil((p + 1) * bin))` shifted by the start and clamped to the map, and the
//! output is the bin's maximum (scanned row by row from `-FLT_MAX`, the first maximum wins;
//! an empty bin outputs 0). The backward sends each output's gradient to that first maximum.
//!
//! CPU: the forward is parallel over (RoI, channel), every output written by one thread; the
//! backward takes the RoIs in order and, for each, the channels in parallel, so every input
//! cell sums its gradients in the reference's order (RoI, bin row, bin column): bit-identical
//! to torchvision in f32 and independent of the thread count. CUDA: one thread per output;
//! the backward adds with atomicAdd, so its sums are not bit-deterministic.

use crate::custom::{apply_with, MapKernel};
use crate::roi_common::{prepare, read_rois, MapView, Roi, RoiFloat, RoiShape};
use candle_core::{Result, Shape, Tensor};
use rayon::prelude::*;
use std::ops::Range;

/// RoIPool of `x` (N x C x H x W, f32 or f64, any strides) over `rois` (R x 5 rows
/// `(batch_index, x1, y1, x2, y2)` in input-image pixels, any float dtype), with `output` =
/// (bins high, bins wide) and `spatial_scale` from image pixels to map cells (1/16 for a
/// ResNet C4 map). Returns R x C x ph x pw. Differentiable in `x` (the RoIs get no
/// gradient). Fails on a batch index outside the map or a zero output size.
pub fn roi_pool(
    x: &Tensor,
    rois: &Tensor,
    output: (usize, usize),
    spatial_scale: f32,
) -> Result<Tensor> {
    let (shape, rois) = prepare("roi_pool", x, rois, output)?;
    let op = RoiPool {
        shape,
        scale: spatial_scale,
    };
    apply_with(x, &rois, op)
}

/// One RoIPool call: its shapes and scale.
#[derive(Clone, Copy, Debug)]
struct RoiPool {
    shape: RoiShape,
    scale: f32,
}

/// A bin's maximum and where it is (None for an empty bin, or one with no value above
/// `-FLT_MAX`).
fn bin_max<T: RoiFloat>(
    x: &[T],
    base: usize,
    v: &MapView,
    rows: &Range<usize>,
    cols: &Range<usize>,
) -> (T, Option<(usize, usize)>) {
    if rows.is_empty() || cols.is_empty() {
        return (T::default(), None);
    }
    let (mut best, mut at) = (T::NEG_FLT_MAX, None);
    for y in rows.clone() {
        let row = &x[base + v.at(y, cols.start)..];
        let mut visit = |k: usize, value: T| {
            if value > best {
                (best, at) = (value, Some((y, cols.start + k)));
            }
        };
        if v.sw == 1 {
            row[..cols.len()]
                .iter()
                .enumerate()
                .for_each(|(k, value)| visit(k, *value));
        } else {
            // Any stride, zero (one cell repeated) included.
            (0..cols.len()).for_each(|k| visit(k, row[k * v.sw]));
        }
    }
    (best, at)
}

impl RoiPool {
    /// The bins of `roi`: the rows of each bin row, the columns of each bin column.
    fn bins<T: RoiFloat>(&self, roi: &Roi<T>) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
        let scale = T::from_f32(self.scale);
        let [x1, y1, x2, y2] = roi.corners.map(|c| (c * scale).round_i());
        let axis = |start: i64, end: i64, bins: usize, size: usize| -> Vec<Range<usize>> {
            let len = end.saturating_sub(start).saturating_add(1).max(1);
            let bin = T::from_i64(len) / T::from_i64(bins as i64);
            let clamp = |v: i64| v.saturating_add(start).clamp(0, size as i64) as usize;
            (0..bins as i64)
                .map(|p| {
                    clamp((T::from_i64(p) * bin).floor_i())
                        ..clamp((T::from_i64(p + 1) * bin).ceil_i())
                })
                .collect()
        };
        let s = &self.shape;
        (axis(y1, y2, s.ph, s.h), axis(x1, x2, s.pw, s.w))
    }
}

impl MapKernel for RoiPool {
    const OP: &'static str = "roi_pool";
    const NAME: &'static str = "sslbench-roi-pool";
    const BACKWARD_NAME: &'static str = "sslbench-roi-pool-backward";

    fn output(&self) -> Shape {
        self.shape.output().into()
    }

    fn input(&self) -> Shape {
        self.shape.input().into()
    }

    fn forward<T: RoiFloat>(&self, x: &[T], v: MapView, rois: &[T]) -> Result<Vec<T>> {
        let rois = read_rois(rois, self.shape.n, Self::OP)?;
        let s = self.shape;
        let bins = s.ph * s.pw;
        let mut y = vec![T::default(); s.r * s.c * bins];
        y.par_chunks_mut((s.c * bins).max(1))
            .zip(rois.par_iter())
            .for_each(|(block, roi)| {
                let (rows, cols) = self.bins(roi);
                block.par_chunks_mut(bins).enumerate().for_each(|(c, out)| {
                    let base = v.plane(roi.b, c);
                    for (i, o) in out.iter_mut().enumerate() {
                        *o = bin_max(x, base, &v, &rows[i / s.pw], &cols[i % s.pw]).0;
                    }
                });
            });
        Ok(y)
    }

    fn backward<T: RoiFloat>(&self, dy: &[T], x: &[T], v: MapView, rois: &[T]) -> Result<Vec<T>> {
        let rois = read_rois(rois, self.shape.n, Self::OP)?;
        let s = self.shape;
        let (hw, bins) = (s.h * s.w, s.ph * s.pw);
        let mut dx = vec![T::default(); s.n * s.c * hw];
        for (r, roi) in rois.iter().enumerate() {
            let (rows, cols) = self.bins(roi);
            let image = &mut dx[roi.b * s.c * hw..(roi.b + 1) * s.c * hw];
            image.par_chunks_mut(hw).enumerate().for_each(|(c, grad)| {
                let base = v.plane(roi.b, c);
                let g = &dy[(r * s.c + c) * bins..(r * s.c + c + 1) * bins];
                for (i, d) in g.iter().enumerate() {
                    let (_, at) = bin_max(x, base, &v, &rows[i / s.pw], &cols[i % s.pw]);
                    if let Some((yy, xx)) = at {
                        grad[yy * s.w + xx] += *d;
                    }
                }
            });
        }
        Ok(dx)
    }

    #[cfg(feature = "cuda")]
    fn cuda<T: crate::roi_common::cuda::CudaFloat>(
        &self,
        dy: Option<crate::custom::CudaArg>,
        x: crate::custom::CudaArg,
        rois: crate::custom::CudaArg,
    ) -> Result<candle_core::CudaStorage> {
        cuda::launch::<T>(self, dy, x, rois)
    }
}

/// The CUDA kernels: one thread per output, the same arithmetic as the CPU's (no fused
/// multiply-adds); the backward scatters with atomicAdd.
#[cfg(feature = "cuda")]
mod cuda {
    use super::RoiPool;
    use crate::custom::CudaArg;
    use crate::roi_common::cuda::{grid, CudaFloat, Module};
    use crate::roi_common::{MapView, RoiFloat};
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
    use candle_core::cuda_backend::WrapErr;
    use candle_core::{CudaStorage, Result};
    use std::sync::OnceLock;

    static MODULE: Module = Module {
        name: "sslbench_roi_pool",
        source: SOURCE,
        ptx: OnceLock::new(),
    };

    const SOURCE: &str = r#"
template <typename T>
__device__ void roi_pool_bin(const T* plane, long long sh, long long sw, int H, int W,
                             const T* roi, T scale, int PH, int PW, int ph, int pw,
                             T* best, int* at_h, int* at_w) {
    long long x1 = (long long)roi_round(roi[1] * scale), y1 = (long long)roi_round(roi[2] * scale);
    long long x2 = (long long)roi_round(roi[3] * scale), y2 = (long long)roi_round(roi[4] * scale);
    long long rw = x2 - x1 + 1, rh = y2 - y1 + 1;
    rw = rw < 1 ? 1 : rw;
    rh = rh < 1 ? 1 : rh;
    T bin_h = (T)rh / (T)PH, bin_w = (T)rw / (T)PW;
    long long hs = (long long)roi_floor((T)ph * bin_h) + y1;
    long long he = (long long)roi_ceil((T)(ph + 1) * bin_h) + y1;
    long long ws = (long long)roi_floor((T)pw * bin_w) + x1;
    long long we = (long long)roi_ceil((T)(pw + 1) * bin_w) + x1;
    hs = hs < 0 ? 0 : (hs > H ? H : hs);
    he = he < 0 ? 0 : (he > H ? H : he);
    ws = ws < 0 ? 0 : (ws > W ? W : ws);
    we = we < 0 ? 0 : (we > W ? W : we);
    bool empty = he <= hs || we <= ws;
    T m = empty ? (T)0 : (T)(-ROI_FLT_MAX);
    int ah = -1, aw = -1;
    for (long long h = hs; h < he; ++h) {
        for (long long w = ws; w < we; ++w) {
            T v = plane[h * sh + w * sw];
            if (v > m) { m = v; ah = (int)h; aw = (int)w; }
        }
    }
    *best = m;
    *at_h = ah;
    *at_w = aw;
}

template <typename T>
__device__ void roi_pool_kernel(const T* x, const T* rois, const T* dy, T* out, T scale,
                                int N, int C, int H, int W, int R, int PH, int PW,
                                long long sn, long long sc, long long sh, long long sw) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)R * C * PH * PW) return;
    int pw = (int)(i % PW), ph = (int)((i / PW) % PH);
    int c = (int)((i / PW / PH) % C), r = (int)(i / PW / PH / C);
    const T* roi = rois + 5 * (long long)r;
    int b = (int)roi[0];
    if (b < 0 || b >= N) { if (!dy) out[i] = 0; return; }
    T m;
    int ah, aw;
    roi_pool_bin(x + b * sn + c * sc, sh, sw, H, W, roi, scale, PH, PW, ph, pw, &m, &ah, &aw);
    if (!dy) {
        out[i] = m;
    } else if (ah >= 0) {
        roi_atomic_add(out + (((long long)b * C + c) * H + ah) * W + aw, dy[i]);
    }
}

#define ROI_POOL_KERNELS(T, S)                                                              \
extern "C" __global__ void roi_pool_fwd_##S(const T* x, const T* rois, const T* dy, T* out,  \
        T scale, int N, int C, int H, int W, int R, int PH, int PW,                         \
        long long sn, long long sc, long long sh, long long sw) {                           \
    roi_pool_kernel<T>(x, rois, nullptr, out, scale, N, C, H, W, R, PH, PW, sn, sc, sh, sw); \
}                                                                                           \
extern "C" __global__ void roi_pool_bwd_##S(const T* x, const T* rois, const T* dy, T* out,  \
        T scale, int N, int C, int H, int W, int R, int PH, int PW,                         \
        long long sn, long long sc, long long sh, long long sw) {                           \
    roi_pool_kernel<T>(x, rois, dy, out, scale, N, C, H, W, R, PH, PW, sn, sc, sh, sw);      \
}
ROI_POOL_KERNELS(float, f32)
ROI_POOL_KERNELS(double, f64)
"#;

    /// The forward (`dy` None: the pooled RoIs) or the backward (`dy`: the input gradient).
    pub(super) fn launch<T: CudaFloat>(
        op: &RoiPool,
        dy: Option<CudaArg>,
        (xs, xl): CudaArg,
        (rs, rl): CudaArg,
    ) -> Result<CudaStorage> {
        let s = op.shape;
        let dev = xs.device().clone();
        let v = MapView::of("roi_pool", xl)?;
        let x = xs.as_cuda_slice::<T>()?.slice(v.start..);
        let rois = rs.as_cuda_slice::<T>()?.slice(rl.start_offset()..);
        let (kernel, len) = match dy {
            None => ("roi_pool_fwd", s.r * s.c * s.ph * s.pw),
            Some(_) => ("roi_pool_bwd", s.n * s.c * s.h * s.w),
        };
        let out = dev.alloc_zeros::<T>(len)?;
        // The forward reads no gradient: it gets the map in its place, never read.
        let g = match dy {
            Some((gs, gl)) => gs.as_cuda_slice::<T>()?.slice(gl.start_offset()..),
            None => xs.as_cuda_slice::<T>()?.slice(v.start..),
        };
        let func = MODULE.function(&dev, kernel, T::DTYPE)?;
        let scale = <T as RoiFloat>::from_f32(op.scale);
        let dims = [s.n, s.c, s.h, s.w, s.r, s.ph, s.pw].map(|d| d as i32);
        let strides = [v.sn, v.sc, v.sh, v.sw].map(|d| d as i64);
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&func);
        b.arg(&x).arg(&rois).arg(&g).arg(&out).arg(&scale);
        for d in &dims {
            b.arg(d);
        }
        for st in &strides {
            b.arg(st);
        }
        // SAFETY: the kernel reads and writes within the shapes checked by `prepare`.
        unsafe { b.launch(grid(s.r * s.c * s.ph * s.pw)) }.w()?;
        drop(b);
        Ok(CudaStorage::wrap_cuda_slice(out, dev))
    }
}
