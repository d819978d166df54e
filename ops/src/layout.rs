//! The trunks' channel-major layout (C x N x H x W): activations stay in it from layer to
//! layer, so a 1x1 convolution is one GEMM with no copy; and zero padding of the spatial
//! dimensions.

use candle_core::{Result, Tensor};

/// NCHW (the images, the taps) to the trunk's channel-major C x N x H x W layout.
pub fn to_channel_major(x: &Tensor) -> Result<Tensor> {
    x.permute((1, 0, 2, 3))?.contiguous()
}

/// The trunk's channel-major layout back to NCHW (4-D maps) or N x C (pooled vectors).
pub fn from_channel_major(x: &Tensor) -> Result<Tensor> {
    match x.rank() {
        2 => x.t()?.contiguous(),
        _ => x.permute((1, 0, 2, 3))?.contiguous(),
    }
}

/// Zero-pads the two spatial dimensions of an NCHW tensor.
pub fn pad_spatial(x: &Tensor, pad: usize) -> Result<Tensor> {
    if pad == 0 {
        return Ok(x.clone());
    }
    x.pad_with_zeros(2, pad, pad)?.pad_with_zeros(3, pad, pad)
}
