//! The normals task end to end through the binary on the ViZDoom frames of
//! data-scripts/make_normals_frames.py (rendered by setup.sh, the engine's depth, in the NYUv2
//! labelled-.mat layout): `sslbench run configs/normals/ci_doom.toml` on a 1/8-width ResNet-50.
//! Checked:
//! - the run trains (the loss falls), evaluates and writes the pooled metrics of the model and
//!   of the two baselines (the training set's most common cluster everywhere, the mean
//!   training normal per pixel) in the results JSON, and `normals.png`;
//! - the held-out median angular error is below the per-pixel mean-normal baseline;
//! - a second run with the same cache finds every frozen map cached.
//!
//! Known limit (see the report of issue 14): ViZDoom's 8-bit depth buffer holds a handful of
//! levels per frame and is constant down each column, so most ground-truth normals are one
//! direction and the most-common-cluster baseline's median is near 0 degrees; the test does
//! not claim the model beats it on these frames.

mod common;

use common::{ok, sample, sslbench};
use serde_json::Value;
use std::path::Path;

const TASK: &str = "configs/normals/ci_doom.toml";
const BACKBONE: &str = "configs/backbones/resnet50_w8_random.toml";
const RUN: &str = "ci_doom_resnet50_w8_random";

fn run(cache: &Path, out: &Path) -> String {
    let root = format!("data.root={}", sample("normals-frames").display());
    ok(sslbench(
        cache,
        &[
            "run",
            TASK,
            "--backbone",
            BACKBONE,
            "--out",
            out.to_str().unwrap(),
            "--set",
            &root,
        ],
    )
    .output()
    .unwrap())
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
    assert!(
        median("model") < median("mean_normal_per_pixel"),
        "model {} vs mean normal {}",
        median("model"),
        median("mean_normal_per_pixel")
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
    assert_eq!(statuses, ["cached", "cached"], "{}", r2["cache"]);
}
