//! Peak resident memory of the normals evaluation at the paper's test size, for BENCHMARKS.md:
//! per frame the decoder's logits (40 x 60 x 80, output stride 8 of 480 x 640), upsampled to
//! 480 x 640 (`resize_bilinear`, corners not aligned), softmaxed, decoded as the weighted sum of
//! the 40 centres, the angle to a ground-truth normal map on its valid pixels, pooled over every
//! frame by `metrics::evaluate` (its passes recompute the frames here, where the task reads
//! its spilled angles back). The logits and normals are seeded draws: memory and time do not
//! depend on their values. Prints the metrics, the seconds and the peak resident set (VmHWM).
//!
//!   cargo run --release --example normals_eval_memory -- [--frames 654] [--height 480] [--width 640]

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use sslbench::tasks::normals::metrics::{angular_errors, decode_probabilities, evaluate};
use std::time::Instant;

fn arg(name: &str, default: usize) -> Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse()
            .with_context(|| format!("{name} takes a count")),
        None => Ok(default),
    }
}

/// The peak resident set of this process, from /proc/self/status, in MB.
fn peak_rss_mb() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kb: f64 = line.split_whitespace().nth(1).context("VmHWM")?.parse()?;
    Ok(kb / 1024.0)
}

fn unit(rng: &mut impl Rng) -> [f32; 3] {
    let v: [f32; 3] = [rng.random::<f32>() - 0.5, rng.random::<f32>() - 0.5, -1.0];
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    [v[0] / n, v[1] / n, v[2] / n]
}

fn main() -> Result<()> {
    let (frames, h, w) = (
        arg("--frames", 654)?,
        arg("--height", 480)?,
        arg("--width", 640)?,
    );
    let k = 40;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let centres: Vec<[f64; 3]> = (0..k).map(|_| unit(&mut rng).map(f64::from)).collect();
    let start = Instant::now();
    let metrics = evaluate(|pooled| {
        for f in 0..frames {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1 + f as u64);
            let (lh, lw) = (h.div_ceil(8), w.div_ceil(8));
            let logits: Vec<f32> = (0..k * lh * lw)
                .map(|_| 4.0 * rng.random::<f32>())
                .collect();
            let logits = Tensor::from_vec(logits, (1, k, lh, lw), &Device::Cpu)?;
            let up = sslbench_ops::resize_bilinear(&logits, (h, w), false)?;
            let probs = candle_nn::ops::softmax(&up, 1)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let pred = decode_probabilities(&probs, &centres)?;
            let gt: Vec<[f32; 3]> = (0..h * w).map(|_| unit(&mut rng)).collect();
            let valid: Vec<bool> = (0..h * w).map(|_| rng.random::<f32>() < 0.9).collect();
            pooled.add(&angular_errors(&pred, &gt, &valid)?)?;
        }
        Ok(())
    })?;
    println!(
        "{frames} frames of {h}x{w}: {} pixels, mean {:.4}, median {:.4}, below {:?}; {:.1} s; peak RSS {:.0} MB",
        metrics.pixels,
        metrics.mean,
        metrics.median,
        metrics.percent_below,
        start.elapsed().as_secs_f64(),
        peak_rss_mb()?
    );
    Ok(())
}
