//! Frozen backbones: ResNet-50 (width x1/x2/x4, optional dilation) and AlexNet (torchvision
//! and FAIR Jigsaw layouts), loaded from a checkpoint or seeded at random, returning any set
//! of taps from one forward pass.

mod affine;
mod alexnet;
pub mod caffe2;
pub mod checkpoint;
mod layers;
mod params;
mod resnet;
mod tap;
mod trainable;

pub use affine::AffineConv;
pub use alexnet::{AlexNet, AlexNetKind};
pub use checkpoint::CheckpointFormat;
pub use resnet::{ResNet, ResNetConfig, Stage, StagePlan};
pub use tap::Tap;
pub use trainable::{BnMode, TrainConv, TrainableBackbone};

use crate::data::transform::ChannelOrder;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use layers::{ConvLayer, FrozenConv};
use params::CheckedTensors;
pub use params::RandomInit;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A backbone TOML: the architecture and where its weights come from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneConfig {
    /// `resnet50`, `resnet50w2`, `resnet50w4`, `alexnet` or `alexnet_jigsaw`.
    pub arch: String,
    /// A checkpoint path (relative to the TOML file), or `"random"`.
    pub weights: String,
    /// Seed of the random initialisation (with `weights = "random"`).
    #[serde(default)]
    pub seed: u64,
    /// Name layout of the checkpoint.
    #[serde(default)]
    pub format: CheckpointFormat,
    /// Dotted path of the state dict inside the checkpoint, when detection is not enough.
    #[serde(default)]
    pub key: Option<String>,
    /// Width multiplier overriding the one the arch name implies (e.g. 0.0625 for tests).
    #[serde(default)]
    pub width: Option<f64>,
    /// ResNet output stride: 32, 16 (res5 dilated) or 8 (res4 and res5 dilated).
    #[serde(default = "default_output_stride")]
    pub output_stride: usize,
    /// ResNet layout: `true` puts the stride of each downsampling bottleneck on its first
    /// 1x1 conv (MSRA's original ResNet, Detectron's `STRIDE_1X1`), `false` (the default) on
    /// its 3x3 conv (torchvision, and FAIR's Goyal et al. 2019 models).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stride_in_1x1: bool,
    /// The channel order the checkpoint's first convolution was trained on; unset, the
    /// format's own (`bgr` for Caffe2 `.pkl` files, `rgb` for the others). With `bgr` the
    /// input channels of conv1's weights are reversed at load, so that the trunk takes RGB
    /// input like every other backbone (the transform's `channel_order` stays `rgb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_channel_order: Option<ChannelOrder>,
    /// The row of the paper's tables this backbone stands for (e.g. "Random"), so that
    /// `sslbench table --reference goyal2019` puts the published numbers beside ours.
    #[serde(default)]
    pub paper_row: Option<String>,
}

fn default_output_stride() -> usize {
    32
}

impl BackboneConfig {
    /// Reads a backbone TOML; a relative `weights` path is resolved against its folder.
    pub fn from_table(mut table: toml::Table, dir: &Path) -> Result<Self> {
        if let Some(toml::Value::String(w)) = table.get_mut("weights") {
            if w != "random" && Path::new(w.as_str()).is_relative() {
                *w = dir.join(&*w).to_string_lossy().into_owned();
            }
        }
        toml::Value::Table(table)
            .try_into()
            .context("invalid backbone config")
    }

    /// The architecture family and its width, from `arch` and `width`.
    pub fn family(&self) -> Result<(Family, f64)> {
        let (family, width) = match self.arch.as_str() {
            "resnet50" => (Family::ResNet50, 1.0),
            "resnet50w2" => (Family::ResNet50, 2.0),
            "resnet50w4" => (Family::ResNet50, 4.0),
            "alexnet" => (Family::AlexNet, 1.0),
            "alexnet_jigsaw" => (Family::AlexNetJigsaw, 1.0),
            other => bail!(
                "unknown arch `{other}`: use resnet50, resnet50w2, resnet50w4, alexnet or alexnet_jigsaw"
            ),
        };
        let width = self.width.unwrap_or(width);
        if !(width > 0.0 && width.is_finite()) {
            bail!("width must be positive, got {width}");
        }
        Ok((family, width))
    }

    /// A readable identity of the architecture for cache keys: `resnet50(w=1,os=32)`.
    pub fn arch_id(&self) -> Result<String> {
        let (family, width) = self.family()?;
        Ok(match family {
            Family::ResNet50 => format!(
                "resnet50(w={width},os={}{})",
                self.output_stride,
                if self.stride_in_1x1 {
                    ",stride_in_1x1"
                } else {
                    ""
                }
            ),
            _ => format!("{}(w={width})", family.name()),
        })
    }

    /// A digest of the weights: sha256 of the checkpoint file, or the random seed.
    pub fn weights_digest(&self) -> Result<String> {
        if self.weights == "random" {
            return Ok(format!("random:seed={}", self.seed));
        }
        let path = PathBuf::from(&self.weights);
        let sha = crate::atomic::file_sha256(&path, || not_found(&path))?;
        let key = self.key.as_deref().unwrap_or("");
        Ok(format!(
            "sha256:{}{}",
            sha,
            if key.is_empty() {
                String::new()
            } else {
                format!("#{key}")
            }
        ))
    }
}

/// Architecture families, each with its own layer names, taps and pooling table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// ResNet-50, any width.
    ResNet50,
    /// torchvision AlexNet.
    AlexNet,
    /// FAIR's Jigsaw AlexNet.
    AlexNetJigsaw,
}

impl Family {
    /// The name under which the family's pooling table is configured.
    pub fn name(self) -> &'static str {
        match self {
            Family::ResNet50 => "resnet50",
            Family::AlexNet => "alexnet",
            Family::AlexNetJigsaw => "alexnet_jigsaw",
        }
    }

    /// The name of the first convolution's weight, whose input channels see the image.
    pub fn first_conv(self) -> &'static str {
        match self {
            Family::ResNet50 => "conv1.weight",
            Family::AlexNet => "features.0.weight",
            Family::AlexNetJigsaw => "0.0.weight",
        }
    }

    /// The taps the family offers, shallow to deep.
    pub fn taps(self) -> &'static [Tap] {
        match self {
            Family::ResNet50 => &<ResNet>::TAPS,
            _ => &<AlexNet>::TAPS,
        }
    }
}

/// A built trunk of either family, with frozen or trainable layers.
enum Trunk<C> {
    ResNet(ResNet<C>),
    AlexNet(AlexNet<C>),
}

impl<C: ConvLayer> Trunk<C> {
    /// Builds the trunk of `cfg` from `vb`.
    fn build(cfg: &BackboneConfig, vb: VarBuilder, shared: &C::Shared) -> Result<(Self, Family)> {
        let (family, width) = cfg.family()?;
        let trunk = match family {
            Family::ResNet50 => Trunk::ResNet(ResNet::new(
                &ResNetConfig {
                    width,
                    output_stride: cfg.output_stride,
                    stride_in_1x1: cfg.stride_in_1x1,
                },
                vb,
                shared,
            )?),
            Family::AlexNet => {
                Trunk::AlexNet(AlexNet::new(AlexNetKind::Torchvision, width, vb, shared)?)
            }
            Family::AlexNetJigsaw => {
                Trunk::AlexNet(AlexNet::new(AlexNetKind::Jigsaw, width, vb, shared)?)
            }
        };
        Ok((trunk, family))
    }

    /// One forward pass over an NCHW batch returning the requested taps in order.
    fn forward_taps(&self, family: Family, x: &Tensor, taps: &[Tap]) -> Result<Vec<Tensor>> {
        for t in taps {
            if !family.taps().contains(t) {
                let names: Vec<&str> = family.taps().iter().map(|t| t.name()).collect();
                bail!(
                    "{} has no tap `{t}`: use {}",
                    family.name(),
                    names.join(", ")
                );
            }
        }
        let order = family.taps();
        let index = |t: &Tap| order.iter().position(|u| u == t).unwrap_or(0);
        let deepest = taps.iter().map(index).max().unwrap_or(0);
        let outputs = match self {
            Trunk::ResNet(r) => r.forward_until(x, deepest)?,
            Trunk::AlexNet(a) => a.forward_until(x, deepest)?,
        };
        Ok(taps.iter().map(|t| outputs[index(t)].clone()).collect())
    }
}

/// A frozen backbone ready to run: batch norm folded into the convolutions, no gradients.
pub struct Backbone {
    trunk: Trunk<FrozenConv>,
    family: Family,
    device: Device,
}

impl Backbone {
    /// Builds the backbone of `cfg` on `device`, loading and checking its weights. A
    /// checkpoint that does not fit fails with one message listing the missing keys, the
    /// unexpected keys and the mismatched shapes.
    pub fn load(cfg: &BackboneConfig, device: &Device) -> Result<Self> {
        let (trunk, family) = with_weights(cfg, device, |vb| Trunk::build(cfg, vb, &()))?;
        Ok(Self {
            trunk,
            family,
            device: device.clone(),
        })
    }

    /// The architecture family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs one forward pass over an NCHW batch and returns the requested taps in order.
    pub fn forward_taps(&self, x: &Tensor, taps: &[Tap]) -> Result<Vec<Tensor>> {
        self.trunk.forward_taps(self.family, x, taps)
    }
}

/// Runs `build` on a `VarBuilder` over the weights of `cfg` (seeded random, or a checked
/// checkpoint), wrapped by `wrap` (the trainable trunk records its variables there). A
/// checkpoint that does not fit fails with one message listing the missing keys, the
/// unexpected keys and the mismatched shapes.
fn with_weights_wrapped<T>(
    cfg: &BackboneConfig,
    wrap: impl FnOnce(Box<dyn SimpleBackend>) -> VarBuilder<'static>,
    build: impl FnOnce(VarBuilder<'static>) -> Result<T>,
) -> Result<T> {
    with_some_weights(cfg, true, wrap, build)
}

/// [`with_weights_wrapped`] for a part of a trunk (`whole` false): checkpoint entries the
/// part does not ask for are left alone; missing and mismatched ones are still an error.
fn with_some_weights<T>(
    cfg: &BackboneConfig,
    whole: bool,
    wrap: impl FnOnce(Box<dyn SimpleBackend>) -> VarBuilder<'static>,
    build: impl FnOnce(VarBuilder<'static>) -> Result<T>,
) -> Result<T> {
    if cfg.weights == "random" {
        return build(wrap(Box::new(RandomInit::new(cfg.seed))));
    }
    let path = Path::new(&cfg.weights);
    if !path.exists() {
        bail!(not_found(path));
    }
    let ckpt = checkpoint::read(path, cfg.format, cfg.key.as_deref())?;
    if let Some(dropped) = &ckpt.dropped {
        eprintln!("{}: {}", path.display(), dropped.summary());
    }
    let mut tensors = ckpt.tensors;
    let order = cfg.weights_channel_order.unwrap_or(ckpt.channel_order);
    if order == ChannelOrder::Bgr {
        to_rgb_input(&mut tensors, cfg.family()?.0.first_conv())
            .with_context(|| format!("checkpoint {}", path.display()))?;
    }
    let checked = CheckedTensors::new(tensors);
    let built = build(wrap(Box::new(checked.clone())));
    let (report, unexpected) = checked.finish(|name| !whole || is_head_or_buffer(name));
    if !report.missing.is_empty() || !report.mismatched.is_empty() || !unexpected.is_empty() {
        bail!(fit_message(path, &cfg.arch_id()?, &report, &unexpected));
    }
    built
}

/// The message for a `weights` file that is not there.
fn not_found(path: &Path) -> String {
    format!(
        "checkpoint {} not found: fix `weights` in the backbone TOML, or download the file \
         (the released models' TOMLs, configs/backbones/goyal2019_*.toml, give its URL)",
        path.display()
    )
}

/// Reverses the input channels of the first convolution `name` (BGR-trained weights become
/// RGB-taking ones). A missing conv is left for the fit check to report.
fn to_rgb_input(tensors: &mut std::collections::HashMap<String, Tensor>, name: &str) -> Result<()> {
    let Some(w) = tensors.get(name) else {
        return Ok(());
    };
    if w.rank() != 4 || w.dim(1)? != 3 {
        bail!(
            "`{name}` has shape {:?}, not 3 input channels: `weights_channel_order` applies to \
             colour inputs; remove it from the backbone TOML",
            w.dims()
        );
    }
    let flipped = w.flip(&[1])?.contiguous()?;
    tensors.insert(name.to_string(), flipped);
    Ok(())
}

/// Stages of a ResNet-50 backbone as trainable convolutions over frozen batch norms
/// ([`AffineConv`], Detectron's heads and fine-tuned stages), their weights from the
/// backbone's checkpoint (or its seeded init), recorded in `params` under torchvision's names.
pub fn affine_stages(
    cfg: &BackboneConfig,
    plans: &[StagePlan],
    params: &crate::train::params::Params,
    device: &Device,
) -> Result<Vec<Stage<AffineConv>>> {
    let (family, width) = cfg.family()?;
    if family != Family::ResNet50 {
        bail!(
            "{} has no ResNet stages: the Fast R-CNN C4 heads need a resnet50 backbone",
            family.name()
        );
    }
    with_some_weights(
        cfg,
        false,
        |source| params.var_builder(source, device),
        |vb| {
            plans
                .iter()
                .map(|&plan| {
                    let plan = StagePlan {
                        stride_in_1x1: cfg.stride_in_1x1,
                        ..plan
                    };
                    Ok(Stage::new(width, plan, &vb, &())?)
                })
                .collect()
        },
    )
}

/// [`with_weights_wrapped`] with a plain `VarBuilder`.
fn with_weights<T>(
    cfg: &BackboneConfig,
    device: &Device,
    build: impl FnOnce(VarBuilder<'static>) -> Result<T>,
) -> Result<T> {
    let dev = device.clone();
    with_weights_wrapped(
        cfg,
        move |b| VarBuilder::from_backend(b, DType::F32, dev),
        build,
    )
}

/// Checkpoint entries that a trunk is expected to leave unused: classifier heads, batch-norm
/// counters, VISSL heads.
fn is_head_or_buffer(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
        || ["fc.", "classifier.", "heads.", "head."]
            .iter()
            .any(|p| name.starts_with(p))
}

fn fit_message(
    path: &Path,
    arch: &str,
    report: &params::FitReport,
    unexpected: &[String],
) -> String {
    let mut msg = format!("checkpoint {} does not fit {arch}:", path.display());
    let list = |v: &[String]| crate::train::params::short_list(v, 12);
    if !report.missing.is_empty() {
        msg += &format!(
            "\n  missing keys ({}): {}",
            report.missing.len(),
            list(&report.missing)
        );
    }
    if !unexpected.is_empty() {
        msg += &format!(
            "\n  unexpected keys ({}): {}",
            unexpected.len(),
            list(unexpected)
        );
    }
    if !report.mismatched.is_empty() {
        let shapes: Vec<String> = report
            .mismatched
            .iter()
            .map(|(n, got, want)| format!("{n}: checkpoint {got:?} vs model {want:?}"))
            .collect();
        msg += &format!(
            "\n  mismatched shapes ({}): {}",
            shapes.len(),
            list(&shapes)
        );
    }
    msg + "\n  fix: check `arch`/`width` in the backbone TOML, or `format`/`key` for wrapped checkpoints"
}
