//! Parity with torchvision: the fixtures were written by data-scripts/make_parity_fixtures.py
//! (random-initialised reduced-width models, two real photos, PyTorch's outputs at every tap).

mod common;

use candle_core::Device;
use common::{device, fixture, npz, rel_err};
use sslbench::backbone::{Backbone, BackboneConfig, CheckpointFormat, Tap};
use sslbench::features::pooling::{pool, Pooling};

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
    }
}

/// Checks every tap, raw and pooled per protocols.md section 1, against PyTorch.
fn check(cfg: &BackboneConfig, outputs: &str) {
    let net = Backbone::load(cfg, &device()).unwrap();
    let want = npz(outputs);
    let taps: Vec<Tap> = net.family().taps().to_vec();
    let got = net
        .forward_taps(&want["input"].to_device(&device()).unwrap(), &taps)
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
