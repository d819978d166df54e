//! The normals training step at the paper's shapes, for BENCHMARKS.md beside
//! `data-scripts/bench_normals_torch.py` (the same step in PyTorch/torchvision): a batch of 16
//! cached res4 maps of 1024 x 57 x 75 (a 480 x 640 frame at short side 450, padded to
//! 456 x 600, at output stride 8), res5 dilated and the PSPNet decoder of
//! `tasks/nyuv2_normals.toml`'s defaults, the loss over 40 clusters, backward and an SGD step.
//! Then what the res4 cache saves: the frozen dilated trunk (conv1..res4) on `--trunk-images`
//! 456 x 600 frames, which a run without the cache would compute for every image of every
//! step.
//!
//! `cargo run --release --example normals_bench -- [--iters N] [--warmup N] [--batch B]
//! [--map HxW] [--trunk-images N] [--device cpu|cuda:N]`; prints one JSON line.

mod common;

use anyhow::{Context, Result};
use candle_core::Tensor;
use common::{device, flag};
use rand::{Rng, SeedableRng};
use sslbench::backbone::{Backbone, BackboneConfig, Tap};
use sslbench::tasks::normals::config::NormalsConfig;
use sslbench::tasks::normals::model::NormalsModel;
use sslbench::tasks::normals::train::{optimizer, train_step};
use sslbench::train::params::Params;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let iters: usize = flag(&args, "--iters", "2").parse()?;
    let warmup: usize = flag(&args, "--warmup", "1").parse()?;
    let batch: usize = flag(&args, "--batch", "16").parse()?;
    let trunk_images: usize = flag(&args, "--trunk-images", "2").parse()?;
    let map = flag(&args, "--map", "57x75");
    let (h, w) = map
        .split_once('x')
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        .with_context(|| format!("--map {map}: expected HxW, e.g. 57x75"))?;
    let dev = device(&args)?;
    let task = std::fs::read_to_string("tasks/nyuv2_normals.toml")
        .context("run from the repository root (reads tasks/nyuv2_normals.toml)")?;
    let cfg = NormalsConfig::from_doc(&toml::from_str(&task)?)?;
    let mut backbone: BackboneConfig =
        toml::from_str("arch = \"resnet50\"\nweights = \"random\"\nseed = 1\n")?;
    backbone.output_stride = cfg.model.output_stride;
    let params = Params::new();
    let model = NormalsModel::new(&backbone, &cfg.model, 40, &params, &dev)?;
    let mut optim = optimizer(&cfg, &params)?;
    let maps = Tensor::randn(0f32, 1.0, (batch, 1024, h, w), &dev)?.relu()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let labels: Vec<u8> = (0..batch * h * w)
        .map(|_| {
            if rng.random::<f64>() < 0.1 {
                255
            } else {
                rng.random_range(0..40u8)
            }
        })
        .collect();
    let mut times = Vec::new();
    let mut losses = Vec::new();
    for i in 0..warmup + iters {
        let t = Instant::now();
        let (loss, _) = train_step(
            &model,
            &mut optim,
            &maps,
            &labels,
            cfg.solver.base_lr,
            || rng.random::<f64>(),
        )?;
        let s = t.elapsed().as_secs_f64();
        eprintln!("train step {i}: {s:.2} s, loss {loss:.4}");
        losses.push(loss);
        if i >= warmup {
            times.push(s);
        }
    }
    let step = median(times);
    let trunk = Backbone::load(&backbone, &dev)?;
    let frame = Tensor::randn(0f32, 1.0, (1, 3, h * 8, w * 8), &dev)?;
    trunk.forward_taps(&frame, &[Tap::Res4])?; // warm-up
    let t = Instant::now();
    for _ in 0..trunk_images {
        trunk.forward_taps(&frame, &[Tap::Res4])?[0]
            .sum_all()?
            .to_scalar::<f32>()?;
    }
    let trunk_s = t.elapsed().as_secs_f64() / trunk_images.max(1) as f64;
    println!(
        "{}",
        serde_json::json!({
            "impl": "sslbench",
            "device": format!("{dev:?}"),
            "threads": rayon::current_num_threads(),
            "batch": batch,
            "map": format!("{h}x{w}"),
            "train_iter_per_s": 1.0 / step,
            "train_s_per_iter": step,
            "losses": losses,
            "trunk_s_per_image": trunk_s,
            "trunk_s_per_step_saved": trunk_s * batch as f64,
        })
    );
    Ok(())
}
