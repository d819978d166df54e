//! TensorBoard reads our event files: a short Colorization pretext run (scikit-image's photos,
//! data/samples/skimage-folder from its PyPI wheel), killed and resumed from its checkpoint, and
//! a short navigation run on the built-in environment, each read back with the `tensorboard`
//! package's own EventAccumulator (data-scripts/read_tensorboard.py, tensorboard pinned in
//! data-scripts/requirements.txt). Its view holds every CSV column as a scalar with the CSV's
//! values (to f32) at the CSV's steps, each step once although the resumed run redid some, and
//! the preview PNGs at the last step, decodable at their size; the loader TensorBoard's Python
//! server uses holds the same steps. Release build, about 20 s.

mod common;

use common::{checkpoint_steps, ok, sample, sslbench};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// TensorBoard's view of the run folder `dir`, as read_tensorboard.py prints it.
fn tensorboard(dir: &Path) -> Value {
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data-scripts/read_tensorboard.py"
        ))
        .arg(dir)
        .output()
        .expect("python3 (with tensorboard: data-scripts/setup.sh) must be on PATH");
    assert!(
        out.status.success(),
        "read_tensorboard.py failed (run data-scripts/setup.sh for its packages):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The header and the rows (fields) of a CSV log.
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(String::from).collect());
    let header = lines.next().unwrap();
    (header, lines.collect())
}

/// The steps TensorBoard holds for scalar `tag`.
fn steps(view: &Value, tag: &str) -> Vec<u64> {
    view["scalars"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("TensorBoard shows no scalar {tag}: {view}"))
        .iter()
        .map(|p| p[0].as_u64().unwrap())
        .collect()
}

/// The steps TensorBoard's server loader holds for `tag` (a scalar or an image).
fn served_steps(view: &Value, tag: &str) -> Vec<u64> {
    let steps = view["server_steps"][tag].as_array();
    let steps = steps.unwrap_or_else(|| panic!("the server shows no {tag}: {view}"));
    steps.iter().map(|s| s.as_u64().unwrap()).collect()
}

/// Every column of the CSV log at `path` but the step is a scalar of `view` with one point
/// per row: the row's step, and its value as an f32 (NaN shows as null).
fn assert_scalars_are_the_csv(view: &Value, path: &Path) {
    let (header, rows) = csv(path);
    assert!(!rows.is_empty(), "{} has no rows", path.display());
    let tags: Vec<&String> = view["scalars"].as_object().unwrap().keys().collect();
    assert_eq!(
        tags.len(),
        header.len() - 1,
        "tags {tags:?}, header {header:?}"
    );
    let want_steps: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    for (j, tag) in header.iter().enumerate().skip(1) {
        assert_eq!(steps(view, tag), want_steps, "steps of {tag}");
        assert_eq!(served_steps(view, tag), want_steps, "served steps of {tag}");
        for (row, point) in rows.iter().zip(view["scalars"][tag].as_array().unwrap()) {
            let want = row[j].parse::<f64>().unwrap() as f32;
            match point[1].as_f64() {
                Some(got) => assert_eq!(got as f32, want, "{tag} at step {}", row[0]),
                None => assert!(want.is_nan(), "{tag} at step {} is null", row[0]),
            }
        }
    }
}

/// `view` holds image `tag` once, at `step`, with the size of the PNG at `png`.
fn assert_image(view: &Value, tag: &str, step: u64, png: &Path) {
    let (w, h) = image::image_dimensions(png).unwrap();
    let shown = view["images"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("TensorBoard shows no image {tag}: {}", view["images"]));
    assert_eq!(shown.len(), 1, "{tag}: {shown:?}");
    let im = &shown[0];
    assert_eq!(im["step"].as_u64(), Some(step), "{tag}: {im}");
    assert_eq!(
        (im["width"].as_u64(), im["height"].as_u64()),
        (Some(w.into()), Some(h.into()))
    );
    assert_eq!(im["decoded"], serde_json::json!([w, h]), "{tag}");
    assert_eq!(served_steps(view, tag), [step], "served steps of {tag}");
}

/// The last step logged in the CSV log at `path` (0 before any row).
fn last_logged(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let last = text.lines().skip(1).last().unwrap_or("0");
    last.split(',').next().unwrap().parse().unwrap_or(0)
}

#[test]
fn a_killed_and_resumed_pretext_run_shows_each_step_once_and_its_previews() {
    sample("skimage-folder");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("colour");
    let log = out.join("log.csv");
    let mut args = vec![
        "pretrain",
        "configs/pretext/demo_colorization.toml",
        "--out",
        out.to_str().unwrap(),
    ];
    for s in [
        "train.steps=60",
        "train.log_every=2",
        "train.checkpoint_every=20",
    ] {
        args.extend(["--set", s]);
    }
    let cache = tempfile::tempdir().unwrap();
    // Killed (SIGKILL, as a crash) once it has logged steps after its first checkpoint.
    let mut child = sslbench(cache.path(), &args).spawn().unwrap();
    let started = Instant::now();
    while !(out.join("checkpoints/step_00000020").exists() && last_logged(&log) > 20) {
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        assert!(started.elapsed() < Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The resume starts at the newest checkpoint folder.
    let resume_step = *checkpoint_steps(&out.join("checkpoints")).last().unwrap() as u64;
    let killed = tensorboard(&out);
    let killed_last = *steps(&killed, "loss").last().unwrap();
    assert!(
        killed_last > resume_step,
        "killed at {killed_last}, resumes at {resume_step}"
    );
    assert!(
        !out.join("model.safetensors").exists(),
        "the run was not cut short"
    );

    let mut resume = args.clone();
    resume.push("--resume");
    ok(sslbench(cache.path(), &resume).output().unwrap());
    let view = tensorboard(&out);
    // The redone steps are in both files, with other timings: TensorBoard shows the new ones.
    assert_scalars_are_the_csv(&view, &log);
    assert_eq!(steps(&view, "loss").last(), Some(&60));
    let event_files = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("events.out.tfevents.")
        })
        .count();
    assert_eq!(event_files, 2);
    let previews: Vec<_> = std::fs::read_dir(out.join("colourised"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(previews.len(), 2);
    for png in &previews {
        let name = png.file_stem().unwrap().to_string_lossy();
        assert_image(&view, &format!("colourised/{name}"), 60, png);
    }
}

#[test]
fn a_navigation_run_shows_its_progress_and_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let args = [
        "nav",
        "configs/nav/ci_builtin.toml",
        "--backbone",
        "configs/backbones/resnet50_w8_random.toml",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "ppo.frames=1536",
        "--set",
        "eval.episodes=1",
        "--set",
        "eval.rollout_frames=8",
    ];
    let cache = tempfile::tempdir().unwrap();
    ok(sslbench(cache.path(), &args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap());
    let run = out.join("ci_builtin_resnet50_w8_random/res3/seed_0");
    let view = tensorboard(&run);
    assert_scalars_are_the_csv(&view, &run.join("progress.csv"));
    // 1536 frames are 6 updates of 4 environments x 64 steps.
    assert_eq!(steps(&view, "fps").last(), Some(&6));
    assert_image(&view, "rollout", 6, &run.join("rollout.png"));
}
