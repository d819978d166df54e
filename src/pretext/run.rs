//! `sslbench pretrain`: trains a trunk with a pretext task and writes what the benchmarks
//! need: `model.safetensors` (the trunk under its published names, plus the `head.*`
//! tensors the frozen trunk ignores), `<run name>.toml`, the backbone config pointing at it, the training log with
//! its curves, a summary with the held-out pretext accuracy, and for Colorization
//! colourised PNGs of held-out images.
//!
//! Every random draw derives from the run seed: the subset, the epoch orders, and each
//! image's augmentation from (seed, step, slot). A checkpoint's step and the seed are thus
//! the whole random state, and `--resume` continues exactly.

use super::ab_bins::AbBins;
use super::batch::{Batch, Pretext};
use super::config::{BinSource, PretextConfig, PretextKind};
use super::evaluate::{chance, evaluate};
use super::loader::Loader;
use super::log::StepRow;
use super::model::PretextModel;
use super::permutations::PermutationSet;
use crate::data::{self, Sample};
use crate::seed::stream as seeded;
use crate::train::log::CsvLog;
use crate::train::optim::Optimizer;
use crate::train::params::ParamKind;
use crate::train::prefetch::with_prefetch;
use crate::train::run_dir::{RunDir, RunSpec};
use crate::train::stop::Cadence;
use crate::train::tensorboard::add_preview;
use anyhow::{bail, ensure, Context, Result};
use candle_core::Device;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// Stream numbers that keep the run's draws apart.
const STREAM_SUBSET: u64 = 1;
/// The training log's file in the run folder.
const LOG: &str = "log.csv";

/// What a finished run reports (`pretrain.json`).
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The configuration, as run.
    pub config: PretextConfig,
    /// Steps completed.
    pub steps: usize,
    /// Training images (after the subset and the hold-out).
    pub train_images: usize,
    /// Held-out images.
    pub holdout_images: usize,
    /// Classes of the head (4, |P|, bins).
    pub classes: usize,
    /// Chance accuracy in percent (uniform guess; for Colorization, always the most
    /// frequent bin of the held-out cells).
    pub chance: f64,
    /// Mean loss and accuracy (percent) over the last logged rows of training.
    pub final_loss: f64,
    /// See `final_loss`.
    pub final_accuracy: f64,
    /// Held-out loss and pretext accuracy (percent), batch norm in evaluation mode.
    pub holdout_loss: Option<f64>,
    /// See `holdout_loss`.
    pub holdout_accuracy: Option<f64>,
    /// Trained scalars.
    pub parameters: usize,
    /// Source images per second of training in this process.
    pub images_per_s: f64,
    /// Images that could not be decoded and were replaced by the next one.
    pub skipped_images: Vec<String>,
    /// The trunk checkpoint and the backbone config for the benchmarks.
    pub model: PathBuf,
    /// See `model`.
    pub backbone: PathBuf,
}

impl Summary {
    /// What a run achieved and where its outputs are, for the console.
    pub fn describe(&self, out: &Path) -> String {
        let c = &self.config;
        let mut text = format!(
            "{} pretext, {} x{} ({} parameters), {} training images, {} steps of {}: final loss {:.4}, pretext accuracy {:.1}% (chance {:.1}%)",
            c.pretext.name(),
            c.model.arch,
            c.model.width,
            self.parameters,
            self.train_images,
            self.steps,
            c.train.batch_size,
            self.final_loss,
            self.final_accuracy,
            self.chance
        );
        if let (Some(l), Some(a)) = (self.holdout_loss, self.holdout_accuracy) {
            text += &format!(
                "\nheld-out ({} images): loss {l:.4}, pretext accuracy {a:.1}%",
                self.holdout_images
            );
        }
        if !self.skipped_images.is_empty() {
            text += &format!(
                "\n{} unreadable images were skipped (listed in pretrain.json)",
                self.skipped_images.len()
            );
        }
        text + &format!(
            "\nwrote {} (log.csv, loss.png, accuracy.png, pretrain.json); backbone for the benchmarks: {}",
            out.display(),
            self.backbone.display()
        )
    }
}

/// Trains `cfg` into `out`. With `resume`, continues from the latest checkpoint there; a
/// folder that holds a run already is refused without it.
pub fn pretrain(cfg: &PretextConfig, out: &Path, device: &Device, resume: bool) -> Result<Summary> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let (train, holdout) = split(cfg)?;
    let pretext = build_pretext(cfg, out, &train)?;
    let model = PretextModel::new(cfg, &pretext, device)?;
    let mut optim = Optimizer::new(cfg.optimizer.clone());
    for (name, var, kind) in model.params.all() {
        match kind {
            ParamKind::Buffer => {}
            ParamKind::Weight => optim.add(&name, var, true)?,
            ParamKind::Vector => optim.add(&name, var, cfg.optimizer.decay_vectors)?,
        }
    }
    let (run, start) = RunDir::open(
        out,
        RunSpec {
            what: "pretext",
            seed: cfg.seed,
            digest: cfg.digest()?,
            keep: cfg.train.keep_checkpoints,
            resume,
            log: LOG,
        },
        &model.params,
        &mut optim,
    )?;
    crate::atomic::write_atomic(&out.join("config.toml"), toml::to_string(cfg)?.as_bytes())?;
    let mut log = CsvLog::<StepRow>::open(&out.join(LOG), start)?;
    let loader = Loader {
        cfg,
        pretext: &pretext,
        samples: &train,
        bad: Mutex::new(HashSet::new()),
        device,
    };
    let throughput = train_steps(cfg, &model, &mut optim, &loader, &run, &mut log, start)?;
    let chance = chance(&pretext, &loader, &holdout)?;
    super::log::plot(log.rows(), out, cfg.pretext.name(), chance)?;
    let (holdout_loss, holdout_accuracy) = evaluate(&model, &loader, &holdout)?;
    let model_path = out.join("model.safetensors");
    candle_core::safetensors::save(&model.params.tensors()?, &model_path)?;
    // Named after the run, so results of several runs do not collide.
    let run_name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pretrained".into());
    let backbone = out.join(format!("{run_name}.toml"));
    let mut bb = cfg.backbone();
    bb.weights = "model.safetensors".into();
    crate::atomic::write_atomic(&backbone, toml::to_string(&bb)?.as_bytes())?;
    if let Pretext::Colorization { .. } = &pretext {
        let strips = super::preview::write(
            cfg,
            &model,
            &pretext,
            &loader,
            &holdout,
            &out.join("colourised"),
        )?;
        for strip in strips {
            let name = strip.file_stem().unwrap_or_default().to_string_lossy();
            let tag = format!("colourised/{name}");
            add_preview(&out.join(LOG), &tag, cfg.train.steps, &strip)?;
        }
    }
    let tail: Vec<&StepRow> = log.rows().iter().rev().take(3).collect();
    let mean =
        |f: fn(&StepRow) -> f64| tail.iter().map(|r| f(r)).sum::<f64>() / tail.len().max(1) as f64;
    let skipped = loader.bad.into_inner().unwrap_or_else(|e| e.into_inner());
    let summary = Summary {
        config: cfg.clone(),
        steps: cfg.train.steps,
        train_images: train.len(),
        holdout_images: holdout.len(),
        classes: pretext.classes(),
        chance,
        final_loss: mean(|r| r.loss),
        final_accuracy: mean(|r| r.accuracy),
        holdout_loss,
        holdout_accuracy,
        parameters: model.params.trained_count(),
        images_per_s: throughput,
        skipped_images: skipped.into_iter().collect(),
        model: model_path,
        backbone,
    };
    crate::atomic::write_atomic(
        &out.join("pretrain.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    Ok(summary)
}

/// The seeded subset of the image list, split into training and held-out images.
fn split(cfg: &PretextConfig) -> Result<(Vec<Sample>, Vec<Sample>)> {
    let dataset = data::open(&cfg.data.images, None).with_context(|| {
        format!(
            "cannot open the pretext images `{}` (data.images)",
            cfg.data.images
        )
    })?;
    let mut samples = dataset.samples;
    let total = samples.len();
    samples.shuffle(&mut seeded(cfg.seed, &[STREAM_SUBSET]));
    let subset = if cfg.data.subset == 0 {
        total
    } else {
        cfg.data.subset
    };
    ensure!(
        subset <= total,
        "data.subset = {subset} but `{}` has {total} images: lower it, or 0 for all",
        cfg.data.images
    );
    samples.truncate(subset);
    ensure!(
        cfg.data.holdout < subset,
        "data.holdout = {} leaves no training image of the {subset} in data.subset",
        cfg.data.holdout
    );
    let train = samples.split_off(cfg.data.holdout);
    Ok((train, samples))
}

/// The pretext with its permutation set or colour bins.
fn build_pretext(cfg: &PretextConfig, out: &Path, train: &[Sample]) -> Result<Pretext> {
    let missing = |t: &str| anyhow::anyhow!("internal: validated config lacks [{t}]");
    Ok(match cfg.pretext {
        PretextKind::Rotation => Pretext::Rotation {
            augment: cfg.augment.clone().ok_or_else(|| missing("augment"))?,
            transform: cfg.transform.clone(),
        },
        PretextKind::Jigsaw => {
            let p = cfg
                .permutations
                .as_ref()
                .ok_or_else(|| missing("permutations"))?;
            let file = out.join(&p.file);
            Pretext::Jigsaw {
                tiles: cfg.jigsaw.clone().ok_or_else(|| missing("jigsaw"))?,
                perms: PermutationSet::load_or_generate(&file, p.count, p.criterion, p.seed)?,
                transform: cfg.transform.clone(),
            }
        }
        PretextKind::Colorization => {
            let c = cfg.colorize.clone().ok_or_else(|| missing("colorize"))?;
            let b = cfg.ab_bins.as_ref().ok_or_else(|| missing("ab_bins"))?;
            let count = if b.prior_images == 0 {
                train.len()
            } else {
                b.prior_images.min(train.len())
            };
            let ab: Vec<[f32; 2]> = train[..count]
                .par_iter()
                .filter_map(|s| data::decode(&s.path).ok())
                .filter_map(|img| c.crop(&img).ok())
                .flat_map_iter(|img| super::lab::ab_pairs(&super::lab::from_rgb_image(&img)))
                .collect();
            ensure!(
                !ab.is_empty(),
                "no readable image for the colour prior among the first {count}"
            );
            let bins = match b.source {
                BinSource::InGamut => AbBins::in_gamut(b.step, 256)?,
                BinSource::Histogram => AbBins::from_histogram(b.step, ab.iter().copied())?,
            };
            let prior = bins.smooth(&bins.prior(ab.iter().copied())?, b.prior_sigma)?;
            let class_weights = c.class_weights(&prior)?;
            Pretext::Colorization {
                cfg: c,
                augment: cfg.augment.clone(),
                bins,
                class_weights,
                transform: cfg.transform.clone(),
            }
        }
    })
}

/// Runs steps `start..train.steps`, with the next batch prepared while the current one
/// trains; logs, checkpoints, and returns the source images per second.
fn train_steps(
    cfg: &PretextConfig,
    model: &PretextModel,
    optim: &mut Optimizer,
    loader: &Loader,
    run: &RunDir,
    log: &mut CsvLog<StepRow>,
    start: usize,
) -> Result<f64> {
    let steps = cfg.train.steps;
    if start >= steps {
        return Ok(0.0);
    }
    let bar = crate::progress::bar((steps - start) as u64, "pretraining", "steps");
    let began = Instant::now();
    let mut window = Window::new();
    let mut cadence = Cadence::new(cfg.train.checkpoint_every, cfg.train.checkpoint_seconds);
    with_prefetch(
        start..steps,
        |step| loader.train_batch(step),
        |batches| {
            for step in start..steps {
                let batch: Batch = batches.next()?;
                let lr = cfg.schedule.at(step);
                let out = model.outcome(&batch)?;
                let loss = f64::from(out.loss.to_scalar::<f32>()?);
                if !loss.is_finite() {
                    bail!("the loss is {loss} at step {step}: lower the learning rate (schedule.base); the last checkpoint is kept");
                }
                let grads = out.loss.backward()?;
                optim.step(&grads, lr)?;
                window.loss += loss;
                window.correct += out.correct;
                window.total += out.total;
                window.images += batch.images;
                window.steps += 1;
                let done = step + 1;
                bar.inc(1);
                if done % cfg.train.log_every == 0 || done == steps {
                    let row = StepRow {
                        step: done,
                        loss: window.loss / window.steps as f64,
                        accuracy: 100.0 * window.correct / window.total.max(1.0),
                        lr,
                        images_per_s: window.images as f64 / window.started.elapsed().as_secs_f64(),
                        seconds: began.elapsed().as_secs_f64(),
                    };
                    bar.set_message(format!("loss {:.4} acc {:.1}%", row.loss, row.accuracy));
                    log.push(row)?;
                    window = Window::new();
                }
                if cadence.due(done, steps) {
                    run.save(done, &model.params, optim)?;
                    cadence.check(done)?;
                }
            }
            Ok(())
        },
    )?;
    bar.finish();
    let images = ((steps - start) * cfg.train.batch_size) as f64;
    Ok(images / began.elapsed().as_secs_f64())
}

/// Sums over the steps since the last log row.
struct Window {
    loss: f64,
    correct: f64,
    total: f64,
    images: usize,
    steps: usize,
    started: Instant,
}

impl Window {
    fn new() -> Self {
        Self {
            loss: 0.0,
            correct: 0.0,
            total: 0.0,
            images: 0,
            steps: 0,
            started: Instant::now(),
        }
    }
}
