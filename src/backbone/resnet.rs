//! ResNet-50 with torchvision's parameter names (v1.5: stride in the 3x3 conv), a width
//! multiplier applied to every stage (the SwAV/VISSL `resnet50wN` rule: stem 64*w,
//! bottleneck planes 64*w..512*w, outputs 4x those), and optional dilation of res4/res5.

use super::layers::{ConvLayer, FrozenConv};
use super::Tap;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use sslbench_ops::{
    add_relu, from_channel_major, global_avg_pool, relu, to_channel_major, ConvInit, ConvSpec,
};

/// Blocks per stage of ResNet-50.
const DEPTHS: [usize; 4] = [3, 4, 6, 3];
/// Bottleneck expansion.
const EXPANSION: usize = 4;

/// The shape of a ResNet-50 trunk.
#[derive(Clone, Debug, PartialEq)]
pub struct ResNetConfig {
    /// Width multiplier (1, 2, 4; fractions give the small test models).
    pub width: f64,
    /// Output stride: 32 (plain), 16 (res5 dilated) or 8 (res4 and res5 dilated).
    pub output_stride: usize,
}

struct Bottleneck<C> {
    conv1: C,
    conv2: C,
    conv3: C,
    downsample: Option<C>,
}

impl<C: ConvLayer> Bottleneck<C> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = relu(&self.conv1.forward(x)?)?;
        let y = relu(&self.conv2.forward(&y)?)?;
        let y = self.conv3.forward(&y)?;
        let skip = match &self.downsample {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        add_relu(&y, &skip)
    }
}

/// A ResNet-50 trunk: frozen (batch norm folded, inference mode) with the default
/// [`FrozenConv`] layers, trainable with the pretexts' layers.
pub struct ResNet<C = FrozenConv> {
    stem: C,
    stages: Vec<Vec<Bottleneck<C>>>,
}

fn conv_bn<C: ConvLayer>(
    shared: &C::Shared,
    vb: &VarBuilder,
    conv: &str,
    bn: &str,
    spec: ConvSpec,
) -> Result<C> {
    C::load(
        shared,
        vb.pp(conv),
        Some(vb.pp(bn)),
        spec,
        false,
        ConvInit::KaimingFanOut,
    )
}

impl<C: ConvLayer> ResNet<C> {
    /// Builds the trunk from torchvision-named parameters (`conv1`, `bn1`, `layer1.0.conv1`, ...).
    pub fn new(cfg: &ResNetConfig, vb: VarBuilder, shared: &C::Shared) -> Result<Self> {
        let base = ((64.0 * cfg.width).round() as usize).max(1);
        let dilate = match cfg.output_stride {
            32 => [false, false, false],
            16 => [false, false, true],
            8 => [false, true, true],
            other => candle_core::bail!("output_stride must be 32, 16 or 8, got {other}"),
        };
        let stem = conv_bn(
            shared,
            &vb,
            "conv1",
            "bn1",
            ConvSpec::new(3, base, 7).stride(2).padding(3),
        )?;
        let (mut inplanes, mut dilation) = (base, 1);
        let mut stages = Vec::with_capacity(4);
        for (i, &depth) in DEPTHS.iter().enumerate() {
            let planes = base << i;
            let mut stride = if i == 0 { 1 } else { 2 };
            let previous_dilation = dilation;
            if i > 0 && dilate[i - 1] {
                dilation *= stride;
                stride = 1;
            }
            let layer = vb.pp(format!("layer{}", i + 1));
            let mut blocks = Vec::with_capacity(depth);
            for j in 0..depth {
                let b = layer.pp(j);
                let (s, d) = if j == 0 {
                    (stride, previous_dilation)
                } else {
                    (1, dilation)
                };
                let out = planes * EXPANSION;
                let downsample = if j == 0 && (stride != 1 || inplanes != out) {
                    let spec = ConvSpec::new(inplanes, out, 1).stride(stride);
                    Some(conv_bn(shared, &b, "downsample.0", "downsample.1", spec)?)
                } else {
                    None
                };
                blocks.push(Bottleneck {
                    conv1: conv_bn(
                        shared,
                        &b,
                        "conv1",
                        "bn1",
                        ConvSpec::new(inplanes, planes, 1),
                    )?,
                    conv2: conv_bn(
                        shared,
                        &b,
                        "conv2",
                        "bn2",
                        ConvSpec::new(planes, planes, 3)
                            .stride(s)
                            .padding(d)
                            .dilation(d),
                    )?,
                    conv3: conv_bn(shared, &b, "conv3", "bn3", ConvSpec::new(planes, out, 1))?,
                    downsample,
                });
                inplanes = out;
            }
            stages.push(blocks);
        }
        Ok(Self { stem, stages })
    }

    /// The taps this trunk offers.
    pub const TAPS: [Tap; 6] = [
        Tap::Conv1,
        Tap::Res2,
        Tap::Res3,
        Tap::Res4,
        Tap::Res5,
        Tap::Pool5,
    ];

    /// One forward pass over an NCHW batch that returns, shallow to deep, the maps of
    /// `TAPS` up to index `deepest` (NCHW, pool5 as N x C).
    pub fn forward_until(&self, x: &Tensor, deepest: usize) -> Result<Vec<Tensor>> {
        let mut outputs = Vec::with_capacity(deepest + 1);
        let mut h = relu(&self.stem.forward(&to_channel_major(x)?)?)?;
        outputs.push(from_channel_major(&h)?);
        h = C::max_pool(&h, 3, 2, 1)?;
        for stage in self.stages.iter().take(deepest.min(4)) {
            for block in stage {
                h = block.forward(&h)?;
            }
            outputs.push(from_channel_major(&h)?);
        }
        if deepest == 5 {
            outputs.push(from_channel_major(&global_avg_pool(&h)?)?);
        }
        Ok(outputs)
    }
}
