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
use super::model::PretextModel;
use super::permutations::PermutationSet;
use crate::data::{self, Sample};
use crate::train::checkpoint::{Checkpoints, TrainState, STATE_SCHEMA};
use crate::train::log::{LogRow, TrainLog};
use crate::train::optim::Optimizer;
use crate::train::params::ParamKind;
use anyhow::{bail, ensure, Context, Result};
use candle_core::Device;
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// Stream numbers that keep the run's draws apart.
const STREAM_SUBSET: u64 = 1;
const STREAM_EPOCH: u64 = 2;
const STREAM_IMAGE: u64 = 3;
const STREAM_HOLDOUT: u64 = 4;
/// Images over which Colorization's most-frequent-bin baseline is counted.
const CHANCE_IMAGES: usize = 256;

/// A generator for one use, seeded from the run seed and a few stream numbers (SplitMix64).
pub fn seeded(seed: u64, streams: &[u64]) -> rand::rngs::StdRng {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let s = streams.iter().fold(mix(seed), |h, &x| mix(h ^ mix(x)));
    rand::rngs::StdRng::seed_from_u64(s)
}

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
    let checkpoints = Checkpoints::new(out, cfg.train.keep_checkpoints);
    let digest = cfg.digest()?;
    let start = match checkpoints.latest()? {
        Some(ck) if resume => {
            if ck.state.config_digest != digest || ck.state.seed != cfg.seed {
                bail!(
                    "{} was written by another configuration (digest {} vs {digest}): resume with the config in {}, or use another --out",
                    ck.dir.display(),
                    ck.state.config_digest,
                    out.join("config.toml").display()
                );
            }
            model.params.load(&ck.model, &ck.dir.join("model.safetensors"))?;
            optim.load_state(&ck.optimizer, ck.state.optimizer_steps)?;
            eprintln!("resuming {} from step {}", out.display(), ck.state.step);
            ck.state.step
        }
        Some(ck) => bail!(
            "{} already holds a run (checkpoint at step {}): pass --resume to continue it, or choose another --out",
            out.display(),
            ck.state.step
        ),
        None => 0,
    };
    crate::features::partial::write_atomic(
        &out.join("config.toml"),
        toml::to_string(cfg)?.as_bytes(),
    )?;
    let mut log = TrainLog::open(out, start)?;
    let loader = Loader {
        cfg,
        pretext: &pretext,
        samples: &train,
        bad: Mutex::new(HashSet::new()),
        device,
    };
    let throughput = train_steps(
        cfg,
        &model,
        &mut optim,
        &loader,
        &checkpoints,
        &digest,
        &mut log,
        start,
    )?;
    let chance = chance(&pretext, &loader, &holdout)?;
    log.plot(cfg.pretext.name(), chance)?;
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
    crate::features::partial::write_atomic(&backbone, toml::to_string(&bb)?.as_bytes())?;
    if let Pretext::Colorization { .. } = &pretext {
        super::preview::write(
            cfg,
            &model,
            &pretext,
            &loader,
            &holdout,
            &out.join("colourised"),
        )?;
    }
    let tail: Vec<&LogRow> = log.rows().iter().rev().take(3).collect();
    let mean =
        |f: fn(&LogRow) -> f64| tail.iter().map(|r| f(r)).sum::<f64>() / tail.len().max(1) as f64;
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
    crate::features::partial::write_atomic(
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

/// Decodes and prepares the images of batches, in parallel.
pub(super) struct Loader<'a> {
    cfg: &'a PretextConfig,
    pretext: &'a Pretext,
    samples: &'a [Sample],
    bad: Mutex<HashSet<String>>,
    device: &'a Device,
}

impl Loader<'_> {
    /// A decoded image: `samples[i]`, or when it cannot be read (reported once by name),
    /// the next readable one.
    pub(super) fn image(&self, samples: &[Sample], i: usize) -> Result<RgbImage> {
        for k in 0..samples.len() {
            let s = &samples[(i + k) % samples.len()];
            let name = s.path.display().to_string();
            if self
                .bad
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&name)
            {
                continue;
            }
            match data::decode(&s.path) {
                Ok(img) => return Ok(img),
                Err(e) => {
                    let mut bad = self.bad.lock().unwrap_or_else(|e| e.into_inner());
                    if bad.insert(name) {
                        eprintln!("warning: {e}; using the next image instead (fix or remove it from the list)");
                    }
                }
            }
        }
        bail!(
            "none of the {} pretext images can be decoded",
            samples.len()
        )
    }

    /// The batch of images `indices` of `samples`, image `j` augmented from `streams + [j]`.
    pub(super) fn batch(
        &self,
        samples: &[Sample],
        indices: &[usize],
        streams: &[u64],
    ) -> Result<Batch> {
        let examples = indices
            .par_iter()
            .enumerate()
            .map(|(j, &i)| {
                let img = self.image(samples, i)?;
                let mut keys = streams.to_vec();
                keys.push(j as u64);
                self.pretext
                    .example(&img, &mut seeded(self.cfg.seed, &keys))
            })
            .collect::<Result<Vec<_>>>()?;
        self.pretext.collate(examples, self.device)
    }

    /// The training batch of `step`: consecutive slots of the seeded epoch orders.
    fn train_batch(&self, step: usize) -> Result<Batch> {
        let n = self.samples.len();
        let b = self.cfg.train.batch_size;
        let mut order_of: Option<(usize, Vec<usize>)> = None;
        let indices: Vec<usize> = (step * b..(step + 1) * b)
            .map(|slot| {
                let epoch = slot / n;
                if order_of.as_ref().is_none_or(|(e, _)| *e != epoch) {
                    let mut order: Vec<usize> = (0..n).collect();
                    order.shuffle(&mut seeded(self.cfg.seed, &[STREAM_EPOCH, epoch as u64]));
                    order_of = Some((epoch, order));
                }
                order_of.as_ref().map_or(0, |(_, o)| o[slot % n])
            })
            .collect();
        self.batch(self.samples, &indices, &[STREAM_IMAGE, step as u64])
    }
}

/// Runs steps `start..train.steps`, with the next batch prepared while the current one
/// trains; logs, checkpoints, and returns the source images per second.
#[allow(clippy::too_many_arguments)]
fn train_steps(
    cfg: &PretextConfig,
    model: &PretextModel,
    optim: &mut Optimizer,
    loader: &Loader,
    checkpoints: &Checkpoints,
    digest: &str,
    log: &mut TrainLog,
    start: usize,
) -> Result<f64> {
    let steps = cfg.train.steps;
    if start >= steps {
        return Ok(0.0);
    }
    let bar = crate::train::progress((steps - start) as u64, "pretraining", "steps");
    let began = Instant::now();
    let mut window = Window::new();
    let save = |step: usize, optim: &Optimizer| -> Result<()> {
        let state = TrainState {
            schema: STATE_SCHEMA.into(),
            step,
            seed: cfg.seed,
            config_digest: digest.to_string(),
            optimizer_steps: optim.steps(),
        };
        checkpoints.save(&state, &model.params.tensors()?, &optim.state())?;
        Ok(())
    };
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch>>(1);
        scope.spawn(move || {
            for step in start..steps {
                if tx.send(loader.train_batch(step)).is_err() {
                    break;
                }
            }
        });
        for step in start..steps {
            let batch = rx.recv().context("internal: the data loader stopped")??;
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
                let row = LogRow {
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
            if done % cfg.train.checkpoint_every == 0 || done == steps {
                save(done, optim)?;
            }
        }
        Ok(())
    })?;
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

/// Held-out loss and accuracy in evaluation mode (`None` without held-out images).
fn evaluate(
    model: &PretextModel,
    loader: &Loader,
    holdout: &[Sample],
) -> Result<(Option<f64>, Option<f64>)> {
    if holdout.is_empty() {
        return Ok((None, None));
    }
    model.trunk.set_training(false);
    let b = loader.cfg.train.batch_size;
    let (mut loss, mut correct, mut total) = (0.0, 0.0, 0.0);
    let indices: Vec<usize> = (0..holdout.len()).collect();
    for (c, chunk) in indices.chunks(b).enumerate() {
        let batch = loader.batch(holdout, chunk, &[STREAM_HOLDOUT, c as u64])?;
        let out = model.outcome(&batch)?;
        loss += f64::from(out.loss.to_scalar::<f32>()?) * chunk.len() as f64;
        correct += out.correct;
        total += out.total;
    }
    model.trunk.set_training(true);
    Ok((
        Some(loss / holdout.len() as f64),
        Some(100.0 * correct / total.max(1.0)),
    ))
}

/// Chance accuracy in percent: a uniform guess over the classes, and for Colorization the
/// better of that and always answering the most frequent target bin, counted on the
/// held-out images (or the first training images when none are held out).
fn chance(pretext: &Pretext, loader: &Loader, holdout: &[Sample]) -> Result<f64> {
    let uniform = 100.0 / pretext.classes() as f64;
    if pretext.kind() != PretextKind::Colorization {
        return Ok(uniform);
    }
    let images = if holdout.is_empty() {
        loader.samples
    } else {
        holdout
    };
    let indices: Vec<usize> = (0..images.len().min(CHANCE_IMAGES)).collect();
    let batch = loader.batch(images, &indices, &[STREAM_HOLDOUT, u64::MAX])?;
    let Some(soft) = batch.soft else {
        return Ok(uniform);
    };
    let hard = soft.argmax(0)?.to_vec1::<u32>()?;
    let mut counts = vec![0usize; pretext.classes()];
    for q in &hard {
        counts[*q as usize] += 1;
    }
    let best = counts.iter().copied().max().unwrap_or(0);
    Ok(uniform.max(100.0 * best as f64 / hard.len().max(1) as f64))
}
