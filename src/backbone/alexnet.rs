//! AlexNet trunks: torchvision's layout (`features.*`, 64-192-384-256-256) and FAIR's Jigsaw
//! variant as VISSL's `alexnet_jigsaw` stores it (96-256-384-384-256, 227 input, conv1
//! stride 2, grouped convs, LRN after pools 1-2, batch norm on conv3-5).

use super::layers::{ConvLayer, FrozenConv};
use super::Tap;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use sslbench_ops::{
    from_channel_major, local_response_norm, relu, to_channel_major, ConvInit, ConvSpec,
};

/// Which published AlexNet layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlexNetKind {
    /// torchvision `alexnet` (also VISSL's `alexnet_rotnet`-style layout without BN).
    Torchvision,
    /// FAIR's Caffe2 Jigsaw AlexNet, VISSL `alexnet_jigsaw` names.
    Jigsaw,
}

/// One conv layer of the layout: its published names and shape.
struct LayerDef {
    conv: &'static str,
    bn: Option<&'static str>,
    channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
}

const fn def(
    conv: &'static str,
    bn: Option<&'static str>,
    channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
) -> LayerDef {
    LayerDef {
        conv,
        bn,
        channels,
        kernel,
        stride,
        padding,
        groups,
    }
}

const TORCHVISION: [LayerDef; 5] = [
    def("features.0", None, 64, 11, 4, 2, 1),
    def("features.3", None, 192, 5, 1, 2, 1),
    def("features.6", None, 384, 3, 1, 1, 1),
    def("features.8", None, 256, 3, 1, 1, 1),
    def("features.10", None, 256, 3, 1, 1, 1),
];

const JIGSAW: [LayerDef; 5] = [
    def("0.0", None, 96, 11, 2, 0, 1),
    def("2.0", None, 256, 5, 1, 2, 2),
    def("4.0", Some("4.1"), 384, 3, 1, 1, 1),
    def("5.0", Some("5.1"), 384, 3, 1, 1, 2),
    def("6.0", Some("6.1"), 256, 3, 1, 1, 2),
];

/// LRN of the Jigsaw layout: size 5, alpha 1e-4, beta 0.75, k 1 (Caffe's AlexNet values).
const LRN: (usize, f64, f64, f64) = (5, 1e-4, 0.75, 1.0);

/// An AlexNet trunk: frozen with the default [`FrozenConv`] layers, trainable with the
/// pretexts' layers.
pub struct AlexNet<C = FrozenConv> {
    kind: AlexNetKind,
    convs: Vec<C>,
}

impl<C: ConvLayer> AlexNet<C> {
    /// The taps this trunk offers.
    pub const TAPS: [Tap; 6] = [
        Tap::Conv1,
        Tap::Conv2,
        Tap::Conv3,
        Tap::Conv4,
        Tap::Conv5,
        Tap::Pool5,
    ];

    /// Builds the trunk with every channel count scaled by `width`.
    pub fn new(kind: AlexNetKind, width: f64, vb: VarBuilder, shared: &C::Shared) -> Result<Self> {
        let layers = match kind {
            AlexNetKind::Torchvision => &TORCHVISION,
            AlexNetKind::Jigsaw => &JIGSAW,
        };
        let mut cin = 3;
        let mut convs = Vec::with_capacity(5);
        for l in layers {
            let cout = ((l.channels as f64 * width).round() as usize).max(l.groups);
            let spec = ConvSpec::new(cin, cout, l.kernel)
                .stride(l.stride)
                .padding(l.padding)
                .groups(l.groups);
            let bn = l.bn.map(|name| vb.pp(name));
            convs.push(C::load(
                shared,
                vb.pp(l.conv),
                bn,
                spec,
                true,
                ConvInit::TorchDefault,
            )?);
            cin = cout;
        }
        Ok(Self { kind, convs })
    }

    /// One forward pass over an NCHW batch that returns, shallow to deep, the maps of
    /// `TAPS` up to index `deepest` (NCHW, pool5 flattened to N x D).
    pub fn forward_until(&self, x: &Tensor, deepest: usize) -> Result<Vec<Tensor>> {
        let mut outputs = Vec::with_capacity(deepest + 1);
        let mut h = to_channel_major(x)?;
        for (i, conv) in self.convs.iter().enumerate().take(deepest.min(4) + 1) {
            h = relu(&conv.forward(&h)?)?;
            outputs.push(from_channel_major(&h)?);
            if i < 2 {
                h = C::max_pool(&h, 3, 2, 0)?;
                if self.kind == AlexNetKind::Jigsaw {
                    let (size, alpha, beta, k) = LRN;
                    h = local_response_norm(&h, size, alpha, beta, k)?;
                }
            }
        }
        if deepest == 5 {
            let pooled = from_channel_major(&C::max_pool(&h, 3, 2, 0)?)?;
            outputs.push(pooled.flatten_from(1)?);
        }
        Ok(outputs)
    }
}
