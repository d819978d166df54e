//! The navigation task end to end on the built-in environment (no Python needed), through
//! `sslbench nav` (release build, one thread): PPO on the frozen res3 of a 1/8-width ResNet-50
//! (random init, seeded) learns to reach the target, and on held-out layouts its mean return
//! and success rate beat the uniform random policy's by a clear margin; its curves, evaluation
//! and rendered rollout are written. `--resume` continues a run from its last checkpoint (here:
//! extending a finished run), and an existing run is not overwritten without it.
//!
//! Data: the built-in environment renders its own rooms; nothing is fetched.

mod common;

use common::{ok, sslbench};
use serde_json::Value;
use std::path::Path;

const BACKBONE: &str = "configs/backbones/resnet50_w8_random.toml";
const TASK: &str = "configs/nav/ci_builtin.toml";

/// Runs `sslbench nav` with extra flags and returns its results JSON.
fn nav(out: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "nav",
        TASK,
        "--backbone",
        BACKBONE,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let cache = tempfile::tempdir().unwrap();
    let text = ok(sslbench(cache.path(), &args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap());
    eprintln!("{text}");
    let json = out.join("ci_builtin_resnet50_w8_random.json");
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

fn metric(result: &Value, name: &str) -> f64 {
    result["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name && m["tap"] == "res3")
        .unwrap_or_else(|| panic!("no {name} metric in {result}"))["value"]
        .as_f64()
        .unwrap()
}

#[test]
fn ppo_beats_the_random_policy_on_held_out_layouts() {
    let out = tempfile::tempdir().unwrap();
    let result = nav(out.path(), &[]);
    let agent = metric(&result, "return");
    let random = result["details"]["random"]["return_mean"].as_f64().unwrap();
    let success = metric(&result, "success");
    let random_success = result["details"]["random"]["success_rate"]
        .as_f64()
        .unwrap();
    eprintln!("held out: agent return {agent:.2} success {success:.1}%, random {random:.2} / {random_success:.1}%");
    assert!(
        agent > random + 2.0,
        "agent {agent:.2} vs random {random:.2}"
    );
    assert!(
        success > random_success + 15.0,
        "success {success:.1}% vs {random_success:.1}%"
    );

    let run = out.path().join("ci_builtin_resnet50_w8_random");
    for f in [
        "curves_res3.csv",
        "reward.png",
        "success.png",
        "res3/seed_0/progress.csv",
        "res3/seed_0/eval.json",
        "res3/seed_0/rollout.gif",
        "res3/seed_0/rollout.png",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let curve = std::fs::read_to_string(run.join("curves_res3.csv")).unwrap();
    assert!(curve.lines().count() > 3, "{curve}");
}

#[test]
fn resume_continues_from_the_last_checkpoint() {
    let out = tempfile::tempdir().unwrap();
    let short = [
        "--set",
        "ppo.frames=1024",
        "--set",
        "run.checkpoint_every=2",
        "--set",
        "eval.episodes=4",
        "--set",
        "eval.rollout_frames=0",
    ];
    nav(out.path(), &short);
    let seed = out.path().join("ci_builtin_resnet50_w8_random/res3/seed_0");
    let before = std::fs::read_to_string(seed.join("progress.csv")).unwrap();
    assert_eq!(before.lines().count(), 1 + 4);

    // Without --resume an existing run is refused, and nothing is touched.
    let cache = tempfile::tempdir().unwrap();
    let refused = sslbench(
        cache.path(),
        &[
            "nav",
            TASK,
            "--backbone",
            BACKBONE,
            "--out",
            out.path().to_str().unwrap(),
            "--set",
            "ppo.frames=1024",
            "--set",
            "eval.episodes=4",
        ],
    )
    .output()
    .unwrap();
    assert!(!refused.status.success());
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(msg.contains("--resume"), "{msg}");

    // Extending the run to 8 updates with --resume keeps the first 4 rows and adds 4.
    let mut longer = short.to_vec();
    longer[1] = "ppo.frames=2048";
    longer.push("--resume");
    nav(out.path(), &longer);
    let after = std::fs::read_to_string(seed.join("progress.csv")).unwrap();
    assert_eq!(after.lines().count(), 1 + 8, "{after}");
    assert!(
        after.starts_with(&before),
        "the first rows changed:\n{before}\n{after}"
    );
}
