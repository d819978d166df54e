//! The cached splits as the heads read them: every tap's channels and pooled dimension, the
//! entries of a split as `N x dim` tensors, and their single-label targets.

use crate::backbone::{Backbone, Tap};
use crate::features::pooling::pool;
use crate::features::Extracted;
use crate::linear::probe::TapShape;
use crate::tasks::Setup;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor};

/// Channels and pooled dimension of every tap, from one forward pass of a blank image at the
/// transform's size (the cache stores pooled maps flattened).
pub(super) fn tap_shapes(net: &Backbone, taps: &[Tap], setup: &Setup) -> Result<Vec<TapShape>> {
    let size = setup.extract.transform.size as usize;
    let blank = Tensor::zeros((1, 3, size, size), DType::F32, net.device())?;
    let maps = net.forward_taps(&blank, taps)?;
    taps.iter()
        .zip(&maps)
        .map(|(tap, map)| {
            let pooled = pool(map, setup.extract.pooling.get(*tap))?;
            Ok(TapShape {
                channels: map.dim(1)?,
                dim: pooled.elem_count(),
            })
        })
        .collect()
}

/// Reads the cached entries of `spec` (one per tap, same images) as `N x dim` tensors on the
/// device, and their single-label targets as a u32 tensor.
pub(super) fn read_split(
    setup: &Setup,
    spec: &str,
    entries: &[Extracted],
    shapes: &[TapShape],
    classes: usize,
) -> Result<(Vec<Tensor>, Tensor)> {
    let mut features = Vec::with_capacity(entries.len());
    let mut labels = None;
    for (e, shape) in entries.iter().zip(shapes) {
        let entry = setup.store.read(&e.key)?;
        let n = entry.ids.len();
        let dim = entry.features.len() / n.max(1);
        ensure!(
            dim == shape.dim,
            "cache entry {} of tap {} has {dim}-dim rows, the probe expects {}: extract both \
             splits with the same [transform] and [pooling]",
            e.path.display(),
            e.tap,
            shape.dim
        );
        if labels.is_none() {
            labels = Some(single_labels(&entry.targets, classes, spec)?);
        }
        let (raw, _) = entry.features.into_raw_vec_and_offset();
        features.push(Tensor::from_vec(raw, (n, dim), &setup.device)?);
    }
    let labels = labels.context("no tap to read")?;
    let n = labels.len();
    Ok((features, Tensor::from_vec(labels, n, &setup.device)?))
}

/// The class of every row of a single-label target table, checked against `classes`.
pub(super) fn single_labels(
    targets: &ndarray::Array2<i32>,
    classes: usize,
    spec: &str,
) -> Result<Vec<u32>> {
    if targets.ncols() != 1 {
        bail!(
            "a linear probe needs single-label data (list: or imagefolder:), but {spec} has {} \
             targets per image",
            targets.ncols()
        );
    }
    targets
        .column(0)
        .iter()
        .map(|&t| {
            u32::try_from(t)
                .ok()
                .filter(|&c| (c as usize) < classes)
                .with_context(|| {
                    format!(
                        "label {t} is outside the {classes} classes of the training split: use \
                         the same class list for both splits (data.classes)"
                    )
                })
        })
        .collect()
}

/// Row indices as a u32 tensor for `index_select`.
pub(super) fn index_tensor(rows: &[usize], device: &Device) -> Result<Tensor> {
    let rows: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
    let n = rows.len();
    Ok(Tensor::from_vec(rows, n, device)?)
}
