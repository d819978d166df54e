//! The navigation task as `sslbench run` / `sslbench nav` runs it: for every tap, one agent
//! per seed trained with PPO on frozen features, evaluated on held-out episodes beside the
//! random policy, with curves over seeds and a rendered rollout.
//!
//! Layout under `<out>/<run>/`: `<tap>/seed_<k>/` (checkpoints, `progress.csv`, `eval.json`,
//! `rollout.gif`, `rollout.png`), `curves_<tap>.csv`, `reward.png`, `success.png`.

use super::config::NavConfig;
use super::curves::{self, Point};
use super::envs::{self, Phase};
use super::evaluate::{evaluate, Evaluation};
use super::perception::Perception;
use super::render;
use super::train::{train, AgentRun, LOG};
use crate::backbone::{Backbone, Tap};
use crate::report::{Metric, Spread};
use crate::tasks::{RunContext, TaskOutput};
use crate::train::tensorboard::add_preview;
use anyhow::{Context, Result};
use serde_json::json;

/// The sections this task reads besides the shared ones.
pub const SECTIONS: &[&str] = &["env", "compress", "policy", "ppo", "run", "eval"];

/// Sections renamed since recorded runs: `[features]` (the compress conv) is `[compress]`.
pub const RENAMED: &[(&str, &str)] = &[("features", "compress")];

/// Runs the task on every tap of the context.
pub fn run(ctx: &RunContext) -> Result<TaskOutput> {
    let setup = ctx.setup;
    let cfg = NavConfig::from_doc(&setup.doc)?;
    let root = ctx.out.join(&ctx.run);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let probe = envs::make_one(&cfg.env, Phase::Train)?;
    let spaces = probe.spaces().clone();
    eprintln!(
        "navigation: {} x{}, {} updates of {} frames, taps {:?}, {} seeds",
        probe.describe(),
        cfg.env.envs,
        cfg.updates(),
        cfg.frames_per_update(),
        ctx.taps.iter().map(|t| t.name()).collect::<Vec<_>>(),
        cfg.run.seeds
    );
    drop(probe);
    let mut metrics = Vec::new();
    let mut details = serde_json::Map::new();
    let mut curves_by_tap = Vec::new();
    let mut random: Option<Evaluation> = None;
    let backbone = Backbone::load(&setup.backbone, &setup.device)?;
    for &tap in ctx.taps {
        let perception = Perception::new(
            &backbone,
            tap,
            setup.extract.transform.clone(),
            spaces.observation.height,
            spaces.observation.width,
        )?;
        if random.is_none() && cfg.eval.episodes > 0 {
            let r = evaluate(&cfg, &perception, None)?;
            eprintln!(
                "random policy on held-out episodes: return {:.2}, success {:.1}%",
                r.return_mean, r.success_rate
            );
            random = Some(r);
        }
        let digest = digest(ctx, tap)?;
        let mut rows = Vec::new();
        let mut evals = Vec::new();
        for seed in 0..cfg.run.seeds as u64 {
            let dir = root.join(tap.name()).join(format!("seed_{seed}"));
            let run = AgentRun {
                cfg: &cfg,
                perception: &perception,
                actions: spaces.action.n,
                seed,
                dir: dir.clone(),
                resume: cfg.run.resume,
                digest: digest.clone(),
            };
            let trained = train(&run)?;
            if cfg.eval.episodes == 0 {
                rows.push(trained.rows);
                continue;
            }
            let eval = evaluate(&cfg, &perception, Some(&trained.agent))?;
            eprintln!(
                "{} seed {seed}: held-out return {:.2}, success {:.1}% ({:.0} s training)",
                tap.name(),
                eval.return_mean,
                eval.success_rate,
                trained.seconds
            );
            crate::atomic::write_atomic(
                &dir.join("eval.json"),
                serde_json::to_string_pretty(&eval)?.as_bytes(),
            )?;
            for png in render::record(&cfg, &perception, &trained.agent, &dir)? {
                if png.extension().is_some_and(|e| e == "png") {
                    add_preview(&dir.join(LOG), "rollout", cfg.updates(), &png)?;
                }
            }
            rows.push(trained.rows);
            evals.push(eval);
        }
        let curve = curves::curve(&rows, cfg.run.log_every);
        curves::write_csv(&curve, &root.join(format!("curves_{}.csv", tap.name())))?;
        metrics.extend(tap_metrics(tap, &evals));
        details.insert(tap.name().to_string(), json!({ "seeds": evals }));
        curves_by_tap.push((tap.name().to_string(), curve));
    }
    curves::plot_all(&curves_by_tap, &ctx.run, &root)?;
    details.insert("random".into(), serde_json::to_value(&random)?);
    details.insert("folder".into(), json!(root));
    details.insert("final_curve".into(), json!(final_points(&curves_by_tap)));
    Ok(TaskOutput {
        metrics,
        details: serde_json::Value::Object(details),
        ..TaskOutput::default()
    })
}

/// Held-out return and success rate of a tap, mean and spread over seeds.
fn tap_metrics(tap: Tap, evals: &[Evaluation]) -> Vec<Metric> {
    let metric = |name: &str, values: Vec<f64>| {
        Spread::of(&values).map(|(value, spread)| Metric {
            tap: tap.name().to_string(),
            name: name.to_string(),
            value,
            spread: Some(spread),
            ..Metric::default()
        })
    };
    [
        metric("return", evals.iter().map(|e| e.return_mean).collect()),
        metric("success", evals.iter().map(|e| e.success_rate).collect()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn final_points(curves: &[(String, Vec<Point>)]) -> serde_json::Value {
    curves
        .iter()
        .map(|(tap, c)| {
            let last = c.last();
            (tap.clone(), json!({ "frames": last.map(|p| p.frames), "return": last.map(|p| p.reward), "success": last.map(|p| p.success) }))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// What shapes an agent's training: the task sections, the transform, the backbone's
/// weights and the tap. Checkpoint and logging cadence, and the training length (a run
/// may be extended), are left out.
fn digest(ctx: &RunContext, tap: Tap) -> Result<String> {
    let doc = &ctx.setup.doc;
    let mut parts: Vec<String> = Vec::new();
    // `[compress]` is hashed under its label before it was renamed from `[features]`, so
    // agents trained before the rename resume.
    for (label, key) in [
        ("env", "env"),
        ("features", "compress"),
        ("policy", "policy"),
        ("ppo", "ppo"),
        ("transform", "transform"),
    ] {
        parts.push(label.to_string());
        if let Some(mut v) = doc.get(key).cloned() {
            if let Some(t) = v.as_table_mut() {
                // The training length may grow on resume.
                t.remove("frames");
            }
            parts.push(toml::to_string(&v).unwrap_or_default());
        }
    }
    parts.push(ctx.setup.backbone.weights_digest()?);
    parts.push(tap.name().to_string());
    Ok(crate::train::run_dir::config_digest(parts))
}
