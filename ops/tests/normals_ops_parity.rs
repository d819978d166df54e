//! The normals decoder's ops against PyTorch's CPU kernels (fixtures written by
//! data-scripts/make_normals_op_fixtures.py): adaptive average pooling and bilinear resize
//! (both corner modes, up and down, non-integer ratios), forward and input gradient, within
//! 1e-5 in f32 and 1e-10 in f64. Also: the fast kernels against the slow references
//! (`*_slow`, candle ops under autograd) on other shapes, the same answer for a strided map,
//! the same bits at any thread count, `Dropout2d`'s masks, and errors for bad calls.
//!
//! The parity and strided-map tests run on `SSLBENCH_TEST_DEVICE` (`cpu`, the default, or
//! `cuda:N` in a `--features cuda` build); the others test the CPU kernels.

mod common;

use candle_core::{DType, Device, Result, Tensor, Var};
use common::{bits, bits_in_pool, device, fixture_cases, max_diff, run, run_strided};
use sslbench_ops::{
    adaptive_avg_pool2d, adaptive_avg_pool2d_slow, apply_channel_mask, resize_bilinear,
    resize_bilinear_slow, Dropout2d,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/normals_ops");

/// One fixture case: the map, the op's parameters, PyTorch's output, the upstream gradient
/// and PyTorch's input gradient.
struct Case {
    name: String,
    x: Tensor,
    params: Vec<f64>,
    y: Tensor,
    dy: Tensor,
    dx: Tensor,
}

/// The cases of `file`; a case without a map (or an upstream gradient) shares the previous
/// case's.
fn cases(file: &str) -> Vec<Case> {
    let path = format!("{FIXTURES}/{file}");
    let mut out: Vec<Case> = Vec::new();
    for (k, mut a) in fixture_cases(&path, "params", "make_normals_op_fixtures.py")
        .into_iter()
        .enumerate()
    {
        let params = a["params"].to_dtype(DType::F64).unwrap();
        let params = params.to_vec1::<f64>().unwrap();
        let x = a
            .remove("x")
            .unwrap_or_else(|| out.last().unwrap().x.clone());
        let dy = a
            .remove("dy")
            .unwrap_or_else(|| out.last().unwrap().dy.clone());
        out.push(Case {
            name: format!("{file} case {k} {:?} -> {params:?}", x.dims()),
            x,
            params,
            y: a.remove("y").unwrap(),
            dy,
            dx: a.remove("dx").unwrap(),
        });
    }
    out
}

type Op = Box<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

fn pool_op(p: &[f64]) -> Op {
    let output = (p[0] as usize, p[1] as usize);
    Box::new(move |x| adaptive_avg_pool2d(x, output))
}

fn pool_slow(p: &[f64]) -> Op {
    let output = (p[0] as usize, p[1] as usize);
    Box::new(move |x| adaptive_avg_pool2d_slow(x, output))
}

fn resize_op(p: &[f64]) -> Op {
    let (output, aligned) = ((p[0] as usize, p[1] as usize), p[2] != 0.0);
    Box::new(move |x| resize_bilinear(x, output, aligned))
}

fn resize_slow(p: &[f64]) -> Op {
    let (output, aligned) = ((p[0] as usize, p[1] as usize), p[2] != 0.0);
    Box::new(move |x| resize_bilinear_slow(x, output, aligned))
}

/// A reproducible map of `dims` with values in [-1, 1) (a 64-bit LCG), in f64.
fn map(dims: &[usize], seed: u64) -> Tensor {
    let len = dims.iter().product();
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let v: Vec<f64> = (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// Builds an op from a fixture case's parameters.
type MakeOp = fn(&[f64]) -> Op;

const FILES: [(&str, MakeOp, MakeOp); 2] = [
    ("adaptive_avg_pool", pool_op, pool_slow),
    ("resize_bilinear", resize_op, resize_slow),
];

fn check_parity(name: &str, make: MakeOp) {
    let dev = device();
    let on = |t: &Tensor| t.to_device(&dev).unwrap();
    for (suffix, dtype, tol) in [("f32", DType::F32, 1e-5), ("f64", DType::F64, 1e-10)] {
        for case in cases(&format!("{name}_{suffix}.npz")) {
            assert_eq!(case.x.dtype(), dtype, "{}", case.name);
            let (y, dx) = run(&make(&case.params), &on(&case.x), &on(&case.dy), dtype);
            let (ey, edx) = (max_diff(&y, &case.y), max_diff(&dx, &case.dx));
            assert!(
                ey <= tol && edx <= tol,
                "{} {dtype:?}: forward off by {ey:e}, gradient by {edx:e}",
                case.name
            );
        }
    }
}

#[test]
fn adaptive_avg_pool_matches_pytorch() {
    check_parity("adaptive_avg_pool", pool_op);
}

#[test]
fn resize_bilinear_matches_pytorch() {
    check_parity("resize_bilinear", resize_op);
}

/// Adaptive pooling in f32 computes in ATen's order: its outputs and gradients are PyTorch's
/// bits, except a 1 x 1 output, which PyTorch computes as `mean` (another summation order).
/// (ATen's resize kernels are compiled per CPU capability and fuse multiply-adds where the
/// CPU has FMA, so their bits depend on the machine: the resize is checked within 1e-5.)
#[test]
fn f32_adaptive_pool_is_bit_identical_to_pytorch() {
    for case in cases("adaptive_avg_pool_f32.npz") {
        let (y, dx) = run(&pool_op(&case.params), &case.x, &case.dy, DType::F32);
        let mut checks = vec![("gradient", &dx, &case.dx)];
        if case.params[..2] != [1.0, 1.0] {
            checks.push(("forward", &y, &case.y));
        }
        for (what, ours, theirs) in checks {
            let (a, b) = (bits(ours), bits(theirs));
            let off = a.iter().zip(&b).filter(|(a, b)| a != b).count();
            assert_eq!(off, 0, "{} {what}: {off} of {} differ", case.name, a.len());
        }
    }
}

/// The fast kernels against the slow references (candle ops under autograd) in f64, on the
/// fixtures' shapes and on more: outputs smaller, larger and equal, single rows and columns.
#[test]
fn fast_kernels_agree_with_the_slow_references() {
    let mut shapes = vec![];
    for (h, w) in [(1, 1), (1, 7), (5, 1), (9, 13), (16, 12), (23, 31)] {
        for (oh, ow) in [
            (1, 1),
            (2, 3),
            (6, 6),
            (h, w),
            (2 * h + 1, 3 * w - 1),
            (7, 1),
        ] {
            shapes.push((h, w, oh, ow));
        }
    }
    for (k, (h, w, oh, ow)) in shapes.into_iter().enumerate() {
        let x = map(&[2, 3, h, w], k as u64);
        let dy = map(&[2, 3, oh, ow], 1000 + k as u64);
        for (name, fast, slow) in FILES {
            for aligned in [0.0, 1.0] {
                let p = [oh as f64, ow as f64, aligned];
                let (y, dx) = run(&fast(&p), &x, &dy, DType::F64);
                let (ys, dxs) = run(&slow(&p), &x, &dy, DType::F64);
                let (ey, edx) = (max_diff(&y, &ys), max_diff(&dx, &dxs));
                assert!(
                    ey <= 1e-12 && edx <= 1e-12,
                    "{name} {h}x{w} -> {oh}x{ow} aligned {aligned}: forward off by {ey:e}, \
                     gradient by {edx:e}"
                );
                // f32 kernels against the f64 reference.
                let (y32, dx32) = run(&fast(&p), &x, &dy, DType::F32);
                let (ey, edx) = (max_diff(&y32, &ys), max_diff(&dx32, &dxs));
                assert!(ey <= 1e-5 && edx <= 1e-5, "{name} f32: {ey:e} {edx:e}");
            }
        }
    }
}

/// A map kept channel-major (C x N x H x W) and viewed back as N x C x H x W, not contiguous,
/// gives the contiguous map's outputs and gradients bit for bit (CUDA too: no atomics).
#[test]
fn strided_map_gives_the_same_answer() {
    let dev = device();
    let on = |t: &Tensor| t.to_device(&dev).unwrap();
    let x = on(&map(&[2, 3, 11, 14], 7));
    for (name, make, _) in FILES {
        for (oh, ow) in [(6, 6), (23, 19), (5, 9)] {
            let p = [oh as f64, ow as f64, 0.0];
            let dy = on(&map(&[2, 3, oh, ow], 8));
            let (y, dx) = run(&make(&p), &x, &dy, DType::F32);
            let (ys, dcm) = run_strided(make(&p), &x, &dy);
            assert_eq!(bits(&ys), bits(&y), "{name} {oh}x{ow} forward");
            assert_eq!(bits(&dcm), bits(&dx), "{name} {oh}x{ow} gradient");
        }
    }
}

/// The same bits at 1 and at 3 threads.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let in_pool = |threads: usize, make: MakeOp, p: [f64; 3], x: &Tensor, dy: &Tensor| {
        bits_in_pool(threads, make(&p), x, dy)
    };
    let x = map(&[4, 5, 19, 23], 3);
    for (name, make, _) in FILES {
        for (oh, ow) in [(6, 6), (60, 80), (3, 2)] {
            let p = [oh as f64, ow as f64, 1.0];
            let dy = map(&[4, 5, oh, ow], 4);
            assert_eq!(
                in_pool(1, make, p, &x, &dy),
                in_pool(3, make, p, &x, &dy),
                "{name} {oh}x{ow}"
            );
        }
    }
}

/// A reproducible stream of uniforms in [0, 1) for the dropout tests.
fn uniforms(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed;
    move || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn dropout2d_zeroes_whole_channels_and_scales_the_rest() {
    let p = 0.3;
    let drop = Dropout2d::new(p).unwrap();
    let (n, c, h, w) = (4, 16, 3, 5);
    let x = (map(&[n, c, h, w], 11).to_dtype(DType::F32).unwrap() + 2.0).unwrap(); // no zeros
    let x = Var::from_tensor(&x).unwrap();
    let y = drop.forward_t(x.as_tensor(), true, uniforms(5)).unwrap();
    let (xs, ys) = (
        x.as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
    );
    let mut draws = uniforms(5);
    let keep = (1.0 / (1.0 - p)) as f32;
    let mut dropped = 0;
    for plane in 0..n * c {
        let kept = draws() >= p;
        dropped += !kept as usize;
        for i in plane * h * w..(plane + 1) * h * w {
            let want = if kept { xs[i] * keep } else { 0.0 };
            assert_eq!(ys[i], want, "plane {plane} element {i}");
        }
    }
    assert!(
        dropped > 0 && dropped < n * c,
        "{dropped} of {} planes dropped",
        n * c
    );

    // The backward multiplies the gradient by the same mask.
    let dy = map(&[n, c, h, w], 12).to_dtype(DType::F32).unwrap();
    let grads = (&y * &dy).unwrap().sum_all().unwrap().backward().unwrap();
    let mask = drop
        .mask(n, c, DType::F32, &Device::Cpu, uniforms(5))
        .unwrap();
    let want = dy.broadcast_mul(&mask).unwrap();
    assert_eq!(max_diff(grads.get(&x).unwrap(), &want), 0.0);
    assert_eq!(
        bits(&apply_channel_mask(x.as_tensor(), &mask).unwrap()),
        bits(&y)
    );
}

#[test]
fn dropout2d_is_reproducible_and_the_identity_in_eval() {
    let drop = Dropout2d::new(0.5).unwrap();
    let x = map(&[3, 8, 4, 4], 21);
    let a = drop.forward_t(&x, true, uniforms(9)).unwrap();
    let b = drop.forward_t(&x, true, uniforms(9)).unwrap();
    let c = drop.forward_t(&x, true, uniforms(10)).unwrap();
    assert_eq!(bits(&a), bits(&b), "same seed, same mask");
    assert_ne!(bits(&a), bits(&c), "another seed, another mask");
    let mut drawn = 0;
    let eval = drop
        .forward_t(&x, false, || {
            drawn += 1;
            0.0
        })
        .unwrap();
    assert_eq!(bits(&eval), bits(&x));
    assert_eq!(drawn, 0, "evaluation draws nothing");
    assert_eq!(
        bits(
            &Dropout2d::new(0.0)
                .unwrap()
                .forward_t(&x, true, uniforms(1))
                .unwrap()
        ),
        bits(&x)
    );
    // The mask's draws follow (image, channel) order: a resumed stream continues it.
    let mut stream = uniforms(3);
    let first = drop
        .mask(2, 4, DType::F64, &Device::Cpu, &mut stream)
        .unwrap();
    let second = drop
        .mask(2, 4, DType::F64, &Device::Cpu, &mut stream)
        .unwrap();
    let both = drop
        .mask(4, 4, DType::F64, &Device::Cpu, uniforms(3))
        .unwrap();
    let joined = Tensor::cat(&[first, second], 0).unwrap();
    assert_eq!(bits(&joined), bits(&both));
}

#[test]
fn bad_calls_are_errors() {
    let x = Tensor::zeros((2, 3, 5, 6), DType::F32, &Device::Cpu).unwrap();
    let e = adaptive_avg_pool2d(&x, (0, 2)).unwrap_err().to_string();
    assert!(e.contains("at least 1 x 1"), "{e}");
    assert!(resize_bilinear(&x, (3, 0), false).is_err());
    let empty = Tensor::zeros((2, 3, 0, 6), DType::F32, &Device::Cpu).unwrap();
    let e = resize_bilinear(&empty, (3, 3), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    let flat = Tensor::zeros((3, 5, 6), DType::F32, &Device::Cpu).unwrap();
    let e = adaptive_avg_pool2d(&flat, (2, 2)).unwrap_err().to_string();
    assert!(e.contains("N x C x H x W"), "{e}");
    let ints = x.to_dtype(DType::U8).unwrap();
    assert!(resize_bilinear(&ints, (2, 2), false).is_err());
    assert!(Dropout2d::new(1.0).is_err() && Dropout2d::new(-0.1).is_err());
    let wrong = Tensor::ones((2, 2, 1, 1), DType::F32, &Device::Cpu).unwrap();
    assert!(apply_channel_mask(&x, &wrong).is_err());
}
