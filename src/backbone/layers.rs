//! The layers the trunks are made of, over the ops of `sslbench_ops`: a convolution with its
//! batch norm as a trunk builds it from published names ([`ConvLayer`]), its frozen form with
//! the batch norm folded in ([`FrozenConv`]).

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};
use sslbench_ops::{conv2d, max_pool2d, ConvInit, ConvSpec};

/// A frozen convolution, with an optional batch norm folded into its weight and bias.
#[derive(Clone, Debug)]
pub struct FrozenConv {
    weight: Tensor,
    bias: Option<Tensor>,
    spec: ConvSpec,
}

/// Batch-norm epsilon (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;

/// A convolution (with its batch norm, if any) as the trunks use it: built from its
/// published parameter names, run on channel-major maps. The benchmarks use the frozen form
/// ([`FrozenConv`]); the pretexts a trainable one, with the same names, so a trained
/// checkpoint loads into the frozen trunk as it is.
pub trait ConvLayer: Sized {
    /// What the layers of one trunk share (the trainable trunk's batch-norm mode).
    type Shared;
    /// Builds the layer from `conv` (`weight`, and `bias` when `conv_bias`) and the batch
    /// norm under `bn` (`weight`, `bias`, `running_mean`, `running_var`) when one is given.
    fn load(
        shared: &Self::Shared,
        conv: VarBuilder,
        bn: Option<VarBuilder>,
        spec: ConvSpec,
        conv_bias: bool,
        init: ConvInit,
    ) -> Result<Self>;
    /// Applies the layer, without activation, to a channel-major map.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
    /// The max-pool of a post-ReLU map (channel-major), as this kind of trunk needs it.
    fn max_pool(x: &Tensor, kernel: usize, stride: usize, pad: usize) -> Result<Tensor>;
}

/// An inference-mode batch norm (`weight`, `bias`, `running_mean`, `running_var` under `bn`)
/// after a convolution with `bias` (if any), as a per-channel scale and shift:
/// `bn(conv + bias) = scale * conv + shift`, with `scale = gamma / sqrt(var + eps)` and
/// `shift = (bias - mean) scale + beta`.
pub(super) fn fold_batch_norm(
    bn: &VarBuilder,
    channels: usize,
    bias: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let gamma = bn.get_with_hints(channels, "weight", Init::Const(1.0))?;
    let beta = bn.get_with_hints(channels, "bias", Init::Const(0.0))?;
    let mean = bn.get_with_hints(channels, "running_mean", Init::Const(0.0))?;
    let var = bn.get_with_hints(channels, "running_var", Init::Const(1.0))?;
    let scale = (gamma / (var + BN_EPS)?.sqrt()?)?;
    let shifted = match bias {
        Some(b) => (b - &mean)?,
        None => mean.neg()?,
    };
    let shift = ((shifted * &scale)? + beta)?;
    Ok((scale, shift))
}

impl ConvLayer for FrozenConv {
    type Shared = ();

    /// Loads the convolution, then folds the batch norm into its weight and bias.
    fn load(
        _: &(),
        conv: VarBuilder,
        bn: Option<VarBuilder>,
        spec: ConvSpec,
        conv_bias: bool,
        init: ConvInit,
    ) -> Result<Self> {
        let (w_init, b_init) = spec.init_hints(init);
        let mut weight = conv.get_with_hints(spec.weight_shape(), "weight", w_init)?;
        let mut bias = match conv_bias {
            true => Some(conv.get_with_hints(spec.cout, "bias", b_init)?),
            false => None,
        };
        if let Some(bn) = bn {
            let (scale, shift) = fold_batch_norm(&bn, spec.cout, bias.as_ref())?;
            weight = weight.broadcast_mul(&scale.reshape((spec.cout, 1, 1, 1))?)?;
            bias = Some(shift);
        }
        Ok(Self { weight, bias, spec })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        conv2d(x, &self.weight, self.bias.as_ref(), &self.spec)
    }

    /// The engine's max-pool (minus-infinity padding, as PyTorch's).
    fn max_pool(x: &Tensor, kernel: usize, stride: usize, pad: usize) -> Result<Tensor> {
        max_pool2d(x, kernel, stride, pad)
    }
}
