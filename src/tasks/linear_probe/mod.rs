//! `task = "linear_probe"`: linear classifiers on frozen taps, Places205 / ImageNet style
//! (protocols.md section 4, `tasks/places205_linear.toml`).
//!
//! Two modes. `fast` trains the heads on the cached test-transform features of the training
//! split, for as many epochs as asked without touching an image. `paper` trains as the paper
//! did: every batch goes through the train augmentation and the frozen trunk. Both evaluate on
//! the cached test-transform features of the val split and report top-1 and top-5 per tap,
//! labelled with the mode that produced them.

use super::{cache_ref, RunContext, Setup, TaskOutput};
use crate::backbone::{Backbone, Tap};
use crate::data::augment::AugmentConfig;
use crate::data::{decode, Dataset, ImageError};
use crate::features::pooling::pool;
use crate::features::Extracted;
use crate::linear::probe::{Batches, Probe, ProbeConfig, Schedule, TapShape};
use crate::metrics::top_k_accuracy;
use crate::report::Metric;
use crate::train::prefetch::with_prefetch;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

/// How the heads see the training images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// Cached features of the test transform.
    Fast,
    /// The train augmentation, online through the trunk.
    Paper,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Fast => "fast",
            Mode::Paper => "paper",
        }
    }
}

/// The `[probe]` table: the mode, the protocol variant, and one table per variant.
#[derive(Deserialize)]
struct ProbeSection {
    mode: Mode,
    variant: String,
    seed: u64,
    log_every: usize,
    #[serde(flatten)]
    variants: BTreeMap<String, ProbeConfig>,
}

/// Everything the task reads from the config document.
struct TaskConfig {
    mode: Mode,
    variant: String,
    seed: u64,
    log_every: usize,
    probe: ProbeConfig,
    augment: AugmentConfig,
    train: String,
    val: String,
}

impl TaskConfig {
    fn from_doc(doc: &toml::Table) -> Result<Self> {
        let section: ProbeSection = crate::config::section(doc, "probe")?;
        let probe = section
            .variants
            .get(&section.variant)
            .cloned()
            .with_context(|| {
                let known: Vec<&str> = section.variants.keys().map(String::as_str).collect();
                format!(
                    "probe.variant = \"{}\" has no [probe.{}] table: use one of {}",
                    section.variant,
                    section.variant,
                    known.join(", ")
                )
            })?;
        probe
            .validate()
            .with_context(|| format!("in [probe.{}]", section.variant))?;
        ensure!(section.log_every > 0, "probe.log_every must be positive");
        let augment: AugmentConfig = crate::config::section(doc, "augment")?;
        augment.validate()?;
        let data = super::DataSection::of(doc);
        Ok(Self {
            mode: section.mode,
            variant: section.variant,
            seed: section.seed,
            log_every: section.log_every,
            probe,
            augment,
            train: data.spec("train")?,
            val: data.spec("val")?,
        })
    }
}

/// The sections this task reads besides the shared ones.
pub const SECTIONS: &[&str] = &["probe", "augment"];

/// Runs the task.
pub fn run(ctx: &RunContext) -> Result<TaskOutput> {
    let cfg = TaskConfig::from_doc(&ctx.setup.doc)?;
    let (setup, taps) = (ctx.setup, ctx.taps);
    let mut out = TaskOutput::default();
    let clock = Instant::now();
    let (val_set, val_entries) = setup.features(&cfg.val, taps)?;
    let (train_set, train_entries) = match cfg.mode {
        Mode::Fast => setup.features(&cfg.train, taps)?,
        // Only the dataset: nothing is extracted, the images go through the trunk online.
        Mode::Paper => (setup.dataset(&cfg.train)?, Vec::new()),
    };
    out.cache
        .extend(val_entries.iter().map(|e| cache_ref(&cfg.val, e)));
    out.cache
        .extend(train_entries.iter().map(|e| cache_ref(&cfg.train, e)));
    let net = Backbone::load(&setup.backbone, &setup.device)?;
    let shapes = tap_shapes(&net, taps, setup)?;
    let classes = train_set.classes.len();
    let streams: Vec<u64> = taps.iter().map(|t| *t as u64).collect();
    let mut probe = Probe::new(
        &shapes,
        &streams,
        classes,
        &cfg.probe,
        cfg.seed,
        &setup.device,
    )?;
    let features_s = clock.elapsed().as_secs_f64();

    let clock = Instant::now();
    let (schedule, curves) = match cfg.mode {
        Mode::Fast => train_cached(
            &mut probe,
            &cfg,
            setup,
            taps,
            &train_entries,
            &shapes,
            classes,
        )?,
        Mode::Paper => train_online(&mut probe, &cfg, &net, taps, setup, &train_set, classes)?,
    };
    let train_s = clock.elapsed().as_secs_f64();

    let clock = Instant::now();
    let mut heads = serde_json::Map::new();
    for (h, (entry, shape)) in val_entries.iter().zip(&shapes).enumerate() {
        let (top1, top5) = evaluate(&probe, h, &cfg, setup, entry, *shape, classes)?;
        let tap = entry.tap.name();
        for (name, value) in [("top1", top1), ("top5", top5)] {
            eprintln!("{tap} {name}: {value:.2}");
            out.metrics.push(Metric {
                tap: tap.to_string(),
                name: name.into(),
                value,
                variant: Some(cfg.mode.name().into()),
                ..Metric::default()
            });
        }
        heads.insert(
            tap.to_string(),
            json!({ "channels": shape.channels, "dim": shape.dim, "loss_curve": curves[h] }),
        );
    }
    let eval_s = clock.elapsed().as_secs_f64();

    out.details = json!({
        "mode": cfg.mode.name(),
        "variant": cfg.variant,
        "seed": cfg.seed,
        "protocol": cfg.probe,
        "schedule": schedule,
        "augment": (cfg.mode == Mode::Paper).then_some(&cfg.augment),
        "classes": classes,
        "train": { "spec": cfg.train, "images": train_set.samples.len() },
        "val": { "spec": cfg.val, "images": val_set.samples.len() },
        "log_every": cfg.log_every,
        "heads": heads,
    });
    let per_s = schedule.iterations as f64 / train_s.max(1e-9);
    for (k, v) in [
        ("features_s", features_s),
        ("train_s", train_s),
        ("eval_s", eval_s),
        ("iterations_per_s", per_s),
    ] {
        out.timings.insert(k.into(), v.into());
    }
    Ok(out)
}

/// Channels and pooled dimension of every tap, from one forward pass of a blank image at the
/// transform's size (the cache stores pooled maps flattened).
fn tap_shapes(net: &Backbone, taps: &[Tap], setup: &Setup) -> Result<Vec<TapShape>> {
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
fn read_split(
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
fn single_labels(targets: &ndarray::Array2<i32>, classes: usize, spec: &str) -> Result<Vec<u32>> {
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
fn index_tensor(rows: &[usize], device: &Device) -> Result<Tensor> {
    let rows: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
    let n = rows.len();
    Ok(Tensor::from_vec(rows, n, device)?)
}

/// The loss of one head averaged over every `log_every` iterations: `[iteration, loss]`.
type LossCurve = Vec<(usize, f64)>;

/// The training loop shared by both modes: `next(it)` gives the inputs of every head and the
/// labels of iteration `it`.
fn train(
    probe: &mut Probe,
    cfg: &TaskConfig,
    schedule: &Schedule,
    taps: &[Tap],
    mut next: impl FnMut(usize) -> Result<(Vec<Tensor>, Tensor)>,
) -> Result<Vec<LossCurve>> {
    let bar = crate::progress::bar(schedule.iterations as u64, "training", "iterations");
    let mut curves = vec![LossCurve::new(); taps.len()];
    let mut window = vec![0.0f64; taps.len()];
    let mut since = 0;
    for it in 0..schedule.iterations {
        let (inputs, labels) = next(it)?;
        let losses = probe.step(&inputs, &labels, cfg.probe.lr_at(schedule, it))?;
        for (w, l) in window.iter_mut().zip(&losses) {
            *w += f64::from(*l);
        }
        since += 1;
        if since == cfg.log_every || it + 1 == schedule.iterations {
            for (curve, w) in curves.iter_mut().zip(window.iter_mut()) {
                curve.push((it + 1, *w / since as f64));
                *w = 0.0;
            }
            since = 0;
            let msg: Vec<String> = taps
                .iter()
                .zip(&curves)
                .map(|(t, c)| format!("{t} {:.3}", c.last().map_or(0.0, |p| p.1)))
                .collect();
            bar.set_message(format!("loss {}", msg.join(" ")));
        }
        bar.inc(1);
        if losses.iter().any(|l| !l.is_finite()) {
            bail!(
                "the loss diverged at iteration {it}: lower the variant's lr (--set \
                 probe.{}.lr=...)",
                cfg.variant
            );
        }
    }
    bar.finish();
    Ok(curves)
}

/// Fast mode: batches of the cached train features, reshuffled every epoch.
fn train_cached(
    probe: &mut Probe,
    cfg: &TaskConfig,
    setup: &Setup,
    taps: &[Tap],
    entries: &[Extracted],
    shapes: &[TapShape],
    classes: usize,
) -> Result<(Schedule, Vec<LossCurve>)> {
    let (features, labels) = read_split(setup, &cfg.train, entries, shapes, classes)?;
    let images = labels.dim(0)?;
    let schedule = cfg.probe.schedule(images)?;
    let mut batches = Batches::new(images, cfg.probe.batch_size, cfg.seed);
    let curves = train(probe, cfg, &schedule, taps, |it| {
        let (_, rows) = batches.get(it);
        let index = index_tensor(rows, &setup.device)?;
        let inputs = features
            .iter()
            .map(|f| f.index_select(&index, 0))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok((inputs, labels.index_select(&index, 0)?))
    })?;
    Ok((schedule, curves))
}

/// A decoded, augmented batch: the CHW inputs and the labels.
type Prepared = Result<(Vec<f32>, Vec<u32>)>;

/// Paper mode: each batch is decoded and augmented (seeded per epoch and image) one batch
/// ahead, in parallel, then goes through the trunk and the protocol's pooling.
fn train_online(
    probe: &mut Probe,
    cfg: &TaskConfig,
    net: &Backbone,
    taps: &[Tap],
    setup: &Setup,
    dataset: &Dataset,
    classes: usize,
) -> Result<(Schedule, Vec<LossCurve>)> {
    let labels: Vec<u32> = dataset
        .samples
        .iter()
        .map(|s| match s.target.as_slice() {
            [c] if *c >= 0 && (*c as usize) < classes => Ok(*c as u32),
            _ => bail!(
                "image {} has target {:?}: a linear probe needs single-label data (list: or \
                 imagefolder:)",
                s.path.display(),
                s.target
            ),
        })
        .collect::<Result<_>>()?;
    let schedule = cfg.probe.schedule(dataset.samples.len())?;
    let tf = &setup.extract.transform;
    let size = tf.size as usize;
    let mut batches = Batches::new(dataset.samples.len(), cfg.probe.batch_size, cfg.seed);
    let prepare = |it: usize| -> Prepared {
        let (epoch, rows) = batches.get(it);
        rows.par_iter()
            .map(|&i| {
                let path = &dataset.samples[i].path;
                let mut rng = crate::seed::probe_stream(cfg.seed, &[epoch as u64, i as u64]);
                cfg.augment
                    .apply(&decode(path)?, tf, &mut rng)
                    .map_err(|source| ImageError::Transform {
                        path: path.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<Vec<f32>>, ImageError>>()
            .map(|images| {
                let targets = rows.iter().map(|&i| labels[i]).collect();
                (images.concat(), targets)
            })
            .with_context(|| {
                format!(
                    "preparing the batch of iteration {it} (paper mode reads every train image \
                     and skips none: fix or remove the image)"
                )
            })
    };
    let curves = with_prefetch(0..schedule.iterations, prepare, |prepared| {
        train(probe, cfg, &schedule, taps, |_| {
            let (pixels, targets) = prepared.next()?;
            let n = targets.len();
            let x = Tensor::from_vec(pixels, (n, 3, size, size), net.device())?;
            let maps = net.forward_taps(&x, taps)?;
            let inputs = taps
                .iter()
                .zip(&maps)
                .map(|(tap, map)| pool(map, setup.extract.pooling.get(*tap)))
                .collect::<Result<Vec<_>>>()?;
            Ok((inputs, Tensor::from_vec(targets, n, net.device())?))
        })
    })?;
    Ok((schedule, curves))
}

/// Top-1 and top-5 accuracy (percent) of head `h` on the cached val entry of its tap, in
/// batches of the variant's batch size.
fn evaluate(
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
