//! One adapter from the map ops' kernels to candle's custom ops. An op on an N x C x H x W map
//! (RoIPool, RoIAlign, adaptive pooling, bilinear resize), with at most one side input that
//! gets no gradient (the RoIs), implements [`MapKernel`]: its shapes, its CPU forward and
//! backward in f32 and f64, its CUDA kernels. [`apply`] and [`apply_with`] run it; the candle
//! traits, the dtype dispatch, the reads of the storages and the backward's wiring are
//! written here once for all of them.
//!
//! The backward is a candle op of the output gradient, the map and the side input, without a
//! backward of its own.

use crate::element::Element;
use crate::roi_common::{MapView, RoiFloat};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// A CUDA storage and its layout, one operand of a kernel.
#[cfg(feature = "cuda")]
pub(crate) type CudaArg<'a> = (&'a candle_core::CudaStorage, &'a Layout);

/// An op on a map with CPU kernels in f32 and f64, CUDA kernels and a backward.
pub(crate) trait MapKernel: Copy + Send + Sync + 'static {
    /// The public function's name, which its errors start with (`roi_pool`); the backward's
    /// errors add ` backward`.
    const OP: &'static str;
    /// The forward's name in candle's graph.
    const NAME: &'static str;
    /// The backward's name in candle's graph.
    const BACKWARD_NAME: &'static str;

    /// The output's shape.
    fn output(&self) -> Shape;

    /// The map's (and its gradient's) shape.
    fn input(&self) -> Shape;

    /// The output, from the map's whole buffer `x` (its elements where `v` says) and the
    /// side input's contiguous elements (empty for an op without one).
    fn forward<T: RoiFloat>(&self, x: &[T], v: MapView, side: &[T]) -> Result<Vec<T>>;

    /// The map's gradient, contiguous, from the contiguous output gradient `dy`, the map and
    /// the side input as [`forward`](Self::forward) reads them.
    fn backward<T: RoiFloat>(&self, dy: &[T], x: &[T], v: MapView, side: &[T]) -> Result<Vec<T>>;

    /// CUDA: the output (`dy` None) or the map's gradient, in `T`; an op without a side input
    /// gets the map in its place.
    #[cfg(feature = "cuda")]
    fn cuda<T: crate::roi_common::cuda::CudaFloat>(
        &self,
        dy: Option<CudaArg>,
        x: CudaArg,
        side: CudaArg,
    ) -> Result<candle_core::CudaStorage>;
}

/// `k` on the map `x`; differentiable in `x`.
pub(crate) fn apply<K: MapKernel>(x: &Tensor, k: K) -> Result<Tensor> {
    x.apply_op1(Forward(k))
}

/// `k` on the map `x` and the side input `side` (contiguous, in `x`'s dtype); differentiable
/// in `x`, the side input gets no gradient.
pub(crate) fn apply_with<K: MapKernel>(x: &Tensor, side: &Tensor, k: K) -> Result<Tensor> {
    x.apply_op2(side, Forward(k))
}

/// x (, side) -> the output.
struct Forward<K>(K);

/// (dy, x (, side)) -> dx.
struct Backward<K>(K);

/// A CPU storage and its layout.
type CpuArg<'a> = (&'a CpuStorage, &'a Layout);

/// The CPU forward (`dy` None) or backward of `k`, and the result's shape.
fn cpu<K: MapKernel>(
    k: &K,
    dy: Option<CpuArg>,
    (xs, xl): CpuArg,
    side: Option<CpuArg>,
) -> Result<(CpuStorage, Shape)> {
    let op = match dy {
        None => K::OP.to_string(),
        Some(_) => format!("{} backward", K::OP),
    };
    let v = MapView::of(&op, xl)?;
    let out = crate::with_element!(xs, op, |T| {
        let x = T::buffer(xs, &op, "map")?;
        let side = match side {
            Some((s, l)) => T::slice(s, l, &op, "rois")?,
            None => &[],
        };
        T::storage(match dy {
            None => k.forward::<T>(x, v, side)?,
            Some((gs, gl)) => {
                let dy = T::slice(gs, gl, &op, "output gradient")?;
                k.backward::<T>(dy, x, v, side)?
            }
        })
    });
    Ok((out, result_shape(k, dy.is_some())))
}

/// The forward's output shape, or the backward's (the map's).
fn result_shape<K: MapKernel>(k: &K, backward: bool) -> Shape {
    if backward {
        k.input()
    } else {
        k.output()
    }
}

/// The CUDA forward (`dy` None) or backward of `k`, and the result's shape.
#[cfg(feature = "cuda")]
fn cuda<K: MapKernel>(
    k: &K,
    dy: Option<CudaArg>,
    x: CudaArg,
    side: Option<CudaArg>,
) -> Result<(candle_core::CudaStorage, Shape)> {
    use candle_core::backend::BackendStorage;
    let side = side.unwrap_or(x);
    let out = match x.0.dtype() {
        candle_core::DType::F32 => k.cuda::<f32>(dy, x, side)?,
        candle_core::DType::F64 => k.cuda::<f64>(dy, x, side)?,
        d => candle_core::bail!("{}: {d:?} is not supported on CUDA (f32 or f64)", K::OP),
    };
    Ok((out, result_shape(k, dy.is_some())))
}

impl<K: MapKernel> CustomOp1 for Forward<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu(&self.0, None, (xs, xl), None)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        xs: &candle_core::CudaStorage,
        xl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda(&self.0, None, (xs, xl), None)
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx = grad.contiguous()?.apply_op2_no_bwd(x, &Backward(self.0))?;
        Ok(Some(dx))
    }
}

impl<K: MapKernel> CustomOp2 for Forward<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ss: &CpuStorage,
        sl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu(&self.0, None, (xs, xl), Some((ss, sl)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        xs: &candle_core::CudaStorage,
        xl: &Layout,
        ss: &candle_core::CudaStorage,
        sl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda(&self.0, None, (xs, xl), Some((ss, sl)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        side: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = grad
            .contiguous()?
            .apply_op3_no_bwd(x, side, &Backward(self.0))?;
        Ok((Some(dx), None))
    }
}

impl<K: MapKernel> CustomOp2 for Backward<K> {
    fn name(&self) -> &'static str {
        K::BACKWARD_NAME
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu(&self.0, Some((gs, gl)), (xs, xl), None)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        gs: &candle_core::CudaStorage,
        gl: &Layout,
        xs: &candle_core::CudaStorage,
        xl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda(&self.0, Some((gs, gl)), (xs, xl), None)
    }
}

impl<K: MapKernel> CustomOp3 for Backward<K> {
    fn name(&self) -> &'static str {
        K::BACKWARD_NAME
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
        ss: &CpuStorage,
        sl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu(&self.0, Some((gs, gl)), (xs, xl), Some((ss, sl)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        gs: &candle_core::CudaStorage,
        gl: &Layout,
        xs: &candle_core::CudaStorage,
        xl: &Layout,
        ss: &candle_core::CudaStorage,
        sl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda(&self.0, Some((gs, gl)), (xs, xl), Some((ss, sl)))
    }
}
