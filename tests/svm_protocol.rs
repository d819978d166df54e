//! The SVM tasks end to end on real images: Fashion-MNIST (Debian `dataset-fashion-mnist`,
//! written in VOC layout by data-scripts/setup.sh into data/samples/fashion-mnist).
//!
//! - `sslbench run tasks/voc07_svm.toml` on a random-init ResNet-50 (width 1/16) gives a
//!   table over conv1..res5;
//! - on two of those taps' cached features, the per-class cost choice and test AP equal
//!   scikit-learn's `LinearSVC` pipeline (data-scripts/svm_reference.py) within 0.002;
//! - `sslbench svm` killed mid-run resumes without redoing finished (class, cost, fold)
//!   chains and ends with the numbers of an uninterrupted run;
//! - the low-shot task reports both cost choices for every k.

mod common;

use common::{ok, sample, sslbench};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CLASSES: &str = r#"data.classes=["tshirt","trouser","pullover","dress","coat","sandal","shirt","sneaker","bag","ankleboot"]"#;

/// `sslbench run <task>` on the small Fashion-MNIST splits; returns the results JSON.
fn run_task(cache: &Path, out: &Path, task: &str, taps: &str, extra: &[&str]) -> Value {
    let root = format!("data.root={}", sample("fashion-mnist").display());
    let mut args = vec![
        "run",
        task,
        "--backbone",
        "configs/backbones/resnet50_random.toml",
        "--taps",
        taps,
        "--out",
        out.to_str().unwrap(),
        "--set",
        "backbone.width=0.0625",
        "--set",
        &root,
        "--set",
        "data.train=voc:{root}:trainval_small",
        "--set",
        "data.test=voc:{root}:test_small",
        "--set",
        CLASSES,
    ];
    for e in extra {
        args.extend(["--set", e]);
    }
    ok(sslbench(cache, &args).output().unwrap());
    let stem = Path::new(task).file_stem().unwrap().to_str().unwrap();
    let path = out.join(format!("{stem}_resnet50_random.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Writes the cached features of `digest` as .npy; returns (features, targets).
fn export(cache: &Path, digest: &str, dir: &Path) -> (PathBuf, PathBuf) {
    let out = dir.to_str().unwrap();
    ok(sslbench(cache, &["cache", "export", digest, "--out", out])
        .output()
        .unwrap());
    (
        dir.join(format!("{digest}_features.npy")),
        dir.join(format!("{digest}_targets.npy")),
    )
}

/// The four .npy arguments shared by `sslbench svm` and svm_reference.py.
fn feature_args(trx: &Path, try_: &Path, tex: &Path, tey: &Path) -> Vec<String> {
    let flags = [
        "--train-features",
        "--train-targets",
        "--test-features",
        "--test-targets",
    ];
    flags
        .iter()
        .zip([trx, try_, tex, tey])
        .flat_map(|(f, p)| [f.to_string(), p.display().to_string()])
        .collect()
}

fn digest(result: &Value, tap: &str, split: &str) -> String {
    result["cache"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tap"] == tap && c["spec"].as_str().unwrap().ends_with(split))
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn voc07_svm_table_over_taps_matches_scikit_learn() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("results"));
    let result = run_task(
        &cache,
        &out,
        "tasks/voc07_svm.toml",
        "conv1,res2,res3,res4,res5",
        &[],
    );
    let metrics = result["metrics"].as_array().unwrap();
    let taps: Vec<&str> = metrics.iter().map(|m| m["tap"].as_str().unwrap()).collect();
    assert_eq!(taps, ["conv1", "res2", "res3", "res4", "res5"]);
    for m in metrics {
        // Ten balanced classes: chance AP is 0.1; random features are far above it.
        let v = m["value"].as_f64().unwrap();
        assert!(v > 30.0 && v <= 100.0, "{m}");
    }
    let md = std::fs::read_to_string(out.join("voc07_svm_resnet50_random.md")).unwrap();
    assert!(
        md.contains("### res5: per class") && md.contains("| sandal |"),
        "{md}"
    );
    assert!(out.join("voc07_svm_resnet50_random.csv").exists());
    for (t, tap) in result["details"]["taps"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&taps)
    {
        assert_eq!(t["classes"].as_array().unwrap().len(), 10, "{tap}");
    }
    // The same features through scikit-learn's LinearSVC (data-scripts/svm_reference.py)
    // and `sslbench svm`, on FAIR's costs up to 1. Above that, on these features, both
    // LIBLINEARs stop at max_iter before converging, where the answer depends on the solver's
    // random order: scikit-learn with random_state 0 and 1 differs from itself by up to
    // 0.06 AP there (measured), so no solver can match it to 0.002.
    let costs: Vec<String> = FAIR_COSTS_UP_TO_1.iter().map(|c| c.to_string()).collect();
    for tap in ["res2", "res5"] {
        let (trx, try_) = export(&cache, &digest(&result, tap, "trainval_small"), dir.path());
        let (tex, tey) = export(&cache, &digest(&result, tap, "test_small"), dir.path());
        let files = feature_args(&trx, &try_, &tex, &tey);
        let reference = dir.path().join(format!("sklearn_{tap}.json"));
        ok(Command::new("python3")
            .arg("data-scripts/svm_reference.py")
            .args(&files)
            .args(["--costs", &costs.join(",")])
            .arg("--out")
            .arg(&reference)
            .output()
            .unwrap());
        let ours = dir.path().join(format!("ours_{tap}.json"));
        let grid = format!("svm.costs=[{}]", costs.join(","));
        ok(sslbench(
            &cache,
            &["svm", "--set", &grid, "--out", ours.to_str().unwrap()],
        )
        .args(&files)
        .output()
        .unwrap());
        let read = |p: &Path| -> Value {
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
        };
        let (sk, ours) = (read(&reference), read(&ours));
        let pairs = ours["classes"]
            .as_array()
            .unwrap()
            .iter()
            .zip(sk["classes"].as_array().unwrap());
        for (a, b) in pairs {
            assert_eq!(a["not_converged"], 0, "{tap}: {a}");
            assert_eq!(b["convergence_warnings"], 0, "{tap}: {b}");
            assert_eq!(a["cost"].as_f64(), b["cost"].as_f64(), "{tap} {a} vs {b}");
            let d = (a["test_ap"].as_f64().unwrap() - b["test_ap"].as_f64().unwrap()).abs();
            assert!(d < 0.002, "{tap} class {}: AP differs by {d}", a["name"]);
        }
    }
}

/// FAIR's cost grid without 10 and 100.
const FAIR_COSTS_UP_TO_1: [f64; 24] = [
    1e-7,
    1e-6,
    1e-5,
    1e-4,
    1e-3,
    1e-2,
    0.1,
    1.0,
    0.0625,
    0.03125,
    0.015625,
    0.0078125,
    0.00390625,
    0.001953125,
    0.0009765625,
    0.00048828125,
    0.000244140625,
    0.0001220703125,
    6.103515625e-05,
    3.0517578125e-05,
    1.52587890625e-05,
    7.62939453125e-06,
    3.814697265625e-06,
    1.9073486328125e-06,
];

/// Per-chain state files of the one journal under `cache/svm`, with their sizes in points.
fn chain_states(cache: &Path) -> Vec<(PathBuf, std::time::SystemTime, usize)> {
    let Ok(journals) = std::fs::read_dir(cache.join("svm")) else {
        return vec![];
    };
    journals
        .map(|j| j.unwrap().path())
        // A killed run leaves its journal's lock file beside the journal folders.
        .filter(|j| j.is_dir())
        .flat_map(|j| std::fs::read_dir(j).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "state"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
            let header: Value = serde_json::from_slice(&bytes[..nl]).unwrap();
            let points = header["points"].as_array().unwrap().len();
            (
                p.clone(),
                std::fs::metadata(&p).unwrap().modified().unwrap(),
                points,
            )
        })
        .collect()
}

#[test]
fn killed_svm_run_resumes_to_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // Real features: one tap of the small splits, full trainval and test.
    let result = run_task(
        &cache,
        &dir.path().join("r"),
        "tasks/voc07_svm.toml",
        "conv1",
        &["svm.costs=[0.1]"],
    );
    let (trx, try_) = export(
        &cache,
        &digest(&result, "conv1", "trainval_small"),
        dir.path(),
    );
    let (tex, tey) = export(&cache, &digest(&result, "conv1", "test_small"), dir.path());
    let svm = |cache: &Path, out: &Path| {
        let mut cmd = sslbench(cache, &["svm"]);
        cmd.args(feature_args(&trx, &try_, &tex, &tey))
            .arg("--out")
            .arg(out)
            // The weights-kept solver is slower: enough time to interrupt it.
            .args(["--set", "svm.gram_max_rows=0"]);
        cmd
    };
    let whole = dir.path().join("whole.json");
    ok(svm(&dir.path().join("c1"), &whole).output().unwrap());
    // Interrupted run: kill it once some chains are finished and others are not.
    let c2 = dir.path().join("c2");
    let mut child = svm(&c2, &dir.path().join("never.json")).spawn().unwrap();
    let started = Instant::now();
    loop {
        let states = chain_states(&c2);
        if states.iter().filter(|s| s.2 == 26).count() >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no chain finished"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = chain_states(&c2);
    let resumed = dir.path().join("resumed.json");
    ok(svm(&c2, &resumed).output().unwrap());
    // Finished chains were not trained again (their files were not rewritten).
    let after = chain_states(&c2);
    for (path, modified, points) in before.iter().filter(|s| s.2 == 26) {
        let now = after.iter().find(|a| &a.0 == path).unwrap();
        assert_eq!(
            (now.1, now.2),
            (*modified, *points),
            "{} was redone",
            path.display()
        );
    }
    let read =
        |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    assert_eq!(read(&whole)["classes"], read(&resumed)["classes"]);
}

#[test]
fn lowshot_reports_both_cost_choices_per_k() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("results"));
    let result = run_task(
        &cache,
        &out,
        "tasks/voc07_lowshot.toml",
        "res3",
        &[
            "lowshot.k=[1,4]",
            "lowshot.seeds=[1,2,3]",
            "lowshot.negatives_per_positive=4",
        ],
    );
    let metrics = result["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 4, "2 k x 2 cost choices");
    for m in metrics {
        assert_eq!(m["spread"]["n"], 3);
        let (v, lo, hi) = (
            m["value"].as_f64().unwrap(),
            m["spread"]["min"].as_f64().unwrap(),
            m["spread"]["max"].as_f64().unwrap(),
        );
        assert!(lo <= v && v <= hi && v > 10.0, "{m}");
    }
    let at = |k: u64, variant: &str| {
        metrics
            .iter()
            .find(|m| m["k"] == k && m["variant"] == variant)
            .unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    // More examples help, and the paper's test-set choice is never below the honest one.
    assert!(at(4, "paper-choice") > at(1, "paper-choice"));
    assert!(at(4, "paper-choice") >= at(4, "honest"));
    assert!(out
        .join("voc07_lowshot_resnet50_random_lowshot.png")
        .exists());
}
