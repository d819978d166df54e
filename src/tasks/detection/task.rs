//! The detection task as `sslbench run` runs it: for every tap (the deepest frozen stage:
//! res4 for the paper's frozen body, res2 for its fine-tune), train the heads on the train
//! splits' cached maps, detect on the test split, score with the VOC devkit's rules, and
//! write the devkit's results files and a picture of detections.
//!
//! Layout under `<out>/<run>/<tap>/`: checkpoints and `train.csv`, `results/comp4_det_test_
//! <class>.txt`, `detections.json` is not written (the devkit files hold them), `ap.csv`,
//! `detections.png`.

use super::config::DetectionConfig;
use super::draw::{annotate, draw_strip};
use super::head::FastRcnnHead;
use super::infer::{detect_image, random_scores_image};
use super::maps::{FrozenMaps, MapRequest};
use super::roidb::{self, RoidbEntry};
use super::train::{train, LOG};
use super::voc_eval::{evaluate, Detection};
use super::voc_results::write_results;
use crate::data::{Dataset, VocObject};
use crate::report::{DetailTable, Metric};
use crate::tasks::{RunContext, TaskOutput};
use crate::train::tensorboard::add_preview;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// The datasets and proposals of one side (train or test).
struct Side {
    datasets: Vec<Dataset>,
    proposals: Vec<PathBuf>,
}

fn side(ctx: &RunContext, key: &str) -> Result<Side> {
    let data = ctx.setup.data();
    let specs = data.specs(key)?;
    let proposals: Vec<PathBuf> = data
        .specs(&format!("{key}_proposals"))?
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if specs.len() != proposals.len() {
        bail!(
            "data.{key} names {} datasets but data.{key}_proposals {} proposal files: give one \
             file per dataset, in the same order",
            specs.len(),
            proposals.len()
        );
    }
    let datasets = specs
        .iter()
        .map(|s| ctx.setup.dataset(s))
        .collect::<Result<Vec<_>>>()?;
    Ok(Side {
        datasets,
        proposals,
    })
}

/// The `ROOT` and `SPLIT` of a `voc:ROOT:SPLIT` dataset.
fn voc_root_split(spec: &str) -> Result<(PathBuf, String)> {
    let rest = spec.strip_prefix("voc:").with_context(|| {
        format!("detection reads VOC-layout datasets (voc:ROOT:SPLIT), not `{spec}`")
    })?;
    let (root, split) = rest
        .rsplit_once(':')
        .with_context(|| format!("`{spec}` lacks its split: voc:ROOT:SPLIT"))?;
    Ok((PathBuf::from(root), split.to_string()))
}

/// The roidb of one side: each dataset with its proposals (and, in training, its flipped
/// copy right after it, as Detectron's `combined_roidb_for_training` orders them).
fn side_roidb(side: &Side, cfg: &DetectionConfig, training: bool) -> Result<Vec<RoidbEntry>> {
    let mut all = Vec::new();
    for (dataset, path) in side.datasets.iter().zip(&side.proposals) {
        if !path.exists() {
            bail!(
                "proposals file {} not found: write it with `sslbench proposals --dataset {} \
                 --out {}` (self-made selective search, not the paper's proposals) or point \
                 data.*_proposals at Detectron's selective_search_*.pkl",
                path.display(),
                dataset.spec,
                path.display()
            );
        }
        let set = crate::proposals::file::read(path)?;
        let ids: Vec<String> = dataset.samples.iter().map(|s| s.id.clone()).collect();
        let boxes = set.for_ids(&ids, path)?;
        let (root, split) = voc_root_split(&dataset.spec)?;
        let built = if training {
            roidb::train_roidb(
                &root,
                &split,
                &dataset.classes,
                &boxes,
                path,
                &cfg.roidb,
                &cfg.sampling,
            )
        } else {
            roidb::test_roidb(&root, &split, &boxes, path, &cfg.roidb)
        }
        .with_context(|| format!("building the roidb of {}", dataset.spec))?;
        eprintln!("{}: {}", dataset.spec, built.summary);
        all.extend(built.entries);
    }
    Ok(all)
}

/// Every test image with its objects (difficult ones included), for the devkit's AP.
fn evaluation_truth(datasets: &[Dataset]) -> Result<Vec<(String, Vec<VocObject>)>> {
    let mut gt = Vec::new();
    for d in datasets {
        let objects = d.objects.as_ref().with_context(|| {
            format!("{} holds no boxes: detection needs VOC annotations", d.spec)
        })?;
        gt.extend(
            d.samples
                .iter()
                .zip(objects)
                .map(|(s, o)| (s.id.clone(), o.clone())),
        );
    }
    Ok(gt)
}

/// Runs the task on every tap of the context.
pub fn run(ctx: &RunContext) -> Result<TaskOutput> {
    let setup = ctx.setup;
    let cfg = DetectionConfig::from_doc(&setup.doc)?;
    let train_side = side(ctx, "train")?;
    let test_side = side(ctx, "test")?;
    let classes = train_side.datasets[0].classes.clone();
    for d in train_side.datasets.iter().chain(&test_side.datasets) {
        if d.classes != classes {
            bail!(
                "{} has other classes than {}: detection trains and tests on one class list",
                d.spec,
                train_side.datasets[0].spec
            );
        }
    }
    let train_roidb = side_roidb(&train_side, &cfg, true)?;
    let test_roidb = side_roidb(&test_side, &cfg, false)?;
    eprintln!(
        "detection: {} training entries (flips included), {} test images, {} classes",
        train_roidb.len(),
        test_roidb.len(),
        classes.len()
    );
    let root = ctx.out.join(&ctx.run);
    let mut out = TaskOutput::default();
    let mut per_tap = Vec::new();
    let chance = chance_map(&cfg, &test_side.datasets, &test_roidb, &classes)?;
    for &tap in ctx.taps {
        let t0 = Instant::now();
        let train_maps = FrozenMaps::get(
            &setup.store,
            &setup.backbone,
            &setup.device,
            &MapRequest {
                roidb: &train_roidb,
                blob: &cfg.input,
                trunk_input: &cfg.trunk_input,
                tap,
                storage: &cfg.cache.storage,
                split: "train",
            },
        )?;
        let test_maps = FrozenMaps::get(
            &setup.store,
            &setup.backbone,
            &setup.device,
            &MapRequest {
                roidb: &test_roidb,
                blob: &cfg.input,
                trunk_input: &cfg.trunk_input,
                tap,
                storage: &cfg.cache.storage,
                split: "test",
            },
        )?;
        let maps_seconds = t0.elapsed().as_secs_f64();
        let dir = root.join(tap.name());
        let params = crate::train::params::Params::new();
        let head = FastRcnnHead::new(
            &setup.backbone,
            &cfg.model,
            tap,
            classes.len(),
            cfg.box_columns(classes.len()),
            &params,
            &setup.device,
        )?;
        let trained = train(
            &cfg,
            &head,
            &params,
            &train_roidb,
            &train_maps,
            classes.len(),
            &dir,
            &setup.device,
        )?;
        let t1 = Instant::now();
        let bar = crate::progress::bar(test_roidb.len() as u64, "detect", "images");
        let mut dets: Vec<Vec<Detection>> = vec![Vec::new(); classes.len() + 1];
        let mut drawn = Vec::new();
        for (i, entry) in test_roidb.iter().enumerate() {
            let per_class =
                detect_image(&cfg, &head, &test_maps, entry, classes.len(), &setup.device)?;
            if i < cfg.test.draw_images {
                let mut shown: Vec<(String, f32, [f32; 4])> = Vec::new();
                for (j, ds) in per_class.iter().enumerate().skip(1) {
                    for d in ds {
                        shown.push((classes[j - 1].clone(), d.score, d.bbox));
                    }
                }
                shown.sort_by(|a, b| b.1.total_cmp(&a.1));
                shown.truncate(cfg.test.draw_per_image);
                drawn.push((entry.image.clone(), shown));
            }
            for (j, ds) in per_class.into_iter().enumerate() {
                dets[j].extend(ds);
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let test_seconds = t1.elapsed().as_secs_f64();
        let results_dir = dir.join("results");
        let per_class: Vec<(String, Vec<Detection>)> = classes
            .iter()
            .cloned()
            .zip(dets.into_iter().skip(1))
            .collect();
        write_results(&results_dir, &per_class)?;
        let scored = evaluate(
            &evaluation_truth(&test_side.datasets)?,
            &per_class,
            &cfg.eval,
        )?;
        let map = scored.map.unwrap_or(0.0);
        let aps = &scored.classes;
        eprintln!(
            "{}: mAP {:.2} (random scores over the same proposals: {:.2})",
            tap.name(),
            100.0 * map,
            100.0 * chance
        );
        if !drawn.is_empty() {
            let images = drawn
                .iter()
                .map(|(path, shown)| annotate(&crate::data::decode::decode(path)?, shown))
                .collect::<Result<Vec<_>>>()?;
            let strip = dir.join("detections.png");
            draw_strip(&images, &strip)?;
            let step = trained.last.as_ref().map_or(0, |r| r.iter);
            add_preview(&dir.join(LOG), "detections", step, &strip)?;
        }
        out.metrics.push(Metric {
            tap: tap.name().to_string(),
            name: "mAP".into(),
            value: 100.0 * map,
            ..Default::default()
        });
        out.metrics.push(Metric {
            tap: tap.name().to_string(),
            name: "mAP_random_scores".into(),
            value: 100.0 * chance,
            ..Default::default()
        });
        out.tables.push(DetailTable {
            title: format!("{}: AP per class", tap.name()),
            columns: vec![
                "class".into(),
                "AP".into(),
                "objects".into(),
                "detections".into(),
            ],
            rows: aps
                .iter()
                .map(|a| {
                    vec![
                        a.class.clone(),
                        a.ap.map_or("-".into(), |ap| format!("{:.2}", 100.0 * ap)),
                        a.npos.to_string(),
                        a.detections.to_string(),
                    ]
                })
                .collect(),
        });
        out.cache.push(train_maps.cache_ref());
        out.cache.push(test_maps.cache_ref());
        per_tap.push(json!({
            "tap": tap.name(),
            "mAP": 100.0 * map,
            "mAP_random_scores": 100.0 * chance,
            "ap": aps.iter().map(|a| json!({"class": a.class, "ap": a.ap.map(|ap| 100.0 * ap), "npos": a.npos, "detections": a.detections})).collect::<Vec<_>>(),
            "iterations_run": trained.iterations_run,
            "last_log": trained.last.as_ref().map(|r| json!({"iter": r.iter, "loss_cls": r.loss_cls, "loss_bbox": r.loss_bbox, "accuracy": r.accuracy})),
            "results_dir": results_dir,
        }));
        out.timings
            .insert(format!("{}_maps", tap.name()), json!(maps_seconds));
        out.timings
            .insert(format!("{}_train", tap.name()), json!(trained.seconds));
        out.timings
            .insert(format!("{}_test", tap.name()), json!(test_seconds));
    }
    out.details = json!({
        "train_entries": train_roidb.len(),
        "test_images": test_roidb.len(),
        "classes": classes,
        "taps": per_tap,
        "proposals": {
            "train": train_side.proposals,
            "test": test_side.proposals,
        },
    });
    Ok(out)
}

/// The mAP of random scores over the test proposals (the same threshold, NMS and limit), with
/// a fixed seed: the chance level a trained head is compared with.
fn chance_map(
    cfg: &DetectionConfig,
    datasets: &[Dataset],
    test_roidb: &[RoidbEntry],
    names: &[String],
) -> Result<f64> {
    let classes = names.len();
    let mut rng = crate::seed::stream(cfg.train.seed, &[CHANCE_STREAM]);
    let mut dets: Vec<Vec<Detection>> = vec![Vec::new(); classes + 1];
    for entry in test_roidb {
        for (j, ds) in random_scores_image(cfg, entry, classes, &mut rng)
            .into_iter()
            .enumerate()
        {
            dets[j].extend(ds);
        }
    }
    let per_class: Vec<(String, Vec<Detection>)> = names
        .iter()
        .cloned()
        .zip(dets.into_iter().skip(1))
        .collect();
    Ok(
        evaluate(&evaluation_truth(datasets)?, &per_class, &cfg.eval)?
            .map
            .unwrap_or(0.0),
    )
}

/// The stream number of the chance baseline's draws.
const CHANCE_STREAM: u64 = 0x00c4_a2ce;
