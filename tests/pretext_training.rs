//! Pretext training on real images, through `sslbench pretrain` (release build, 2 threads):
//! Rotation and Jigsaw on Fashion-MNIST (data/samples/fashion-mnist, fetched by
//! data-scripts/setup.sh from Debian's dataset-fashion-mnist; labels unused) and
//! Colorization on scikit-image's photos (data/samples/skimage-folder, from its PyPI wheel),
//! each with a ResNet-50 at width 1/8 on 18-32 px inputs: the loss falls and the pretext
//! accuracy beats chance by a clear margin. A run killed mid-way and resumed from its
//! checkpoint ends with the same bytes as an uninterrupted one.

mod common;

use common::{ok, sample, sslbench};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Runs `sslbench pretrain CONFIG --out OUT --set ...` and reads its `pretrain.json`.
fn pretrain(config: &str, out: &Path, sets: &[&str]) -> Value {
    let mut args = vec!["pretrain", config, "--out", out.to_str().unwrap()];
    for s in sets {
        args.extend(["--set", s]);
    }
    let cache = tempfile::tempdir().unwrap();
    let text = ok(sslbench(cache.path(), &args).output().unwrap());
    eprintln!("{text}");
    serde_json::from_slice(&std::fs::read(out.join("pretrain.json")).unwrap()).unwrap()
}

/// The first logged loss, and the mean of the last three (one logged loss swings by 10% at
/// the demo's learning rate, and where it lands depends on every rounding before it).
fn loss_ends(out: &Path) -> (f64, f64) {
    let log = std::fs::read_to_string(out.join("log.csv")).unwrap();
    let losses: Vec<f64> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    let tail = &losses[losses.len().saturating_sub(3)..];
    (losses[0], tail.iter().sum::<f64>() / tail.len() as f64)
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("pretrain.json has no number `{key}`: {v}"))
}

#[test]
fn rotation_learns_on_real_images() {
    sample("fashion-mnist/lists/pretrain.txt");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rotation");
    let s = pretrain(
        "configs/pretext/demo_rotation.toml",
        &out,
        &["train.steps=150"],
    );
    let (first, last) = loss_ends(&out);
    assert!(last < 0.8 * first, "loss {first} -> {last}");
    let chance = num(&s, "chance");
    assert_eq!(chance, 25.0);
    assert!(num(&s, "final_accuracy") > chance + 15.0, "{s}");
    assert!(num(&s, "holdout_accuracy") > chance + 10.0, "{s}");
    assert!(out.join("loss.png").exists() && out.join("accuracy.png").exists());
    assert!(out.join("rotation.toml").exists() && out.join("model.safetensors").exists());
}

#[test]
fn jigsaw_learns_on_real_images() {
    sample("fashion-mnist/lists/pretrain.txt");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("jigsaw");
    let s = pretrain("configs/pretext/demo_jigsaw.toml", &out, &[]);
    let (first, last) = loss_ends(&out);
    assert!(last < 0.8 * first, "loss {first} -> {last}");
    let chance = num(&s, "chance");
    assert_eq!(chance, 5.0);
    assert!(num(&s, "final_accuracy") > 3.0 * chance, "{s}");
    assert!(num(&s, "holdout_accuracy") > 2.0 * chance, "{s}");
    // The permutation set was generated and saved for reuse.
    assert!(out.join("permutations.npy").exists());
}

#[test]
fn colorization_learns_on_real_photos_and_writes_previews() {
    sample("skimage-folder");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("colour");
    let s = pretrain("configs/pretext/demo_colorization.toml", &out, &[]);
    let (first, last) = loss_ends(&out);
    assert!(last < 0.8 * first, "loss {first} -> {last}");
    // Chance here is the better of 1/Q and always answering the most frequent bin.
    let chance = num(&s, "chance");
    assert!(chance > 100.0 / num(&s, "classes"));
    assert!(num(&s, "final_accuracy") > chance + 4.0, "{s}");
    let previews: Vec<_> = std::fs::read_dir(out.join("colourised")).unwrap().collect();
    assert_eq!(previews.len(), 2);
}

#[test]
fn killed_run_resumes_to_the_same_bytes() {
    sample("fashion-mnist/lists/pretrain.txt");
    let dir = tempfile::tempdir().unwrap();
    let sets = [
        "train.steps=40",
        "train.checkpoint_every=10",
        "train.log_every=5",
        "data.holdout=0",
    ];
    let whole = dir.path().join("whole");
    pretrain("configs/pretext/demo_rotation.toml", &whole, &sets);

    let cut = dir.path().join("cut");
    let mut args = vec![
        "pretrain",
        "configs/pretext/demo_rotation.toml",
        "--out",
        cut.to_str().unwrap(),
    ];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let cache = tempfile::tempdir().unwrap();
    let mut child = sslbench(cache.path(), &args).spawn().unwrap();
    let first = cut.join("checkpoints/step_00000010");
    while !first.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !cut.join("model.safetensors").exists(),
        "the run was not cut short"
    );

    let mut resume = args.clone();
    resume.push("--resume");
    let text = ok(sslbench(cache.path(), &resume).output().unwrap());
    let from: usize = text
        .split("from step ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resume message in:\n{text}"));
    assert!((10..40).contains(&from), "resumed from {from}");
    let a = std::fs::read(whole.join("model.safetensors")).unwrap();
    let b = std::fs::read(cut.join("model.safetensors")).unwrap();
    assert!(
        a == b,
        "the resumed run's weights differ from the uninterrupted run's"
    );
    // The log is whole again: one row per 5 steps, no duplicates from the redone steps.
    let rows = std::fs::read_to_string(cut.join("log.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    assert_eq!(rows, 8);

    // Without --resume an existing run is refused, naming the fix.
    let refused = sslbench(cache.path(), &args).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));
}
