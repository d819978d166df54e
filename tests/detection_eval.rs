//! The VOC detection evaluation: hand-computed APs, the results files (Python's rounding, the
//! round trip), parity with our Python port of the devkit (data-scripts/voc_eval.py) on real
//! annotations, and the detection PNGs.
//!
//! Data: the labelme VOC sample's three real photos and XML (data/samples/labelme-voc). The
//! parity case adds, in a temporary folder, annotations derived deterministically from those
//! real ones (boxes moved and rescaled, some marked difficult, one renamed to a class that is
//! never detected) and detections derived from the ground truth (see `derived_detections`).

mod common;

use sslbench::data::voc::{read_annotation, VocObject};
use sslbench::tasks::detection::draw::{annotate, draw_detections, draw_strip, STRIP_GAP};
use sslbench::tasks::detection::voc_eval::{
    evaluate, evaluate_class, Detection, EvalConfig, OverlapTest, VocEval,
};
use sslbench::tasks::detection::voc_results::{
    coord_text, read_results, read_results_file, results_file, score_text, write_results,
};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

const REAL_IDS: [&str; 3] = ["2011_000003", "2011_000006", "2011_000025"];

// ---------------------------------------------------------------- hand-computed cases

fn obj(name: &str, bbox: [f32; 4], difficult: bool) -> VocObject {
    VocObject {
        name: name.into(),
        bbox,
        difficult,
        truncated: false,
    }
}

fn det(image: &str, score: f32, bbox: [f32; 4]) -> Detection {
    Detection {
        image: image.into(),
        score,
        bbox,
    }
}

/// A 0-based detection exactly on a 1-based ground-truth box.
fn on(image: &str, score: f32, gt: [f32; 4]) -> Detection {
    det(image, score, gt.map(|v| v - 1.0))
}

fn cfg(use_07_metric: bool) -> EvalConfig {
    EvalConfig {
        use_07_metric,
        ..EvalConfig::default()
    }
}

const A: [f32; 4] = [11.0, 11.0, 60.0, 40.0];
const B: [f32; 4] = [101.0, 51.0, 150.0, 130.0];
const FAR: [f32; 4] = [300.0, 300.0, 340.0, 330.0];

fn ap(gt: &[(String, Vec<VocObject>)], dets: &[Detection], cfg: &EvalConfig) -> f64 {
    evaluate_class(gt, "cat", dets, cfg).unwrap().ap.unwrap()
}

/// Equal up to the rounding of eleven f64 additions.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn tp_fp_tp_gives_the_hand_computed_aps() {
    let gt = vec![("a".into(), vec![obj("cat", A, false), obj("cat", B, false)])];
    let dets = [on("a", 0.9, A), on("a", 0.8, FAR), on("a", 0.7, B)];
    // precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1: t = 0..0.5 reach precision 1, t = 0.6..1
    // reach 2/3 only.
    let r = evaluate_class(&gt, "cat", &dets, &cfg(true)).unwrap();
    assert_eq!((r.npos, r.tp, r.fp, r.ignored), (2, 2, 1, 0));
    assert!(close(r.ap.unwrap(), (6.0 + 5.0 * 2.0 / 3.0) / 11.0));
    assert_eq!(r.recall, vec![0.5, 0.5, 1.0]);
    // Area: 1/2 at precision 1, then 1/2 at precision 2/3.
    assert!(close(ap(&gt, &dets, &cfg(false)), 0.5 + 0.5 * 2.0 / 3.0));
}

#[test]
fn eleven_points_are_i_times_a_tenth_so_recall_three_tenths_misses_the_fourth() {
    // npos = 10, three TPs: recall 3/10 = 0.29999999999999999 < 3 * 0.1 = 0.30000000000000004.
    let boxes: Vec<[f32; 4]> = (0..10)
        .map(|i| {
            let x = 1.0 + 60.0 * i as f32;
            [x, 1.0, x + 49.0, 49.0]
        })
        .collect();
    let gt = vec![(
        "a".into(),
        boxes.iter().map(|&b| obj("cat", b, false)).collect(),
    )];
    let dets: Vec<Detection> = (0..3).map(|i| on("a", 0.9, boxes[i])).collect();
    assert!(close(ap(&gt, &dets, &cfg(true)), 3.0 / 11.0));
    // Six TPs: 6/10 does not reach 6 * 0.1 = 0.6000000000000001 either: 6 points, not 7.
    let dets: Vec<Detection> = (0..6).map(|i| on("a", 0.9, boxes[i])).collect();
    assert!(close(ap(&gt, &dets, &cfg(true)), 6.0 / 11.0));
    // Area AP has no grid: recall 0.3 at precision 1.
    let dets: Vec<Detection> = (0..3).map(|i| on("a", 0.9, boxes[i])).collect();
    assert!(close(ap(&gt, &dets, &cfg(false)), 0.3));
}

#[test]
fn difficult_boxes_neither_count_nor_penalise() {
    let gt = vec![("a".into(), vec![obj("cat", A, true), obj("cat", B, false)])];
    let dets = [on("a", 0.9, A), on("a", 0.8, A), on("a", 0.7, B)];
    let r = evaluate_class(&gt, "cat", &dets, &cfg(true)).unwrap();
    assert_eq!((r.npos, r.tp, r.fp, r.ignored), (1, 1, 0, 2));
    assert!(close(r.ap.unwrap(), 1.0));
}

#[test]
fn duplicates_are_false_positives_and_the_first_maximum_wins() {
    // Two identical ground-truth boxes: both detections go to the first; the second is a
    // duplicate even though the second box is free (the devkit's greedy rule).
    let gt = vec![("a".into(), vec![obj("cat", A, false), obj("cat", A, false)])];
    let dets = [on("a", 0.9, A), on("a", 0.8, A)];
    let r = evaluate_class(&gt, "cat", &dets, &cfg(true)).unwrap();
    assert_eq!((r.npos, r.tp, r.fp), (2, 1, 1));
    // precision 1, 1/2 at recall 1/2: t = 0..0.5 only.
    assert!(close(r.ap.unwrap(), 6.0 / 11.0));
}

#[test]
fn an_iou_of_exactly_one_half_passes_only_the_inclusive_test() {
    // Ground truth 1-based x 1..60 (60 px wide, +1 convention), detection x 1..30: IoU 30/60.
    let gt_box = [1.0, 1.0, 60.0, 40.0];
    let gt = vec![("a".into(), vec![obj("cat", gt_box, false)])];
    let dets = [on("a", 0.9, [1.0, 1.0, 30.0, 40.0])];
    assert_eq!(ap(&gt, &dets, &cfg(true)), 0.0);
    let inclusive = EvalConfig {
        overlap_test: OverlapTest::Inclusive,
        ..EvalConfig::default()
    };
    assert!(close(ap(&gt, &dets, &inclusive), 1.0));
    // One pixel less is below for both.
    let dets = [on("a", 0.9, [1.0, 1.0, 29.0, 40.0])];
    assert_eq!(ap(&gt, &dets, &inclusive), 0.0);
}

#[test]
fn tied_scores_keep_their_input_order() {
    let gt = vec![("a".into(), vec![obj("cat", A, false)])];
    let (tp, fp) = (on("a", 0.5, A), on("a", 0.5, FAR));
    assert!(close(ap(&gt, &[tp.clone(), fp.clone()], &cfg(true)), 1.0));
    // FP first: precision 0 then 1/2 at recall 1.
    assert!(close(ap(&gt, &[fp, tp], &cfg(true)), 0.5));
}

#[test]
fn as_written_scores_round_to_three_decimals_and_tie() {
    let gt = vec![("a".into(), vec![obj("cat", A, false)])];
    let dets = [on("a", 0.1231, FAR), on("a", 0.1234, A)];
    // Both are written 0.123: a tie, kept in input order (FP first). Unrounded, the TP leads.
    assert!(close(ap(&gt, &dets, &EvalConfig::default()), 0.5));
    let exact = EvalConfig {
        as_written: false,
        ..EvalConfig::default()
    };
    assert!(close(ap(&gt, &dets, &exact), 1.0));
}

#[test]
fn classes_without_ground_truth_have_no_ap_and_stay_out_of_the_mean() {
    let gt = vec![("a".into(), vec![obj("cat", A, false)])];
    let per_class = vec![
        ("cat".to_string(), vec![on("a", 0.9, A)]),
        ("dog".to_string(), vec![on("a", 0.9, A)]),
        ("cow".to_string(), vec![]),
    ];
    let r = evaluate(&gt, &per_class, &cfg(true)).unwrap();
    let aps: Vec<Option<f64>> = r.classes.iter().map(|c| c.ap).collect();
    assert!(close(aps[0].unwrap(), 1.0) && aps[1..] == [None, None]);
    assert_eq!(r.map, aps[0]);
    assert_eq!(r.classes[1].fp, 1);
}

#[test]
fn bad_detections_are_errors_that_name_the_image() {
    let gt = vec![("a".into(), vec![obj("cat", A, false)])];
    let err = evaluate_class(&gt, "cat", &[on("zz", 0.9, A)], &cfg(true)).unwrap_err();
    assert!(err.to_string().contains("zz"), "{err}");
    let err = evaluate_class(&gt, "cat", &[on("a", f32::NAN, A)], &cfg(true)).unwrap_err();
    assert!(err.to_string().contains("finite"), "{err}");
    let twice = vec![gt[0].clone(), gt[0].clone()];
    assert!(evaluate_class(&twice, "cat", &[], &cfg(true)).is_err());
}

#[test]
fn eval_config_reads_from_toml_with_the_devkit_defaults() {
    let c: EvalConfig = toml::from_str("").unwrap();
    assert_eq!(c, EvalConfig::default());
    assert_eq!(
        (
            c.iou_threshold,
            c.overlap_test,
            c.use_07_metric,
            c.as_written
        ),
        (0.5, OverlapTest::Strict, true, true)
    );
    let c: EvalConfig =
        toml::from_str("overlap_test = \"inclusive\"\nuse_07_metric = false").unwrap();
    assert_eq!(c.overlap_test, OverlapTest::Inclusive);
    assert!(!c.use_07_metric);
    assert!(toml::from_str::<EvalConfig>("iou = 0.5").is_err());
}

// ---------------------------------------------------------------- results files

/// SplitMix64: a fixed stream for the derived cases.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Runs python3 with `script` on `stdin`; returns stdout.
fn python(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("python3")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (with numpy: data-scripts/setup.sh) must be on PATH");
    // Fed from a thread: python3 writes as it reads, and a full stdout pipe would block it.
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_owned();
    let feeder = std::thread::spawn(move || pipe.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "python3 {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn scores_and_coordinates_print_as_detectron_prints_them() {
    // Detectron: '{:.3f}'.format(float32 score), '{:.1f}'.format(float32 x + 1), numpy scalars.
    let mut s = Stream(7);
    let mut scores: Vec<f32> = (0..4000).map(|_| s.unit() as f32).collect();
    let mut coords: Vec<f32> = (0..4000).map(|_| s.range(-1.0, 1200.0) as f32).collect();
    // Values at or next to a rounding half: k/2000 and k/20 + 0.05 exactly halfway in decimal,
    // binary halves (k/16), and their f32 neighbours.
    for k in 0..2000 {
        let v = (2 * k + 1) as f32 / 2000.0 / 2.0;
        scores.extend([
            v,
            f32::from_bits(v.to_bits() + 1),
            f32::from_bits(v.to_bits() - 1),
        ]);
        let c = k as f32 * 0.35 + 0.05;
        coords.extend([
            c,
            f32::from_bits(c.to_bits() + 1),
            k as f32 / 16.0 - 1.0,
            k as f32 + 0.25,
            k as f32 - 0.75,
        ]);
    }
    scores.extend([0.0, 1.0, 0.0005, 0.0015, 0.9995, 0.0625, 0.1235, 0.05]);
    let mut input = String::new();
    for v in &scores {
        writeln!(input, "s {:08x}", v.to_bits()).unwrap();
    }
    for v in &coords {
        writeln!(input, "c {:08x}", v.to_bits()).unwrap();
    }
    let script = "import sys, numpy as np\n\
        for line in sys.stdin:\n    \
            kind, bits = line.split()\n    \
            v = np.frombuffer(bytes.fromhex(bits)[::-1], dtype=np.float32)[0]\n    \
            print('{:.3f}'.format(v) if kind == 's' else '{:.1f}'.format(v + 1))\n";
    let theirs = python(&["-c", script], &input);
    let ours: Vec<String> = scores
        .iter()
        .map(|&v| score_text(v))
        .chain(coords.iter().map(|&v| coord_text(v)))
        .collect();
    let theirs: Vec<&str> = theirs.lines().collect();
    assert_eq!(theirs.len(), ours.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "value {i}");
    }
}

#[test]
fn results_files_round_trip_and_read_detectrons_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Stream(11);
    let per_class: Vec<(String, Vec<Detection>)> = ["cat", "dog", "tvmonitor"]
        .iter()
        .enumerate()
        .map(|(c, class)| {
            let dets = (0..50 * c)
                .map(|i| {
                    let x = s.range(0.0, 400.0) as f32;
                    let y = s.range(0.0, 300.0) as f32;
                    det(
                        &format!("{:06}", i % 7),
                        s.unit() as f32,
                        [x, y, x + s.range(1.0, 99.0) as f32, y + 40.5],
                    )
                })
                .collect();
            (class.to_string(), dets)
        })
        .collect();
    let paths = write_results(dir.path(), &per_class).unwrap();
    assert_eq!(paths[2], results_file(dir.path(), "tvmonitor"));
    assert_eq!(std::fs::read(&paths[0]).unwrap(), b"", "no cat detection");
    let classes: Vec<String> = per_class.iter().map(|(c, _)| c.clone()).collect();
    let back = read_results(dir.path(), &classes).unwrap();
    for ((_, ours), (_, read)) in per_class.iter().zip(&back) {
        assert_eq!(ours.len(), read.len());
        for (a, b) in ours.iter().zip(read) {
            assert_eq!(a.image, b.image);
            assert_eq!(score_text(a.score), score_text(b.score));
            assert_eq!(a.bbox.map(coord_text), b.bbox.map(coord_text));
        }
    }
    // Writing what was read gives the same bytes.
    let again = tempfile::tempdir().unwrap();
    write_results(again.path(), &back).unwrap();
    for class in &classes {
        let read = |d: &Path| std::fs::read(results_file(d, class)).unwrap();
        assert_eq!(read(dir.path()), read(again.path()), "{class}");
    }

    // Lines as Detectron and FAIR's example detections have them (these are ours).
    let file = dir.path().join("comp4_det_test_bird.txt");
    std::fs::write(
        &file,
        "000012 1.000 156.2 97.0 351.9 270.3\n000012 0.051 1.0 1.0 500.0 375.0\n\n",
    )
    .unwrap();
    let read = read_results_file(&file).unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].image, "000012");
    assert_eq!(read[0].score, 1.0);
    assert_eq!(read[1].bbox, [0.0, 0.0, 499.0, 374.0]);
    assert_eq!(coord_text(read[0].bbox[0]), "156.2");

    std::fs::write(&file, "000012 1.000 156.2 97.0 351.9\n").unwrap();
    let err = format!("{:#}", read_results_file(&file).unwrap_err());
    assert!(err.contains("comp4_det_test_bird.txt:1"), "{err}");
    let err = format!(
        "{:#}",
        read_results(dir.path(), &["cow".into()]).unwrap_err()
    );
    assert!(err.contains("comp4_det_test_cow.txt"), "{err}");
    let bad = vec![("tv/monitor".to_string(), vec![])];
    assert!(write_results(dir.path(), &bad).is_err());
}

// ---------------------------------------------------------------- parity with the devkit port

/// One derived annotation, written as labelme writes VOC XML (empty tags, float coordinates).
fn write_xml(path: &Path, width: u32, height: u32, objects: &[VocObject], floats: bool) {
    let mut xml = format!(
        "<annotation>\n  <folder/>\n  <filename>x.jpg</filename>\n  <size>\n    \
         <height>{height}</height>\n    <width>{width}</width>\n    <depth>3</depth>\n  \
         </size>\n"
    );
    for o in objects {
        let difficult = if o.difficult {
            "<difficult>1</difficult>"
        } else {
            "<difficult/>"
        };
        let coord = |v: f32| {
            if floats {
                format!("{v:?}")
            } else {
                format!("{v:.1}")
            }
        };
        write!(
            xml,
            "  <object>\n    <name>{}</name>\n    <pose/>\n    <truncated/>\n    {difficult}\n    \
             <bndbox>\n      <xmin>{}</xmin>\n      <ymin>{}</ymin>\n      <xmax>{}</xmax>\n      \
             <ymax>{}</ymax>\n    </bndbox>\n  </object>\n",
            o.name,
            coord(o.bbox[0]),
            coord(o.bbox[1]),
            coord(o.bbox[2]),
            coord(o.bbox[3]),
        )
        .unwrap();
    }
    xml.push_str("</annotation>\n");
    std::fs::write(path, xml).unwrap();
}

/// The real annotations, plus six variants of each: boxes scaled and moved (integer
/// coordinates with even widths in even variants, fractional in odd ones), every fourth object
/// difficult, and one object per odd variant renamed `dog` (a class nobody detects).
fn derived_ground_truth(annotations: &Path) -> Vec<(String, Vec<VocObject>)> {
    let src = common::sample("labelme-voc/Annotations");
    let mut gt = Vec::new();
    let mut s = Stream(3);
    for id in REAL_IDS {
        let from = src.join(format!("{id}.xml"));
        std::fs::copy(&from, annotations.join(format!("{id}.xml"))).unwrap();
        let real = read_annotation(&from).unwrap();
        gt.push((id.to_string(), real.objects.clone()));
        for v in 0..6 {
            let (w, h) = (real.width as f32, real.height as f32);
            let scale = s.range(0.7, 1.1) as f32;
            let (dx, dy) = (s.range(-20.0, 20.0) as f32, s.range(-20.0, 20.0) as f32);
            let objects: Vec<VocObject> = real
                .objects
                .iter()
                .enumerate()
                .map(|(k, o)| {
                    let mut b = [
                        (o.bbox[0] * scale + dx).clamp(1.0, w - 10.0),
                        (o.bbox[1] * scale + dy).clamp(1.0, h - 10.0),
                        (o.bbox[2] * scale + dx).clamp(10.0, w),
                        (o.bbox[3] * scale + dy).clamp(10.0, h),
                    ];
                    if v % 2 == 0 {
                        b = b.map(f32::round);
                        if (b[2] - b[0] + 1.0) % 2.0 != 0.0 {
                            b[2] -= 1.0;
                        }
                    }
                    let name = if v % 2 == 1 && k == 0 { "dog" } else { &o.name };
                    VocObject {
                        name: name.into(),
                        bbox: b,
                        difficult: (k + v) % 4 == 0,
                        truncated: false,
                    }
                })
                .collect();
            let id = format!("{id}_v{v}");
            let path = annotations.join(format!("{id}.xml"));
            write_xml(&path, real.width, real.height, &objects, v % 2 == 1);
            // The Rust side reads what Python reads.
            gt.push((id, read_annotation(&path).unwrap().objects));
        }
    }
    gt
}

/// Detections derived from the ground truth, per class in image order: jittered true
/// positives, lower-scored duplicates, boxes at IoU exactly 1/2 (half the width of an
/// even-width box), poorly localised boxes, the right box under the wrong class, random boxes,
/// detections of difficult objects (the same rules apply to them), scores on a 0.05 grid (ties)
/// or just off a 3-decimal half. `cat` has detections but no ground truth; `bird` has neither.
fn derived_detections(gt: &[(String, Vec<VocObject>)]) -> Vec<(String, Vec<Detection>)> {
    let classes = ["bird", "bus", "car", "cat", "dog", "person"];
    let mut per: Vec<(String, Vec<Detection>)> =
        classes.iter().map(|c| (c.to_string(), vec![])).collect();
    let mut s = Stream(5);
    let mut push = |class: &str, d: Detection| {
        per.iter_mut().find(|(c, _)| c == class).unwrap().1.push(d);
    };
    let score = |s: &mut Stream| -> f32 {
        match s.next() % 3 {
            0 => (s.next() % 21) as f32 * 0.05,
            1 => (s.next() % 1000) as f32 / 1000.0 + 0.0005,
            _ => s.unit() as f32,
        }
    };
    for (image, objects) in gt {
        for o in objects {
            // 0-based box of the object.
            let b = o.bbox.map(|v| v - 1.0);
            let (w, h) = (b[2] - b[0], b[3] - b[1]);
            let class = if o.name == "dog" {
                "person"
            } else {
                o.name.as_str()
            };
            if s.chance(0.8) {
                let j = |s: &mut Stream, size: f32| (s.range(-0.08, 0.08) as f32) * size;
                let jit = [j(&mut s, w), j(&mut s, h), j(&mut s, w), j(&mut s, h)];
                let bb = [b[0] + jit[0], b[1] + jit[1], b[2] + jit[2], b[3] + jit[3]];
                push(class, det(image, score(&mut s), bb));
                if s.chance(0.3) {
                    push(class, det(image, score(&mut s) * 0.5, bb));
                }
            }
            let width = o.bbox[2] - o.bbox[0] + 1.0;
            if width.fract() == 0.0 && width % 2.0 == 0.0 && s.chance(0.5) {
                let half = [b[0], b[1], b[0] + width / 2.0 - 1.0, b[3]];
                push(class, det(image, score(&mut s), half));
            }
            if s.chance(0.3) {
                let shifted = [b[0] + 0.6 * w, b[1], b[2] + 0.6 * w, b[3]];
                push(class, det(image, score(&mut s), shifted));
            }
            if s.chance(0.2) {
                push("car", det(image, score(&mut s), b));
            }
        }
        for _ in 0..4 {
            let (x, y) = (s.range(0.0, 400.0) as f32, s.range(0.0, 300.0) as f32);
            let bb = [
                x,
                y,
                x + s.range(5.0, 100.0) as f32,
                y + s.range(5.0, 70.0) as f32,
            ];
            let class = ["bus", "car", "cat", "person"][(s.next() % 4) as usize];
            push(class, det(image, score(&mut s), bb));
        }
    }
    per
}

fn python_eval(devkit: &Path, results: &Path, classes: &[String], cfg: &EvalConfig) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("data-scripts/voc_eval.py");
    let mut args = vec![
        script.to_str().unwrap().to_string(),
        "--annotations".into(),
        devkit.join("Annotations").to_str().unwrap().into(),
        "--image-set".into(),
        devkit.join("test.txt").to_str().unwrap().into(),
        "--results".into(),
        results.to_str().unwrap().into(),
        "--classes".into(),
        classes.join(","),
        "--iou".into(),
        cfg.iou_threshold.to_string(),
        "--overlap-test".into(),
        match cfg.overlap_test {
            OverlapTest::Strict => "strict".into(),
            OverlapTest::Inclusive => "inclusive".into(),
        },
    ];
    if cfg.use_07_metric {
        args.push("--use-07-metric".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python(&args, "")
}

fn aps(r: &VocEval) -> Vec<Option<f64>> {
    r.classes.iter().map(|c| c.ap).collect()
}

#[test]
fn our_ap_equals_the_python_devkit_port_on_our_results_files() {
    let dir = tempfile::tempdir().unwrap();
    let devkit = dir.path().join("devkit");
    std::fs::create_dir_all(devkit.join("Annotations")).unwrap();
    let gt = derived_ground_truth(&devkit.join("Annotations"));
    let ids: String = gt.iter().map(|(id, _)| format!("{id}\n")).collect();
    std::fs::write(devkit.join("test.txt"), ids).unwrap();
    let per_class = derived_detections(&gt);
    let results = dir.path().join("results");
    write_results(&results, &per_class).unwrap();
    let classes: Vec<String> = per_class.iter().map(|(c, _)| c.clone()).collect();
    let read_back = read_results(&results, &classes).unwrap();

    // The case exercises what it claims: ties in the written scores, difficult objects.
    let written: Vec<String> = per_class[5].1.iter().map(|d| score_text(d.score)).collect();
    let mut distinct = written.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() + 10 < written.len(), "tied scores");
    assert!(gt.iter().flat_map(|(_, o)| o).any(|o| o.difficult));

    let mut all = Vec::new();
    for overlap_test in [OverlapTest::Strict, OverlapTest::Inclusive] {
        for use_07_metric in [true, false] {
            let cfg = EvalConfig {
                overlap_test,
                use_07_metric,
                ..EvalConfig::default()
            };
            let ours = evaluate(&gt, &per_class, &cfg).unwrap();
            // Read back from the files, the same numbers exactly.
            assert_eq!(ours, evaluate(&gt, &read_back, &cfg).unwrap());
            let text = python_eval(&devkit, &results, &classes, &cfg);
            let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
            for c in &ours.classes {
                let t = &theirs["classes"][&c.class];
                let context = format!(
                    "{} {cfg:?}: ours AP {:?}, npos {}, tp {}, fp {}, ignored {}; theirs {t}",
                    c.class, c.ap, c.npos, c.tp, c.fp, c.ignored
                );
                for (key, value) in [
                    ("npos", c.npos),
                    ("detections", c.detections),
                    ("tp", c.tp),
                    ("fp", c.fp),
                    ("ignored", c.ignored),
                ] {
                    assert_eq!(t[key].as_u64(), Some(value as u64), "{key} of {context}");
                }
                match c.ap {
                    Some(ap) => {
                        let py = t["ap"].as_f64().unwrap();
                        assert!((ap - py).abs() < 1e-9, "AP {ap} vs {py}: {context}");
                    }
                    None => assert!(t["ap"].is_null(), "{context}"),
                }
            }
            let map = theirs["map"].as_f64().unwrap();
            assert!((ours.map.unwrap() - map).abs() < 1e-9);
            all.push((cfg, ours));
        }
    }
    // The options matter on this case: exact halves flip between the tests, the two APs
    // differ, and every kind of outcome occurs.
    assert_ne!(aps(&all[0].1), aps(&all[2].1), "strict vs inclusive");
    assert_ne!(aps(&all[0].1), aps(&all[1].1), "11-point vs area");
    let person = &all[0].1.classes[5];
    assert!(
        person.tp > 10 && person.fp > 10 && person.ignored > 0,
        "{person:?}"
    );
    let by = |name: &str| all[0].1.classes.iter().find(|c| c.class == name).unwrap();
    assert_eq!((by("dog").ap, by("dog").detections), (Some(0.0), 0));
    assert_eq!((by("cat").ap, by("bird").ap), (None, None));
    assert!(by("cat").fp > 0);
}

// ---------------------------------------------------------------- drawing

#[test]
fn detections_are_drawn_where_their_boxes_are() {
    let photo = image::open(common::sample("labelme-voc/JPEGImages/2011_000003.jpg"))
        .unwrap()
        .to_rgb8();
    let dets = vec![("person".to_string(), 0.87f32, [100.0, 120.0, 200.0, 250.0])];
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dets.png");
    draw_detections(&photo, &dets, &out).unwrap();
    let drawn = image::open(&out).unwrap().to_rgb8();
    assert_eq!(drawn.dimensions(), photo.dimensions());
    assert_eq!(drawn, annotate(&photo, &dets).unwrap(), "PNG is lossless");
    let changed = |x: u32, y: u32| drawn.get_pixel(x, y) != photo.get_pixel(x, y);
    // Every pixel of the outline changed; nothing inside or far away did.
    let edge = (120..=250)
        .filter(|&y| changed(100, y) && changed(200, y))
        .count();
    assert_eq!(edge, 131);
    assert_eq!((100..=200).filter(|&x| changed(x, 250)).count(), 101);
    for (x, y) in [(150, 185), (105, 245), (400, 300), (10, 10)] {
        assert!(!changed(x, y), "({x}, {y})");
    }
    // The caption sits on a band above the box (when the plots' font is here, as setup.sh
    // installs it).
    if std::env::var_os("SSLBENCH_FONT").is_none()
        && Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists()
    {
        let band = (100..140).filter(|&x| changed(x, 110)).count();
        assert!(band > 30, "caption band: {band} of 40 pixels changed");
    }

    let strip = dir.path().join("strip.png");
    let small = image::imageops::thumbnail(&drawn, 100, 60);
    draw_strip(&[drawn.clone(), small.clone()], &strip).unwrap();
    let strip = image::open(&strip).unwrap().to_rgb8();
    assert_eq!(
        strip.dimensions(),
        (drawn.width() + STRIP_GAP + small.width(), drawn.height())
    );
    assert_eq!(
        strip.get_pixel(drawn.width() + STRIP_GAP, 0),
        small.get_pixel(0, 0)
    );
    assert_eq!(
        strip.get_pixel(drawn.width() + STRIP_GAP, 70),
        &image::Rgb([255, 255, 255])
    );
}
