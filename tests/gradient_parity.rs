//! Gradient parity with PyTorch: one ResNet-50 training step (width 1/16, batch 2, batch norm
//! on batch statistics) from the fixture data-scripts/make_gradient_fixtures.py wrote with
//! torchvision's model, the committed weights and two real photos. The engine's direct
//! convolution backward, the fused batch norm and the differentiable max-pool must give
//! PyTorch's input gradient and every parameter's gradient within 1e-3 relative.

mod common;

use candle_core::Var;
use common::{device, fixture, npz, rel_err};
use sslbench::backbone::{BackboneConfig, CheckpointFormat, Tap, TrainableBackbone};
use sslbench::train::params::Params;

const TOL: f32 = 1e-3;

#[test]
fn resnet50_training_step_gradients_match_pytorch() {
    let want = npz("parity/resnet50_w16th_grads.npz");
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
    };
    let params = Params::new();
    let trunk = TrainableBackbone::new(&cfg, &device(), &params, 0.1).unwrap();
    let x = Var::from_tensor(&want["input"].to_device(&device()).unwrap()).unwrap();
    let pool5 = trunk
        .forward_taps(x.as_tensor(), &[Tap::Pool5])
        .unwrap()
        .remove(0);
    let err = rel_err(&pool5, &want["pool5"]);
    assert!(err < 1e-4, "pool5 in training mode: relative error {err}");
    let grads = (pool5 * &want["r"])
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let err = rel_err(grads.get(x.as_tensor()).unwrap(), &want["grad.input"]);
    assert!(err < TOL, "input gradient: relative error {err}");
    let mut checked = 0;
    for (name, var, _) in params.all() {
        let Some(reference) = want.get(&format!("grad.{name}")) else {
            continue;
        };
        let got = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"));
        let err = rel_err(got, reference);
        assert!(err < TOL, "{name}: relative error {err}");
        checked += 1;
    }
    // 53 convolutions and 53 batch norms (weight and bias each).
    assert_eq!(checked, 159, "parameters compared");
}
