//! ResNet-50 with torchvision's parameter names (v1.5: stride in the 3x3 conv, or MSRA's
//! original layout with the stride in the first 1x1 conv), a width
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
    /// The stride of a downsampling bottleneck sits on its first 1x1 conv (MSRA), not on its
    /// 3x3 conv (torchvision, ResNet v1.5).
    pub stride_in_1x1: bool,
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

/// One stage of bottleneck blocks (res2 .. res5), with torchvision's names under
/// `layer<index + 1>`.
pub struct Stage<C = FrozenConv> {
    blocks: Vec<Bottleneck<C>>,
}

/// Where a stage sits in the trunk: its index (0 = res2 .. 3 = res5), the stride of its
/// first block, and the dilation of its first block and of the others.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StagePlan {
    /// 0 = res2 .. 3 = res5.
    pub index: usize,
    /// Stride of the first block (on its 3x3 conv, or its first 1x1 with `stride_in_1x1`)
    /// and of its projection.
    pub stride: usize,
    /// Dilation of the first block's 3x3 conv.
    pub first_dilation: usize,
    /// Dilation of the other blocks' 3x3 convs.
    pub dilation: usize,
    /// The first block's stride sits on its first 1x1 conv (MSRA's layout).
    pub stride_in_1x1: bool,
}

impl StagePlan {
    /// The plain (undilated) plan of stage `index`: stride 1 for res2, 2 for the others.
    pub fn plain(index: usize) -> Self {
        let stride = if index == 0 { 1 } else { 2 };
        Self {
            index,
            stride,
            first_dilation: 1,
            dilation: 1,
            stride_in_1x1: false,
        }
    }
}

/// Channels of the stem of a trunk of `width`.
fn stem_channels(width: f64) -> usize {
    ((64.0 * width).round() as usize).max(1)
}

impl<C: ConvLayer> Stage<C> {
    /// Builds the stage of `plan` for a trunk of `width` from `vb` (the trunk's root).
    pub fn new(width: f64, plan: StagePlan, vb: &VarBuilder, shared: &C::Shared) -> Result<Self> {
        let base = stem_channels(width);
        let i = plan.index;
        if i >= DEPTHS.len() {
            candle_core::bail!("ResNet-50 has stages 0..=3 (res2..res5), not {i}");
        }
        let planes = base << i;
        let mut inplanes = if i == 0 {
            base
        } else {
            (base << (i - 1)) * EXPANSION
        };
        let layer = vb.pp(format!("layer{}", i + 1));
        let mut blocks = Vec::with_capacity(DEPTHS[i]);
        for j in 0..DEPTHS[i] {
            let b = layer.pp(j);
            let (s, d) = if j == 0 {
                (plan.stride, plan.first_dilation)
            } else {
                (1, plan.dilation)
            };
            let (s1x1, s3x3) = if plan.stride_in_1x1 { (s, 1) } else { (1, s) };
            let out = planes * EXPANSION;
            let downsample = if j == 0 && (s != 1 || inplanes != out) {
                let spec = ConvSpec::new(inplanes, out, 1).stride(s);
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
                    ConvSpec::new(inplanes, planes, 1).stride(s1x1),
                )?,
                conv2: conv_bn(
                    shared,
                    &b,
                    "conv2",
                    "bn2",
                    ConvSpec::new(planes, planes, 3)
                        .stride(s3x3)
                        .padding(d)
                        .dilation(d),
                )?,
                conv3: conv_bn(shared, &b, "conv3", "bn3", ConvSpec::new(planes, out, 1))?,
                downsample,
            });
            inplanes = out;
        }
        Ok(Self { blocks })
    }

    /// Applies the stage's blocks to a channel-major map.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for block in &self.blocks {
            h = block.forward(&h)?;
        }
        Ok(h)
    }
}

/// A ResNet-50 trunk: frozen (batch norm folded, inference mode) with the default
/// [`FrozenConv`] layers, trainable with the pretexts' layers.
pub struct ResNet<C = FrozenConv> {
    stem: C,
    stages: Vec<Stage<C>>,
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
        let base = stem_channels(cfg.width);
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
        let mut dilation = 1;
        let mut stages = Vec::with_capacity(DEPTHS.len());
        for i in 0..DEPTHS.len() {
            let mut plan = StagePlan::plain(i);
            plan.first_dilation = dilation;
            if i > 0 && dilate[i - 1] {
                dilation *= plan.stride;
                plan.stride = 1;
            }
            plan.dilation = dilation;
            plan.stride_in_1x1 = cfg.stride_in_1x1;
            stages.push(Stage::new(cfg.width, plan, &vb, shared)?);
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
            h = stage.forward(&h)?;
            outputs.push(from_channel_major(&h)?);
        }
        if deepest == 5 {
            outputs.push(from_channel_major(&global_avg_pool(&h)?)?);
        }
        Ok(outputs)
    }
}
