//! Parity with torchvision: the fixtures were written by data-scripts/make_parity_fixtures.py
//! (random-initialised reduced-width models, two real photos, PyTorch's outputs at every tap)
//! and data-scripts/make_caffe2_fixtures.py (the same weights as FAIR's Caffe2 `.pkl` files).

mod common;

use candle_core::{Device, Tensor};
use common::{device, fixture, npz, rel_err};
use sslbench::backbone::{caffe2, Backbone, BackboneConfig, CheckpointFormat, Tap};
use sslbench::data::pickle::{self, NdArray, PyValue};
use sslbench::data::transform::ChannelOrder;
use sslbench::features::pooling::{pool, Pooling};
use sslbench::sweep::file::SweepFile;
use sslbench::sweep::plan::Plan;
use std::collections::HashMap;

const TOL: f32 = 1e-4;

fn config(arch: &str, weights: &str, width: f64) -> BackboneConfig {
    BackboneConfig {
        arch: arch.into(),
        weights: fixture(&format!("parity/{weights}"))
            .to_string_lossy()
            .into_owned(),
        seed: 0,
        format: CheckpointFormat::Auto,
        key: None,
        width: Some(width),
        output_stride: 32,
        paper_row: None,
        stride_in_1x1: false,
        weights_channel_order: None,
    }
}

/// Checks every tap, raw and pooled per protocols.md section 1, against PyTorch.
fn check(cfg: &BackboneConfig, outputs: &str) {
    let want = npz(outputs);
    check_on(cfg, &want["input"], &want);
}

/// [`check`] on input `x` against the outputs `want`.
fn check_on(cfg: &BackboneConfig, x: &Tensor, want: &HashMap<String, Tensor>) {
    let net = Backbone::load(cfg, &device()).unwrap();
    let taps: Vec<Tap> = net.family().taps().to_vec();
    let got = net
        .forward_taps(&x.to_device(&device()).unwrap(), &taps)
        .unwrap();
    let table = Pooling::protocol(net.family());
    for (tap, map) in taps.iter().zip(&got) {
        let err = rel_err(map, &want[&format!("tap.{tap}")]);
        assert!(err < TOL, "{} tap {tap}: relative error {err}", cfg.weights);
        let pooled = pool(map, table.get(*tap)).unwrap();
        let err = rel_err(&pooled, &want[&format!("pooled.{tap}")]);
        assert!(
            err < TOL,
            "{} pooled {tap}: relative error {err}",
            cfg.weights
        );
    }
}

/// The one message of a backbone that must not load.
fn load_error(cfg: &BackboneConfig) -> String {
    let err = Backbone::load(cfg, &Device::Cpu).err();
    format!("{:#}", err.expect("must not load"))
}

#[test]
fn resnet50_matches_torchvision_at_every_tap() {
    check(
        &config("resnet50", "resnet50_w16th.pth", 1.0 / 16.0),
        "parity/resnet50_w16th_outputs.npz",
    );
}

#[test]
fn resnet50_loads_safetensors_module_prefix_and_vissl() {
    for file in [
        "resnet50_w16th.safetensors",
        "resnet50_w16th_module.pth",
        "resnet50_w16th_vissl.torch",
    ] {
        check(
            &config("resnet50", file, 1.0 / 16.0),
            "parity/resnet50_w16th_outputs.npz",
        );
    }
}

#[test]
fn dilated_resnet50_matches_torchvision_output_stride_8() {
    let mut cfg = config("resnet50", "resnet50_w16th.safetensors", 1.0 / 16.0);
    cfg.output_stride = 8;
    let net = Backbone::load(&cfg, &device()).unwrap();
    let want = npz("parity/resnet50_w16th_os8_outputs.npz");
    let got = net
        .forward_taps(
            &want["input"].to_device(&device()).unwrap(),
            &[Tap::Res4, Tap::Res5],
        )
        .unwrap();
    assert_eq!(got[1].dims(), &[1, 128, 28, 28]);
    for (tap, map) in ["res4", "res5"].iter().zip(&got) {
        let err = rel_err(map, &want[&format!("tap.{tap}")]);
        assert!(err < TOL, "dilated {tap}: relative error {err}");
    }
}

#[test]
fn alexnet_matches_torchvision_at_every_tap() {
    check(
        &config("alexnet", "alexnet_w4th.pth", 0.25),
        "parity/alexnet_w4th_outputs.npz",
    );
}

#[test]
fn jigsaw_alexnet_matches_vissl_layout_at_every_tap() {
    check(
        &config("alexnet_jigsaw", "alexnet_jigsaw_w4th_vissl.torch", 0.25),
        "parity/alexnet_jigsaw_w4th_outputs.npz",
    );
}

#[test]
fn wrong_shaped_checkpoint_lists_every_mismatch_in_one_message() {
    // Weights of a x1/8 ResNet-50 into a x1/16 model.
    let err = Backbone::load(
        &config("resnet50", "resnet50_w8th.safetensors", 1.0 / 16.0),
        &Device::Cpu,
    )
    .err()
    .expect("must not load");
    let msg = format!("{err:#}");
    assert!(msg.contains("resnet50_w8th.safetensors"), "{msg}");
    assert!(msg.contains("mismatched shapes (265)"), "{msg}");
    assert!(
        msg.contains("conv1.weight: checkpoint [8, 3, 7, 7] vs model [4, 3, 7, 7]"),
        "{msg}"
    );
}

#[test]
fn wrong_architecture_lists_missing_and_unexpected_keys() {
    let err = Backbone::load(&config("alexnet", "resnet50_w16th.pth", 0.25), &Device::Cpu)
        .err()
        .expect("must not load");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("missing keys (10): features.0.weight, features.0.bias"),
        "{msg}"
    );
    assert!(msg.contains("unexpected keys (265)"), "{msg}");
}

#[test]
fn random_init_is_seeded() {
    let mut cfg = config("resnet50", "x", 1.0 / 16.0);
    cfg.weights = "random".into();
    let x = npz("parity/resnet50_w16th_outputs.npz")["input"].clone();
    let run = |seed| {
        let mut c = cfg.clone();
        c.seed = seed;
        let net = Backbone::load(&c, &device()).unwrap();
        net.forward_taps(&x, &[Tap::Pool5]).unwrap().remove(0)
    };
    assert_eq!(rel_err(&run(3), &run(3)), 0.0);
    assert!(rel_err(&run(3), &run(4)) > 0.01);
}

// FAIR's Caffe2 `.pkl` models: the same weights written by data-scripts/make_caffe2_fixtures.py
// as Python 2 blob dicts (BGR conv1, momentum blobs, heads, siamese towers).

#[test]
fn caffe2_resnet50_matches_torchvision_at_every_tap() {
    for file in [
        "resnet50_w16th_caffe2.pkl",
        "resnet50_w16th_caffe2_jigsaw.pkl",
    ] {
        check(
            &config("resnet50", file, 1.0 / 16.0),
            "parity/resnet50_w16th_outputs.npz",
        );
    }
    // Detected by content under another name.
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("resnet50.weights");
    std::fs::copy(fixture("parity/resnet50_w16th_caffe2.pkl"), &renamed).unwrap();
    let mut cfg = config("resnet50", "x", 1.0 / 16.0);
    cfg.weights = renamed.to_string_lossy().into_owned();
    check(&cfg, "parity/resnet50_w16th_outputs.npz");
    // conv1 is stored BGR: read as RGB, the first tap is off.
    let mut cfg = config("resnet50", "resnet50_w16th_caffe2.pkl", 1.0 / 16.0);
    cfg.weights_channel_order = Some(ChannelOrder::Rgb);
    let want = npz("parity/resnet50_w16th_outputs.npz");
    let net = Backbone::load(&cfg, &device()).unwrap();
    let x = want["input"].to_device(&device()).unwrap();
    let got = net.forward_taps(&x, &[Tap::Conv1]).unwrap();
    assert!(rel_err(&got[0], &want["tap.conv1"]) > 0.01);
}

#[test]
fn caffe2_resnet50_stride_in_1x1_matches_msra_layout_at_every_tap() {
    let mut cfg = config("resnet50", "resnet50_w16th_caffe2.pkl", 1.0 / 16.0);
    cfg.stride_in_1x1 = true;
    let want = npz("parity/resnet50_w16th_s1x1_outputs.npz");
    let x = npz("parity/resnet50_w16th_outputs.npz")["input"]
        .narrow(0, 0, 1)
        .unwrap();
    check_on(&cfg, &x, &want);
    // The layouts differ from res3 on: the torchvision layout does not match these outputs.
    cfg.stride_in_1x1 = false;
    let net = Backbone::load(&cfg, &device()).unwrap();
    let res3 = net.forward_taps(&x.to_device(&device()).unwrap(), &[Tap::Res3]);
    assert!(rel_err(&res3.unwrap()[0], &want["tap.res3"]) > 0.01);
}

#[test]
fn caffe2_jigsaw_alexnet_matches_at_every_tap() {
    check(
        &config("alexnet_jigsaw", "alexnet_jigsaw_w4th_caffe2.pkl", 0.25),
        "parity/alexnet_jigsaw_w4th_outputs.npz",
    );
}

#[test]
fn caffe2_reader_drops_momentum_heads_towers_and_bookkeeping() {
    let read = |file: &str| caffe2::read(&fixture(&format!("parity/{file}")), None).unwrap();
    // ResNet-50: 53 convs and 53 batch norms, a momentum blob per conv weight, BN scale and
    // shift, and the classifier's weight.
    let sup = read("resnet50_w16th_caffe2.pkl");
    assert_eq!(sup.dropped.momentum.len(), 53 + 2 * 53 + 1);
    assert!(sup
        .dropped
        .momentum
        .contains(&"res5_2_branch2c_bn_s_momentum".to_string()));
    assert_eq!(sup.dropped.heads, ["pred_b", "pred_w"]);
    assert_eq!(sup.dropped.bookkeeping, ["lr", "model_iter"]);
    assert!(sup.dropped.towers.is_empty());
    assert_eq!(sup.tensors.len(), 53 + 4 * 53);
    assert_eq!(
        sup.dropped.summary(),
        "dropped momentum (160: conv1_w_momentum, pred_w_momentum, \
         res2_0_branch1_bn_b_momentum, res2_0_branch1_bn_s_momentum (+156 more)); \
         heads (2: pred_b, pred_w); bookkeeping (2: lr, model_iter)"
    );
    // Jigsaw: tower 0 is the trunk, tower 1's batch norms are dropped, as are the heads.
    let jig = read("resnet50_w16th_caffe2_jigsaw.pkl");
    assert_eq!(jig.dropped.towers.len(), 4 * 53);
    assert!(jig
        .dropped
        .towers
        .contains(&"res_conv1_bn_s1_riv".to_string()));
    assert_eq!(jig.dropped.heads, ["fc6_w", "fc7_w"]);
    assert_eq!(jig.tensors.len(), 53 + 4 * 53);
    let alex = read("alexnet_jigsaw_w4th_caffe2.pkl");
    assert_eq!(alex.dropped.heads, ["fc6_w", "fc8_w"]);
    assert_eq!(alex.dropped.towers.len(), 4 * 3);
    assert_eq!(alex.tensors.len(), 2 * 5 + 4 * 3);
}

#[test]
fn caffe2_pkl_that_does_not_fit_fails_naming_the_file() {
    // Wrong shape: the x1/16 weights into a x1/8 model.
    let msg = load_error(&config("resnet50", "resnet50_w16th_caffe2.pkl", 1.0 / 8.0));
    assert!(
        msg.contains("resnet50_w16th_caffe2.pkl does not fit resnet50"),
        "{msg}"
    );
    assert!(msg.contains("mismatched shapes (265)"), "{msg}");
    // A foreign pickle: Detectron proposals, no blob of a trunk.
    let mut cfg = config("resnet50", "x", 1.0 / 16.0);
    cfg.weights = fixture("proposals/detectron_py2.pkl")
        .to_string_lossy()
        .into_owned();
    let msg = load_error(&cfg);
    assert!(
        msg.contains("detectron_py2.pkl does not fit resnet50"),
        "{msg}"
    );
    assert!(msg.contains("missing keys (265): conv1.weight"), "{msg}");
    // Truncated: half the file.
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pkl");
    let bytes = std::fs::read(fixture("parity/resnet50_w16th_caffe2.pkl")).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    cfg.weights = cut.to_string_lossy().into_owned();
    let msg = load_error(&cfg);
    assert!(
        msg.contains("cut.pkl") && msg.contains("download it again"),
        "{msg}"
    );
    // A pickle that is not a dict.
    let list = dir.path().join("list.pkl");
    std::fs::write(&list, pickle::to_bytes(&PyValue::List(vec![])).unwrap()).unwrap();
    cfg.weights = list.to_string_lossy().into_owned();
    let msg = load_error(&cfg);
    assert!(
        msg.contains("list.pkl is not a Caffe2 blob dictionary"),
        "{msg}"
    );
}

#[test]
fn goyal2019_backbones_parse_and_name_their_released_file() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/backbones");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("goyal2019_") {
            continue;
        }
        n += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg = BackboneConfig::from_table(toml::from_str(&text).unwrap(), &dir)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(cfg.format, CheckpointFormat::Caffe2, "{name}");
        assert!(cfg.paper_row.is_some(), "{name}");
        let file = std::path::Path::new(&cfg.weights).file_name().unwrap();
        let url = format!(
            "https://dl.fbaipublicfiles.com/fair_self_supervision_benchmark/models/{}",
            file.to_string_lossy()
        );
        assert!(
            text.contains(&format!("url:    {url}")),
            "{name} lacks {url}"
        );
        assert!(text.contains("sha256:"), "{name}");
        if !std::path::Path::new(&cfg.weights).exists() {
            let msg = load_error(&cfg);
            assert!(msg.contains("not found: fix `weights`"), "{name}: {msg}");
        }
    }
    assert_eq!(n, 9);
}

#[test]
fn goyal2019_sweeps_plan_every_backbone_against_every_task() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let runs = tempfile::tempdir().unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(root.join("configs/sweeps")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("goyal2019_") {
            continue;
        }
        n += 1;
        let plan = Plan::read(&path, &[], runs.path()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let (sweep, _) = SweepFile::read(&path, &[]).unwrap();
        assert_eq!(
            plan.cells.len(),
            sweep.backbones.len() * sweep.tasks.len(),
            "{name}"
        );
        for b in &sweep.backbones {
            let stem = b.file_stem().unwrap().to_string_lossy();
            assert!(
                stem.starts_with("goyal2019_") || stem == "resnet50_random",
                "{name}: {stem}"
            );
        }
    }
    assert_eq!(n, 7);
}

#[test]
fn caffe2_affine_channel_layers_load_as_batch_norms() {
    // Detectron's and MSRA's files hold affine layers (`_bn_s`, `_bn_b`, no statistics): the
    // same weights with each batch norm folded as FAIR's pickle_caffe2_detection.py folds it,
    // written as Python 2 wrote it.
    let root = pickle::read(&fixture("parity/resnet50_w16th_caffe2.pkl")).unwrap();
    let blobs = root.get("blobs").unwrap();
    let get = |n: &str| {
        blobs
            .get(n)
            .unwrap()
            .as_array()
            .unwrap()
            .to_f32_vec()
            .unwrap()
    };
    let PyValue::Dict(entries) = blobs else {
        panic!("blobs is a dict")
    };
    let mut folded = Vec::new();
    for (k, v) in entries {
        let name = k.text().unwrap().into_owned();
        let Some((layer, kind)) = name.rsplit_once("_bn_") else {
            folded.push((k.clone(), v.clone()));
            continue;
        };
        let (s, rm, riv) = (
            get(&format!("{layer}_bn_s")),
            get(&format!("{layer}_bn_rm")),
            get(&format!("{layer}_bn_riv")),
        );
        let scale: Vec<f32> = s
            .iter()
            .zip(&riv)
            .map(|(s, v)| s / (v + 1e-5).sqrt())
            .collect();
        let values: Vec<f32> = match kind {
            "s" => scale,
            "b" => get(&name)
                .iter()
                .zip(rm.iter().zip(&scale))
                .map(|(b, (m, c))| b - m * c)
                .collect(),
            _ => continue,
        };
        let array = NdArray::from_f32(vec![values.len()], &values);
        folded.push((k.clone(), PyValue::Array(array)));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("affine.pkl");
    let file = PyValue::Dict(vec![(
        PyValue::Bytes(b"blobs".to_vec()),
        PyValue::Dict(folded),
    )]);
    std::fs::write(&path, pickle::to_bytes(&file).unwrap()).unwrap();
    let mut cfg = config("resnet50", "x", 1.0 / 16.0);
    cfg.weights = path.to_string_lossy().into_owned();
    check(&cfg, "parity/resnet50_w16th_outputs.npz");
}
