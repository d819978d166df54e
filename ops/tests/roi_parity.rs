//! RoIPool and RoIAlign against torchvision's CPU kernels (fixtures written by
//! data-scripts/make_roi_fixtures.py): forward and input gradient within 1e-5 in f32 and in
//! f64, on random boxes and the edge cases (boxes outside the map, inverted, empty, tiny, huge,
//! corners at exactly .5, tied maxima). Also: RoIAlign's gradient against finite differences
//! in f64, the same answer for a strided (channel-major) map, the same bits at any thread
//! count, and errors for bad RoIs.
//!
//! The parity and strided-map tests run on `SSLBENCH_TEST_DEVICE` (`cpu`, the default, or
//! `cuda:N` in a `--features cuda` build); the others test the CPU kernels.

mod common;

use candle_core::{DType, Device, Result, Tensor};
use common::{bits, bits_in_pool, device, fixture_cases, max_diff, run_strided};
use sslbench_ops::{roi_align, roi_pool};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/roi");

/// One fixture case: the map, the RoIs, the op's parameters, torchvision's output, the
/// upstream gradient and torchvision's input gradient.
struct Case {
    name: String,
    x: Tensor,
    rois: Tensor,
    params: Vec<f32>,
    y: Tensor,
    dy: Tensor,
    dx: Tensor,
}

fn cases(file: &str) -> Vec<Case> {
    let path = format!("{FIXTURES}/{file}");
    let all = fixture_cases(&path, "x", "make_roi_fixtures.py");
    let cases = all.into_iter().enumerate().map(|(k, mut a)| {
        let mut take = |key: &str| a.remove(key).unwrap();
        let params = take("params").to_vec1::<f32>().unwrap();
        Case {
            name: format!("{file} case {k} {params:?}"),
            x: take("x"),
            rois: take("rois"),
            params,
            y: take("y"),
            dy: take("dy"),
            dx: take("dx"),
        }
    });
    cases.collect()
}

type Op = Box<dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync>;

fn pool_op(p: &[f32]) -> Op {
    let (output, scale) = ((p[0] as usize, p[1] as usize), p[2]);
    Box::new(move |x, r| roi_pool(x, r, output, scale))
}

fn align_op(p: &[f32]) -> Op {
    let (output, scale) = ((p[0] as usize, p[1] as usize), p[2]);
    let (ratio, aligned) = (p[3] as usize, p[4] != 0.0);
    Box::new(move |x, r| roi_align(x, r, output, scale, ratio, aligned))
}

/// The op's output and the gradient of sum(y * dy) with respect to the map, in `dtype`.
fn run(op: &Op, x: &Tensor, rois: &Tensor, dy: &Tensor, dtype: DType) -> (Tensor, Tensor) {
    common::run(|x| op(x, rois), x, dy, dtype)
}

fn check_parity(file: &str, make: fn(&[f32]) -> Op) {
    let dev = device();
    let on = |t: &Tensor| t.to_device(&dev).unwrap();
    for case in cases(file) {
        let op = make(&case.params);
        for dtype in [DType::F32, DType::F64] {
            let (y, dx) = run(&op, &on(&case.x), &on(&case.rois), &on(&case.dy), dtype);
            let (ey, edx) = (max_diff(&y, &case.y), max_diff(&dx, &case.dx));
            assert!(
                ey <= 1e-5 && edx <= 1e-5,
                "{} {dtype:?}: forward off by {ey:e}, gradient by {edx:e}",
                case.name
            );
        }
    }
}

#[test]
fn roi_pool_matches_torchvision() {
    check_parity("roi_pool.npz", pool_op);
}

#[test]
fn roi_align_matches_torchvision() {
    check_parity("roi_align.npz", align_op);
}

/// The f32 kernels sum in torchvision's order: their outputs and gradients are its bits.
#[test]
fn f32_is_bit_identical_to_torchvision() {
    for (file, make) in [
        ("roi_pool.npz", pool_op as fn(&[f32]) -> Op),
        ("roi_align.npz", align_op),
    ] {
        for case in cases(file) {
            let (y, dx) = run(
                &make(&case.params),
                &case.x,
                &case.rois,
                &case.dy,
                DType::F32,
            );
            assert_eq!(bits(&y), bits(&case.y), "{} forward", case.name);
            assert_eq!(bits(&dx), bits(&case.dx), "{} gradient", case.name);
        }
    }
}

/// RoIAlign is linear in the map: central differences of sum(y * dy) in f64 recover every
/// element of the gradient up to rounding.
#[test]
fn roi_align_gradient_matches_finite_differences() {
    let all = cases("roi_align.npz");
    // Adaptive and legacy, fixed grid and aligned.
    for case in [&all[0], &all[3]] {
        let op = align_op(&case.params);
        let x = case.x.to_dtype(DType::F64).unwrap();
        let dy = case.dy.to_dtype(DType::F64).unwrap();
        let (_, dx) = run(&op, &x, &case.rois, &dy, DType::F64);
        let dx = dx.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let flat = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let loss = |v: &[f64]| -> f64 {
            let x = Tensor::from_slice(v, x.dims(), &Device::Cpu).unwrap();
            let y = op(&x, &case.rois).unwrap();
            (y * &dy)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let eps = 1e-3;
        let mut moved = flat.clone();
        let mut touched = 0;
        for i in 0..flat.len() {
            moved[i] = flat[i] + eps;
            let up = loss(&moved);
            moved[i] = flat[i] - eps;
            let down = loss(&moved);
            moved[i] = flat[i];
            let fd = (up - down) / (2.0 * eps);
            assert!(
                (fd - dx[i]).abs() <= 1e-8 * (1.0 + fd.abs()),
                "{} element {i}: finite difference {fd}, gradient {}",
                case.name,
                dx[i]
            );
            touched += (dx[i] != 0.0) as usize;
        }
        assert!(touched > flat.len() / 4, "{}: few cells sampled", case.name);
    }
}

/// A map kept channel-major (C x N x H x W) and viewed back as N x C x H x W, not contiguous,
/// gives the contiguous map's outputs and gradients: bit for bit on the CPU; on CUDA the
/// forward bit for bit and the gradient (summed by atomics, in no fixed order) within 1e-6.
#[test]
fn strided_map_gives_the_same_answer() {
    let dev = device();
    let on = |t: &Tensor| t.to_device(&dev).unwrap();
    for (file, make) in [
        ("roi_pool.npz", pool_op as fn(&[f32]) -> Op),
        ("roi_align.npz", align_op),
    ] {
        for case in cases(file).iter().take(2) {
            let op = make(&case.params);
            let (x, rois, dy) = (on(&case.x), on(&case.rois), on(&case.dy));
            let (y, dx) = run(&op, &x, &rois, &dy, DType::F32);
            let (ys, dcm) = run_strided(|x| op(x, &rois), &x, &dy);
            assert_eq!(bits(&ys), bits(&y), "{} forward", case.name);
            if dev.is_cpu() {
                assert_eq!(bits(&dcm), bits(&dx), "{} gradient", case.name);
            } else {
                assert!(max_diff(&dcm, &dx) <= 1e-6, "{} gradient", case.name);
            }
        }
    }
}

/// The same bits at 1 and at 3 threads.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let in_pool = |threads: usize, case: &Case, make: fn(&[f32]) -> Op| {
        let op = make(&case.params);
        bits_in_pool(threads, |x| op(x, &case.rois), &case.x, &case.dy)
    };
    for (file, make) in [
        ("roi_pool.npz", pool_op as fn(&[f32]) -> Op),
        ("roi_align.npz", align_op),
    ] {
        for case in cases(file) {
            assert_eq!(
                in_pool(1, &case, make),
                in_pool(3, &case, make),
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn bad_rois_are_errors() {
    let dev = Device::Cpu;
    let x = Tensor::zeros((2, 3, 5, 6), DType::F32, &dev).unwrap();
    let outside = Tensor::new(&[[2f32, 0., 0., 4., 4.]], &dev).unwrap();
    let e = roi_pool(&x, &outside, (2, 2), 1.0).unwrap_err().to_string();
    assert!(e.contains("names image 2"), "{e}");
    let e = roi_align(&x, &outside, (2, 2), 1.0, 0, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("batch index"), "{e}");
    let four = Tensor::new(&[[0f32, 0., 4., 4.]], &dev).unwrap();
    assert!(roi_pool(&x, &four, (2, 2), 1.0).is_err());
    let ok = Tensor::new(&[[1f32, 0., 0., 4., 4.]], &dev).unwrap();
    assert!(roi_align(&x, &ok, (0, 2), 1.0, 0, false).is_err());
    let ints = x.to_dtype(DType::U8).unwrap();
    assert!(roi_pool(&ints, &ok, (2, 2), 1.0).is_err());
}
