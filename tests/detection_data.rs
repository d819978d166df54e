//! Fast R-CNN's data side on the real labelme VOC photos: the roidb (ground-truth conversion,
//! proposals, flips, overlaps, targets), RoI sampling, the image blob (against OpenCV's
//! values in tests/fixtures/detection/resize.json, written by
//! data-scripts/make_resize_fixtures.py), the minibatch order and the readers' errors.

mod common;

use std::path::Path;

use common::{fixture, sample, voc_copy};
use image::RgbImage;
use serde_json::Value;
use sslbench::data::voc::VOC_CLASSES;
use sslbench::tasks::detection::batches::MinibatchOrder;
use sslbench::tasks::detection::blob::{
    im_list_to_blob, image_scale, load_image, prepare_image, resize_linear, scale_test_rois,
    BlobConfig,
};
use sslbench::tasks::detection::roidb::{
    canonical_class, test_roidb, train_roidb, unique_boxes, Roidb, RoidbConfig,
};
use sslbench::tasks::detection::sampling::{sample_rng, sample_rois, SamplingConfig};
use sslbench_ops::boxes::{BoxCoder, BoxF};

const PERSON: usize = 15;
const BUS: usize = 6;
const CAR: usize = 7;

fn classes() -> Vec<String> {
    VOC_CLASSES.iter().map(|c| c.to_string()).collect()
}

/// Hand-made proposals for the three photos (2011_000003, 2011_000006, 2011_000025).
fn proposals() -> Vec<Vec<BoxF>> {
    let first = vec![
        [364.0, 82.0, 499.0, 207.0],  // IoU 126/251 with the right-hand person
        [364.4, 82.2, 499.3, 207.1],  // the same box once rounded: a duplicate
        [0.0, 0.0, 2.0, 50.0],        // 3 pixels wide: kept, background
        [0.0, 0.0, 1.0, 50.0],        // 2 pixels wide: too small
        [-10.0, -5.0, 600.0, 400.0],  // beyond the image: clipped to it
        [200.0, 120.0, 300.0, 300.0], // inside the left-hand person
    ];
    // The second photo: 21 shifted copies of its first person, 120 boxes below everyone.
    let mut second: Vec<BoxF> = (0..=20)
        .map(|k| [90.0 + k as f32, 106.0, 239.0 + k as f32, 329.0])
        .collect();
    second.extend((0..120).map(|k| {
        let (x, y) = ((k * 4 % 460) as f32, 335.0 + (k / 40) as f32);
        [x, y, x + 30.0, 370.0]
    }));
    vec![first, second, Vec::new()]
}

fn build(root: &Path, cfg: &RoidbConfig) -> anyhow::Result<Roidb> {
    train_roidb(
        root,
        "trainval",
        &classes(),
        &proposals(),
        Path::new("hand-made.pkl"),
        cfg,
        &SamplingConfig::default(),
    )
}

fn close(a: f32, b: f64, tol: f64) -> bool {
    (f64::from(a) - b).abs() <= tol
}

#[test]
fn ground_truth_is_converted_as_detectron() {
    let roidb = build(&sample("labelme-voc"), &RoidbConfig::default()).unwrap();
    let e = &roidb.entries;
    assert_eq!(e.len(), 6, "3 photos and their flips");
    assert_eq!(
        (e[0].id.as_str(), e[0].width, e[0].height),
        ("2011_000003", 500, 338)
    );
    assert!(e[0].image.ends_with("JPEGImages/2011_000003.jpg"));
    // XML 191.0 107.369 313.0 329.369 and 365 83 500 333 (1-based): minus 1.
    assert_eq!(e[0].num_gt(), 2);
    let g0 = e[0].boxes[0];
    assert_eq!([g0[0], g0[2]], [190.0, 312.0]);
    assert!(close(g0[1], 106.36900369, 1e-4) && close(g0[3], 328.36900369, 1e-4));
    assert_eq!(e[0].boxes[1], [364.0, 82.0, 499.0, 332.0]);
    assert_eq!(&e[0].gt_classes[..2], &[PERSON, PERSON]);
    // 2011_000025: bus, bus, car; xmin 1.0 becomes 0, xmax 500.0 (the last column) 499.
    assert_eq!(e[2].gt_classes, vec![BUS, BUS, CAR]);
    assert_eq!(e[2].boxes[1], [0.0, 98.0, 106.0, 281.0]);
    assert_eq!(e[2].boxes[2], [408.0, 166.0, 499.0, 265.0]);
    let s = &roidb.summary;
    assert_eq!(
        (s.images, s.gt_clipped, s.gt_dropped, s.difficult_skipped),
        (3, 0, 0, 0)
    );
}

#[test]
fn proposals_are_cleaned_and_matched() {
    let roidb = build(&sample("labelme-voc"), &RoidbConfig::default()).unwrap();
    let e = &roidb.entries[0];
    // GT first, then proposals in file order minus the duplicate and the small one.
    assert_eq!(e.boxes.len(), 6);
    assert_eq!(e.boxes[2], [364.0, 82.0, 499.0, 207.0]);
    assert_eq!(e.boxes[3], [0.0, 0.0, 2.0, 50.0]);
    assert_eq!(e.boxes[4], [0.0, 0.0, 499.0, 337.0], "clipped to the image");
    assert_eq!(e.gt_classes, vec![PERSON, PERSON, 0, 0, 0, 0]);
    let o = &e.max_overlaps;
    assert_eq!(&o[..2], &[1.0, 1.0]);
    assert!(close(o[2], 126.0 / 251.0, 1e-6), "{}", o[2]);
    assert_eq!(o[3], 0.0);
    assert!(
        close(o[4], 136.0 * 251.0 / (500.0 * 338.0), 1e-6),
        "{}",
        o[4]
    );
    let g0_area = 123.0 * 223.0;
    assert!(close(o[5], 101.0 * 181.0 / g0_area, 1e-4), "{}", o[5]);
    assert_eq!(
        e.max_classes,
        vec![PERSON, PERSON, PERSON, 0, PERSON, PERSON]
    );
    let s = &roidb.summary;
    assert_eq!(s.proposals_read, 6 + 141);
    assert_eq!((s.proposals_duplicate, s.proposals_small), (1, 1));
    assert_eq!((s.proposals_beyond_limit, s.entries_filtered), (0, 0));
    assert!(s.to_string().contains("1 duplicates"), "{s}");
}

#[test]
fn flipped_copies_mirror_the_boxes_and_keep_the_overlaps() {
    let roidb = build(&sample("labelme-voc"), &RoidbConfig::default()).unwrap();
    let (e, f) = (&roidb.entries[0], &roidb.entries[3]);
    assert!(!e.flipped && f.flipped && e.id == f.id);
    // x1' = W - x2 - 1, x2' = W - x1 - 1 with W = 500.
    assert_eq!(f.boxes[1], [0.0, 82.0, 135.0, 332.0]);
    assert_eq!(f.boxes[4], [0.0, 0.0, 499.0, 337.0]);
    assert_eq!(f.max_overlaps, e.max_overlaps);
    assert_eq!(f.max_classes, e.max_classes);
    let off = RoidbConfig {
        use_flipped: false,
        ..Default::default()
    };
    assert_eq!(
        build(&sample("labelme-voc"), &off).unwrap().entries.len(),
        3
    );
}

#[test]
fn regression_targets_follow_the_best_ground_truth() {
    let roidb = build(&sample("labelme-voc"), &RoidbConfig::default()).unwrap();
    let e = &roidb.entries[0];
    // Ground truth onto itself: zero targets, its own class.
    assert_eq!(e.bbox_targets[1], [0.0; 4]);
    assert_eq!(e.bbox_target_classes[1], PERSON);
    // [364 82 499 207] onto [364 82 499 332]: same x, centre 62.5 px lower, 251/126 as tall.
    let t = e.bbox_targets[2];
    assert_eq!([t[0], t[2]], [0.0, 0.0]);
    assert!(close(t[1], 10.0 * 62.5 / 126.0, 1e-5), "{t:?}");
    assert!(close(t[3], 5.0 * (251f64 / 126.0).ln(), 1e-5), "{t:?}");
    // Below the threshold: no target.
    assert_eq!((e.bbox_target_classes[3], e.bbox_target_classes[4]), (0, 0));
    assert_eq!(e.bbox_targets[4], [0.0; 4]);
    // The flipped copy's targets are computed on the flipped boxes: dx changes sign.
    let p = [10.0, 20.0, 59.0, 99.0];
    let g = [14.0, 18.0, 70.0, 90.0];
    let w = 200.0;
    let flip = |b: BoxF| [w - b[2] - 1.0, b[1], w - b[0] - 1.0, b[3]];
    let coder = BoxCoder::default();
    let (a, b) = (coder.encode(&p, &g), coder.encode(&flip(p), &flip(g)));
    assert!((a[0] + b[0]).abs() < 1e-5 && a[1] == b[1]);
}

#[test]
fn rois_are_sampled_as_detectron_and_reproducibly() {
    let roidb = build(&sample("labelme-voc"), &RoidbConfig::default()).unwrap();
    let cfg = SamplingConfig::default();
    assert_eq!(cfg.fg_rois_per_image(), 16);
    // 2011_000006: 4 GT + 21 shifted copies are foreground, 120 boxes background.
    let e = &roidb.entries[1];
    let scale = 600.0 / 375.0;
    let s = sample_rois(e, scale, 1, 21, &cfg, &mut sample_rng(3, 7, 1));
    assert_eq!((s.rois.len(), s.num_fg), (64, 16));
    assert!(s.labels[..16].iter().all(|&l| l == PERSON as i32));
    assert!(s.labels[16..].iter().all(|&l| l == 0));
    let mut distinct = s.box_indices.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 64, "without replacement");
    assert!(s.box_indices[..16]
        .iter()
        .all(|&i| e.max_overlaps[i] >= 0.5));
    assert!(s.box_indices[16..].iter().all(|&i| e.max_overlaps[i] < 0.5));
    for (roi, &i) in s.rois.iter().zip(&s.box_indices) {
        let b = e.boxes[i];
        assert_eq!(roi[0], 1.0);
        assert_eq!(roi[1..], b.map(|v| v * scale as f32));
    }
    // Targets: 4 x 21 columns, the class's 4 filled for foreground RoIs.
    assert_eq!(s.target_columns, 84);
    let row = |v: &[f32], r: usize| v[r * 84..(r + 1) * 84].to_vec();
    for r in 0..64 {
        let (t, w) = (row(&s.bbox_targets, r), row(&s.bbox_inside_weights, r));
        let i = s.box_indices[r];
        if r < 16 {
            let c = 4 * PERSON;
            assert_eq!(&t[c..c + 4], &e.bbox_targets[i]);
            assert_eq!(w.iter().sum::<f32>(), 4.0);
            assert_eq!(&w[c..c + 4], &[1.0; 4]);
        } else {
            assert!(t.iter().all(|&v| v == 0.0) && w.iter().all(|&v| v == 0.0));
        }
    }
    assert_eq!(s.bbox_outside_weights, s.bbox_inside_weights);
    // The same (seed, iteration, slot) draws the same RoIs; another iteration others.
    let again = sample_rois(e, scale, 1, 21, &cfg, &mut sample_rng(3, 7, 1));
    assert_eq!(again, s);
    let other = sample_rois(e, scale, 1, 21, &cfg, &mut sample_rng(3, 8, 1));
    assert_ne!(other.box_indices, s.box_indices);
    // 2011_000003: 4 foreground, 2 background boxes in all: everything is taken.
    let small = sample_rois(
        &roidb.entries[0],
        1.0,
        0,
        21,
        &cfg,
        &mut sample_rng(3, 7, 0),
    );
    assert_eq!((small.rois.len(), small.num_fg), (6, 4));
    assert_eq!(
        small.labels,
        vec![
            PERSON as i32,
            PERSON as i32,
            PERSON as i32,
            PERSON as i32,
            0,
            0
        ]
    );
}

#[test]
fn images_are_scaled_and_padded_as_detectron() {
    let cfg = BlobConfig::default();
    // 500x338: 600/338 (888 px wide); 500x375: 1.6; a 2:1 image hits the 1000 px cap.
    assert_eq!(image_scale(338, 500, 600, 1000), 600.0 / 338.0);
    assert_eq!(image_scale(375, 500, 600, 1000), 1.6);
    assert_eq!(image_scale(400, 800, 600, 1000), 1000.0 / 800.0);
    let root = sample("labelme-voc");
    let path = root.join("JPEGImages/2011_000003.jpg");
    let a = load_image(&path, 500, 338, false, &cfg).unwrap();
    assert_eq!((a.height, a.width, a.scale), (600, 888, 600.0 / 338.0));
    // Enlarging, the first output pixel is the first input pixel: BGR minus the means.
    let rgb = sslbench::data::decode(&path).unwrap();
    let px = rgb.get_pixel(0, 0).0;
    let want = [px[2], px[1], px[0]]
        .iter()
        .zip(cfg.pixel_means)
        .map(|(&p, m)| (f64::from(p) - m) as f32)
        .collect::<Vec<_>>();
    assert_eq!(&a.data[..3], &want[..]);
    let flipped = load_image(&path, 500, 338, true, &cfg).unwrap();
    let last = rgb.get_pixel(499, 0).0;
    assert_eq!(
        flipped.data[0],
        (f64::from(last[2]) - cfg.pixel_means[0]) as f32
    );
    let b = load_image(
        &root.join("JPEGImages/2011_000006.jpg"),
        500,
        375,
        false,
        &cfg,
    )
    .unwrap();
    assert_eq!((b.height, b.width), (600, 800));
    let blob = im_list_to_blob(&[a.clone(), b.clone()]);
    assert_eq!((blob.n, blob.height, blob.width), (2, 600, 888));
    assert_eq!(blob.data.len(), 2 * 3 * 600 * 888);
    let at = |n: usize, c: usize, y: usize, x: usize| blob.data[((n * 3 + c) * 600 + y) * 888 + x];
    assert_eq!(at(0, 2, 10, 20), a.data[(10 * 888 + 20) * 3 + 2]);
    assert_eq!(at(1, 1, 599, 799), b.data[(599 * 800 + 799) * 3 + 1]);
    assert!(
        (800..888).all(|x| (0..3).all(|c| at(1, c, 300, x) == 0.0)),
        "padded right"
    );
    // A size that disagrees with the annotation is refused.
    let err = format!(
        "{:#}",
        load_image(&path, 500, 375, false, &cfg).unwrap_err()
    );
    assert!(
        err.contains("2011_000003.jpg") && err.contains("500x375"),
        "{err}"
    );
    // Test RoIs scale in f64.
    assert_eq!(
        scale_test_rois(&[[1.0, 2.0, 3.0, 4.0]], 1.6),
        vec![[1.6, 3.2, 4.8, 6.4]]
    );
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn resize_and_preparation_equal_opencv() {
    let text = std::fs::read_to_string(fixture("detection/resize.json")).unwrap();
    let fx: Value = serde_json::from_str(&text).unwrap();
    let dim = |c: &Value, k: &str| c[k].as_u64().unwrap() as usize;
    let mut worst = 0f32;
    for c in fx["resize"].as_array().unwrap() {
        let (h, w, s) = (
            dim(c, "height"),
            dim(c, "width"),
            c["scale"].as_f64().unwrap(),
        );
        let (out, oh, ow) = resize_linear(&floats(&c["src"]), h, w, 3, s);
        assert_eq!(
            (oh, ow),
            (dim(c, "out_height"), dim(c, "out_width")),
            "{h}x{w} by {s}"
        );
        worst = worst.max(max_diff(&out, &floats(&c["out"])));
    }
    for c in fx["prep"].as_array().unwrap() {
        let (h, w) = (dim(c, "height"), dim(c, "width"));
        let bytes: Vec<u8> = c["rgb"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        let rgb = RgbImage::from_raw(w as u32, h as u32, bytes).unwrap();
        let cfg = BlobConfig {
            scale: dim(c, "target") as u32,
            max_size: dim(c, "max_size") as u32,
            ..Default::default()
        };
        let p = prepare_image(&rgb, c["flipped"].as_bool().unwrap(), &cfg);
        assert_eq!(p.scale, c["scale"].as_f64().unwrap());
        assert_eq!(
            (p.height, p.width),
            (dim(c, "out_height"), dim(c, "out_width"))
        );
        worst = worst.max(max_diff(&p.data, &floats(&c["out"])));
    }
    // A few f32 ulps at magnitudes up to ~150 (see resize_linear's documentation).
    assert!(worst <= 4e-5, "largest difference from cv2: {worst}");
}

#[test]
fn minibatches_group_orientations_and_reproduce() {
    // 5 landscape and 3 portrait images, 2 per minibatch: 4 + 2 visited per epoch.
    let sizes = vec![
        (500, 375),
        (375, 500),
        (500, 333),
        (400, 400),
        (333, 500),
        (640, 480),
        (480, 640),
        (500, 338),
    ];
    let order = MinibatchOrder::new(3, sizes.clone(), 2, true).unwrap();
    assert_eq!(order.batches_per_epoch(), 3);
    let landscape = |i: usize| sizes[i].0 >= sizes[i].1;
    for epoch in 0..4 {
        let perm = order.epoch(epoch);
        assert_eq!(perm.len(), 6);
        let mut d = perm.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 6);
        for pair in perm.chunks(2) {
            assert_eq!(landscape(pair[0]), landscape(pair[1]), "{perm:?}");
        }
        assert_eq!(perm.iter().filter(|&&i| landscape(i)).count(), 4);
    }
    assert_ne!(order.epoch(0), order.epoch(1));
    assert_eq!(order.minibatch(4), order.epoch(1)[2..4].to_vec());
    let again = MinibatchOrder::new(3, sizes.clone(), 2, true).unwrap();
    assert_eq!(again.minibatch(11), order.minibatch(11));
    // Without grouping, 8 images in minibatches of 3: the third wraps to the epoch's start.
    let plain = MinibatchOrder::new(3, sizes, 3, false).unwrap();
    let perm = plain.epoch(0);
    assert_eq!(plain.minibatch(2), vec![perm[6], perm[7], perm[0]]);
    assert!(MinibatchOrder::new(3, vec![(10, 20)], 2, true).is_err());
}

#[test]
fn proposal_rules_match_detectron() {
    // unique_boxes rounds half to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.
    let boxes = [
        [0.0, 0.0, 10.0, 10.0],
        [0.5, 0.0, 10.0, 10.0],
        [1.5, 0.0, 10.0, 10.0],
        [2.5, 0.0, 10.0, 10.0],
        [0.0, 0.0, 10.0, 10.4],
    ];
    assert_eq!(unique_boxes(&boxes), vec![0, 2]);
    assert_eq!(canonical_class("tv/monitor"), "tvmonitor");
    assert_eq!(canonical_class("Potted Plant"), "pottedplant");
    // The test roidb: no ground truth, proposals cleaned and cut to the limit in file order.
    let cfg = RoidbConfig {
        test_proposal_limit: Some(3),
        ..Default::default()
    };
    let root = sample("labelme-voc");
    let t = test_roidb(&root, "trainval", &proposals(), Path::new("p.pkl"), &cfg).unwrap();
    assert_eq!(t.entries.len(), 3);
    assert_eq!(t.entries[0].num_gt(), 0);
    assert_eq!(t.entries[0].boxes.len(), 3);
    assert_eq!(t.entries[0].boxes[2], [0.0, 0.0, 499.0, 337.0]);
    assert_eq!(t.entries[1].boxes.len(), 3);
    assert_eq!(t.summary.proposals_beyond_limit, 1 + 138);
}

fn err(r: anyhow::Result<impl std::fmt::Debug>) -> String {
    format!("{:#}", r.unwrap_err())
}

fn edit(root: &Path, id: &str, from: &str, to: &str) {
    let p = root.join("Annotations").join(format!("{id}.xml"));
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{from} not in {}", p.display());
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn reader_cases_are_clear() {
    let cfg = RoidbConfig::default();
    // A missing annotation names its file.
    let dir = voc_copy();
    std::fs::remove_file(dir.path().join("Annotations/2011_000006.xml")).unwrap();
    let e = err(build(dir.path(), &cfg));
    assert!(
        e.contains("2011_000006.xml") && e.contains("restore"),
        "{e}"
    );

    // Proposals for another split: the counts and the file are named.
    let root = sample("labelme-voc");
    let two = &proposals()[..2];
    let e = err(train_roidb(
        &root,
        "trainval",
        &classes(),
        two,
        Path::new("voc_2007_test.pkl"),
        &cfg,
        &SamplingConfig::default(),
    ));
    assert!(
        e.contains("voc_2007_test.pkl") && e.contains("cover 2 images") && e.contains("lists 3"),
        "{e}"
    );
    // A non-finite proposal.
    let mut bad = proposals();
    bad[2].push([0.0, f32::NAN, 4.0, 4.0]);
    let e = err(test_roidb(
        &root,
        "trainval",
        &bad,
        Path::new("p.pkl"),
        &cfg,
    ));
    assert!(e.contains("2011_000025") && e.contains("finite"), "{e}");

    // A box beyond the image is clipped and reported once, with its file.
    let dir = voc_copy();
    edit(
        dir.path(),
        "2011_000025",
        "<xmax>435.0</xmax>",
        "<xmax>620.0</xmax>",
    );
    let r = build(dir.path(), &cfg).unwrap();
    assert_eq!(r.entries[2].boxes[0][2], 499.0);
    assert_eq!(r.summary.gt_clipped, 1);
    let first = r.summary.first_clipped.as_ref().unwrap();
    assert!(first.ends_with("Annotations/2011_000025.xml"));
    assert!(r.summary.to_string().contains("2011_000025.xml"));

    // A class name outside the task's list names the file; `tv/monitor`'s spelling is fine.
    let dir = voc_copy();
    edit(
        dir.path(),
        "2011_000025",
        "<name>car</name>",
        "<name>tv/monitor</name>",
    );
    let r = build(dir.path(), &cfg).unwrap();
    assert_eq!(r.entries[2].gt_classes[2], 20);
    edit(
        dir.path(),
        "2011_000025",
        "<name>bus</name>",
        "<name>tram</name>",
    );
    let e = err(build(dir.path(), &cfg));
    assert!(e.contains("2011_000025.xml") && e.contains("'tram'"), "{e}");

    // Difficult objects leave training's ground truth unless asked for.
    let dir = voc_copy();
    edit(
        dir.path(),
        "2011_000025",
        "<difficult/>",
        "<difficult>1</difficult>",
    );
    let r = build(dir.path(), &cfg).unwrap();
    assert_eq!((r.entries[2].num_gt(), r.summary.difficult_skipped), (2, 1));
    let with = RoidbConfig {
        use_difficult: true,
        ..Default::default()
    };
    assert_eq!(build(dir.path(), &with).unwrap().entries[2].num_gt(), 3);

    // An image without objects: its proposals stay as background in training (Detectron),
    // or it is skipped on request; an image without objects or proposals is filtered out.
    let dir = voc_copy();
    let p = dir.path().join("Annotations/2011_000003.xml");
    let text = std::fs::read_to_string(&p).unwrap();
    let cut = text.find("<object>").unwrap();
    std::fs::write(&p, format!("{}</annotation>\n", &text[..cut])).unwrap();
    let r = build(dir.path(), &cfg).unwrap();
    assert_eq!(r.summary.images_without_gt, 1);
    assert_eq!(r.entries.len(), 6);
    assert_eq!(r.entries[0].num_gt(), 0);
    assert!(r.entries[0].max_overlaps.iter().all(|&o| o == 0.0));
    let skip = RoidbConfig {
        skip_images_without_gt: true,
        ..Default::default()
    };
    let r = build(dir.path(), &skip).unwrap();
    assert_eq!((r.entries.len(), r.summary.entries_filtered), (4, 1));
    assert_eq!(r.entries[0].id, "2011_000006");
    let mut none = proposals();
    none[0].clear();
    let r = train_roidb(
        dir.path(),
        "trainval",
        &classes(),
        &none,
        Path::new("p.pkl"),
        &cfg,
        &SamplingConfig::default(),
    )
    .unwrap();
    assert_eq!((r.entries.len(), r.summary.entries_filtered), (4, 2));
    let t = test_roidb(dir.path(), "trainval", &none, Path::new("p.pkl"), &cfg).unwrap();
    assert_eq!(t.entries.len(), 3, "kept at test");
}
