//! Times RoIPool and RoIAlign, forward and forward + backward, at the detection protocol's
//! shape by default: 4 images of a 1024-channel res4 map 38 x 63 (a 600 x 1000 image at stride
//! 16), 256 RoIs, 14 x 14 bins, spatial scale 1/16.
//!
//!     cargo run --release -p sslbench-ops --example roi_profile -- \
//!         [--images 4] [--channels 1024] [--height 38] [--width 63] [--rois 256] [--bins 14] [--reps 5]

use candle_core::{Device, Tensor, Var};
use sslbench_ops::{roi_align, roi_pool};
use std::time::Instant;

/// The binary's allocator, so that large buffers are reused as there, not page-faulted afresh.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The value of `--name` on the command line, or `default`.
fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a whole number"))
        .unwrap_or(default)
}

/// Reproducible boxes over an image of `h` x `w` pixels, from a tenth of it to all of it.
fn boxes(r: usize, n: usize, h: f32, w: f32) -> Vec<f32> {
    let mut seed = 12345u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..r)
        .flat_map(|i| {
            let (bw, bh) = (w * (0.1 + 0.9 * next()), h * (0.1 + 0.9 * next()));
            let (x1, y1) = ((w - bw) * next(), (h - bh) * next());
            [(i % n) as f32, x1, y1, x1 + bw - 1.0, y1 + bh - 1.0]
        })
        .collect()
}

fn main() -> candle_core::Result<()> {
    let (n, c, h, w) = (
        arg("--images", 4),
        arg("--channels", 1024),
        arg("--height", 38),
        arg("--width", 63),
    );
    let (r, bins, reps) = (arg("--rois", 256), arg("--bins", 14), arg("--reps", 5));
    let scale = 1.0 / 16.0;
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, h, w), &dev)?)?;
    let rois = Tensor::from_vec(
        boxes(r, n, h as f32 / scale, w as f32 / scale),
        (r, 5),
        &dev,
    )?;
    let dy = Tensor::randn(0f32, 1.0, (r, c, bins, bins), &dev)?;
    println!(
        "{n} x {c} x {h} x {w} map, {r} RoIs, {bins} x {bins} bins, {} threads",
        rayon::current_num_threads()
    );
    type Op<'a> = Box<dyn Fn(&Tensor) -> candle_core::Result<Tensor> + 'a>;
    let ops: [(&str, Op); 2] = [
        (
            "roi_pool",
            Box::new(|x| roi_pool(x, &rois, (bins, bins), scale)),
        ),
        (
            "roi_align (adaptive, legacy)",
            Box::new(|x| roi_align(x, &rois, (bins, bins), scale, 0, false)),
        ),
    ];
    for (name, op) in &ops {
        let mut best = (f64::MAX, f64::MAX);
        for _ in 0..reps {
            let t = Instant::now();
            let y = op(x.as_tensor())?;
            let forward = t.elapsed().as_secs_f64();
            let grads = (y * &dy)?.sum_all()?.backward()?;
            let total = t.elapsed().as_secs_f64();
            assert!(grads.get(&x).is_some());
            best = (best.0.min(forward), best.1.min(total));
        }
        println!(
            "{name}: forward {:.1} ms, forward + backward {:.1} ms (best of {reps})",
            best.0 * 1e3,
            best.1 * 1e3
        );
    }
    Ok(())
}
