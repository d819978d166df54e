//! What RoIPool and RoIAlign share: the checks on a map and its RoIs, the geometry of one op
//! call, strided reads of the map, the float arithmetic of the references, and (with the
//! `cuda` feature) the run-time compilation of their CUDA kernels with NVRTC.

use crate::element::Element;
use candle_core::{bail, DType, Layout, Result, Tensor};

/// The shapes of one RoI op call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RoiShape {
    /// Images.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Map height.
    pub h: usize,
    /// Map width.
    pub w: usize,
    /// RoIs.
    pub r: usize,
    /// Output height (bins).
    pub ph: usize,
    /// Output width (bins).
    pub pw: usize,
}

impl RoiShape {
    /// The output's shape, R x C x ph x pw.
    pub fn output(&self) -> (usize, usize, usize, usize) {
        (self.r, self.c, self.ph, self.pw)
    }

    /// The input's (and its gradient's) shape, N x C x H x W.
    pub fn input(&self) -> (usize, usize, usize, usize) {
        (self.n, self.c, self.h, self.w)
    }
}

/// Checks `x` (N x C x H x W, f32 or f64) and `rois` (R x 5 rows `(batch, x1, y1, x2, y2)`,
/// every batch index an image of `x` once truncated toward zero, as the references read it)
/// for `op`, and returns the shapes with the RoIs in `x`'s dtype (the references take them in
/// the input's type; an f32 box is exact in f64).
pub(crate) fn prepare(
    op: &str,
    x: &Tensor,
    rois: &Tensor,
    output: (usize, usize),
) -> Result<(RoiShape, Tensor)> {
    let (n, c, h, w) = match x.dims4() {
        Ok(d) => d,
        Err(_) => bail!("{op}: the map must be N x C x H x W, got {:?}", x.dims()),
    };
    if !matches!(x.dtype(), DType::F32 | DType::F64) {
        bail!("{op}: the map is {:?}; use f32 or f64", x.dtype());
    }
    let r = match rois.dims2() {
        Ok((r, 5)) => r,
        _ => bail!(
            "{op}: the RoIs must be R x 5 rows (batch, x1, y1, x2, y2), got {:?}",
            rois.dims()
        ),
    };
    if output.0 == 0 || output.1 == 0 {
        bail!("{op}: the output size {output:?} must be at least 1 x 1");
    }
    if h == 0 || w == 0 {
        bail!("{op}: the map {h} x {w} is empty");
    }
    if !rois.device().same_device(x.device()) {
        bail!("{op}: the RoIs and the map are on different devices; move the RoIs to the map's");
    }
    let rows = rois.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    for (i, row) in rows.iter().enumerate() {
        let b = row[0].trunc();
        if !(b >= 0.0 && b < n as f64) {
            bail!(
                "{op}: RoI {i} names image {} but the map has {n}; the first column is the \
                 batch index",
                row[0]
            );
        }
    }
    let shape = RoiShape {
        n,
        c,
        h,
        w,
        r,
        ph: output.0,
        pw: output.1,
    };
    Ok((shape, rois.to_dtype(x.dtype())?.contiguous()?))
}

/// Where the elements of a 4-D map lie in its buffer: a start offset and four strides.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MapView {
    /// Offset of element (0, 0, 0, 0).
    pub start: usize,
    /// Stride of the image dimension.
    pub sn: usize,
    /// Stride of the channel dimension.
    pub sc: usize,
    /// Stride of a row.
    pub sh: usize,
    /// Stride of a column.
    pub sw: usize,
}

impl MapView {
    /// The view `l` of a 4-D map, which fails naming `op` for any other rank.
    pub fn of(op: &str, l: &Layout) -> Result<Self> {
        match l.stride() {
            [sn, sc, sh, sw] => Ok(Self {
                start: l.start_offset(),
                sn: *sn,
                sc: *sc,
                sh: *sh,
                sw: *sw,
            }),
            s => bail!("{op}: the map has strides {s:?}, expected 4"),
        }
    }

    /// The offset of plane (image `b`, channel `c`).
    #[inline]
    pub fn plane(&self, b: usize, c: usize) -> usize {
        self.start + b * self.sn + c * self.sc
    }

    /// The view of a contiguous N x C x H x W map whose element (0, 0, 0, 0) is at `start`.
    #[cfg(feature = "cuda")]
    pub fn contiguous(start: usize, (_, c, h, w): (usize, usize, usize, usize)) -> Self {
        Self {
            start,
            sn: c * h * w,
            sc: h * w,
            sh: w,
            sw: 1,
        }
    }

    /// The offset of (row, column) within a plane.
    #[inline]
    pub fn at(&self, y: usize, x: usize) -> usize {
        y * self.sh + x * self.sw
    }
}

/// The float arithmetic of the references (C's `roundf`, `floor`, `ceil` and the truncating
/// casts), in the input's type.
pub(crate) trait RoiFloat: Element + std::ops::Div<Output = Self> {
    /// `-FLT_MAX`, the references' start of a bin's maximum in either type.
    const NEG_FLT_MAX: Self;
    /// One half.
    const HALF: Self;
    /// From a (small) integer, exactly.
    fn from_i64(v: i64) -> Self;
    /// From an f32, exactly.
    fn from_f32(v: f32) -> Self;
    /// Rounded half away from zero (C's `round`), as an integer.
    fn round_i(self) -> i64;
    /// Floor, as an integer.
    fn floor_i(self) -> i64;
    /// Ceiling, as an integer.
    fn ceil_i(self) -> i64;
    /// Truncated toward zero (C's cast to int).
    fn trunc_i(self) -> i64;
}

macro_rules! roi_float {
    ($t:ty) => {
        impl RoiFloat for $t {
            const NEG_FLT_MAX: Self = -(f32::MAX as $t);
            const HALF: Self = 0.5;
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            fn round_i(self) -> i64 {
                self.round() as i64
            }
            fn floor_i(self) -> i64 {
                self.floor() as i64
            }
            fn ceil_i(self) -> i64 {
                self.ceil() as i64
            }
            fn trunc_i(self) -> i64 {
                self as i64
            }
        }
    };
}

roi_float!(f32);
roi_float!(f64);

/// One RoI row read for a kernel: its image and its corners (x1, y1, x2, y2) in image pixels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Roi<T> {
    /// The batch index, checked by [`prepare`].
    pub b: usize,
    /// x1, y1, x2, y2.
    pub corners: [T; 4],
}

/// The rows of a contiguous R x 5 RoI buffer; a batch index outside the map (which
/// [`prepare`] has refused already) fails naming `op`.
pub(crate) fn read_rois<T: RoiFloat>(rois: &[T], n: usize, op: &str) -> Result<Vec<Roi<T>>> {
    rois.chunks_exact(5)
        .enumerate()
        .map(|(i, row)| {
            let b = row[0].trunc_i();
            if b < 0 || b as usize >= n {
                bail!("{op}: RoI {i} names image {b} of {n}");
            }
            Ok(Roi {
                b: b as usize,
                corners: [row[1], row[2], row[3], row[4]],
            })
        })
        .collect()
}

/// CUDA: the kernels of an op, compiled once per process from their source with NVRTC
/// (no build-time nvcc), and loaded once per device by candle.
#[cfg(feature = "cuda")]
pub(crate) mod cuda {
    use super::RoiFloat;
    use candle_core::cuda_backend::cudarc::driver::{CudaFunction, DeviceRepr, ValidAsZeroBits};
    use candle_core::cuda_backend::cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
    use candle_core::cuda_backend::CudaDType;
    use candle_core::{CudaDevice, DType, Result, WithDType};
    use std::sync::OnceLock;

    /// An element type of the CUDA kernels (f32, f64): a CPU kernel type that candle and
    /// cudarc move to and from the device.
    pub(crate) trait CudaFloat:
        RoiFloat + CudaDType + DeviceRepr + ValidAsZeroBits + WithDType
    {
    }

    impl<T: RoiFloat + CudaDType + DeviceRepr + ValidAsZeroBits + WithDType> CudaFloat for T {}

    /// Shared device code: a double atomicAdd for devices older than sm_60 and the references'
    /// rounding functions by type.
    pub const PRELUDE: &str = r#"
#define ROI_FLT_MAX 3.402823466e+38f
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 600
__device__ __forceinline__ void roi_atomic_add(double* a, double v) { atomicAdd(a, v); }
#else
__device__ __forceinline__ void roi_atomic_add(double* a, double v) {
    unsigned long long* p = (unsigned long long*)a;
    unsigned long long old = *p, assumed;
    do {
        assumed = old;
        old = atomicCAS(p, assumed, __double_as_longlong(v + __longlong_as_double(assumed)));
    } while (assumed != old);
}
#endif
__device__ __forceinline__ void roi_atomic_add(float* a, float v) { atomicAdd(a, v); }
__device__ __forceinline__ float roi_round(float v) { return roundf(v); }
__device__ __forceinline__ double roi_round(double v) { return round(v); }
__device__ __forceinline__ float roi_floor(float v) { return floorf(v); }
__device__ __forceinline__ double roi_floor(double v) { return floor(v); }
__device__ __forceinline__ float roi_ceil(float v) { return ceilf(v); }
__device__ __forceinline__ double roi_ceil(double v) { return ceil(v); }
"#;

    /// A compiled module: its name for candle's cache and its PTX (or NVRTC's message).
    pub struct Module {
        /// The module's name in candle's per-device cache.
        pub name: &'static str,
        /// The device code after [`PRELUDE`].
        pub source: &'static str,
        /// The PTX, compiled on first use.
        pub ptx: OnceLock<std::result::Result<String, String>>,
    }

    impl Module {
        /// The kernel `kernel` with the suffix of `dtype` (`_f32`, `_f64`), compiled on first use
        /// without fused multiply-adds, so that it rounds as the CPU kernels do.
        pub fn function(
            &self,
            dev: &CudaDevice,
            kernel: &str,
            dtype: DType,
        ) -> Result<CudaFunction> {
            let ptx = self.ptx.get_or_init(|| {
                let opts = CompileOptions {
                    fmad: Some(false),
                    ..Default::default()
                };
                compile_ptx_with_opts(format!("{PRELUDE}{}", self.source), opts)
                    .map(|p| p.to_src())
                    .map_err(|e| format!("{e:?}"))
            });
            let ptx = match ptx {
                Ok(p) => p,
                Err(e) => candle_core::bail!("{}: NVRTC failed on the kernels: {e}", self.name),
            };
            let suffix = match dtype {
                DType::F32 => "f32",
                DType::F64 => "f64",
                d => candle_core::bail!("{}: {d:?} is not supported (f32 or f64)", self.name),
            };
            let name = format!("{kernel}_{suffix}");
            Ok(dev
                .get_or_load_custom_func(&name, self.name, ptx)?
                .into_cuda_function())
        }
    }

    /// A launch over `n` threads, 256 a block.
    pub fn grid(n: usize) -> candle_core::cuda_backend::cudarc::driver::LaunchConfig {
        candle_core::cuda_backend::cudarc::driver::LaunchConfig {
            grid_dim: ((n as u32).div_ceil(256).max(1), 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        }
    }
}
