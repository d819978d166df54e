//! Per-layer profile of the engine's convolutions: ResNet-50's distinct convolutions at 224 px
//! (and a large square GEMM as the attainable rate), each timed forward and, with `--backward`,
//! input plus weight gradient, in GFLOP/s.
//!
//!     cargo run --release -p sslbench-ops --example conv_profile -- [--batch 16] [--backward]

use candle_core::{Device, Tensor, Var};
use sslbench_ops::gemm::{matmul, MatMut, MatRef};
use sslbench_ops::{conv2d, ConvSpec};
use std::time::Instant;

/// The binary's allocator, so that large buffers are reused as there, not page-faulted afresh.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// (name, spec, input size, how many times ResNet-50 runs it).
fn resnet50() -> Vec<(&'static str, ConvSpec, usize, usize)> {
    let c = ConvSpec::new;
    vec![
        (
            "conv1 7x7/2 3->64",
            c(3, 64, 7).stride(2).padding(3),
            224,
            1,
        ),
        ("res2 1x1 64->64", c(64, 64, 1), 56, 1),
        ("res2 3x3 64->64", c(64, 64, 3).padding(1), 56, 3),
        ("res2 1x1 64->256", c(64, 256, 1), 56, 4),
        ("res2 1x1 256->64", c(256, 64, 1), 56, 2),
        ("res3 1x1 256->128", c(256, 128, 1), 56, 1),
        (
            "res3 3x3/2 128->128",
            c(128, 128, 3).stride(2).padding(1),
            56,
            1,
        ),
        ("res3 3x3 128->128", c(128, 128, 3).padding(1), 28, 3),
        ("res3 1x1 128->512", c(128, 512, 1), 28, 4),
        ("res3 1x1/2 256->512", c(256, 512, 1).stride(2), 56, 1),
        ("res3 1x1 512->128", c(512, 128, 1), 28, 3),
        ("res4 1x1 512->256", c(512, 256, 1), 28, 1),
        (
            "res4 3x3/2 256->256",
            c(256, 256, 3).stride(2).padding(1),
            28,
            1,
        ),
        ("res4 3x3 256->256", c(256, 256, 3).padding(1), 14, 5),
        ("res4 1x1 256->1024", c(256, 1024, 1), 14, 6),
        ("res4 1x1/2 512->1024", c(512, 1024, 1).stride(2), 28, 1),
        ("res4 1x1 1024->256", c(1024, 256, 1), 14, 5),
        ("res5 1x1 1024->512", c(1024, 512, 1), 14, 1),
        (
            "res5 3x3/2 512->512",
            c(512, 512, 3).stride(2).padding(1),
            14,
            1,
        ),
        ("res5 3x3 512->512", c(512, 512, 3).padding(1), 7, 2),
        ("res5 1x1 512->2048", c(512, 2048, 1), 7, 3),
        ("res5 1x1/2 1024->2048", c(1024, 2048, 1).stride(2), 14, 1),
        ("res5 1x1 2048->512", c(2048, 512, 1), 7, 2),
    ]
}

/// The fastest of five timed runs, after one warm-up (this VM's timings drift).
fn seconds(mut f: impl FnMut()) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> candle_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let batch = args
        .iter()
        .position(|a| a == "--batch")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(16);
    let backward = args.iter().any(|a| a == "--backward");
    let n = 2048;
    let a = vec![0.5f32; n * n];
    let mut c = vec![0f32; n * n];
    let t = seconds(|| {
        matmul(
            MatMut::rows(&mut c, n, n, n),
            false,
            MatRef::rows(&a, n, n, n),
            MatRef::rows(&a, n, n, n),
        )
    });
    println!(
        "matmul {n}^3: {:.0} GFLOP/s ({} rayon threads)",
        2.0 * (n as f64).powi(3) / t / 1e9,
        rayon::current_num_threads()
    );
    println!(
        "| conv | in | x in ResNet-50 | forward ms | GFLOP/s |{}",
        if backward {
            " backward ms | GFLOP/s |"
        } else {
            ""
        }
    );
    println!(
        "|---|---|---|---|---|{}",
        if backward { "---|---|" } else { "" }
    );
    let (mut total_f, mut total_b, mut flop_all) = (0.0, 0.0, 0.0);
    for (name, s, size, times) in resnet50() {
        let x = Tensor::randn(0f32, 1.0, (s.cin, batch, size, size), &Device::Cpu)?;
        let (co, ci, k, _) = s.weight_shape();
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.05, (co, ci, k, k), &Device::Cpu)?)?;
        let y = conv2d(&x, &w, None, &s)?;
        let flop = 2.0 * y.elem_count() as f64 * s.fan_in() as f64;
        let tf = seconds(|| drop(conv2d(&x, &w, None, &s).unwrap()));
        total_f += tf * times as f64;
        flop_all += flop * times as f64;
        let mut line = format!(
            "| {name} | {size} | {times} | {:.1} | {:.0} |",
            tf * 1e3,
            flop / tf / 1e9
        );
        if backward {
            let xv = Var::from_tensor(&x)?;
            let tb = seconds(|| {
                let y = conv2d(xv.as_tensor(), &w, None, &s).unwrap();
                drop(y.sum_all().unwrap().backward().unwrap());
            }) - tf;
            total_b += tb * times as f64;
            line += &format!(" {:.1} | {:.0} |", tb * 1e3, 2.0 * flop / tb / 1e9);
        }
        println!("{line}");
    }
    println!(
        "ResNet-50 convolutions, batch {batch}: forward {:.3} s ({:.0} GFLOP/s, {:.1} img/s)",
        total_f,
        flop_all / total_f / 1e9,
        batch as f64 / total_f
    );
    if backward {
        println!(
            "backward {:.3} s ({:.0} GFLOP/s)",
            total_b,
            2.0 * flop_all / total_b / 1e9
        );
    }
    Ok(())
}
