//! Reading checkpoints into a flat map of torchvision-style parameter names: safetensors,
//! PyTorch zip `.pth`/`.torch` files (bare state dicts, dicts wrapped under `state_dict` or
//! `model`, `module.` prefixes), VISSL checkpoints
//! (`classy_state_dict.base_model.model.trunk._feature_blocks.*`), and Caffe2 `.pkl` blob
//! dictionaries ([`super::caffe2`]).

use super::caffe2::{self, Dropped};
use crate::data::pickle::{self, PyValue};
use crate::data::transform::ChannelOrder;
use anyhow::{bail, Context, Result};
use candle_core::pickle::{Object, Stack};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

/// The layout of the names inside a checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointFormat {
    /// Detect: a Caffe2 blob dict for a `.pkl` file (or a bare pickle of a dict), else a
    /// VISSL trunk if present, else a state dict (possibly wrapped).
    #[default]
    Auto,
    /// torchvision names, possibly under `state_dict`/`model` and with `module.` prefixes.
    Torchvision,
    /// VISSL: `classy_state_dict` -> `base_model` -> `model` -> `trunk`, `_feature_blocks.*`.
    Vissl,
    /// FAIR's and Detectron's Caffe2 `.pkl` files: a `blobs` dict of numpy arrays.
    Caffe2,
}

/// A checkpoint read into our names.
pub struct Checkpoint {
    /// The tensors, on the CPU, under the architecture's published names.
    pub tensors: HashMap<String, Tensor>,
    /// The channel order the first convolution was trained on: BGR for Caffe2 files (their
    /// models were fed by OpenCV), RGB for the others.
    pub channel_order: ChannelOrder,
    /// The entries of a Caffe2 file left out of the trunk (momentum, heads, ...).
    pub dropped: Option<Dropped>,
}

/// Where VISSL keeps the trunk.
const VISSL_TRUNK: &str = "classy_state_dict.base_model.model.trunk.";
/// Wrappers under which training scripts commonly save the state dict, tried in order.
const WRAPPERS: [&str; 4] = ["state_dict.", "model.", "model_state.", "net."];

/// Reads every tensor of a checkpoint (on the CPU) and maps the names onto the
/// architecture's published names. `key` selects a sub-dictionary by dotted path.
pub fn read(path: &Path, format: CheckpointFormat, key: Option<&str>) -> Result<Checkpoint> {
    let is_pkl = path.extension().is_some_and(|e| e == "pkl");
    let caffe2 = match format {
        CheckpointFormat::Caffe2 => Some(caffe2::read(path, key)?),
        CheckpointFormat::Auto if is_pkl => Some(caffe2::read(path, key)?),
        CheckpointFormat::Auto => bare_pickle_dict(path)
            .map(|root| caffe2::from_pickle(&root, path, key))
            .transpose()?,
        _ => None,
    };
    if let Some(model) = caffe2 {
        return Ok(Checkpoint {
            tensors: model.tensors,
            channel_order: ChannelOrder::Bgr,
            dropped: Some(model.dropped),
        });
    }
    let raw = if path.extension().is_some_and(|e| e == "safetensors") {
        candle_core::safetensors::load(path, &Device::Cpu)
            .with_context(|| format!("cannot read safetensors checkpoint {}", path.display()))?
    } else {
        read_torch_zip(path)?
    };
    let tensors = select(raw, format, key)
        .with_context(|| format!("no state dict found in {}", path.display()))?;
    Ok(Checkpoint {
        tensors,
        channel_order: ChannelOrder::Rgb,
        dropped: None,
    })
}

/// The top-level dict of a bare pickle (not a zip, not safetensors), read once: a Caffe2
/// model under another name. A legacy non-zip PyTorch file, whose first pickle is a magic
/// number, is not one.
fn bare_pickle_dict(path: &Path) -> Option<PyValue> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        return None;
    }
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .ok()?;
    if head[0] != 0x80 {
        return None;
    }
    match pickle::read(path) {
        Ok(root @ PyValue::Dict(_)) => Some(root),
        _ => None,
    }
}

/// Picks the state dict out of the flattened checkpoint and normalises its names.
fn select(
    mut raw: HashMap<String, Tensor>,
    format: CheckpointFormat,
    key: Option<&str>,
) -> Result<HashMap<String, Tensor>> {
    let has = |raw: &HashMap<String, Tensor>, p: &str| raw.keys().any(|k| k.starts_with(p));
    let prefix = match (key, format) {
        (Some(k), _) => format!("{}.", k.trim_end_matches('.')),
        (None, CheckpointFormat::Vissl) => VISSL_TRUNK.to_string(),
        (None, _) if format == CheckpointFormat::Auto && has(&raw, VISSL_TRUNK) => {
            VISSL_TRUNK.to_string()
        }
        (None, _) => WRAPPERS
            .iter()
            .find(|w| has(&raw, w))
            .map(|w| w.to_string())
            .unwrap_or_default(),
    };
    if !prefix.is_empty() && !has(&raw, &prefix) {
        let mut tops: Vec<&str> = raw
            .keys()
            .map(|k| k.split('.').next().unwrap_or(k))
            .collect();
        tops.sort();
        tops.dedup();
        bail!(
            "no tensors under `{prefix}`; top-level keys are: {}",
            tops.join(", ")
        );
    }
    let out: HashMap<String, Tensor> = raw
        .drain()
        .filter_map(|(k, t)| k.strip_prefix(prefix.as_str()).map(|k| (normalise(k), t)))
        .collect();
    if out.is_empty() {
        bail!("the checkpoint holds no tensors");
    }
    Ok(out)
}

/// Strips data-parallel and VISSL block prefixes from one parameter name.
fn normalise(mut name: &str) -> String {
    while let Some(rest) = name
        .strip_prefix("module.")
        .or_else(|| name.strip_prefix("_feature_blocks."))
    {
        name = rest;
    }
    name.to_string()
}

/// Reads a PyTorch zip checkpoint (torch >= 1.6) and flattens every nested dictionary into
/// dotted names, however deep.
fn read_torch_zip(path: &Path) -> Result<HashMap<String, Tensor>> {
    let legacy = || {
        format!(
            "{} is not a zip-format PyTorch checkpoint (torch >= 1.6). Re-save it with a recent \
             torch, or convert it: python3 data-scripts/convert_checkpoint.py {} out.safetensors",
            path.display(),
            path.display()
        )
    };
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open checkpoint {}", path.display()))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).with_context(legacy)?;
    let pkl = (0..zip.len())
        .filter_map(|i| zip.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with("data.pkl"))
        .with_context(legacy)?;
    let dir = pkl.trim_end_matches(".pkl").to_string();
    let mut stack = Stack::empty();
    stack
        .read_loop(&mut BufReader::new(zip.by_name(&pkl)?))
        .with_context(|| format!("cannot unpickle {} in {}", pkl, path.display()))?;
    let root = stack.finalize()?;
    let mut infos = Vec::new();
    flatten(root, String::new(), &dir, &mut infos)?;
    let mut out = HashMap::with_capacity(infos.len());
    for info in infos {
        let tensor = load_tensor(&mut zip, &info)
            .with_context(|| format!("cannot read tensor `{}` of {}", info.name, path.display()))?;
        out.insert(info.name.clone(), tensor);
    }
    Ok(out)
}

fn flatten(
    obj: Object,
    prefix: String,
    dir: &str,
    out: &mut Vec<candle_core::pickle::TensorInfo>,
) -> Result<()> {
    let Object::Dict(entries) = obj else {
        return Ok(());
    };
    for (k, v) in entries {
        let name = match &k {
            Object::Unicode(s) => s.clone(),
            Object::Int(i) => i.to_string(),
            Object::Long(i) => i.to_string(),
            _ => continue,
        };
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        match v {
            Object::Dict(_) => flatten(v, full, dir, out)?,
            v => {
                if let Some(info) = v.into_tensor_info(Object::Unicode(full), Path::new(dir))? {
                    out.push(info);
                }
            }
        }
    }
    Ok(())
}

fn load_tensor<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    info: &candle_core::pickle::TensorInfo,
) -> Result<Tensor> {
    let layout = &info.layout;
    let fortran = layout.is_fortran_contiguous() && !layout.is_contiguous();
    if !layout.is_contiguous() && !fortran {
        bail!("strided tensor storage is not supported; save with .contiguous() tensors");
    }
    let mut reader = zip.by_name(&info.path)?;
    std::io::copy(
        &mut reader.by_ref().take(layout.start_offset() as u64),
        &mut std::io::sink(),
    )?;
    let dims = layout.dims().to_vec();
    let mut bytes = vec![0u8; layout.shape().elem_count() * info.dtype.size_in_bytes()];
    reader.read_exact(&mut bytes)?;
    if fortran {
        let reversed: Vec<usize> = dims.iter().rev().copied().collect();
        let t = Tensor::from_raw_buffer(&bytes, info.dtype, &reversed, &Device::Cpu)?;
        let perm: Vec<usize> = (0..dims.len()).rev().collect();
        Ok(t.permute(perm)?.contiguous()?)
    } else {
        Ok(Tensor::from_raw_buffer(
            &bytes,
            info.dtype,
            &dims,
            &Device::Cpu,
        )?)
    }
}
