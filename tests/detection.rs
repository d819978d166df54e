//! The detection task end to end on the ViZDoom detection set (data-scripts/make_doom_voc.py,
//! rendered by setup.sh: real engine frames, boxes from its labels buffer), through the
//! binary: `sslbench proposals` (our selective search) on both splits, then `sslbench run
//! configs/detection/ci_doom.toml` on a 1/8-width ResNet-50. Checked:
//! - the run trains (the loss falls), detects and writes the devkit's results files, whose
//!   per-class APs, scored by our Python port of the devkit (data-scripts/voc_eval.py), equal
//!   the run's within 1e-9;
//! - a second run finds every frozen map in the cache and computes no trunk;
//! - a run killed after a checkpoint and resumed ends with the same weights, bit for bit, as
//!   the run that never stopped;
//! - missing proposals and proposals of another split are clear errors.
//!
//! Data: the rendered ViZDoom set (fetched and rendered at set-up); nothing is committed.

mod common;

use common::{kill_once_exists, ok, sample, sslbench};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const TASK: &str = "configs/detection/ci_doom.toml";
const BACKBONE: &str = "configs/backbones/resnet50_w8_random.toml";
const RUN: &str = "ci_doom_resnet50_w8_random";

/// The proposals of both splits, computed once for every test.
fn proposals() -> &'static (PathBuf, PathBuf) {
    static P: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    P.get_or_init(|| {
        let root = sample("doom-voc");
        let dir = std::env::temp_dir().join(format!("sslbench-det-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cache = dir.join("unused-cache");
        let make = |split: &str| {
            let out = dir.join(format!("{split}.pkl"));
            let spec = format!("voc:{}:{split}", root.display());
            ok(sslbench(
                &cache,
                &[
                    "proposals",
                    "--dataset",
                    &spec,
                    "--out",
                    out.to_str().unwrap(),
                ],
            )
            .output()
            .unwrap());
            out
        };
        (make("trainval"), make("test"))
    })
}

/// The `sslbench run` command of the CI task, writing to `out` with `cache`.
fn run_cmd(cache: &Path, out: &Path, extra: &[&str]) -> Command {
    let (train, test) = proposals();
    let sets = [
        format!("data.root={}", sample("doom-voc").display()),
        format!("data.train_proposals=[\"{}\"]", train.display()),
        format!("data.test_proposals=[\"{}\"]", test.display()),
    ];
    let mut args = vec![
        "run",
        TASK,
        "--backbone",
        BACKBONE,
        "--out",
        out.to_str().unwrap(),
    ];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    args.extend(extra);
    sslbench(cache, &args)
}

fn result(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join(format!("{RUN}.json"))).unwrap()).unwrap()
}

fn res4_dir(out: &Path) -> PathBuf {
    out.join(RUN).join("res4")
}

/// The training log's `loss_cls` column.
fn losses(out: &Path) -> Vec<f64> {
    std::fs::read_to_string(res4_dir(out).join("train.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect()
}

fn final_weights(out: &Path) -> Vec<u8> {
    std::fs::read(res4_dir(out).join("checkpoints/step_00000060/model.safetensors")).unwrap()
}

#[test]
fn fast_rcnn_trains_detects_caches_resumes_and_matches_the_devkit() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let text = ok(run_cmd(cache.path(), out.path(), &[]).output().unwrap());
    let r = result(out.path());
    let tap = &r["details"]["taps"][0];
    assert_eq!(tap["iterations_run"], 60, "{text}");
    let l = losses(out.path());
    assert!(l.iter().all(|x| x.is_finite()), "{l:?}");
    assert!(l[l.len() - 1] < 0.6 * l[0], "the loss did not fall: {l:?}");
    assert!(res4_dir(out.path()).join("detections.png").exists());
    // The chance level over the same proposals is reported beside the mAP: random scores give
    // a few hundredths of a point here (about 800 proposals an image, 1-3 objects).
    let chance = tap["mAP_random_scores"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&chance), "{chance}");

    // Our APs against the devkit's rules as data-scripts/voc_eval.py computes them from the
    // comp4 files the run wrote.
    let results = res4_dir(out.path()).join("results");
    let py = Command::new("python3")
        .args([
            "data-scripts/voc_eval.py",
            "--annotations",
            sample("doom-voc/Annotations").to_str().unwrap(),
            "--image-set",
            sample("doom-voc/ImageSets/Main/test.txt").to_str().unwrap(),
            "--classes",
            "zombieman,shotgunguy,imp,demon,barrel,medikit",
            "--results",
            results.to_str().unwrap(),
            "--use-07-metric",
            "--overlap-test",
            "strict",
        ])
        .output()
        .unwrap();
    let py_text = ok(py);
    let reference: Value = serde_json::from_str(&py_text).unwrap();
    let mut compared = 0;
    for ap in tap["ap"].as_array().unwrap() {
        let class = ap["class"].as_str().unwrap();
        let theirs = &reference["classes"][class]["ap"];
        match (ap["ap"].as_f64(), theirs.as_f64()) {
            (Some(ours), Some(theirs)) => {
                assert!(
                    (ours / 100.0 - theirs).abs() < 1e-9,
                    "{class}: {ours} vs {theirs}"
                );
                compared += 1;
            }
            (None, None) => {}
            other => panic!("{class}: {other:?}"),
        }
    }
    assert_eq!(compared, 6, "{py_text}");

    // A second run (another out folder) reads every frozen map from the cache.
    let again = tempfile::tempdir().unwrap();
    let text = ok(run_cmd(cache.path(), again.path(), &[]).output().unwrap());
    let cached = result(again.path())["cache"].clone();
    assert!(
        cached
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "cached"),
        "{cached}\n{text}"
    );
    assert_eq!(final_weights(again.path()), final_weights(out.path()));

    // Killed after its first checkpoint, then resumed: the same final weights.
    let killed = tempfile::tempdir().unwrap();
    let first = res4_dir(killed.path()).join("checkpoints/step_00000020/state.json");
    kill_once_exists(run_cmd(cache.path(), killed.path(), &[]), &first);
    let text = ok(run_cmd(cache.path(), killed.path(), &["--resume"])
        .output()
        .unwrap());
    assert!(text.contains("resuming"), "{text}");
    assert_eq!(final_weights(killed.path()), final_weights(out.path()));
}

#[test]
fn missing_or_mismatched_proposals_are_clear_errors() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (train, test) = proposals();
    let missing = out.path().join("nowhere.pkl");
    let run = |train: &Path, test: &Path| {
        let o = run_cmd(cache.path(), out.path(), &[])
            .args([
                "--set",
                &format!("data.train_proposals=[\"{}\"]", train.display()),
            ])
            .args([
                "--set",
                &format!("data.test_proposals=[\"{}\"]", test.display()),
            ])
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let err = run(&missing, test);
    assert!(
        err.contains("nowhere.pkl") && err.contains("sslbench proposals"),
        "{err}"
    );
    // The test split's proposals given for training: their ids are not the split's.
    let err = run(test, test);
    assert!(err.contains(test.to_str().unwrap()), "{err}");
    let _ = train;
}
