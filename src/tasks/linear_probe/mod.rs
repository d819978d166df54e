//! `task = "linear_probe"`: linear classifiers on frozen taps, Places205 / ImageNet style
//! (protocols.md section 4, `tasks/places205_linear.toml`).
//!
//! Two modes. `fast` trains the heads on the cached test-transform features of the training
//! split, for as many epochs as asked without touching an image. `paper` trains as the paper
//! did: every batch goes through the train augmentation and the frozen trunk. Both evaluate on
//! the cached test-transform features of the val split and report top-1 and top-5 per tap,
//! labelled with the mode that produced them.

mod config;
mod evaluate;
mod log;
mod split;
mod train;

use super::{cache_ref, RunContext, TaskOutput};
use crate::backbone::Backbone;
use crate::linear::probe::Probe;
use crate::report::Metric;
use anyhow::Result;
use serde_json::json;
use std::time::Instant;

use config::{Mode, TaskConfig};
use evaluate::evaluate;
use split::tap_shapes;
use train::{train_cached, train_digest, train_online, ProbeRun};

/// The sections this task reads besides the shared ones.
pub const SECTIONS: &[&str] = &["probe", "augment", "run"];

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
    let probe = Probe::new(
        &shapes,
        &streams,
        classes,
        &cfg.probe,
        cfg.seed,
        &setup.device,
    )?;
    let digest = train_digest(
        &cfg,
        taps,
        &shapes,
        classes,
        &setup.backbone.weights_digest()?,
    )?;
    let run_dir = ctx.out.join(&ctx.run);
    let mut run = ProbeRun::open(probe, &cfg, &run_dir, digest)?;
    let features_s = clock.elapsed().as_secs_f64();

    let clock = Instant::now();
    let (schedule, curves) = match cfg.mode {
        Mode::Fast => train_cached(
            &mut run,
            &cfg,
            setup,
            taps,
            &train_entries,
            &shapes,
            classes,
        )?,
        Mode::Paper => train_online(&mut run, &cfg, &net, taps, setup, &train_set, classes)?,
    };
    let train_s = clock.elapsed().as_secs_f64();

    let clock = Instant::now();
    let mut heads = serde_json::Map::new();
    for (h, (entry, shape)) in val_entries.iter().zip(&shapes).enumerate() {
        let (top1, top5) = evaluate(&run.probe, h, &cfg, setup, entry, *shape, classes)?;
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
        "run_dir": run_dir,
        "checkpoints": cfg.run,
        "resumed_from": run.start(),
        "heads": heads,
    });
    let trained = schedule.iterations.saturating_sub(run.start());
    let per_s = trained as f64 / train_s.max(1e-9);
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
