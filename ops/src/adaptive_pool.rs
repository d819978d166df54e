//! Adaptive average pooling with PyTorch's bins (ATen's `AdaptivePooling.h`), forward and
//! backward, as a candle custom op on the CPU (f32, f64) and on CUDA: the PSPNet decoder's
//! pyramid bins.
//!
//! Output cell `i` of an axis of `In` cells pooled to `Out` averages the input cells
//! `[floor(i * In / Out), ceil((i + 1) * In / Out))`, in integer arithmetic. The windows
//! overlap where `Out` does not divide `In` (57 -> 6) and repeat cells where `Out > In`; bin 1
//! is the global mean. A window's sum runs row by row in the map's type and is divided by its
//! height, then by its width, as ATen's CPU kernel does. The backward gives every input cell
//! `dy / kh / kw` of each window that holds it.
//!
//! Both devices give each output (forward) or each input cell (backward: a gather over the
//! windows that hold it, in the order ATen's scatter visits them) to one thread, so the
//! results do not depend on the thread count and CUDA needs no atomics. PyTorch computes a
//! 1 x 1 output as `mean`, which sums in another order: the same value up to rounding.

use crate::custom::{apply, MapKernel};
use crate::resample::Resample;
use crate::roi_common::{MapView, RoiFloat};
use candle_core::{Result, Shape, Tensor};
use rayon::prelude::*;

/// Adaptive average pooling of `x` (N x C x H x W, f32 or f64, any strides) to `output` =
/// (oh, ow), as `torch.nn.functional.adaptive_avg_pool2d`. Returns N x C x oh x ow.
/// Differentiable. Fails on an empty map or a zero output size.
pub fn adaptive_avg_pool2d(x: &Tensor, output: (usize, usize)) -> Result<Tensor> {
    let shape = Resample::check("adaptive_avg_pool2d", x, output)?;
    apply(x, AdaptiveAvgPool(shape))
}

/// [`adaptive_avg_pool2d`] from candle ops, slow and obviously correct: each bin's window
/// (`floor(i * In / Out)` to `ceil((i + 1) * In / Out)`, written plainly) narrowed out and
/// averaged; autograd gives its backward. The tests' reference.
pub fn adaptive_avg_pool2d_slow(x: &Tensor, output: (usize, usize)) -> Result<Tensor> {
    let s = Resample::check("adaptive_avg_pool2d_slow", x, output)?;
    let window = |i: usize, out: usize, len: usize| {
        let start = i * len / out;
        let end = ((i + 1) * len).div_ceil(out);
        (start, end - start)
    };
    let mut rows = Vec::with_capacity(s.oh);
    for i in 0..s.oh {
        let (y0, kh) = window(i, s.oh, s.h);
        let mut cells = Vec::with_capacity(s.ow);
        for j in 0..s.ow {
            let (x0, kw) = window(j, s.ow, s.w);
            cells.push(
                x.narrow(2, y0, kh)?
                    .narrow(3, x0, kw)?
                    .mean_keepdim((2, 3))?,
            );
        }
        rows.push(Tensor::cat(&cells, 3)?);
    }
    Tensor::cat(&rows, 2)
}

/// The first cell of output `i`'s window, `floor(i * len / out)` (ATen's overflow-safe form).
#[inline]
fn start(i: usize, out: usize, len: usize) -> usize {
    (i / out) * len + ((i % out) * len) / out
}

/// One past the last cell of output `i`'s window, `ceil((i + 1) * len / out)`.
#[inline]
fn end(i: usize, out: usize, len: usize) -> usize {
    1 + ((i + 1) * len - 1) / out
}

/// The outputs whose windows hold input cell `i`: `start(o) <= i < end(o)` exactly when
/// `floor(i * out / len) <= o < ceil((i + 1) * out / len)`, the same formulas with the axis
/// lengths swapped.
#[inline]
fn holders(i: usize, out: usize, len: usize) -> std::ops::Range<usize> {
    start(i, len, out)..end(i, len, out)
}

/// One adaptive average pooling call: its shapes.
#[derive(Clone, Copy, Debug)]
struct AdaptiveAvgPool(Resample);

impl MapKernel for AdaptiveAvgPool {
    const OP: &'static str = "adaptive_avg_pool2d";
    const NAME: &'static str = "sslbench-adaptive-avg-pool";
    const BACKWARD_NAME: &'static str = "sslbench-adaptive-avg-pool-backward";

    fn output(&self) -> Shape {
        self.0.output().into()
    }

    fn input(&self) -> Shape {
        self.0.input().into()
    }

    fn forward<T: RoiFloat>(&self, x: &[T], v: MapView, _: &[T]) -> Result<Vec<T>> {
        let s = self.0;
        let bins = s.oh * s.ow;
        let mut y = vec![T::default(); s.planes() * bins];
        y.par_chunks_mut(bins).enumerate().for_each(|(p, out)| {
            let plane = &x[v.plane(p / s.c, p % s.c)..];
            for (i, o) in out.iter_mut().enumerate() {
                let (oy, ox) = (i / s.ow, i % s.ow);
                let (y0, y1) = (start(oy, s.oh, s.h), end(oy, s.oh, s.h));
                let (x0, x1) = (start(ox, s.ow, s.w), end(ox, s.ow, s.w));
                let mut sum = T::default();
                for yy in y0..y1 {
                    for xx in x0..x1 {
                        sum += plane[v.at(yy, xx)];
                    }
                }
                *o = sum / T::from_i64((y1 - y0) as i64) / T::from_i64((x1 - x0) as i64);
            }
        });
        Ok(y)
    }

    fn backward<T: RoiFloat>(&self, dy: &[T], _: &[T], _: MapView, _: &[T]) -> Result<Vec<T>> {
        let s = self.0;
        let (hw, bins) = (s.h * s.w, s.oh * s.ow);
        let mut dx = vec![T::default(); s.planes() * hw];
        dx.par_chunks_mut(hw).enumerate().for_each(|(p, grad)| {
            let dy = &dy[p * bins..(p + 1) * bins];
            for (i, g) in grad.iter_mut().enumerate() {
                let (iy, ix) = (i / s.w, i % s.w);
                let mut acc = T::default();
                for oy in holders(iy, s.oh, s.h) {
                    let kh = T::from_i64((end(oy, s.oh, s.h) - start(oy, s.oh, s.h)) as i64);
                    for ox in holders(ix, s.ow, s.w) {
                        let kw = T::from_i64((end(ox, s.ow, s.w) - start(ox, s.ow, s.w)) as i64);
                        acc += dy[oy * s.ow + ox] / kh / kw;
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
        cuda::launch::<T>(&self.0, dy, x)
    }
}

/// The CUDA kernels: one thread per output (forward) or input cell (backward, a gather), the
/// CPU's arithmetic in the CPU's order.
#[cfg(feature = "cuda")]
mod cuda {
    use crate::custom::CudaArg;
    use crate::resample::Resample;
    use crate::roi_common::cuda::{grid, CudaFloat, Module};
    use crate::roi_common::MapView;
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
    use candle_core::cuda_backend::WrapErr;
    use candle_core::{CudaStorage, Result};
    use std::sync::OnceLock;

    static MODULE: Module = Module {
        name: "sslbench_adaptive_avg_pool",
        source: super::CUDA_SOURCE,
        ptx: OnceLock::new(),
    };

    /// The forward (`dy` None: the pooled map) or the backward (`dy`, contiguous: the input
    /// gradient).
    pub(super) fn launch<T: CudaFloat>(
        op: &Resample,
        dy: Option<CudaArg>,
        x: CudaArg,
    ) -> Result<CudaStorage> {
        let (kernel, len, s, v) = match dy {
            Some((gs, gl)) => {
                let v = MapView::contiguous(gl.start_offset(), op.output());
                ("adaptive_avg_pool_bwd", op.planes() * op.h * op.w, gs, v)
            }
            None => {
                let v = MapView::of("adaptive_avg_pool2d", x.1)?;
                ("adaptive_avg_pool_fwd", op.planes() * op.oh * op.ow, x.0, v)
            }
        };
        let dev = s.device().clone();
        let src = s.as_cuda_slice::<T>()?.slice(v.start..);
        let out = dev.alloc_zeros::<T>(len)?;
        let func = MODULE.function(&dev, kernel, T::DTYPE)?;
        let dims = [op.n, op.c, op.h, op.w, op.oh, op.ow].map(|d| d as i64);
        let strides = [v.sn, v.sc, v.sh, v.sw].map(|d| d as i64);
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&func);
        b.arg(&src).arg(&out);
        for d in dims.iter().chain(&strides) {
            b.arg(d);
        }
        // SAFETY: the kernel reads and writes within the shapes checked by `Resample::check`.
        unsafe { b.launch(grid(len)) }.w()?;
        drop(b);
        Ok(CudaStorage::wrap_cuda_slice(out, dev))
    }
}

/// The CUDA source (compiled by NVRTC after roi_common's prelude). Outside the `cuda` module
/// so that the tests can check it without a GPU.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) const CUDA_SOURCE: &str = r#"
__device__ __forceinline__ long long aap_start(long long i, long long out, long long len) {
    return (i / out) * len + ((i % out) * len) / out;
}
__device__ __forceinline__ long long aap_end(long long i, long long out, long long len) {
    return 1 + ((i + 1) * len - 1) / out;
}

template <typename T>
__device__ void aap_fwd(const T* x, T* y, long long N, long long C, long long H, long long W,
                        long long OH, long long OW, long long sn, long long sc, long long sh,
                        long long sw) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N * C * OH * OW) return;
    long long ox = i % OW, oy = (i / OW) % OH, p = i / OW / OH;
    const T* plane = x + (p / C) * sn + (p % C) * sc;
    long long y0 = aap_start(oy, OH, H), y1 = aap_end(oy, OH, H);
    long long x0 = aap_start(ox, OW, W), x1 = aap_end(ox, OW, W);
    T sum = 0;
    for (long long yy = y0; yy < y1; ++yy)
        for (long long xx = x0; xx < x1; ++xx) sum += plane[yy * sh + xx * sw];
    y[i] = sum / (T)(y1 - y0) / (T)(x1 - x0);
}

template <typename T>
__device__ void aap_bwd(const T* dy, T* dx, long long N, long long C, long long H, long long W,
                        long long OH, long long OW) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N * C * H * W) return;
    long long ix = i % W, iy = (i / W) % H, p = i / W / H;
    const T* g = dy + p * OH * OW;
    T acc = 0;
    for (long long oy = aap_start(iy, H, OH); oy < aap_end(iy, H, OH); ++oy) {
        T kh = (T)(aap_end(oy, OH, H) - aap_start(oy, OH, H));
        for (long long ox = aap_start(ix, W, OW); ox < aap_end(ix, W, OW); ++ox) {
            T kw = (T)(aap_end(ox, OW, W) - aap_start(ox, OW, W));
            acc += g[oy * OW + ox] / kh / kw;
        }
    }
    dx[i] = acc;
}

#define AAP_KERNELS(T, S)                                                                    \
extern "C" __global__ void adaptive_avg_pool_fwd_##S(const T* src, T* out, long long N,      \
        long long C, long long H, long long W, long long OH, long long OW, long long sn,     \
        long long sc, long long sh, long long sw) {                                          \
    aap_fwd<T>(src, out, N, C, H, W, OH, OW, sn, sc, sh, sw);                                \
}                                                                                            \
extern "C" __global__ void adaptive_avg_pool_bwd_##S(const T* src, T* out, long long N,      \
        long long C, long long H, long long W, long long OH, long long OW, long long sn,     \
        long long sc, long long sh, long long sw) {                                          \
    aap_bwd<T>(src, out, N, C, H, W, OH, OW);                                                \
}
AAP_KERNELS(float, f32)
AAP_KERNELS(double, f64)
"#;

#[cfg(test)]
mod tests {
    use super::{end, holders, start, CUDA_SOURCE};

    /// `holders` inverts the windows exactly: an input cell lies in exactly the windows of
    /// the outputs it names, at every size pair up to 40.
    #[test]
    fn holders_are_the_windows_holding_a_cell() {
        for len in 1..40 {
            for out in 1..40 {
                for i in 0..len {
                    let want: Vec<usize> = (0..out)
                        .filter(|&o| start(o, out, len) <= i && i < end(o, out, len))
                        .collect();
                    assert_eq!(
                        holders(i, out, len).collect::<Vec<_>>(),
                        want,
                        "{len} -> {out}"
                    );
                }
            }
        }
    }

    /// The source defines the kernels `launch` asks for, in both types (NVRTC compiles it
    /// only on a GPU machine).
    #[test]
    fn cuda_source_defines_the_launched_kernels() {
        for name in ["adaptive_avg_pool_fwd_##S", "adaptive_avg_pool_bwd_##S"] {
            assert!(CUDA_SOURCE.contains(name), "{name}");
        }
        assert!(CUDA_SOURCE.contains("AAP_KERNELS(float, f32)"));
        assert!(CUDA_SOURCE.contains("AAP_KERNELS(double, f64)"));
    }
}
