//! FAIR's Caffe2 model files (fair_self_supervision_benchmark MODEL_ZOO.md, Detectron's
//! ImageNet models): Python 2 pickles of a `blobs` dict of numpy arrays with Caffe2 blob
//! names, mapped onto torchvision's ResNet-50 names and VISSL's `alexnet_jigsaw` names.
//!
//! Blob names, from the benchmark's model builders:
//! - ResNet-50 (`resnet_model_helper.py`): `conv1_w`, `res_conv1_bn_{s,b,rm,riv}`, and per
//!   bottleneck `res<stage>_<block>_branch2{a,b,c}_w` with `..._bn_{s,b,rm,riv}`, the
//!   projection `..._branch1_w` / `..._branch1_bn_*`. `s`/`b` are the batch norm's scale and
//!   shift, `rm`/`riv` its running mean and variance.
//! - The Jigsaw AlexNet (`alexnet_jigsaw_finetune_linear.py`): `conv<k>_w`, `conv<k>_b`, and
//!   `conv<k>_bn_*` for conv3..conv5.
//! - Jigsaw models are siamese: every name carries its tower, `res2_0_branch2a_s0_w`,
//!   `res2_0_branch2a_bn_s0_s`. Tower 0 is the trunk (the tower tag is removed, as
//!   `extra_scripts/pickle_jigsaw_model.py` does); the other towers are dropped.
//! - Detectron's and MSRA's files hold affine-channel layers (`_bn_s`, `_bn_b` only): they
//!   load as batch norms with mean 0 and variance `1 - eps`, which fold to the same affine map.
//!
//! Dropped, and listed in [`Dropped`]: `X_momentum` blobs (the solver's state saved beside
//! each parameter), bookkeeping (`model_iter`, `lr`, `epoch`, any non-array value), the
//! other siamese towers, and heads (`pred_*`, `fc*`, linear-probe `*_cls_*` and `*_resize_*`
//! blobs). Any other blob keeps its Caffe2 name, so that it shows as an unexpected key in the
//! one "does not fit" message.

use super::layers::BN_EPS;
use crate::data::pickle::{self, PyValue};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Caffe2 batch-norm blob suffixes and their torchvision names.
const BN: [(&str, &str); 4] = [
    ("s", "weight"),
    ("b", "bias"),
    ("rm", "running_mean"),
    ("riv", "running_var"),
];

/// Top-level entries of a blob dict that are training bookkeeping, not weights.
const BOOKKEEPING: [&str; 3] = ["model_iter", "lr", "epoch"];

/// The Jigsaw AlexNet's conv layers (conv1..conv5) under VISSL's `alexnet_jigsaw` block indices.
const ALEXNET_BLOCKS: [&str; 5] = ["0", "2", "4", "5", "6"];

/// The blobs of a Caffe2 model file that were left out of the trunk, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// `X_momentum`: the SGD momentum of parameter `X`.
    pub momentum: Vec<String>,
    /// Classifier, pretext and linear-probe heads.
    pub heads: Vec<String>,
    /// Siamese towers other than tower 0 of a Jigsaw model.
    pub towers: Vec<String>,
    /// `model_iter`, `lr`, `epoch` and other entries that are not arrays.
    pub bookkeeping: Vec<String>,
}

impl Dropped {
    /// One line saying how many blobs of each kind were dropped, with the first few names.
    pub fn summary(&self) -> String {
        let kinds = [
            ("momentum", &self.momentum),
            ("heads", &self.heads),
            ("other siamese towers", &self.towers),
            ("bookkeeping", &self.bookkeeping),
        ];
        let parts: Vec<String> = kinds
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(kind, v)| {
                format!(
                    "{kind} ({}: {})",
                    v.len(),
                    crate::train::params::short_list(v, 4)
                )
            })
            .collect();
        if parts.is_empty() {
            "nothing dropped".into()
        } else {
            format!("dropped {}", parts.join("; "))
        }
    }
}

/// A Caffe2 model file read into trunk tensors with our names.
pub struct Caffe2Model {
    /// The trunk's tensors under torchvision (ResNet) or VISSL (Jigsaw AlexNet) names.
    pub tensors: HashMap<String, Tensor>,
    /// What was left out.
    pub dropped: Dropped,
}

/// Reads a Caffe2 `.pkl` model file. The blobs are taken from `key` (a dotted path) if
/// given, else from the top-level `blobs` entry, else from the top-level dict itself.
pub fn read(path: &Path, key: Option<&str>) -> Result<Caffe2Model> {
    let root = pickle::read(path).with_context(|| {
        format!(
            "cannot read Caffe2 model {}: if it was cut short, download it again",
            path.display()
        )
    })?;
    from_pickle(&root, path, key)
}

/// [`read`] on the pickle `root` already read from the file `path`.
pub fn from_pickle(root: &PyValue, path: &Path, key: Option<&str>) -> Result<Caffe2Model> {
    let blobs = match key {
        Some(k) => k
            .split('.')
            .try_fold(root, |v, part| v.get(part))
            .with_context(|| format!("{} has no entry `{k}`: fix `key`", path.display()))?,
        None => root.get("blobs").unwrap_or(root),
    };
    let PyValue::Dict(entries) = blobs else {
        bail!(
            "{} is not a Caffe2 blob dictionary (its top level is a {}): set `format` to the \
             file's layout",
            path.display(),
            blobs.type_name()
        );
    };
    from_blobs(entries).with_context(|| format!("cannot read Caffe2 model {}", path.display()))
}

/// Maps a blob dict onto our names, dropping what is not trunk.
fn from_blobs(entries: &[(PyValue, PyValue)]) -> Result<Caffe2Model> {
    let mut dropped = Dropped::default();
    let mut kept: Vec<(String, &pickle::NdArray)> = Vec::new();
    for (k, v) in entries {
        let Some(name) = k.text() else { continue };
        let name = name.into_owned();
        let Some(array) = v.as_array() else {
            dropped.bookkeeping.push(name);
            continue;
        };
        if BOOKKEEPING.contains(&name.as_str()) {
            dropped.bookkeeping.push(name);
        } else if name.ends_with("_momentum") {
            dropped.momentum.push(name);
        } else {
            match split_tower(&name) {
                Some((0, trunk)) => kept.push((trunk, array)),
                Some(_) => dropped.towers.push(name),
                None => kept.push((name, array)),
            }
        }
    }
    let resnet = kept.iter().any(|(n, _)| n.starts_with("res"));
    let mut tensors = HashMap::with_capacity(kept.len());
    for (name, array) in kept {
        let ours = if resnet {
            resnet_name(&name)
        } else {
            alexnet_jigsaw_name(&name)
        };
        let ours = match ours {
            Some(o) => o,
            None if is_head(&name) => {
                dropped.heads.push(name);
                continue;
            }
            None => name.clone(),
        };
        let values = array
            .to_f32_vec()
            .with_context(|| format!("blob `{name}` is not a float array"))?;
        let tensor = Tensor::from_vec(values, array.shape.as_slice(), &Device::Cpu)?;
        tensors.insert(ours, tensor);
    }
    add_affine_statistics(&mut tensors)?;
    for list in [
        &mut dropped.momentum,
        &mut dropped.heads,
        &mut dropped.towers,
        &mut dropped.bookkeeping,
    ] {
        list.sort();
    }
    Ok(Caffe2Model { tensors, dropped })
}

/// The siamese tower of a Jigsaw blob name and the name without it: `res2_0_branch2a_s0_w`
/// gives (0, `res2_0_branch2a_w`). None for names without a tower tag (`s<digits>` between
/// underscores, never the last part, which is the blob kind).
fn split_tower(name: &str) -> Option<(usize, String)> {
    let parts: Vec<&str> = name.split('_').collect();
    let last = parts.len().checked_sub(1)?;
    let (i, tower) = parts[..last].iter().enumerate().find_map(|(i, p)| {
        let digits = p.strip_prefix('s')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((i, digits.parse().ok()?))
    })?;
    let rest: Vec<&str> = parts
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .map(|(_, p)| *p)
        .collect();
    Some((tower, rest.join("_")))
}

/// A batch-norm blob suffix (`s`, `b`, `rm`, `riv`) as its torchvision name.
fn bn_param(suffix: &str) -> Option<&'static str> {
    BN.iter().find(|(c, _)| *c == suffix).map(|(_, t)| *t)
}

/// A ResNet-50 blob name as torchvision's name: `res3_0_branch1_bn_rm` is
/// `layer2.0.downsample.1.running_mean`.
fn resnet_name(name: &str) -> Option<String> {
    if name == "conv1_w" {
        return Some("conv1.weight".into());
    }
    if let Some(suffix) = name.strip_prefix("res_conv1_bn_") {
        return Some(format!("bn1.{}", bn_param(suffix)?));
    }
    let mut parts = name.splitn(4, '_');
    let stage: usize = parts.next()?.strip_prefix("res")?.parse().ok()?;
    let block: usize = parts.next()?.parse().ok()?;
    let branch = parts.next()?;
    let rest = parts.next()?;
    if !(2..=5).contains(&stage) {
        return None;
    }
    let (conv, bn) = match branch {
        "branch1" => ("downsample.0".to_string(), "downsample.1".to_string()),
        "branch2a" => ("conv1".into(), "bn1".into()),
        "branch2b" => ("conv2".into(), "bn2".into()),
        "branch2c" => ("conv3".into(), "bn3".into()),
        _ => return None,
    };
    let layer = format!("layer{}.{block}", stage - 1);
    match rest {
        "w" => Some(format!("{layer}.{conv}.weight")),
        _ => Some(format!(
            "{layer}.{bn}.{}",
            bn_param(rest.strip_prefix("bn_")?)?
        )),
    }
}

/// A Jigsaw AlexNet blob name (tower tag removed) as VISSL's `alexnet_jigsaw` name:
/// `conv3_bn_riv` is `4.1.running_var`, `conv2_w` is `2.0.weight`.
fn alexnet_jigsaw_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix("conv")?;
    let (k, rest) = rest.split_once('_')?;
    let k: usize = k.parse().ok()?;
    let block = ALEXNET_BLOCKS.get(k.checked_sub(1)?)?;
    match rest {
        "w" => Some(format!("{block}.0.weight")),
        "b" => Some(format!("{block}.0.bias")),
        _ => Some(format!(
            "{block}.1.{}",
            bn_param(rest.strip_prefix("bn_")?)?
        )),
    }
}

/// Heads that a trunk leaves out: classifiers (`pred`, `fc1000`), pretext heads (`fc6`,
/// `fc7`, `fc8`, ...) and the linear probes of the benchmark (`conv1_cls`, `*_resize_bn_*`).
fn is_head(name: &str) -> bool {
    name.starts_with("pred")
        || name.starts_with("fc")
        || name.contains("_cls")
        || name.contains("_resize")
}

/// Affine-channel layers (scale and shift, no statistics) as batch norms: running mean 0,
/// running variance `1 - eps`, so that folding gives back exactly the scale and the shift.
fn add_affine_statistics(tensors: &mut HashMap<String, Tensor>) -> Result<()> {
    let affine: Vec<(String, usize)> = tensors
        .iter()
        .filter_map(|(name, t)| {
            let layer = name.strip_suffix(".weight")?;
            let is_bn = tensors.contains_key(&format!("{layer}.bias"))
                && !tensors.contains_key(&format!("{layer}.running_mean"))
                && !tensors.contains_key(&format!("{layer}.running_var"))
                && t.rank() == 1;
            is_bn.then(|| (layer.to_string(), t.elem_count()))
        })
        .collect();
    for (layer, n) in affine {
        tensors.insert(
            format!("{layer}.running_mean"),
            Tensor::zeros(n, DType::F32, &Device::Cpu)?,
        );
        tensors.insert(
            format!("{layer}.running_var"),
            Tensor::full((1.0 - BN_EPS) as f32, n, &Device::Cpu)?,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_onto_torchvision_and_vissl() {
        let cases = [
            ("conv1_w", "conv1.weight"),
            ("res_conv1_bn_riv", "bn1.running_var"),
            ("res2_0_branch2a_w", "layer1.0.conv1.weight"),
            ("res3_0_branch1_bn_rm", "layer2.0.downsample.1.running_mean"),
            ("res5_2_branch2c_bn_s", "layer4.2.bn3.weight"),
        ];
        for (c2, ours) in cases {
            assert_eq!(resnet_name(c2).as_deref(), Some(ours), "{c2}");
        }
        assert_eq!(resnet_name("res6_0_branch2a_w"), None);
        assert_eq!(resnet_name("pred_w"), None);
        assert_eq!(
            alexnet_jigsaw_name("conv3_bn_riv").as_deref(),
            Some("4.1.running_var")
        );
        assert_eq!(alexnet_jigsaw_name("conv1_b").as_deref(), Some("0.0.bias"));
        assert_eq!(alexnet_jigsaw_name("conv6_w"), None);
    }

    #[test]
    fn towers_are_split_off_names() {
        assert_eq!(
            split_tower("res2_0_branch2a_bn_s0_s"),
            Some((0, "res2_0_branch2a_bn_s".into()))
        );
        assert_eq!(split_tower("conv1_s3_w"), Some((3, "conv1_w".into())));
        assert_eq!(split_tower("res2_0_branch2a_bn_s"), None);
        assert_eq!(split_tower("s0"), None);
    }
}
