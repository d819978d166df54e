//! Channel-wise dropout, PyTorch's `Dropout2d`: in training, each (image, channel) plane is
//! zeroed with probability p and the kept planes are scaled by 1 / (1 - p); in evaluation it
//! is the identity.
//!
//! The mask comes from uniform draws the caller supplies (its seeded stream), one per plane in
//! (image, channel) order, so a run and its resumption draw the same masks. The op is a
//! broadcast product with candle ops: autograd's backward multiplies the gradient by the same
//! mask, on any device.

use candle_core::{bail, DType, Device, Result, Tensor};

/// `Dropout2d(p)`: zeroes whole channels with probability `p` in training.
#[derive(Clone, Copy, Debug)]
pub struct Dropout2d {
    p: f64,
}

impl Dropout2d {
    /// Channel-wise dropout with drop probability `p`; fails unless `0 <= p < 1`.
    pub fn new(p: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            bail!("Dropout2d: the drop probability {p} must be in [0, 1)");
        }
        Ok(Self { p })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// One training step's mask for `n` images of `c` channels: N x C x 1 x 1 in `dtype` on
    /// `device`, 0 for a dropped plane and 1 / (1 - p) for a kept one. Plane (i, j) takes
    /// the (i * C + j)-th value of `uniform` (each in [0, 1)) and is dropped when it is below
    /// p.
    pub fn mask(
        &self,
        n: usize,
        c: usize,
        dtype: DType,
        device: &Device,
        mut uniform: impl FnMut() -> f64,
    ) -> Result<Tensor> {
        let keep = 1.0 / (1.0 - self.p);
        let values: Vec<f64> = (0..n * c)
            .map(|_| if uniform() < self.p { 0.0 } else { keep })
            .collect();
        Tensor::from_vec(values, (n, c, 1, 1), device)?.to_dtype(dtype)
    }

    /// `x` (N x C x H x W) with a fresh mask from `uniform` in training (`train`), else `x`
    /// itself (drawing nothing). Differentiable.
    pub fn forward_t(
        &self,
        x: &Tensor,
        train: bool,
        uniform: impl FnMut() -> f64,
    ) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(x.clone());
        }
        let (n, c, _, _) = match x.dims4() {
            Ok(d) => d,
            Err(_) => bail!(
                "Dropout2d: the map must be N x C x H x W, got {:?}",
                x.dims()
            ),
        };
        let mask = self.mask(n, c, x.dtype(), x.device(), uniform)?;
        apply_channel_mask(x, &mask)
    }
}

/// `x` (N x C x H x W) times a per-plane `mask` (N x C x 1 x 1, such as
/// [`Dropout2d::mask`]'s); the gradient is the mask times the output's gradient.
pub fn apply_channel_mask(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (n, c, _, _) = x.dims4()?;
    if mask.dims() != [n, c, 1, 1] {
        bail!(
            "Dropout2d: the mask is {:?}, expected {n} x {c} x 1 x 1 for the map {:?}",
            mask.dims(),
            x.dims()
        );
    }
    x.broadcast_mul(mask)
}
