//! RoIAlign with torchvision's `roi_align` arithmetic: `aligned` false is Caffe2's legacy op
//! (Detectron's RoIAlign), `aligned` true detectron2's ROIAlignV2. Forward and backward, as a
//! candle custom op on the CPU (f32, f64) and on CUDA.
//!
//! For each RoI `(batch, x1, y1, x2, y2)`: the corners are scaled without rounding (and shifted
//! by -0.5 when aligned); the size is `x2 - x1` (at least 1 unless aligned); a bin is
//! `size / bins`; each bin averages a grid of `sampling_ratio` x `sampling_ratio` points (or,
//! for 0, `ceil(size / bins)` per axis) at `start + p * bin + (i + 0.5) * bin / grid`, each read
//! bilinearly: a point above -1 and below the size (inclusive) is clamped to 0 and to the last
//! row or column, one outside contributes 0. The backward spreads each output's gradient over
//! the same points with the same bilinear weights, divided by the grid's count.
//!
//! CPU: the forward is parallel over (RoI, channel), every output written by one thread; the
//! backward takes the RoIs in order and, for each, the channels in parallel, so every input
//! cell sums its gradients in the reference's order (RoI, bin, sample, corner): bit-identical
//! to torchvision's CPU kernel in f32 and independent of the thread count. CUDA: one thread per
//! output; the backward adds with atomicAdd, so its sums are not bit-deterministic.

use crate::custom::{apply_with, MapKernel};
use crate::roi_common::{prepare, read_rois, MapView, Roi, RoiFloat, RoiShape};
use candle_core::{Result, Shape, Tensor};
use rayon::prelude::*;

/// RoIAlign of `x` (N x C x H x W, f32 or f64, any strides) over `rois` (R x 5 rows
/// `(batch_index, x1, y1, x2, y2)` in input-image pixels, any float dtype), with `output` =
/// (bins high, bins wide), `spatial_scale` from image pixels to map cells, `sampling_ratio`
/// points per bin and axis (0 = adaptive, `ceil(roi size / bins)`) and `aligned` (detectron2's
/// half-pixel shift; false is Detectron's). Returns R x C x ph x pw. Differentiable in `x` (the
/// RoIs get no gradient). Fails on a batch index outside the map or a zero output size.
pub fn roi_align(
    x: &Tensor,
    rois: &Tensor,
    output: (usize, usize),
    spatial_scale: f32,
    sampling_ratio: usize,
    aligned: bool,
) -> Result<Tensor> {
    let (shape, rois) = prepare("roi_align", x, rois, output)?;
    let op = RoiAlign {
        shape,
        scale: spatial_scale,
        sampling_ratio,
        aligned,
    };
    apply_with(x, &rois, op)
}

/// One RoIAlign call: its shapes and parameters.
#[derive(Clone, Copy, Debug)]
struct RoiAlign {
    shape: RoiShape,
    scale: f32,
    sampling_ratio: usize,
    aligned: bool,
}

/// One sampling coordinate along one axis: the two cells it reads and their weights (`low`
/// gets `h`, `high` gets `l`), or `valid` false for a point outside the map.
#[derive(Clone, Copy, Debug)]
struct Sample<T> {
    valid: bool,
    low: usize,
    high: usize,
    l: T,
    h: T,
}

/// A RoI's sampling points: per axis, `grid` samples for each bin in order, and the count
/// that averages a bin.
struct Grid<T> {
    rows: Vec<Sample<T>>,
    cols: Vec<Sample<T>>,
    gh: usize,
    gw: usize,
    count: T,
}

/// The samples along one axis: `bins` bins of `bin` from `start`, `grid` points each, on a
/// map `size` cells long.
fn axis<T: RoiFloat>(start: T, bin: T, bins: usize, grid: usize, size: usize) -> Vec<Sample<T>> {
    let (grid_t, size_t) = (T::from_i64(grid as i64), T::from_i64(size as i64));
    let mut out = Vec::with_capacity(bins * grid);
    for p in 0..bins {
        let origin = start + T::from_i64(p as i64) * bin;
        for i in 0..grid {
            let c = origin + T::from_f32(i as f32 + 0.5) * bin / grid_t;
            if c < T::default() - T::ONE || c > size_t {
                let zero = T::default();
                out.push(Sample {
                    valid: false,
                    low: 0,
                    high: 0,
                    l: zero,
                    h: zero,
                });
                continue;
            }
            let mut c = if c <= T::default() { T::default() } else { c };
            let mut low = c.trunc_i().max(0) as usize;
            let high = if low >= size - 1 {
                low = size - 1;
                c = T::from_i64(low as i64);
                low
            } else {
                low + 1
            };
            let l = c - T::from_i64(low as i64);
            out.push(Sample {
                valid: true,
                low,
                high,
                l,
                h: T::ONE - l,
            });
        }
    }
    out
}

impl RoiAlign {
    /// The sampling grid of `roi`.
    fn grid<T: RoiFloat>(&self, roi: &Roi<T>) -> Grid<T> {
        let s = &self.shape;
        let scale = T::from_f32(self.scale);
        let offset = if self.aligned { T::HALF } else { T::default() };
        let [x1, y1, x2, y2] = roi.corners.map(|c| c * scale - offset);
        let (mut rw, mut rh) = (x2 - x1, y2 - y1);
        if !self.aligned {
            // std::max(size, 1): a NaN stays.
            rw = if rw < T::ONE { T::ONE } else { rw };
            rh = if rh < T::ONE { T::ONE } else { rh };
        }
        let bin_h = rh / T::from_i64(s.ph as i64);
        let bin_w = rw / T::from_i64(s.pw as i64);
        let points = |bin: T| -> usize {
            if self.sampling_ratio > 0 {
                self.sampling_ratio
            } else {
                bin.ceil_i().max(0) as usize
            }
        };
        let (gh, gw) = (points(bin_h), points(bin_w));
        Grid {
            rows: axis(y1, bin_h, s.ph, gh, s.h),
            cols: axis(x1, bin_w, s.pw, gw, s.w),
            gh,
            gw,
            count: T::from_i64((gh * gw).max(1) as i64),
        }
    }
}

impl MapKernel for RoiAlign {
    const OP: &'static str = "roi_align";
    const NAME: &'static str = "sslbench-roi-align";
    const BACKWARD_NAME: &'static str = "sslbench-roi-align-backward";

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
                let g = self.grid(roi);
                block.par_chunks_mut(bins).enumerate().for_each(|(c, out)| {
                    let plane = &x[v.plane(roi.b, c)..];
                    for (i, o) in out.iter_mut().enumerate() {
                        let (ph, pw) = (i / s.pw, i % s.pw);
                        let mut acc = T::default();
                        for ys in &g.rows[ph * g.gh..(ph + 1) * g.gh] {
                            for xs in &g.cols[pw * g.gw..(pw + 1) * g.gw] {
                                let (p, w) = corners(ys, xs);
                                let at = |k: usize| plane[v.at(p[k].0, p[k].1)];
                                acc += w[0] * at(0) + w[1] * at(1) + w[2] * at(2) + w[3] * at(3);
                            }
                        }
                        *o = acc / g.count;
                    }
                });
            });
        Ok(y)
    }

    fn backward<T: RoiFloat>(&self, dy: &[T], _: &[T], _: MapView, rois: &[T]) -> Result<Vec<T>> {
        let rois = read_rois(rois, self.shape.n, Self::OP)?;
        let s = self.shape;
        let (hw, bins) = (s.h * s.w, s.ph * s.pw);
        let mut dx = vec![T::default(); s.n * s.c * hw];
        for (r, roi) in rois.iter().enumerate() {
            let g = self.grid(roi);
            let image = &mut dx[roi.b * s.c * hw..(roi.b + 1) * s.c * hw];
            image.par_chunks_mut(hw).enumerate().for_each(|(c, grad)| {
                let dy = &dy[(r * s.c + c) * bins..(r * s.c + c + 1) * bins];
                for (i, d) in dy.iter().enumerate() {
                    let (ph, pw) = (i / s.pw, i % s.pw);
                    for ys in &g.rows[ph * g.gh..(ph + 1) * g.gh] {
                        for xs in &g.cols[pw * g.gw..(pw + 1) * g.gw] {
                            if !(ys.valid && xs.valid) {
                                continue;
                            }
                            let (p, w) = corners(ys, xs);
                            for k in 0..4 {
                                grad[p[k].0 * s.w + p[k].1] += *d * w[k] / g.count;
                            }
                        }
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

/// The four cells a sampling point reads, (row, column), and their bilinear weights, in the
/// reference's order: (low, low), (low, high), (high, low), (high, high). A point outside the
/// map reads cell (0, 0) with weight 0, as the reference does.
#[inline]
fn corners<T: RoiFloat>(ys: &Sample<T>, xs: &Sample<T>) -> ([(usize, usize); 4], [T; 4]) {
    if !(ys.valid && xs.valid) {
        return ([(0, 0); 4], [T::default(); 4]);
    }
    (
        [
            (ys.low, xs.low),
            (ys.low, xs.high),
            (ys.high, xs.low),
            (ys.high, xs.high),
        ],
        [ys.h * xs.h, ys.h * xs.l, ys.l * xs.h, ys.l * xs.l],
    )
}

/// The CUDA kernels: one thread per output, the same arithmetic as the CPU's (no fused
/// multiply-adds); the backward scatters with atomicAdd.
#[cfg(feature = "cuda")]
mod cuda {
    use super::RoiAlign;
    use crate::custom::CudaArg;
    use crate::roi_common::cuda::{grid, CudaFloat, Module};
    use crate::roi_common::{MapView, RoiFloat};
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
    use candle_core::cuda_backend::WrapErr;
    use candle_core::{CudaStorage, Result};
    use std::sync::OnceLock;

    static MODULE: Module = Module {
        name: "sslbench_roi_align",
        source: SOURCE,
        ptx: OnceLock::new(),
    };

    const SOURCE: &str = r#"
template <typename T>
struct RoiSample { bool valid; int low, high; T l, h; };

template <typename T>
__device__ RoiSample<T> roi_sample(T start, T bin, int p, int i, int grid, int size) {
    T c = start + (T)p * bin + (T)((float)i + 0.5f) * bin / (T)grid;
    RoiSample<T> s;
    if (c < (T)-1 || c > (T)size) {
        s.valid = false; s.low = 0; s.high = 0; s.l = 0; s.h = 0;
        return s;
    }
    if (c <= (T)0) c = 0;
    int low = (int)c, high;
    if (low >= size - 1) { high = low = size - 1; c = (T)low; } else { high = low + 1; }
    s.valid = true; s.low = low; s.high = high; s.l = c - (T)low; s.h = (T)1 - s.l;
    return s;
}

template <typename T>
__device__ void roi_align_kernel(const T* x, const T* rois, const T* dy, T* out, T scale,
                                 int aligned, int ratio, int N, int C, int H, int W, int R,
                                 int PH, int PW, long long sn, long long sc, long long sh,
                                 long long sw) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)R * C * PH * PW) return;
    int pw = (int)(i % PW), ph = (int)((i / PW) % PH);
    int c = (int)((i / PW / PH) % C), r = (int)(i / PW / PH / C);
    const T* roi = rois + 5 * (long long)r;
    int b = (int)roi[0];
    if (b < 0 || b >= N) { if (!dy) out[i] = 0; return; }
    T off = aligned ? (T)0.5 : (T)0;
    T x1 = roi[1] * scale - off, y1 = roi[2] * scale - off;
    T x2 = roi[3] * scale - off, y2 = roi[4] * scale - off;
    T rw = x2 - x1, rh = y2 - y1;
    if (!aligned) { rw = rw < (T)1 ? (T)1 : rw; rh = rh < (T)1 ? (T)1 : rh; }
    T bin_h = rh / (T)PH, bin_w = rw / (T)PW;
    int gh = ratio > 0 ? ratio : (int)roi_ceil(bin_h);
    int gw = ratio > 0 ? ratio : (int)roi_ceil(bin_w);
    gh = gh < 0 ? 0 : gh;
    gw = gw < 0 ? 0 : gw;
    T count = (T)(gh * gw < 1 ? 1 : gh * gw);
    const T* plane = x + b * sn + c * sc;
    T* grad = out + ((long long)b * C + c) * H * W;
    T g = dy ? dy[i] : (T)0;
    T acc = 0;
    for (int iy = 0; iy < gh; ++iy) {
        RoiSample<T> ys = roi_sample(y1, bin_h, ph, iy, gh, H);
        for (int ix = 0; ix < gw; ++ix) {
            RoiSample<T> xs = roi_sample(x1, bin_w, pw, ix, gw, W);
            bool valid = ys.valid && xs.valid;
            T w1 = valid ? ys.h * xs.h : (T)0, w2 = valid ? ys.h * xs.l : (T)0;
            T w3 = valid ? ys.l * xs.h : (T)0, w4 = valid ? ys.l * xs.l : (T)0;
            if (!dy) {
                acc += w1 * plane[ys.low * sh + xs.low * sw] + w2 * plane[ys.low * sh + xs.high * sw]
                     + w3 * plane[ys.high * sh + xs.low * sw] + w4 * plane[ys.high * sh + xs.high * sw];
            } else if (valid) {
                roi_atomic_add(grad + (long long)ys.low * W + xs.low, g * w1 / count);
                roi_atomic_add(grad + (long long)ys.low * W + xs.high, g * w2 / count);
                roi_atomic_add(grad + (long long)ys.high * W + xs.low, g * w3 / count);
                roi_atomic_add(grad + (long long)ys.high * W + xs.high, g * w4 / count);
            }
        }
    }
    if (!dy) out[i] = acc / count;
}

#define ROI_ALIGN_KERNELS(T, S)                                                                \
extern "C" __global__ void roi_align_fwd_##S(const T* x, const T* rois, const T* dy, T* out,   \
        T scale, int aligned, int ratio, int N, int C, int H, int W, int R, int PH, int PW,   \
        long long sn, long long sc, long long sh, long long sw) {                             \
    roi_align_kernel<T>(x, rois, nullptr, out, scale, aligned, ratio, N, C, H, W, R, PH, PW,  \
                        sn, sc, sh, sw);                                                      \
}                                                                                             \
extern "C" __global__ void roi_align_bwd_##S(const T* x, const T* rois, const T* dy, T* out,   \
        T scale, int aligned, int ratio, int N, int C, int H, int W, int R, int PH, int PW,   \
        long long sn, long long sc, long long sh, long long sw) {                             \
    roi_align_kernel<T>(x, rois, dy, out, scale, aligned, ratio, N, C, H, W, R, PH, PW,       \
                        sn, sc, sh, sw);                                                      \
}
ROI_ALIGN_KERNELS(float, f32)
ROI_ALIGN_KERNELS(double, f64)
"#;

    /// The forward (`dy` None: the aligned RoIs) or the backward (`dy`: the input gradient).
    pub(super) fn launch<T: CudaFloat>(
        op: &RoiAlign,
        dy: Option<CudaArg>,
        (xs, xl): CudaArg,
        (rs, rl): CudaArg,
    ) -> Result<CudaStorage> {
        let s = op.shape;
        let dev = xs.device().clone();
        let v = MapView::of("roi_align", xl)?;
        let x = xs.as_cuda_slice::<T>()?.slice(v.start..);
        let rois = rs.as_cuda_slice::<T>()?.slice(rl.start_offset()..);
        let (kernel, len) = match dy {
            None => ("roi_align_fwd", s.r * s.c * s.ph * s.pw),
            Some(_) => ("roi_align_bwd", s.n * s.c * s.h * s.w),
        };
        let out = dev.alloc_zeros::<T>(len)?;
        // The forward reads no gradient: it gets the map in its place, never read.
        let g = match dy {
            Some((gs, gl)) => gs.as_cuda_slice::<T>()?.slice(gl.start_offset()..),
            None => xs.as_cuda_slice::<T>()?.slice(v.start..),
        };
        let func = MODULE.function(&dev, kernel, T::DTYPE)?;
        let scale = <T as RoiFloat>::from_f32(op.scale);
        let flags = [op.aligned as i32, op.sampling_ratio as i32];
        let dims = [s.n, s.c, s.h, s.w, s.r, s.ph, s.pw].map(|d| d as i32);
        let strides = [v.sn, v.sc, v.sh, v.sw].map(|d| d as i64);
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&func);
        b.arg(&x).arg(&rois).arg(&g).arg(&out).arg(&scale);
        for f in flags.iter().chain(&dims) {
            b.arg(f);
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
