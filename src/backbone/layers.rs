//! The few layers the trunks are made of, in inference form: convolutions with their batch
//! norm folded in, padded pooling, and local response normalisation.

use candle_core::{Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

/// Shape of one convolution, in PyTorch's `Conv2d` terms.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Symmetric zero padding.
    pub padding: usize,
    /// Dilation.
    pub dilation: usize,
    /// Channel groups.
    pub groups: usize,
}

impl ConvSpec {
    /// A convolution with unit stride and dilation, one group and no padding.
    pub fn new(cin: usize, cout: usize, kernel: usize) -> Self {
        Self {
            cin,
            cout,
            kernel,
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }

    /// The same convolution with another stride.
    pub fn stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }

    /// The same convolution with another padding.
    pub fn padding(self, padding: usize) -> Self {
        Self { padding, ..self }
    }

    /// The same convolution with another dilation.
    pub fn dilation(self, dilation: usize) -> Self {
        Self { dilation, ..self }
    }

    /// The same convolution split into channel groups.
    pub fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }

    fn fan_in(&self) -> usize {
        self.cin / self.groups * self.kernel * self.kernel
    }
}

/// How a randomly initialised convolution draws its weights.
#[derive(Clone, Copy, Debug)]
pub enum ConvInit {
    /// He normal over fan-out, as torchvision's ResNet.
    KaimingFanOut,
    /// PyTorch's `Conv2d` default: uniform in +-1/sqrt(fan_in), bias likewise.
    TorchDefault,
}

/// A frozen convolution, with an optional batch norm folded into its weight and bias.
#[derive(Clone, Debug)]
pub struct FrozenConv {
    weight: Tensor,
    bias: Option<Tensor>,
    spec: ConvSpec,
}

/// Batch-norm epsilon (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;

impl ConvSpec {
    /// The weight and bias init hints of a randomly initialised convolution.
    pub fn init_hints(&self, init: ConvInit) -> (Init, Init) {
        match init {
            ConvInit::KaimingFanOut => {
                let fan_out = self.cout * self.kernel * self.kernel;
                let stdev = (2.0 / fan_out as f64).sqrt();
                (Init::Randn { mean: 0.0, stdev }, Init::Const(0.0))
            }
            ConvInit::TorchDefault => {
                let bound = 1.0 / (self.fan_in() as f64).sqrt();
                let u = Init::Uniform {
                    lo: -bound,
                    up: bound,
                };
                (u, u)
            }
        }
    }

    /// The weight shape in PyTorch's layout: C_out x C_in/groups x k x k.
    pub fn weight_shape(&self) -> (usize, usize, usize, usize) {
        (self.cout, self.cin / self.groups, self.kernel, self.kernel)
    }
}

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
            let gamma = bn.get_with_hints(spec.cout, "weight", Init::Const(1.0))?;
            let beta = bn.get_with_hints(spec.cout, "bias", Init::Const(0.0))?;
            let mean = bn.get_with_hints(spec.cout, "running_mean", Init::Const(0.0))?;
            let var = bn.get_with_hints(spec.cout, "running_var", Init::Const(1.0))?;
            let scale = (gamma / (var + BN_EPS)?.sqrt()?)?;
            weight = weight.broadcast_mul(&scale.reshape((spec.cout, 1, 1, 1))?)?;
            let shifted = match bias {
                Some(b) => (b - &mean)?,
                None => mean.neg()?,
            };
            bias = Some(((shifted * &scale)? + beta)?);
        }
        Ok(Self { weight, bias, spec })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        conv2d(x, &self.weight, self.bias.as_ref(), &self.spec)
    }

    /// candle's max-pool on zero padding, exact for non-negative maps (no backward needed).
    fn max_pool(x: &Tensor, kernel: usize, stride: usize, pad: usize) -> Result<Tensor> {
        pad_spatial(x, pad)?.max_pool2d_with_stride(kernel, stride)
    }
}

/// A convolution of a channel-major map (C x N x H x W; see [`to_channel_major`]) with a
/// PyTorch-layout `weight` and optional `bias`, output channel-major.
///
/// The convolution is one GEMM per group over the whole batch: weights (C_out x C_in.k.k)
/// times the im2col matrix (C_in.k.k x N.H.W). A 1x1 stride-1 convolution needs no im2col at
/// all, and the output comes out channel-major again, so activations never change layout
/// between layers. Every step is a differentiable candle op.
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, s: &ConvSpec) -> Result<Tensor> {
    let (_, n, h, w) = x.dims4()?;
    let span = s.dilation * (s.kernel - 1) + 1;
    let ho = (h + 2 * s.padding - span) / s.stride + 1;
    let wo = (w + 2 * s.padding - span) / s.stride + 1;
    let cols = if s.kernel == 1 && s.stride == 1 && s.padding == 0 {
        x.reshape((s.cin, n * h * w))?
    } else {
        im2col(x, s, ho, wo)?
    };
    let rows = s.cin / s.groups * s.kernel * s.kernel;
    let weight = weight.reshape((s.cout, s.cin * s.kernel * s.kernel / s.groups))?;
    let y = if s.groups == 1 {
        weight.matmul(&cols)?
    } else {
        let per_group = s.cout / s.groups;
        let outs = (0..s.groups)
            .map(|g| {
                weight
                    .narrow(0, g * per_group, per_group)?
                    .matmul(&cols.narrow(0, g * rows, rows)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&outs, 0)?
    };
    let y = match bias {
        Some(b) => y.broadcast_add(&b.reshape((s.cout, 1))?)?,
        None => y,
    };
    y.reshape((s.cout, n, ho, wo))
}

/// The im2col matrix of a channel-major map: rows (c, kh, kw), columns (n, y, x).
fn im2col(x: &Tensor, s: &ConvSpec, ho: usize, wo: usize) -> Result<Tensor> {
    let (c, n, _, _) = x.dims4()?;
    let padded = pad_spatial(x, s.padding)?;
    // Split a strided input into its stride x stride phases once, so that every kernel
    // offset becomes a plain window of one phase.
    let phases = if s.stride == 1 {
        vec![padded]
    } else {
        let (_, _, hp, wp) = padded.dims4()?;
        let (hq, wq) = (hp.div_ceil(s.stride), wp.div_ceil(s.stride));
        let full = padded
            .pad_with_zeros(2, 0, hq * s.stride - hp)?
            .pad_with_zeros(3, 0, wq * s.stride - wp)?
            .reshape((c, n, hq, s.stride, wq, s.stride))?;
        let mut phases = Vec::with_capacity(s.stride * s.stride);
        for a in 0..s.stride {
            for b in 0..s.stride {
                phases.push(
                    full.narrow(3, a, 1)?
                        .narrow(5, b, 1)?
                        .squeeze(5)?
                        .squeeze(3)?,
                );
            }
        }
        phases
    };
    let mut windows = Vec::with_capacity(s.kernel * s.kernel);
    for kh in 0..s.kernel {
        for kw in 0..s.kernel {
            let (oy, ox) = (kh * s.dilation, kw * s.dilation);
            let phase = &phases[(oy % s.stride) * s.stride + ox % s.stride];
            windows.push(
                phase
                    .narrow(2, oy / s.stride, ho)?
                    .narrow(3, ox / s.stride, wo)?,
            );
        }
    }
    Tensor::stack(&windows, 1)?.reshape((c * s.kernel * s.kernel, n * ho * wo))
}

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

/// Average pool that counts padding as zeros (PyTorch `count_include_pad=True`).
pub fn avg_pool_padded(x: &Tensor, kernel: usize, stride: usize, pad: usize) -> Result<Tensor> {
    pad_spatial(x, pad)?.avg_pool2d_with_stride(kernel, stride)
}

/// Local response normalisation across the channels (dimension 0 of a channel-major map),
/// as PyTorch's `LocalResponseNorm(size, alpha, beta, k)`: x / (k + alpha * mean of x^2 over
/// `size` neighbouring channels)^beta.
pub fn local_response_norm(
    x: &Tensor,
    size: usize,
    alpha: f64,
    beta: f64,
    k: f64,
) -> Result<Tensor> {
    let channels = x.dim(0)?;
    let sq = x.sqr()?.pad_with_zeros(0, size / 2, (size - 1) / 2)?;
    let mut sum = sq.narrow(0, 0, channels)?;
    for offset in 1..size {
        sum = (sum + sq.narrow(0, offset, channels)?)?;
    }
    let div = ((sum * (alpha / size as f64))? + k)?.powf(beta)?;
    x / div
}

/// Global average pool of a map over its two spatial dimensions (C x N x H x W -> C x N).
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.mean(D::Minus1)?.mean(D::Minus1)
}
