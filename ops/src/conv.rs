//! Convolution in the trunks' channel-major layout: the shape ([`ConvSpec`]), the random
//! init of a fresh layer ([`ConvInit`]), the entry point ([`conv2d`]: the CPU engine of
//! `conv_cpu` for f32 and f64 on the CPU, else [`conv2d_generic`], im2col and one GEMM per group from
//! differentiable candle ops, which runs on any device) and the slow reference
//! ([`conv2d_slow`]: candle's own direct convolution on NCHW), which the tests hold both to.

use crate::conv_cpu::{Conv2dOp, ConvKernel};
use crate::layout::{from_channel_major, pad_spatial, to_channel_major};
use candle_core::{bail, DType, Result, Tensor};
use candle_nn::Init;

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
    pub const fn new(cin: usize, cout: usize, kernel: usize) -> Self {
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
    pub const fn stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }

    /// The same convolution with another padding.
    pub const fn padding(self, padding: usize) -> Self {
        Self { padding, ..self }
    }

    /// The same convolution with another dilation.
    pub const fn dilation(self, dilation: usize) -> Self {
        Self { dilation, ..self }
    }

    /// The same convolution split into channel groups.
    pub const fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }

    /// Inputs per output: C_in / groups x k x k.
    pub fn fan_in(&self) -> usize {
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

/// A convolution of a channel-major map (C x N x H x W; see [`to_channel_major`]) with a
/// PyTorch-layout `weight` and optional `bias`, output channel-major. Differentiable in all
/// three. f32 and f64 maps on the CPU run the engine's kernels (im2col, [`crate::gemm::matmul`]
/// and a direct backward); anything else runs [`conv2d_generic`].
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, s: &ConvSpec) -> Result<Tensor> {
    let (c, n, h, w) = x.dims4()?;
    let (co, ci, k, _) = s.weight_shape();
    if c != s.cin
        || weight.dims() != [co, ci, k, k]
        || s.groups == 0
        || !s.cin.is_multiple_of(s.groups)
        || !s.cout.is_multiple_of(s.groups)
    {
        bail!(
            "conv2d: input {:?} and weight {:?} do not fit {s:?} (input C x N x H x W, weight C_out x C_in/groups x k x k)",
            x.dims(),
            weight.dims()
        );
    }
    let cpu_kernel =
        matches!(x.dtype(), DType::F32 | DType::F64) && bias.is_none_or(|b| b.dtype() == x.dtype());
    if !x.device().is_cpu() || !cpu_kernel || weight.dtype() != x.dtype() {
        return conv2d_generic(x, weight, bias, s);
    }
    let op = Conv2dOp(ConvKernel::new(*s, n, h, w)?);
    let (x, weight) = (x.contiguous()?, weight.contiguous()?);
    match bias {
        Some(b) => x.apply_op3(&weight, &b.contiguous()?, op),
        None => x.apply_op2(&weight, op),
    }
}

/// [`conv2d`] from candle ops alone, on any device and dtype.
///
/// The convolution is one GEMM per group over the whole batch: weights (C_out x C_in.k.k)
/// times the im2col matrix (C_in.k.k x N.H.W). A 1x1 stride-1 convolution needs no im2col at
/// all, and the output comes out channel-major again, so activations never change layout
/// between layers. Every step is a differentiable candle op.
pub fn conv2d_generic(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    s: &ConvSpec,
) -> Result<Tensor> {
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

/// The slow reference of [`conv2d`]: candle's direct convolution of the same channel-major
/// map (through NCHW), for tests.
pub fn conv2d_slow(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    s: &ConvSpec,
) -> Result<Tensor> {
    let y = from_channel_major(x)?.conv2d(weight, s.padding, s.stride, s.dilation, s.groups)?;
    let y = match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, s.cout, 1, 1))?)?,
        None => y,
    };
    to_channel_major(&y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_diff;
    use candle_core::Device;

    fn tensor(shape: (usize, usize, usize, usize), phase: f32) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + phase).sin()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Every shape kind the trunks use: 1x1, strided 1x1, 3x3 padded, strided 7x7 (the stem),
    /// dilated, grouped (AlexNet), grouped 1x1; and two with more output channels than
    /// C_in.k.k (the weight gradient's other orientation), 1x1 and strided.
    const SPECS: [ConvSpec; 9] = [
        ConvSpec::new(2, 8, 1),
        ConvSpec::new(3, 8, 1).stride(2),
        ConvSpec::new(8, 6, 1),
        ConvSpec::new(8, 6, 1).stride(2),
        ConvSpec::new(8, 6, 3).padding(1),
        ConvSpec::new(3, 4, 7).stride(2).padding(3),
        ConvSpec::new(8, 6, 3).padding(2).dilation(2),
        ConvSpec::new(8, 6, 5).stride(3).padding(2).groups(2),
        ConvSpec::new(8, 6, 1).groups(2),
    ];

    /// The input, weight and bias gradients of the engine's direct backward equal those
    /// autograd takes through the candle-op convolution, for every shape kind.
    #[test]
    fn the_engine_backward_matches_autograd() {
        use candle_core::Var;
        for s in SPECS {
            let (co, ci, k, _) = s.weight_shape();
            let x = Var::from_tensor(&tensor((s.cin, 3, 11, 9), 0.0)).unwrap();
            let w = Var::from_tensor(&tensor((co, ci, k, k), 1.0)).unwrap();
            let b =
                Var::from_tensor(&tensor((1, 1, 1, s.cout), 2.0).flatten_all().unwrap()).unwrap();
            let grads = |f: fn(&Tensor, &Tensor, Option<&Tensor>, &ConvSpec) -> Result<Tensor>| {
                let y = f(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()), &s).unwrap();
                // A loss whose output gradient differs at every position.
                let r = tensor(y.dims4().unwrap(), 3.0);
                let g = (y * r).unwrap().sum_all().unwrap().backward().unwrap();
                [&x, &w, &b].map(|v| g.get(v.as_tensor()).unwrap().clone())
            };
            let (fast, reference) = (grads(conv2d), grads(conv2d_generic));
            for (what, (f, r)) in ["input", "weight", "bias"]
                .iter()
                .zip(fast.iter().zip(&reference))
            {
                let scale = r
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                let diff = max_diff(f, r);
                assert!(
                    diff <= 1e-5 * scale.max(1.0),
                    "{s:?} {what}: {diff} (scale {scale})"
                );
            }
        }
    }

    /// Both the engine and the candle-op path equal the direct convolution for every shape
    /// kind the trunks use.
    #[test]
    fn the_engine_matches_the_direct_convolution() {
        for s in SPECS {
            let x = tensor((s.cin, 2, 11, 9), 0.0);
            let (co, ci, k, _) = s.weight_shape();
            let w = tensor((co, ci, k, k), 1.0);
            let b = Tensor::arange(0f32, s.cout as f32, &Device::Cpu).unwrap();
            let slow = conv2d_slow(&x, &w, Some(&b), &s).unwrap();
            for f in [conv2d, conv2d_generic] {
                let fast = f(&x, &w, Some(&b), &s).unwrap();
                assert_eq!(fast.dims(), slow.dims(), "{s:?}");
                let diff = max_diff(&fast, &slow);
                assert!(diff < 1e-4, "{s:?}: max difference {diff}");
            }
        }
    }
}
