//! Helpers shared by the integration tests.
#![allow(dead_code)]

use candle_core::Tensor;
use std::collections::HashMap;
use std::path::PathBuf;

/// A committed fixture (tests/fixtures/...), derived by a data-script from real data.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
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
