//! Trainable convolutions over frozen batch norms: Detectron's `AffineChannel`, the layer of
//! the Fast R-CNN heads and of its fine-tuned stages. The convolution's weight is a variable;
//! its batch norm becomes a fixed per-channel scale and shift (`s / sqrt(var + eps)` and
//! `b - mean s / sqrt(var + eps)`, FAIR's `pickle_caffe2_detection.py` conversion), which no
//! step of the optimiser changes.

use super::layers::{fold_batch_norm, ConvLayer};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use sslbench_ops::{conv2d, max_pool2d, ConvInit, ConvSpec};

/// A convolution whose weight trains, followed by its batch norm frozen as an affine map.
pub struct AffineConv {
    weight: Tensor,
    /// The frozen per-channel scale, shaped C_out x 1 x 1 x 1 to scale the weight.
    scale: Option<Tensor>,
    /// The conv's bias (if any) and the frozen shift, merged.
    shift: Option<Tensor>,
    spec: ConvSpec,
}

impl ConvLayer for AffineConv {
    type Shared = ();

    fn load(
        _: &(),
        conv: VarBuilder,
        bn: Option<VarBuilder>,
        spec: ConvSpec,
        conv_bias: bool,
        init: ConvInit,
    ) -> Result<Self> {
        let (w_init, b_init) = spec.init_hints(init);
        let weight = conv.get_with_hints(spec.weight_shape(), "weight", w_init)?;
        let bias = match conv_bias {
            true => Some(conv.get_with_hints(spec.cout, "bias", b_init)?.detach()),
            false => None,
        };
        let Some(bn) = bn else {
            return Ok(Self {
                weight,
                scale: None,
                shift: bias,
                spec,
            });
        };
        let (scale, shift) = fold_batch_norm(&bn, spec.cout, bias.as_ref())?;
        let (scale, shift) = (scale.detach(), shift.detach());
        Ok(Self {
            weight,
            scale: Some(scale.reshape((spec.cout, 1, 1, 1))?),
            shift: Some(shift),
            spec,
        })
    }

    /// `scale * conv(x, w) + shift`, computed as one convolution with the weight scaled
    /// (the gradient reaches `w` through the scaling).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let weight = match &self.scale {
            Some(s) => self.weight.broadcast_mul(s)?,
            None => self.weight.clone(),
        };
        conv2d(x, &weight, self.shift.as_ref(), &self.spec)
    }

    fn max_pool(x: &Tensor, kernel: usize, stride: usize, pad: usize) -> Result<Tensor> {
        max_pool2d(x, kernel, stride, pad)
    }
}
