//! The feature cache on real photos (data/samples, fetched by data-scripts/fetch_samples.sh):
//! cache hits, agreement with a direct forward pass, and the failure cases (corrupt image,
//! truncated or tampered entry), each leaving nothing half-written.

mod common;

use candle_core::{Device, Tensor};
use common::{rel_err, sample};
use sslbench::backbone::{Backbone, BackboneConfig, CheckpointFormat, Tap};
use sslbench::config;
use sslbench::data::{self, Dataset};
use sslbench::features::extract::Status;
use sslbench::features::pooling::pool;
use sslbench::features::{get_or_extract, verify, ExtractConfig, FeatureStore};
use std::path::Path;

fn tiny_resnet() -> BackboneConfig {
    BackboneConfig {
        arch: "resnet50".into(),
        weights: "random".into(),
        seed: 7,
        format: CheckpointFormat::Auto,
        key: None,
        width: Some(1.0 / 16.0),
        output_stride: 32,
        paper_row: None,
        stride_in_1x1: false,
        weights_channel_order: None,
    }
}

fn protocol(sets: &[&str]) -> ExtractConfig {
    let mut doc = sslbench::config::shipped("extract.toml").unwrap();
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    config::set_all(&mut doc, &sets).unwrap();
    ExtractConfig::from_doc(&doc, tiny_resnet().family().unwrap().0).unwrap()
}

fn labelme_voc() -> Dataset {
    let root = sample("labelme-voc");
    data::open(&format!("voc:{}:trainval", root.display()), None).unwrap()
}

/// An ImageFolder of copies of the skimage photos (PNG and JPEG), with `corrupt` cut short.
fn photo_folder(dir: &Path, count: usize, corrupt: Option<usize>) -> Dataset {
    let photos = ["astronaut.png", "rocket.jpg", "chelsea.png", "retina.jpg"];
    let class = dir.join("photos");
    std::fs::create_dir_all(&class).unwrap();
    for i in 0..count {
        let src = sample("skimage").join(photos[i % photos.len()]);
        let ext = Path::new(photos[i % photos.len()])
            .extension()
            .unwrap()
            .to_str()
            .unwrap();
        let dst = class.join(format!("img{i:03}.{ext}"));
        std::fs::copy(&src, &dst).unwrap();
        if corrupt == Some(i) {
            let bytes = std::fs::read(&dst).unwrap();
            std::fs::write(&dst, &bytes[..bytes.len() / 3]).unwrap();
        }
    }
    data::open(&format!("imagefolder:{}", dir.display()), None).unwrap()
}

#[test]
fn second_request_is_a_cache_hit_and_rows_equal_a_direct_forward_pass() {
    let cache = tempfile::tempdir().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let dataset = labelme_voc();
    let cfg = protocol(&["extract.batch_size=2", "extract.chunk_size=2"]);
    let taps = [Tap::Conv1, Tap::Res4, Tap::Pool5];
    let first =
        get_or_extract(&store, &tiny_resnet(), &Device::Cpu, &dataset, &taps, &cfg).unwrap();
    assert!(first
        .iter()
        .all(|e| e.status == Status::Extracted { resumed_from: 0 }));
    let again = get_or_extract(
        &store,
        &tiny_resnet(),
        &Device::Cpu,
        &dataset,
        &taps[1..],
        &cfg,
    )
    .unwrap();
    assert!(again.iter().all(|e| e.status == Status::Cached));
    assert_eq!(again[0].path, first[1].path);

    // The stored rows are the pooled taps of the transformed images.
    let net = Backbone::load(&tiny_resnet(), &Device::Cpu).unwrap();
    let paths: Vec<&Path> = dataset.samples.iter().map(|s| s.path.as_path()).collect();
    let inputs: Vec<f32> = data::decode_batch(&paths, &cfg.transform)
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    let x = Tensor::from_vec(inputs, (paths.len(), 3, 224, 224), &Device::Cpu).unwrap();
    let maps = net.forward_taps(&x, &taps).unwrap();
    for (e, map) in first.iter().zip(&maps) {
        let entry = store.read(&e.key).unwrap();
        assert_eq!(entry.ids, vec!["2011_000003", "2011_000006", "2011_000025"]);
        assert_eq!(entry.targets.nrows(), 3);
        let want = pool(map, cfg.pooling.get(e.tap)).unwrap();
        let got = Tensor::from_vec(
            entry.features.into_raw_vec_and_offset().0,
            want.shape(),
            &Device::Cpu,
        )
        .unwrap();
        assert!(rel_err(&got, &want) < 1e-5, "tap {}", e.tap);
        verify(&e.path).unwrap();
    }
    let dims: Vec<usize> = first
        .iter()
        .map(|e| store.read(&e.key).unwrap().features.shape()[1])
        .collect();
    assert_eq!(dims, vec![4 * 12 * 12, 64 * 3 * 3, 128]);
}

#[test]
fn dense_mode_keeps_whole_maps() {
    let cache = tempfile::tempdir().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let cfg = protocol(&["pooling.mode=\"dense\""]);
    let e = get_or_extract(
        &store,
        &tiny_resnet(),
        &Device::Cpu,
        &labelme_voc(),
        &[Tap::Res5],
        &cfg,
    )
    .unwrap();
    assert_eq!(e[0].key.pooling, "dense");
    assert_eq!(
        store.read(&e[0].key).unwrap().features.shape(),
        &[3, 128, 7, 7]
    );
}

#[test]
fn corrupt_jpeg_stops_naming_the_file_then_skip_resumes_and_records_it() {
    let images = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let dataset = photo_folder(images.path(), 6, Some(5));
    let taps = [Tap::Res3];
    let strict = protocol(&["extract.batch_size=1", "extract.chunk_size=2"]);
    let err = get_or_extract(
        &store,
        &tiny_resnet(),
        &Device::Cpu,
        &dataset,
        &taps,
        &strict,
    )
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("img005.jpg"), "{msg}");
    assert!(msg.contains("skip_bad_images"), "{msg}");
    // Nothing half-written: no entry, two finished chunks kept for the resume.
    assert!(store.list().unwrap().is_empty());
    let partial = std::fs::read_dir(cache.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let chunks = std::fs::read_dir(&partial).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "chunk")
    });
    assert_eq!(chunks.count(), 2);

    let lenient = protocol(&[
        "extract.batch_size=1",
        "extract.chunk_size=2",
        "data.skip_bad_images=true",
    ]);
    let e = get_or_extract(
        &store,
        &tiny_resnet(),
        &Device::Cpu,
        &dataset,
        &taps,
        &lenient,
    )
    .unwrap();
    assert_eq!(e[0].status, Status::Extracted { resumed_from: 4 });
    let entry = store.read(&e[0].key).unwrap();
    assert_eq!(entry.features.shape()[0], 5);
    assert_eq!(entry.skipped.len(), 1);
    assert_eq!(entry.skipped[0].index, 5);
    assert!(entry.skipped[0].reason.contains("img005.jpg"));
    assert_eq!(entry.ids.len(), 5);
    assert!(!entry.ids.iter().any(|id| id.contains("img005")));
}

#[test]
fn truncated_and_tampered_entries_fail_verification() {
    let cache = tempfile::tempdir().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let cfg = protocol(&[]);
    let dataset = labelme_voc();
    let e = get_or_extract(
        &store,
        &tiny_resnet(),
        &Device::Cpu,
        &dataset,
        &[Tap::Res5, Tap::Pool5],
        &cfg,
    )
    .unwrap();

    // Truncated: unreadable, named, with the fix; and no longer counted as cached.
    let path = &e[0].path;
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
    let msg = format!("{:#}", verify(path).unwrap_err());
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("truncated or corrupt"),
        "{msg}"
    );
    assert!(msg.contains("sslbench cache rm"), "{msg}");
    assert!(!store.contains(&e[0].key));
    let redo = get_or_extract(
        &store,
        &tiny_resnet(),
        &Device::Cpu,
        &dataset,
        &[Tap::Res5],
        &cfg,
    )
    .unwrap();
    assert_eq!(redo[0].status, Status::Extracted { resumed_from: 0 });
    verify(path).unwrap();

    // Tampered: one feature value changed in place.
    {
        let file = sslbench::h5::open_rw(&e[1].path).unwrap();
        let ds = file.dataset("features").unwrap();
        let mut arr: ndarray::Array2<f32> = ds.read_2d().unwrap();
        arr[[1, 5]] += 1.0;
        ds.write(&arr).unwrap();
    }
    let msg = format!("{:#}", verify(&e[1].path).unwrap_err());
    assert!(msg.contains("checksum"), "{msg}");
}
