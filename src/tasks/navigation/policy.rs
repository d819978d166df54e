//! The trained half of the agent (protocols.md section 7): the compress conv (3x3 to 8
//! channels) with GroupNorm on each frame's tap, the stack of 4 compressed frames, then
//! conv 4x4/2 -> 32 channels -> FC 1024 -> FC 512 -> actor logits and critic value.

use super::config::NavConfig;
use anyhow::{bail, Result};
use candle_core::{Module, Tensor, D};
use candle_nn::{GroupNorm, Init, VarBuilder};
use sslbench_ops::{conv2d, from_channel_major, to_channel_major, ConvSpec};

/// A weight and bias pair.
struct Affine {
    weight: Tensor,
    bias: Tensor,
}

/// Uniform(-b, b) with b = scale / sqrt(fan_in): PyTorch's default for linear and conv layers
/// at scale 1, drawn from the seeded source behind `vb`.
fn affine(
    vb: &VarBuilder,
    name: &str,
    shape: &[usize],
    fan_in: usize,
    scale: f64,
) -> Result<Affine> {
    let b = scale / (fan_in as f64).sqrt();
    let vb = vb.pp(name);
    Ok(Affine {
        weight: vb.get_with_hints(shape, "weight", Init::Uniform { lo: -b, up: b })?,
        bias: vb.get_with_hints(shape[0], "bias", Init::Uniform { lo: -b, up: b })?,
    })
}

impl Affine {
    fn linear(&self, x: &Tensor) -> Result<Tensor> {
        Ok(sslbench_ops::mm(x, &self.weight.t()?)?.broadcast_add(&self.bias)?)
    }

    /// An NCHW convolution through the trunk's im2col GEMM (candle's CPU convolution
    /// backward is a naive loop, many times slower at these shapes).
    fn conv(&self, x: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
        let (cout, cin, kernel, _) = self.weight.dims4()?;
        let spec = ConvSpec::new(cin, cout, kernel)
            .stride(stride)
            .padding(padding);
        let y = conv2d(&to_channel_major(x)?, &self.weight, Some(&self.bias), &spec)?;
        Ok(from_channel_major(&y)?)
    }
}

/// The actor-critic network over stacked compressed features.
pub struct ActorCritic {
    compress: Affine,
    norm: GroupNorm,
    /// Stride of the compress conv (a tap larger than `compress.size`).
    stride: usize,
    /// Repeat factor after it (a tap smaller than `compress.size`).
    repeat: usize,
    stack: usize,
    conv: Affine,
    conv_stride: usize,
    hidden: Vec<Affine>,
    actor: Affine,
    critic: Affine,
}

impl ActorCritic {
    /// Builds the network for taps of shape `tap = (C, h, w)` and `actions` actions.
    pub fn new(
        cfg: &NavConfig,
        tap: (usize, usize, usize),
        actions: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let f = &cfg.compress;
        let (c, h, w) = tap;
        if h != w {
            bail!("the tap's map is {h}x{w}; the navigation features need a square map (square frames)");
        }
        let (stride, repeat) = if h >= f.size && h % f.size == 0 {
            (h / f.size, 1)
        } else if h < f.size && f.size % h == 0 {
            (1, f.size / h)
        } else {
            bail!(
                "the tap's map is {h}x{h}, which neither divides nor is a multiple of \
                 compress.size = {}: change transform.size (the frame size fed to the trunk) \
                 or compress.size",
                f.size
            );
        };
        let compress = affine(&vb, "compress", &[f.channels, c, 3, 3], c * 9, 1.0)?;
        let gn = vb.pp("compress_norm");
        let norm = GroupNorm::new(
            gn.get_with_hints(f.channels, "weight", Init::Const(1.0))?,
            gn.get_with_hints(f.channels, "bias", Init::Const(0.0))?,
            f.channels,
            f.groups,
            1e-5,
        )?;
        let p = &cfg.policy;
        let cin = f.channels * f.stack;
        let conv = affine(
            &vb,
            "conv",
            &[p.conv_channels, cin, p.kernel, p.kernel],
            cin * p.kernel * p.kernel,
            1.0,
        )?;
        let side = (f.size - p.kernel) / p.stride + 1;
        let mut width = p.conv_channels * side * side;
        let mut hidden = Vec::new();
        for (i, &out) in p.hidden.iter().enumerate() {
            hidden.push(affine(&vb, &format!("fc{i}"), &[out, width], width, 1.0)?);
            width = out;
        }
        let actor = affine(&vb, "actor", &[actions, width], width, p.actor_init_scale)?;
        let critic = affine(&vb, "critic", &[1, width], width, 1.0)?;
        Ok(Self {
            compress,
            norm,
            stride,
            repeat,
            stack: f.stack,
            conv,
            conv_stride: p.stride,
            hidden,
            actor,
            critic,
        })
    }

    /// Frames' tap features (K, C, h, w) -> compressed maps (K, channels, size, size).
    pub fn compress(&self, taps: &Tensor) -> Result<Tensor> {
        let y = self.compress.conv(taps, self.stride, 1)?;
        let y = self.norm.forward(&y)?;
        if self.repeat == 1 {
            return Ok(y);
        }
        // Nearest-neighbour upsampling by broadcasting: differentiable in candle.
        let (k, c, h, w) = y.dims4()?;
        let r = self.repeat;
        Ok(y.reshape((k, c, h, 1, w, 1))?
            .broadcast_as((k, c, h, r, w, r))?
            .reshape((k, c, h * r, w * r))?)
    }

    /// Logits (B, actions) and values (B) for `batch` stacks. `stacks` holds B * stack
    /// indices (u32) into the rows of `compressed`, oldest frame first.
    pub fn heads(
        &self,
        compressed: &Tensor,
        stacks: &Tensor,
        batch: usize,
    ) -> Result<(Tensor, Tensor)> {
        let (_, c, h, w) = compressed.dims4()?;
        let x = compressed
            .index_select(stacks, 0)?
            .reshape((batch, self.stack * c, h, w))?;
        let mut x = self
            .conv
            .conv(&x, self.conv_stride, 0)?
            .relu()?
            .flatten_from(1)?;
        for layer in &self.hidden {
            x = layer.linear(&x)?.relu()?;
        }
        let logits = self.actor.linear(&x)?;
        let values = self.critic.linear(&x)?.squeeze(D::Minus1)?;
        Ok((logits, values))
    }
}
