//! Gradient parity with PyTorch: one ResNet-50 training step (width 1/16, batch 2, batch norm
//! on batch statistics) against the fixture data-scripts/make_gradient_fixtures.py wrote with
//! torchvision's model in float64, from the committed weights and two real photos. The engine's
//! direct convolution backward, the fused batch norm and the differentiable max-pool run the
//! same step in f64 (every gradient within 1e-3 relative: they agree to about 1e-7) and in f32,
//! the training precision.

mod common;

use candle_core::{DType, Tensor, Var};
use common::{device, fixture, npz, rel_err};
use sslbench::backbone::{BackboneConfig, CheckpointFormat, Tap, TrainableBackbone};
use sslbench::train::params::Params;
use std::collections::HashMap;

/// One training step's pool5 and gradients: the input's under "input", each parameter's
/// under its torchvision name.
fn step(dtype: DType, want: &HashMap<String, Tensor>) -> (Tensor, HashMap<String, Tensor>) {
    let cfg = BackboneConfig {
        arch: "resnet50".into(),
        weights: fixture("parity/resnet50_w16th.safetensors")
            .to_string_lossy()
            .into_owned(),
        seed: 0,
        format: CheckpointFormat::Auto,
        key: None,
        width: Some(1.0 / 16.0),
        output_stride: 32,
        paper_row: None,
        stride_in_1x1: false,
        weights_channel_order: None,
    };
    let dev = device();
    let params = Params::new();
    let trunk = TrainableBackbone::with_dtype(&cfg, &dev, dtype, &params, 0.1).unwrap();
    let x = Var::from_tensor(
        &want["input"]
            .to_dtype(dtype)
            .unwrap()
            .to_device(&dev)
            .unwrap(),
    )
    .unwrap();
    let pool5 = trunk
        .forward_taps(x.as_tensor(), &[Tap::Pool5])
        .unwrap()
        .remove(0);
    let r = want["r"].to_dtype(dtype).unwrap().to_device(&dev).unwrap();
    let grads = (&pool5 * r).unwrap().sum_all().unwrap().backward().unwrap();
    let mut out = HashMap::new();
    let dx = grads
        .get(x.as_tensor())
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    out.insert("input".to_string(), dx);
    for (name, var, _) in params.all() {
        if let Some(g) = grads.get(var.as_tensor()) {
            out.insert(name, g.to_dtype(DType::F32).unwrap());
        }
    }
    (pool5.to_dtype(DType::F32).unwrap(), out)
}

/// Every reference gradient (the input's and 159 parameters': 53 convolutions, 53 batch norms'
/// weight and bias) paired with ours.
fn pairs<'a>(
    want: &'a HashMap<String, Tensor>,
    got: &'a HashMap<String, Tensor>,
) -> Vec<(&'a str, &'a Tensor, &'a Tensor)> {
    let mut out: Vec<_> = want
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("grad.")?, v)))
        .map(|(name, reference)| {
            let ours = got
                .get(name)
                .unwrap_or_else(|| panic!("{name}: no gradient"));
            (name, ours, reference)
        })
        .collect();
    out.sort_by_key(|p| p.0);
    assert_eq!(out.len(), 160, "gradients compared");
    out
}

#[test]
fn f64_training_step_gradients_match_pytorch() {
    let want = npz("parity/resnet50_w16th_grads.npz");
    let (pool5, got) = step(DType::F64, &want);
    let err = rel_err(&pool5, &want["pool5"]);
    assert!(err < 1e-5, "pool5: relative error {err}");
    for (name, ours, reference) in pairs(&want, &got) {
        let err = rel_err(ours, reference);
        assert!(err < 1e-3, "{name}: relative error {err}");
    }
}

/// ||a - b||_2 / ||b||_2.
fn rel_l2(a: &Tensor, b: &Tensor) -> f32 {
    let sq = |t: &Tensor| {
        t.sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    (sq(&(a - b).unwrap()) / sq(b)).sqrt()
}

/// The f32 step against the f64 reference. An f32 step cannot match any reference to 1e-3 at
/// this depth: a few of its million pre-activations lie within rounding of zero and flip their
/// ReLU mask, and batch norm over 2 images spreads each flip over its channel. PyTorch's own
/// f32 step, measured against the same reference, is off by a median of 0.5% (relative L2
/// norm over a tensor), 1.0% at the 90th percentile and 2.1% at worst; sslbench's by 0.7%,
/// 1.2% and 3.0%. A wrong stride, padding, tie rule or batch-norm formula is off by tens of
/// percent.
#[test]
fn f32_training_step_gradients_match_pytorch() {
    let want = npz("parity/resnet50_w16th_grads.npz");
    let (pool5, got) = step(DType::F32, &want);
    let err = rel_err(&pool5, &want["pool5"]);
    assert!(err < 1e-4, "pool5: relative error {err}");
    let mut errs: Vec<f32> = pairs(&want, &got)
        .into_iter()
        .map(|(name, ours, reference)| {
            let err = rel_l2(ours, reference);
            assert!(err < 0.06, "{name}: relative L2 error {err}");
            err
        })
        .collect();
    errs.sort_by(f32::total_cmp);
    let median = errs[errs.len() / 2];
    assert!(median < 0.015, "median relative L2 error {median}");
}
