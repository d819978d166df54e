//! The linear probe: the batch norm against hand-computed values (the SGD update is checked in
//! `train::optim`), the augmentation's window rules, and `sslbench run tasks/places205_linear.toml` end to end on
//! Fashion-MNIST (data/samples, fetched by data-scripts/setup.sh) with a random-init ResNet-50
//! at width 1/16: fast mode learns well above chance and is reproducible; paper mode runs the
//! augmentation through the trunk.

mod common;

use candle_core::{Device, Tensor};
use common::{
    checkpoint_steps, kill_once_exists, ok, sample, small_probe_sets, sslbench, term_once,
};
use rand::SeedableRng;
use sslbench::data::augment::{AugmentConfig, AugmentCrop, Window};
use sslbench::data::{Resize, TransformConfig};
use sslbench::linear::probe::{BatchNorm, ProbeConfig, Unit};
use std::path::Path;
use std::process::Command;

fn close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            (f64::from(*g) - w).abs() < tol,
            "got {got:?}, want {want:?}"
        );
    }
}

fn probe_config(group: usize, affine: bool) -> ProbeConfig {
    ProbeConfig {
        batch_size: 4,
        unit: Unit::Iterations,
        length: 1,
        step: 1,
        lr: 0.01,
        gamma: 0.1,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
        bias_decay: true,
        bn_momentum: 0.9,
        bn_eps: 1e-5,
        bn_group: group,
        bn_affine: affine,
        init_std: 0.01,
    }
}

#[test]
fn batch_norm_normalises_per_channel_and_group_and_keeps_running_stats() {
    // 4 images x (2 channels x 3 positions), channel-major rows.
    let rows: Vec<f32> = (0..24)
        .map(|i| ((i * 7) % 11) as f32 + 0.5 * i as f32)
        .collect();
    let x = Tensor::from_vec(rows.clone(), (4, 6), &Device::Cpu).unwrap();
    let at = |img: usize, ch: usize, pos: usize| f64::from(rows[img * 6 + ch * 3 + pos]);
    for group in [2usize, 4] {
        let mut bn = BatchNorm::new(2, &probe_config(group, false), &Device::Cpu).unwrap();
        let y = bn.train(&x).unwrap().to_vec2::<f32>().unwrap();
        let mut want_mean = [0.0f64; 2];
        let mut want_var = [0.0f64; 2];
        for ch in 0..2 {
            for g in 0..4 / group {
                let cell: Vec<(usize, usize)> = (g * group..(g + 1) * group)
                    .flat_map(|i| (0..3).map(move |p| (i, p)))
                    .collect();
                let n = cell.len() as f64;
                let mean = cell.iter().map(|&(i, p)| at(i, ch, p)).sum::<f64>() / n;
                let var = cell
                    .iter()
                    .map(|&(i, p)| (at(i, ch, p) - mean).powi(2))
                    .sum::<f64>()
                    / n;
                for &(i, p) in &cell {
                    let want = (at(i, ch, p) - mean) / (var + 1e-5).sqrt();
                    let got = f64::from(y[i][ch * 3 + p]);
                    assert!((got - want).abs() < 1e-4, "group {group}: {got} vs {want}");
                }
                want_mean[ch] += mean / (4 / group) as f64;
                want_var[ch] += var * n / (n - 1.0) / (4 / group) as f64;
            }
        }
        // Caffe2 momentum 0.9: running = 0.9 running + 0.1 batch, from mean 0 and variance 1.
        let rm: Vec<f32> = bn.running_mean().to_vec1().unwrap();
        let rv: Vec<f32> = bn.running_var().to_vec1().unwrap();
        close(&rm, &want_mean.map(|m| 0.1 * m), 1e-4);
        close(&rv, &want_var.map(|v| 0.9 + 0.1 * v), 1e-3);
        // Inference uses the running statistics.
        let e = bn.eval(&x).unwrap().to_vec2::<f32>().unwrap();
        for (i, row) in e.iter().enumerate() {
            for ch in 0..2 {
                for p in 0..3 {
                    let want =
                        (at(i, ch, p) - f64::from(rm[ch])) / (f64::from(rv[ch]) + 1e-5).sqrt();
                    assert!((f64::from(row[ch * 3 + p]) - want).abs() < 1e-4);
                }
            }
        }
    }
    // A batch that does not split into groups is refused.
    let mut bn = BatchNorm::new(2, &probe_config(3, false), &Device::Cpu).unwrap();
    assert!(bn.train(&x).is_err());
    // Affine: scale 1 and shift 0 at the start, learned parameters exposed.
    let bn = BatchNorm::new(2, &probe_config(4, true), &Device::Cpu).unwrap();
    assert!(bn.affine().is_some());
}

fn augment(crop: AugmentCrop, scale: [f64; 2], ratio: [f64; 2], flip: bool) -> AugmentConfig {
    AugmentConfig {
        crop,
        scale,
        ratio,
        flip,
    }
}

#[test]
fn augmentation_windows_follow_torchvision() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let full = augment(AugmentCrop::RandomResized, [1.0, 1.0], [1.0, 1.0], false);
    // The whole square image is the only window of area 1 and ratio 1.
    assert_eq!(
        full.window(40, 40, &mut rng),
        Window {
            x: 0,
            y: 0,
            width: 40,
            height: 40
        }
    );
    // A 2:1 image has no such window: the fallback is the central square.
    assert_eq!(
        full.window(80, 40, &mut rng),
        Window {
            x: 20,
            y: 0,
            width: 40,
            height: 40
        }
    );
    // Random windows stay inside the image, within the area and ratio ranges (up to rounding).
    let paper = augment(
        AugmentCrop::RandomResized,
        [0.08, 1.0],
        [0.75, 4.0 / 3.0],
        true,
    );
    for _ in 0..200 {
        let w = paper.window(64, 48, &mut rng);
        assert!(w.x + w.width <= 64 && w.y + w.height <= 48);
        let area = f64::from(w.width * w.height) / (64.0 * 48.0);
        assert!((0.06..=1.0).contains(&area), "{w:?}");
    }
    assert!(
        augment(AugmentCrop::RandomResized, [0.5, 0.1], [0.75, 1.3], true)
            .validate()
            .is_err()
    );

    // "center" is the test transform of the image, flipped or not.
    let img = image::open(sample("skimage/chelsea.png"))
        .unwrap()
        .into_rgb8();
    let tf = TransformConfig {
        resize: Resize::Shorter(64),
        ..common::center_crop(56)
    };
    let plain = tf.apply(&img).unwrap();
    let flipped = tf.apply(&image::imageops::flip_horizontal(&img)).unwrap();
    let center = augment(AugmentCrop::Center, [0.08, 1.0], [0.75, 4.0 / 3.0], true);
    let mut seen = (false, false);
    for seed in 0..16 {
        let out = center
            .apply(&img, &tf, &mut rand::rngs::StdRng::seed_from_u64(seed))
            .unwrap();
        seen.0 |= out == plain;
        seen.1 |= out == flipped;
        assert!(out == plain || out == flipped);
    }
    assert!(seen.0 && seen.1, "both flips occur");
    let out = paper
        .apply(&img, &tf, &mut rand::rngs::StdRng::seed_from_u64(3))
        .unwrap();
    assert_eq!(out.len(), 3 * 56 * 56);
}

/// `sslbench run tasks/places205_linear.toml` on the small Fashion-MNIST lists with a
/// random-init ResNet-50 at width 1/16, 112-pixel inputs (taps whose pools fit: conv1, res3,
/// pool5), batches of 60 in two batch-norm groups.
fn probe_cmd(cache: &Path, out: &Path, extra: &[&str]) -> Command {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut sets = small_probe_sets();
    sets.extend(
        [
            "probe.fair.length=150",
            "probe.fair.step=100",
            "probe.log_every=25",
        ]
        .map(str::to_string),
    );
    sets.extend(extra.iter().map(|s| s.to_string()));
    let task = format!("{root}/tasks/places205_linear.toml");
    let backbone = format!("{root}/configs/backbones/resnet50_random.toml");
    let mut args = vec![
        "run",
        &task,
        "--backbone",
        &backbone,
        "--taps",
        "conv1,res3,pool5",
        "--out",
        out.to_str().unwrap(),
    ];
    for s in &sets {
        args.extend(["--set", s]);
    }
    if extra.contains(&"run.resume=true") {
        args.push("--resume");
    }
    sslbench(cache, &args)
}

/// [`probe_cmd`] run to its end; returns the results JSON.
fn run_probe(cache: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    ok(probe_cmd(cache, out, extra).output().unwrap());
    let text = std::fs::read_to_string(out.join(format!("{RUN}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The run's name, and so its folder under `--out`.
const RUN: &str = "places205_linear_resnet50_random";

/// The final heads a run wrote (its last checkpoint's bytes).
fn final_heads(out: &Path, step: usize) -> Vec<u8> {
    let dir = out.join(RUN).join(format!("checkpoints/step_{step:08}"));
    std::fs::read(dir.join("model.safetensors")).unwrap()
}

/// `(tap, name) -> value` of the metrics, checking their variant.
fn metrics(json: &serde_json::Value, variant: &str) -> Vec<(String, String, f64)> {
    json["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["variant"], variant);
            (
                m["tap"].as_str().unwrap().to_string(),
                m["name"].as_str().unwrap().to_string(),
                m["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn fast_mode_learns_above_chance_and_is_reproducible() {
    let cache = tempfile::tempdir().unwrap();
    let (out1, out2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = run_probe(cache.path(), out1.path(), &[]);
    assert_eq!(first["kind"], "linear_probe");
    assert_eq!(first["details"]["mode"], "fast");
    assert_eq!(first["details"]["classes"], 10);
    assert_eq!(first["details"]["schedule"]["iterations"], 150);
    let values = metrics(&first, "fast");
    assert_eq!(values.len(), 6);
    for tap in ["conv1", "res3", "pool5"] {
        let get = |name: &str| {
            values
                .iter()
                .find(|(t, n, _)| t == tap && n == name)
                .unwrap()
                .2
        };
        // 10 balanced classes: chance is 10% top-1, 50% top-5.
        assert!(get("top1") >= 30.0, "{tap} top-1 {}", get("top1"));
        assert!(get("top5") >= get("top1"), "{tap}");
        let curve = first["details"]["heads"][tap]["loss_curve"]
            .as_array()
            .unwrap();
        assert_eq!(curve.len(), 6);
        let loss = |p: &serde_json::Value| p[1].as_f64().unwrap();
        assert!(
            loss(&curve[5]) < 0.85 * loss(&curve[0]),
            "{tap}: the loss did not fall: {curve:?}"
        );
    }
    // Both splits came from the cache entries of the three taps.
    assert_eq!(first["cache"].as_array().unwrap().len(), 6);

    // Same seed, same numbers (the features now come from the cache).
    let second = run_probe(cache.path(), out2.path(), &[]);
    assert_eq!(metrics(&second, "fast"), values);
    assert_eq!(first["details"]["heads"], second["details"]["heads"]);
    assert!(second["cache"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "cached"));
}

#[test]
fn paper_mode_trains_through_the_trunk() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = run_probe(
        cache.path(),
        out.path(),
        &[
            "probe.mode=paper",
            "probe.fair.length=6",
            "probe.log_every=3",
        ],
    );
    assert_eq!(json["details"]["mode"], "paper");
    assert_eq!(json["details"]["augment"]["crop"], "random_resized");
    assert_eq!(metrics(&json, "paper").len(), 6);
    // Only the val split is read from the cache; the train images went through the trunk.
    let cache_refs = json["cache"].as_array().unwrap();
    assert_eq!(cache_refs.len(), 3);
    assert!(cache_refs
        .iter()
        .all(|c| c["spec"].as_str().unwrap().contains("val_small")));
    let curve = json["details"]["heads"]["conv1"]["loss_curve"]
        .as_array()
        .unwrap();
    assert_eq!(curve.len(), 2);
    assert!(curve.iter().all(|p| p[1].as_f64().unwrap().is_finite()));
}

#[test]
fn fast_mode_resumes_mid_epoch_to_the_same_heads_and_curves() {
    let cache = tempfile::tempdir().unwrap();
    // 300 images in batches of 60: five iterations an epoch; checkpoints every 37 fall inside
    // epochs, and a one-iteration log window makes the curves comparable point for point.
    let sets = [
        "run.checkpoint_every=37",
        "run.keep_checkpoints=10",
        "probe.log_every=1",
    ];
    let whole = tempfile::tempdir().unwrap();
    let want = run_probe(cache.path(), whole.path(), &sets);
    let dir = whole.path().join(RUN).join("checkpoints");
    assert_eq!(checkpoint_steps(&dir), [37, 74, 111, 148, 150]);

    // A run folder used already is refused without --resume, and nothing in it is touched.
    let again = probe_cmd(cache.path(), whole.path(), &sets)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let text = String::from_utf8_lossy(&again.stderr);
    assert!(text.contains("--resume"), "{text}");

    // The same folder as a run that stopped after iteration 74 would have left it.
    let cut = tempfile::tempdir().unwrap();
    common::copy_dir(whole.path(), cut.path());
    let ckpts = cut.path().join(RUN).join("checkpoints");
    for step in [111, 148, 150] {
        std::fs::remove_dir_all(ckpts.join(format!("step_{step:08}"))).unwrap();
    }
    std::fs::write(ckpts.join("latest"), "step_00000074").unwrap();
    let mut resumed_sets = sets.to_vec();
    resumed_sets.push("run.resume=true");
    let got = run_probe(cache.path(), cut.path(), &resumed_sets);
    assert_eq!(got["details"]["resumed_from"], 74);
    assert_eq!(final_heads(cut.path(), 150), final_heads(whole.path(), 150));
    assert_eq!(metrics(&got, "fast"), metrics(&want, "fast"));
    assert_eq!(got["details"]["heads"], want["details"]["heads"]);

    // A finished run resumed trains nothing and reports the same.
    let done = run_probe(cache.path(), cut.path(), &resumed_sets);
    assert_eq!(done["details"]["resumed_from"], 150);
    assert_eq!(metrics(&done, "fast"), metrics(&want, "fast"));
}

#[test]
fn paper_mode_resumes_after_a_kill_and_after_sigterm_to_the_same_heads() {
    let cache = tempfile::tempdir().unwrap();
    let sets = [
        "probe.mode=paper",
        "probe.fair.length=30",
        "probe.fair.step=20",
        "probe.log_every=5",
        "run.checkpoint_every=10",
    ];
    let whole = tempfile::tempdir().unwrap();
    let want = run_probe(cache.path(), whole.path(), &sets);
    let mut resumed_sets = sets.to_vec();
    resumed_sets.push("run.resume=true");

    // SIGKILLed after its first checkpoint, then resumed.
    let killed = tempfile::tempdir().unwrap();
    let first = killed
        .path()
        .join(RUN)
        .join("checkpoints/step_00000010/state.json");
    kill_once_exists(probe_cmd(cache.path(), killed.path(), &sets), &first);
    let got = run_probe(cache.path(), killed.path(), &resumed_sets);
    assert!(got["details"]["resumed_from"].as_u64().unwrap() >= 10);
    assert_eq!(
        final_heads(killed.path(), 30),
        final_heads(whole.path(), 30)
    );
    assert_eq!(metrics(&got, "paper"), metrics(&want, "paper"));

    // SIGTERM (a Slurm preemption) once the log has rows: a checkpoint at that iteration and
    // exit code 75 (the sweep's sbatch script requeues it), then a resume to the same heads.
    let termed = tempfile::tempdir().unwrap();
    let log = termed.path().join(RUN).join("probe_log.csv");
    let code = term_once(probe_cmd(cache.path(), termed.path(), &sets), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() > 3)
    });
    assert_eq!(code, Some(75));
    let steps = checkpoint_steps(&termed.path().join(RUN).join("checkpoints"));
    let at = *steps.last().unwrap();
    assert!((5..30).contains(&at), "checkpoints at {steps:?}");
    let got = run_probe(cache.path(), termed.path(), &resumed_sets);
    assert_eq!(got["details"]["resumed_from"], at);
    assert_eq!(
        final_heads(termed.path(), 30),
        final_heads(whole.path(), 30)
    );
    assert_eq!(metrics(&got, "paper"), metrics(&want, "paper"));
}

/// The demo's linear-probe cell (configs/demo/imagenet_linear.toml, with the demo sweep's
/// input and pooling overrides) on the small lists, then `sslbench table` beside both
/// references: the paper's ImageNet rows (goyal2019) and VISSL's re-evaluation
/// (vissl_model_zoo), with the best tap beside the best-layer values.
#[test]
fn the_demo_probe_cell_is_shown_beside_both_references() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let fashion = sample("fashion-mnist");
    let list = |name: &str| format!("list:{0}/lists/{name}.txt:{0}", fashion.display());
    let mut sets = vec![
        format!("data.train={}", list("train_small")),
        format!("data.val={}", list("val_small")),
        "transform.resize=none".into(),
        "transform.size=32".into(),
        "probe.fair.batch_size=60".into(),
        "probe.fair.bn_group=30".into(),
        "probe.fair.length=40".into(),
        "probe.fair.step=20".into(),
    ];
    for tap in ["conv1", "res3", "res5"] {
        sets.push(format!(
            "pooling.resnet50.{tap}={{kernel=1,stride=1,pad=0}}"
        ));
    }
    let mut args = vec![
        "run",
        "configs/demo/imagenet_linear.toml",
        "--backbone",
        "configs/backbones/resnet50_w8_random.toml",
        "--taps",
        "conv1,res3,res5",
        "--out",
        out.path().to_str().unwrap(),
    ];
    for s in &sets {
        args.extend(["--set", s]);
    }
    ok(sslbench(cache.path(), &args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap());
    let json = out.path().join("imagenet_linear_resnet50_w8_random.json");
    let table = |reference: &str| {
        ok(sslbench(
            cache.path(),
            &["table", json.to_str().unwrap(), "--reference", reference],
        )
        .output()
        .unwrap())
    };
    let paper = table("goyal2019");
    for row in [
        "Random (published)",
        "Jigsaw ImageNet-1k (published)",
        "Jigsaw YFCC-100M (published)",
        "Δ resnet50_w8_random vs Random",
        "| best |",
        "arXiv:1905.01235",
    ] {
        assert!(paper.contains(row), "{row} missing:\n{paper}");
    }
    let vissl = table("vissl_model_zoo");
    for row in [
        "Jigsaw ImageNet-22k (published)",
        "| 53.1 |",
        "not the paper's numbers",
        "best layer of resnet50_w8_random",
    ] {
        assert!(vissl.contains(row), "{row} missing:\n{vissl}");
    }
    assert!(!vissl.contains("Random (published)"), "{vissl}");
}
