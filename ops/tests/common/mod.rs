//! What the parity tests share: their fixtures' cases, the test device, the forward and
//! gradient of an op, and the comparisons.

use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;

/// The arrays of each case of the npz fixture `path`, in order: case `k`'s array `name` is
/// stored as `"{k}.{name}"`, and a case is there when its array `first` is. A missing file
/// panics naming `script`, which writes it.
pub fn fixture_cases(path: &str, first: &str, script: &str) -> Vec<HashMap<String, Tensor>> {
    let mut arrays: HashMap<String, Tensor> = Tensor::read_npz(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run data-scripts/{script}"))
        .into_iter()
        .collect();
    let mut out = Vec::new();
    for k in 0.. {
        let prefix = format!("{k}.");
        if !arrays.contains_key(&format!("{prefix}{first}")) {
            break;
        }
        let case: HashMap<String, Tensor> = arrays
            .keys()
            .filter(|key| key.starts_with(&prefix))
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .map(|key| {
                let t = arrays.remove(&key).unwrap();
                (key[prefix.len()..].to_string(), t)
            })
            .collect();
        out.push(case);
    }
    assert!(!out.is_empty(), "{path} has no cases");
    out
}

/// The device the parity tests run on: `SSLBENCH_TEST_DEVICE`, the CPU by default.
pub fn device() -> Device {
    let spec = std::env::var("SSLBENCH_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    match spec.strip_prefix("cuda:").map(str::parse::<usize>) {
        None if spec == "cpu" => Device::Cpu,
        Some(Ok(i)) => Device::new_cuda(i).unwrap_or_else(|e| {
            panic!("SSLBENCH_TEST_DEVICE={spec}: {e} (a --features cuda build?)")
        }),
        _ => panic!("SSLBENCH_TEST_DEVICE={spec}: expected cpu or cuda:N"),
    }
}

/// The output of `op` on `x` in `dtype` and the gradient of sum(y * dy) with respect to `x`.
pub fn run(
    op: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
    x: &Tensor,
    dy: &Tensor,
    dtype: DType,
) -> (Tensor, Tensor) {
    let x = Var::from_tensor(&x.to_dtype(dtype).unwrap()).unwrap();
    let y = op(x.as_tensor()).unwrap();
    let loss = (&y * dy.to_dtype(dtype).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    (y, grads.get(&x).unwrap().clone())
}

/// The largest absolute difference between two tensors of one shape, in f64.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let a = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
    let b = b.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
    let d = (a - b).unwrap().abs().unwrap().to_vec1::<f64>().unwrap();
    d.into_iter().fold(0.0, f64::max)
}

/// The bits of every element, as f64.
pub fn bits(t: &Tensor) -> Vec<u64> {
    let v = t.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
    v.to_vec1::<f64>()
        .unwrap()
        .into_iter()
        .map(f64::to_bits)
        .collect()
}

/// The outputs and gradients of `op` on `x` (and `dy`), as bits, with rayon's work spread over
/// `threads` threads.
pub fn bits_in_pool(
    threads: usize,
    op: impl Fn(&Tensor) -> candle_core::Result<Tensor> + Send,
    x: &Tensor,
    dy: &Tensor,
) -> (Vec<u64>, Vec<u64>) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| {
            let (y, dx) = run(op, x, dy, DType::F32);
            (bits(&y), bits(&dx))
        })
}

/// `op`'s output and gradient on a channel-major (C x N x H x W) copy of `x` viewed back as
/// N x C x H x W, not contiguous, in f32: the gradient in `x`'s layout.
pub fn run_strided(
    op: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
    x: &Tensor,
    dy: &Tensor,
) -> (Tensor, Tensor) {
    let x = x.to_dtype(DType::F32).unwrap();
    let cm = Var::from_tensor(&sslbench_ops::to_channel_major(&x).unwrap()).unwrap();
    let view = cm.as_tensor().permute((1, 0, 2, 3)).unwrap();
    assert!(!view.is_contiguous());
    let y = op(&view).unwrap();
    let grads = (&y * dy.to_dtype(DType::F32).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let dx = grads.get(&cm).unwrap().permute((1, 0, 2, 3)).unwrap();
    (y, dx)
}
