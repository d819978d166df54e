//! The normals task end to end through the binary on the MiniWorld frames of
//! data-scripts/make_normals_miniworld.py (rendered by setup.sh: indoor worlds, the renderer's
//! metric depth, in the NYUv2 labelled-.mat layout, test frames from worlds no training frame
//! shows): `sslbench run configs/normals/ci_miniworld.toml` on a 1/8-width ResNet-50. Checked:
//! - the run trains (the loss falls), evaluates and writes the pooled metrics of the model and
//!   of the two baselines (the training set's most common cluster everywhere, the mean
//!   training normal per pixel) in the results JSON, and `normals.png`;
//! - it learns: the held-out median angular error is below 0.9 x the smaller of the two
//!   baselines' medians;
//! - a second run with the same cache finds the training labels and every frozen map cached;
//! - a run killed after its first checkpoint and resumed ends with the same weights, bit for
//!   bit, as the run that never stopped; so does a run stopped by SIGTERM, which checkpoints
//!   at that step and exits with code 75 first.

mod common;

use common::{checkpoint_steps, kill_once_exists, ok, sample, sslbench, term_once};
use serde_json::Value;
use std::path::{Path, PathBuf};

const TASK: &str = "configs/normals/ci_miniworld.toml";
const BACKBONE: &str = "configs/backbones/resnet50_w8_random.toml";
const RUN: &str = "ci_miniworld_resnet50_w8_random";

fn run_cmd(cache: &Path, out: &Path, extra: &[&str]) -> std::process::Command {
    let root = format!("data.root={}", sample("normals-miniworld").display());
    let mut args = vec![
        "run",
        TASK,
        "--backbone",
        BACKBONE,
        "--out",
        out.to_str().unwrap(),
        "--set",
        &root,
    ];
    args.extend(extra);
    sslbench(cache, &args)
}

fn run(cache: &Path, out: &Path) -> String {
    ok(run_cmd(cache, out, &[]).output().unwrap())
}

fn checkpoint(out: &Path, step: usize) -> PathBuf {
    out.join(RUN)
        .join(format!("res4/checkpoints/step_{step:08}"))
}

fn result(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join(format!("{RUN}.json"))).unwrap()).unwrap()
}

#[test]
fn normals_train_evaluate_with_baselines_and_reuse_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let text = run(cache.path(), out.path());
    let r = result(out.path());
    let tap = &r["details"]["taps"][0];
    assert_eq!(tap["iterations_run"], 150, "{text}");
    let dir = out.path().join(RUN).join("res4");
    let losses: Vec<f64> = std::fs::read_to_string(dir.join("train.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(losses[losses.len() - 1] < 0.7 * losses[0], "{losses:?}");
    assert!(dir.join("normals.png").exists());
    let median = |k: &str| tap["scores"][k]["median"].as_f64().unwrap();
    for k in ["model", "most_common_cluster", "mean_normal_per_pixel"] {
        let s = &tap["scores"][k];
        assert!(s["pixels"].as_u64().unwrap() > 100_000, "{s}");
        assert_eq!(s["percent_below"].as_array().unwrap().len(), 3);
    }
    let (model, common, mean) = (
        median("model"),
        median("most_common_cluster"),
        median("mean_normal_per_pixel"),
    );
    eprintln!("held-out medians: model {model}, most common cluster {common}, mean normal {mean}");
    assert!(
        model < 0.9 * common.min(mean),
        "model {model} vs most common cluster {common}, mean normal per pixel {mean}"
    );

    let out2 = tempfile::tempdir().unwrap();
    run(cache.path(), out2.path());
    let r2 = result(out2.path());
    let statuses: Vec<&str> = r2["cache"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["cached", "cached", "cached"], "{}", r2["cache"]);
    let last = |out: &Path| std::fs::read(checkpoint(out, 150).join("model.safetensors")).unwrap();
    assert_eq!(last(out2.path()), last(out.path()));

    // Killed after its first checkpoint, then resumed: the same final weights.
    let killed = tempfile::tempdir().unwrap();
    let first = checkpoint(killed.path(), 50).join("state.json");
    kill_once_exists(run_cmd(cache.path(), killed.path(), &[]), &first);
    assert!(!checkpoint(killed.path(), 150).exists(), "killed too late");
    let text = ok(run_cmd(cache.path(), killed.path(), &["--resume"])
        .output()
        .unwrap());
    assert!(text.contains("resuming"), "{text}");
    assert_eq!(last(killed.path()), last(out.path()));

    // SIGTERM (a Slurm preemption) mid-run: a checkpoint at that step, exit code 75 (requeue),
    // and a resume to the same final weights.
    let termed = tempfile::tempdir().unwrap();
    let log = termed.path().join(RUN).join("res4/train.csv");
    let code = term_once(run_cmd(cache.path(), termed.path(), &[]), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() >= 3)
    });
    assert_eq!(code, Some(75));
    let steps = checkpoint_steps(&termed.path().join(RUN).join("res4/checkpoints"));
    let at = steps.iter().copied().max().unwrap();
    assert!((20..150).contains(&at), "checkpoints at {steps:?}");
    ok(run_cmd(cache.path(), termed.path(), &["--resume"])
        .output()
        .unwrap());
    assert_eq!(last(termed.path()), last(out.path()));
}
