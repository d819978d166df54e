//! Helpers shared by the integration tests.
#![allow(dead_code)]

use candle_core::Tensor;
use sslbench::data::{ChannelOrder, Crop, Resize, TransformConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A committed fixture (tests/fixtures/...), derived by a data-script from real data.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The device the parity tests run on: `SSLBENCH_TEST_DEVICE` (`cpu`, the default, or
/// `cuda:N` with a `--features cuda` build; data-scripts/gpu_check.sh sets it).
#[allow(dead_code)]
pub fn device() -> candle_core::Device {
    let spec = std::env::var("SSLBENCH_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    match spec.strip_prefix("cuda:") {
        None if spec == "cpu" => candle_core::Device::Cpu,
        Some(n) if n.parse::<usize>().is_ok() => candle_core::Device::new_cuda(n.parse().unwrap())
            .unwrap_or_else(|e| {
                panic!("SSLBENCH_TEST_DEVICE={spec}: {e} (a --features cuda build?)")
            }),
        _ => panic!("SSLBENCH_TEST_DEVICE={spec}: expected cpu or cuda:N"),
    }
}

/// A fetched sample (data/samples/...); fails with the command to run when absent.
pub fn sample(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/samples")
        .join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `bash data-scripts/fetch_samples.sh` first",
        p.display()
    );
    p
}

/// Reads every array of an `.npz` fixture.
pub fn npz(rel: &str) -> HashMap<String, Tensor> {
    Tensor::read_npz(fixture(rel))
        .unwrap()
        .into_iter()
        .collect()
}

/// ||a - b||_inf / ||b||_inf: the relative error used by the parity checks.
pub fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let cpu = candle_core::Device::Cpu;
    let (a, b) = (&a.to_device(&cpu).unwrap(), &b.to_device(&cpu).unwrap());
    let diff = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap();
    let scale = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    diff.to_scalar::<f32>().unwrap() / scale.to_scalar::<f32>().unwrap().max(1e-12)
}

/// Copies a directory tree (the sample sets are a few files).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A tempdir holding a copy of the labelme VOC sample set.
pub fn voc_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&sample("labelme-voc"), dir.path());
    dir
}

/// Strings from string literals.
pub fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// torchvision's ImageNet evaluation transform: Resize(256), CenterCrop(224), ToTensor,
/// Normalize.
pub fn imagenet_center() -> TransformConfig {
    TransformConfig {
        resize: Resize::Shorter(256),
        ..center_crop(224)
    }
}

/// Centre crop to `size` after no resize, ImageNet mean/std on RGB in [0, 1].
pub fn center_crop(size: u32) -> TransformConfig {
    TransformConfig {
        resize: Resize::None,
        crop: Crop::Center,
        size,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        pixel_scale: 1.0 / 255.0,
        channel_order: ChannelOrder::Rgb,
    }
}

/// The sslbench binary with `cache` as its feature cache and two rayon threads.
pub fn sslbench(cache: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sslbench"));
    cmd.args(args)
        .env("SSLBENCH_CACHE", cache)
        .env("RAYON_NUM_THREADS", "2");
    cmd
}

/// Stdout and stderr of a finished command, which must have succeeded.
pub fn ok(out: std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "command failed:\n{text}");
    text
}

/// Spawns `cmd` (its output discarded) and waits up to 300 s for `ready()`.
fn spawn_until(mut cmd: std::process::Command, ready: impl Fn() -> bool) -> std::process::Child {
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !ready() && start.elapsed() < std::time::Duration::from_secs(300) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

/// Runs `cmd` until `marker` exists, then kills it: a training run cut off after its first
/// checkpoint. Fails when the marker takes over 300 s.
pub fn kill_once_exists(cmd: std::process::Command, marker: &Path) {
    let mut child = spawn_until(cmd, || marker.exists());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(marker.exists(), "no {} within 300 s", marker.display());
}

/// Runs `cmd` until `ready()` holds, then sends it SIGTERM, as Slurm does before a
/// preemption; returns its exit code. Fails when `ready` takes over 300 s.
pub fn term_once(cmd: std::process::Command, ready: impl Fn() -> bool) -> Option<i32> {
    let mut child = spawn_until(cmd, &ready);
    assert!(ready(), "not ready to be stopped within 300 s");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap().code()
}

/// The steps of the `step_*` checkpoints in `dir`.
pub fn checkpoint_steps(dir: &Path) -> Vec<usize> {
    let mut steps: Vec<usize> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()?
                .strip_prefix("step_")?
                .parse()
                .ok()
        })
        .collect();
    steps.sort();
    steps
}

/// `count` copies of real photos (data/samples/skimage) in an ImageFolder under `dir`, as a
/// dataset SPEC.
pub fn photo_folder(dir: &Path, count: usize) -> String {
    let class = dir.join("photos");
    std::fs::create_dir_all(&class).unwrap();
    let photos = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"];
    for i in 0..count {
        let src = sample("skimage").join(photos[i % 4]);
        std::fs::copy(&src, class.join(format!("{i:02}_{}", photos[i % 4]))).unwrap();
    }
    format!("imagefolder:{}", dir.display())
}

/// The sweep's results of `out`, by run: the `metrics` and `tables` fields (the scores;
/// timings, config and cache paths differ between runs by design).
pub fn scores(out: &Path) -> Vec<(String, serde_json::Value)> {
    let mut v: Vec<(String, serde_json::Value)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let j: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, serde_json::json!([j["metrics"], j["tables"]]))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The `--set` overrides that shrink `tasks/places205_linear.toml` to the small Fashion-MNIST
/// lists (data/samples): a ResNet-50 at width 1/16, 112-pixel inputs (taps whose pools fit:
/// conv1, res3, pool5), batches of 60 in two batch-norm groups. The schedule is the caller's.
pub fn small_probe_sets() -> Vec<String> {
    let fashion = sample("fashion-mnist");
    let list = |name: &str| {
        format!(
            "list:{}/lists/{name}.txt:{}",
            fashion.display(),
            fashion.display()
        )
    };
    vec![
        "backbone.width=0.0625".to_string(),
        format!("data.train={}", list("train_small")),
        format!("data.val={}", list("val_small")),
        "transform.resize=128".into(),
        "transform.size=112".into(),
        "probe.fair.batch_size=60".into(),
        "probe.fair.bn_group=30".into(),
    ]
}
