//! The normals task as `sslbench run` runs it: the frozen trunk at output stride 8 up to the
//! tap (res4), its maps cached per (frame, short side); res5 and the decoder trained on the
//! training split; evaluation at the test size (logits upsampled bilinearly to the label size,
//! softmax, the softmax-weighted centres renormalised, angles in float64 over every valid
//! pixel of every test frame, pooled: the exact median needs the angles twice, so each image's
//! angles are spilled to a file in the run folder and read back, and memory stays bounded).
//! Two baselines are scored by the same evaluation: the training pixels' most common cluster
//! everywhere, and the mean training normal per pixel position.
//!
//! Layout under `<out>/<run>/<tap>/`: checkpoints, `train.csv`, `codebook.json` (k-means),
//! `normals.png` (rows of image, ground truth, prediction for the first test frames).

use super::config::NormalsConfig;
use super::dataset::NyuFrames;
use super::labels::Supervision;
use super::maps::FrozenMaps;
use super::metrics::{angular_errors, decode_probabilities, evaluate, NormalsMetrics};
use super::model::NormalsModel;
use super::supervision_file;
use super::train::{train, LOG};
use crate::backbone::Tap;
use crate::report::{CacheRef, Metric};
use crate::tasks::{RunContext, TaskOutput};
use crate::train::tensorboard::add_preview;
use anyhow::{bail, Context, Result};
use candle_core::Device;
use serde_json::json;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The pooled evaluation of one predictor, with counts at the configured thresholds.
struct Scored {
    metrics: NormalsMetrics,
    percent_below: Vec<f64>,
}

/// Angles spilled to a file, read back as many times as the median needs.
struct Spill {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl Spill {
    fn create(path: PathBuf) -> Result<Self> {
        let f = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self {
            path,
            out: BufWriter::new(f),
        })
    }

    fn push(&mut self, angles: &[f64]) -> Result<()> {
        for a in angles {
            self.out.write_all(&a.to_le_bytes())?;
        }
        Ok(())
    }

    fn score(mut self, thresholds: &[f64]) -> Result<Scored> {
        self.out.flush()?;
        let mut counts = vec![0u64; thresholds.len()];
        let mut total = 0u64;
        let mut first = true;
        let path = self.path.clone();
        let metrics = evaluate(|pooled| {
            let mut r = BufReader::new(std::fs::File::open(&path)?);
            let mut buf = vec![0u8; 8 << 16];
            loop {
                let n = read_full(&mut r, &mut buf)?;
                if n == 0 {
                    break;
                }
                let angles: Vec<f64> = buf[..n]
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                if first {
                    total += angles.len() as u64;
                    for (c, t) in counts.iter_mut().zip(thresholds) {
                        *c += angles.iter().filter(|&&a| a < *t).count() as u64;
                    }
                }
                pooled.add(&angles)?;
            }
            first = false;
            Ok(())
        })?;
        drop(self.out);
        std::fs::remove_file(&path).ok();
        Ok(Scored {
            metrics,
            percent_below: counts
                .iter()
                .map(|&c| 100.0 * c as f64 / total.max(1) as f64)
                .collect(),
        })
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = r.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n - n % 8)
}

/// The output stride the task needs of the trunk, set on a copy of the backbone's config.
fn dilated(ctx: &RunContext, cfg: &NormalsConfig) -> crate::backbone::BackboneConfig {
    let mut b = ctx.setup.backbone.clone();
    b.output_stride = cfg.model.output_stride;
    b
}

/// Runs the task on every tap of the context (res4: the paper's frozen trunk).
pub fn run(ctx: &RunContext) -> Result<TaskOutput> {
    let setup = ctx.setup;
    let cfg = NormalsConfig::from_doc(&setup.doc)?;
    let backbone = dilated(ctx, &cfg);
    let frames = NyuFrames::open(&cfg)?;
    let (train_ids, test_ids) = (frames.splits.train.clone(), frames.splits.test.clone());
    if train_ids.is_empty() || test_ids.is_empty() {
        bail!("the splits name no training or no test frame: normals needs both");
    }
    let root = ctx.out.join(&ctx.run);
    let mut out = TaskOutput::default();
    let mut per_tap = Vec::new();
    for &tap in ctx.taps {
        if tap != Tap::Res4 {
            bail!(
                "the normals protocol freezes the trunk up to res4 (--freeze_until layer3), \
                 not {}: run it with --taps res4",
                tap.name()
            );
        }
        let dir = root.join(tap.name());
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let t0 = Instant::now();
        let (sup, labels_file) =
            supervision_file::get(&cfg, &frames, &setup.store, &dir.join("codebook.json"))?;
        let labels_seconds = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let get = |ids: &[usize], sides: &[usize], split: &str| {
            FrozenMaps::get(
                &setup.store,
                &backbone,
                &setup.device,
                &frames,
                ids,
                sides,
                &cfg.input,
                tap,
                &cfg.cache.storage,
                split,
            )
        };
        let train_maps = get(&train_ids, &cfg.input.train_short_sides, "train")?;
        let test_maps = get(&test_ids, &[0], "test")?;
        let maps_seconds = t1.elapsed().as_secs_f64();
        let params = crate::train::params::Params::new();
        let k = sup.codebook.centres.len();
        let model = NormalsModel::new(&backbone, &cfg.model, k, &params, &setup.device)?;
        let centres = format!("{:?}", sup.codebook.centres);
        let trained = train(
            &cfg,
            &model,
            &params,
            &train_ids,
            &sup,
            &train_maps,
            cfg.train_digest(&centres),
            &dir,
            &setup.device,
        )?;
        let t2 = Instant::now();
        let scores = evaluate_split(
            &cfg,
            &model,
            &frames,
            &test_ids,
            &test_maps,
            &sup,
            &dir,
            trained.last.as_ref().map_or(0, |r| r.iter),
            &setup.device,
        )?;
        let test_seconds = t2.elapsed().as_secs_f64();
        let names = ["model", "most_common_cluster", "mean_normal_per_pixel"];
        let mut json_scores = serde_json::Map::new();
        for (name, s) in names.iter().zip(&scores) {
            let prefix = if *name == "model" {
                String::new()
            } else {
                format!("{name}_")
            };
            let m = &s.metrics;
            let mut push = |metric: String, value: f64| {
                out.metrics.push(Metric {
                    tap: tap.name().to_string(),
                    name: metric,
                    value,
                    ..Default::default()
                })
            };
            push(format!("{prefix}mean"), m.mean);
            push(format!("{prefix}median"), m.median);
            for (t, p) in cfg.test.thresholds.iter().zip(&s.percent_below) {
                push(format!("{prefix}pct_below_{t}"), *p);
            }
            json_scores.insert(
                name.to_string(),
                json!({
                    "pixels": m.pixels,
                    "mean": m.mean,
                    "median": m.median,
                    "thresholds": cfg.test.thresholds,
                    "percent_below": s.percent_below,
                }),
            );
        }
        eprintln!(
            "{}: median {:.2} deg (most common cluster {:.2}, mean normal per pixel {:.2})",
            tap.name(),
            scores[0].metrics.median,
            scores[1].metrics.median,
            scores[2].metrics.median
        );
        out.cache.push(CacheRef {
            tap: tap.name().to_string(),
            spec: "train labels".into(),
            digest: labels_file.digest.clone(),
            status: labels_file.status.to_string(),
        });
        out.cache.push(train_maps.cache_ref());
        out.cache.push(test_maps.cache_ref());
        per_tap.push(json!({
            "tap": tap.name(),
            "scores": json_scores,
            "most_common_cluster": sup.most_common,
            "codebook": sup.codebook.source,
            "iterations_run": trained.iterations_run,
            "last_log": trained.last.as_ref().map(|r| json!({"iter": r.iter, "loss": r.loss, "pixel_acc": r.pixel_acc, "lr": r.lr})),
        }));
        out.timings
            .insert(format!("{}_labels", tap.name()), json!(labels_seconds));
        out.timings
            .insert(format!("{}_maps", tap.name()), json!(maps_seconds));
        out.timings
            .insert(format!("{}_train", tap.name()), json!(trained.seconds));
        out.timings
            .insert(format!("{}_test", tap.name()), json!(test_seconds));
    }
    out.details = json!({
        "train_frames": train_ids.len(),
        "test_frames": test_ids.len(),
        "ground_truth": format!("{:?}", cfg.data.ground_truth),
        "paper_median": 13.1,
        "taps": per_tap,
    });
    Ok(out)
}

/// Scores the model and the two baselines on the test frames, in that order, and draws the
/// first `test.draw_images` frames into the run folder `dir`, and into its TensorBoard events
/// at the trained iteration `step`.
#[allow(clippy::too_many_arguments)]
fn evaluate_split(
    cfg: &NormalsConfig,
    model: &NormalsModel,
    frames: &NyuFrames,
    test_ids: &[usize],
    maps: &FrozenMaps,
    sup: &Supervision,
    dir: &Path,
    step: usize,
    device: &Device,
) -> Result<Vec<Scored>> {
    let (h, w) = frames.size();
    let mut spills = ["model", "most_common", "mean_normal"]
        .iter()
        .map(|n| Spill::create(dir.join(format!("angles-{n}.f64"))))
        .collect::<Result<Vec<_>>>()?;
    let common = vec![sup.codebook.centres[sup.most_common]; h * w];
    let mut drawn = Vec::new();
    let bar = crate::progress::bar(test_ids.len() as u64, "evaluate", "frames");
    for (n, &id) in test_ids.iter().enumerate() {
        let f = frames.frame(id)?;
        let x = maps.read(id, 0)?.unsqueeze(0)?.to_device(device)?;
        let logits = model.forward(&x, false, || 0.0)?.transpose(0, 1)?;
        let up = sslbench_ops::resize_bilinear(&logits, (h, w), false)?;
        let probs = candle_nn::ops::softmax(&up, 1)?
            .squeeze(0)?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let pred = decode_probabilities(&probs, &sup.codebook.centres)?;
        let gt: Vec<[f32; 3]> = f
            .normals
            .as_standard_layout()
            .as_slice()
            .expect("standard layout")
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        let valid: Vec<bool> = f.valid.iter().copied().collect();
        spills[0].push(&angular_errors(&pred, &gt, &valid)?)?;
        spills[1].push(&angular_errors(&common, &gt, &valid)?)?;
        spills[2].push(&angular_errors(&sup.mean_normal, &gt, &valid)?)?;
        if n < cfg.test.draw_images {
            drawn.push((f.rgb.clone(), gt, valid, pred));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !drawn.is_empty() {
        let preview = dir.join("normals.png");
        draw(&drawn, h, w, &preview)?;
        add_preview(&dir.join(LOG), "normals", step, &preview)?;
    }
    spills
        .into_iter()
        .map(|s| s.score(&cfg.test.thresholds))
        .collect()
}

type Drawn = (ndarray::Array3<u8>, Vec<[f32; 3]>, Vec<bool>, Vec<[f64; 3]>);

/// Rows of (image, ground truth, prediction), normals shown as `(n + 1) / 2` in RGB, pixels
/// without ground truth black.
fn draw(rows: &[Drawn], h: usize, w: usize, path: &Path) -> Result<()> {
    let gap = 4u32;
    let (wi, hi) = (w as u32, h as u32);
    let mut img = image::RgbImage::new(3 * wi + 2 * gap, rows.len() as u32 * (hi + gap) - gap);
    let colour = |n: [f64; 3]| {
        image::Rgb(n.map(|v| (((v + 1.0) / 2.0) * 255.0).round().clamp(0.0, 255.0) as u8))
    };
    for (r, (rgb, gt, valid, pred)) in rows.iter().enumerate() {
        let top = r as u32 * (hi + gap);
        for y in 0..h {
            for x in 0..w {
                let p = y * w + x;
                let (ux, uy) = (x as u32, top + y as u32);
                img.put_pixel(
                    ux,
                    uy,
                    image::Rgb([rgb[[y, x, 0]], rgb[[y, x, 1]], rgb[[y, x, 2]]]),
                );
                let g = if valid[p] {
                    colour(gt[p].map(f64::from))
                } else {
                    image::Rgb([0, 0, 0])
                };
                img.put_pixel(ux + wi + gap, uy, g);
                img.put_pixel(ux + 2 * (wi + gap), uy, colour(pred[p]));
            }
        }
    }
    img.save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}
