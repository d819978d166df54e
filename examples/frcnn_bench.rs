//! The Fast R-CNN RoI heads at the paper's shapes, for BENCHMARKS.md beside
//! `data-scripts/bench_frcnn_torch.py` (the same step in PyTorch/torchvision): 4 cached res4
//! maps of 1024 x 38 x 63 (a 600 x 1000 image), 64 RoIs each, RoIPool 14x14 at 1/16, res5,
//! the two layers, the losses, backward and an SGD step; then the test-time head alone.
//!
//! `cargo run --release --example frcnn_bench -- [--iters N] [--rois-per-image R]
//! [--test-rois T] [--op roi_pool|roi_align] [--device cpu|cuda:N]`; prints one JSON line.

mod common;

use anyhow::Result;
use candle_core::Tensor;
use common::{device, flag};
use rand::{Rng, SeedableRng};
use sslbench::backbone::{BackboneConfig, Tap};
use sslbench::tasks::detection::config::{ModelConfig, RoiOp};
use sslbench::tasks::detection::head::FastRcnnHead;
use sslbench::tasks::detection::train::{optimizer, train_step, Minibatch};
use sslbench::tasks::detection::DetectionConfig;
use sslbench::train::params::Params;
use std::time::Instant;

fn random_rois(n: usize, images: usize, rng: &mut rand::rngs::StdRng) -> Vec<f32> {
    (0..n)
        .flat_map(|i| {
            let (w, h) = (
                rng.random_range(16.0..600.0f32),
                rng.random_range(16.0..400.0f32),
            );
            let x = rng.random_range(0.0..(1000.0 - w));
            let y = rng.random_range(0.0..(600.0 - h));
            [(i % images) as f32, x, y, x + w, y + h]
        })
        .collect()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let iters: usize = flag(&args, "--iters", "5").parse()?;
    let per_image: usize = flag(&args, "--rois-per-image", "64").parse()?;
    let test_rois: usize = flag(&args, "--test-rois", "300").parse()?;
    let op = flag(&args, "--op", "roi_pool");
    let dev = device(&args)?;
    let images = 4;
    let backbone: BackboneConfig =
        toml::from_str("arch = \"resnet50\"\nweights = \"random\"\nseed = 1\n")?;
    let mut cfg = DetectionConfig::default();
    cfg.model = ModelConfig {
        roi_op: if op == "roi_align" {
            RoiOp::RoiAlign
        } else {
            RoiOp::RoiPool
        },
        ..ModelConfig::default()
    };
    let params = Params::new();
    let head = FastRcnnHead::new(&backbone, &cfg.model, Tap::Res4, 20, 84, &params, &dev)?;
    let mut optim = optimizer(&cfg, &params)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let r = images * per_image;
    let cols = 4 * 21;
    let labels: Vec<u32> = (0..r)
        .map(|i| if i % 4 == 0 { (i % 20 + 1) as u32 } else { 0 })
        .collect();
    let mut inside = vec![0f32; r * cols];
    for (i, &l) in labels.iter().enumerate() {
        if l > 0 {
            for c in 0..4 {
                inside[i * cols + 4 * l as usize + c] = 1.0;
            }
        }
    }
    let mb = Minibatch {
        maps: Tensor::randn(0f32, 1.0, (images, 1024, 38, 63), &dev)?.relu()?,
        rois: Tensor::from_vec(random_rois(r, images, &mut rng), (r, 5), &dev)?,
        labels: Tensor::from_vec(labels, r, &dev)?,
        targets: Tensor::randn(0f32, 1.0, (r, cols), &dev)?,
        inside: Tensor::from_vec(inside.clone(), (r, cols), &dev)?,
        outside: Tensor::from_vec(inside, (r, cols), &dev)?,
    };
    train_step(&head, &mut optim, &mb, 0.002, 1.0)?; // warm-up
    let t0 = Instant::now();
    for _ in 0..iters {
        train_step(&head, &mut optim, &mb, 0.002, 1.0)?;
    }
    let train_s = t0.elapsed().as_secs_f64() / iters as f64;
    let one = mb.maps.narrow(0, 0, 1)?;
    let test = Tensor::from_vec(random_rois(test_rois, 1, &mut rng), (test_rois, 5), &dev)?;
    head.forward(&one, &test.narrow(0, 0, 8)?)?; // warm-up
    let t1 = Instant::now();
    let test_images = iters.max(2) / 2;
    for _ in 0..test_images {
        let res4 = head.res4(&one)?;
        for start in (0..test_rois).step_by(256) {
            let n = 256.min(test_rois - start);
            head.classify(&head.roi_maps(&res4, &test.narrow(0, start, n)?)?)?;
        }
    }
    let test_s = t1.elapsed().as_secs_f64() / test_images as f64;
    println!(
        "{}",
        serde_json::json!({
            "impl": "sslbench",
            "device": format!("{dev:?}"),
            "op": op,
            "threads": rayon::current_num_threads(),
            "rois_per_image": per_image,
            "train_iter_per_s": 1.0 / train_s,
            "train_s_per_iter": train_s,
            "test_rois_per_image": test_rois,
            "test_images_per_s": 1.0 / test_s,
        })
    );
    Ok(())
}
