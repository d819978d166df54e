//! Top-1 and top-5 accuracy of each head on the cached val features of its tap.

use super::config::TaskConfig;
use super::split::read_split;
use crate::features::Extracted;
use crate::linear::probe::{Probe, TapShape};
use crate::metrics::top_k_accuracy;
use crate::tasks::Setup;
use anyhow::Result;

/// Top-1 and top-5 accuracy (percent) of head `h` on the cached val entry of its tap, in
/// batches of the variant's batch size.
pub(super) fn evaluate(
    probe: &Probe,
    h: usize,
    cfg: &TaskConfig,
    setup: &Setup,
    entry: &Extracted,
    shape: TapShape,
    classes: usize,
) -> Result<(f64, f64)> {
    let (features, labels) = read_split(
        setup,
        &cfg.val,
        std::slice::from_ref(entry),
        &[shape],
        classes,
    )?;
    let labels: Vec<usize> = labels
        .to_vec1::<u32>()?
        .into_iter()
        .map(|l| l as usize)
        .collect();
    let n = labels.len();
    let batch = cfg.probe.batch_size;
    let mut logits = Vec::with_capacity(n * classes);
    for start in (0..n).step_by(batch) {
        let x = features[0].narrow(0, start, batch.min(n - start))?;
        logits.extend(probe.heads()[h].eval(&x)?.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((
        top_k_accuracy(&logits, classes, &labels, 1),
        top_k_accuracy(&logits, classes, &labels, 5),
    ))
}
