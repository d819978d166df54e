//! Box ops against Detectron's arithmetic: the fixture ops/tests/fixtures/boxes/boxes.json is
//! written by data-scripts/make_nms_fixtures.py (a NumPy port of Detectron's `cython_nms` and
//! box coding, with torchvision's `nms` on the +1 boxes as a second reference).

use serde_json::Value;
use sslbench_ops::boxes::{iou, nms, score_order, BoxCoder, BoxF};

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/boxes/boxes.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run data-scripts/make_nms_fixtures.py)"));
    serde_json::from_str(&text).expect("boxes.json is JSON")
}

/// f32 values stored as the f64 they widen to: the cast back is exact.
fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn box_list(v: &Value) -> Vec<BoxF> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|b| floats(b).try_into().expect("4 coordinates"))
        .collect()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("index") as usize)
        .collect()
}

#[test]
fn nms_equals_detectron_and_torchvision() {
    let fx = fixture();
    let cases = fx["nms"].as_array().expect("cases");
    assert!(cases.len() >= 10);
    let mut torchvision_checked = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let boxes = box_list(&case["boxes"]);
        let scores = floats(&case["scores"]);
        let thresh = case["thresh"].as_f64().unwrap();
        let keep = nms(&boxes, &scores, thresh);
        assert_eq!(keep, indices(&case["keep"]), "{name}: Detectron's port");
        if !case["torchvision_keep"].is_null() {
            assert_eq!(
                keep,
                indices(&case["torchvision_keep"]),
                "{name}: torchvision"
            );
            torchvision_checked += 1;
        }
    }
    assert!(torchvision_checked >= 5);
}

#[test]
fn ties_are_visited_by_descending_index() {
    assert_eq!(score_order(&[0.5, 0.9, 0.5, 0.1, 0.9]), vec![4, 1, 2, 0, 3]);
    assert_eq!(score_order(&[0.0, f32::NAN, -0.0]), vec![1, 2, 0]);
}

#[test]
fn exact_threshold_overlaps_are_suppressed() {
    // The fixture's grid cases hold overlaps equal to the threshold; torchvision (which
    // suppresses only above it) is not consulted there, and the port's answer differs from
    // what a strict comparison would give.
    let fx = fixture();
    let case = fx["nms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["exact_threshold_pair"].as_bool().unwrap())
        .expect("an exact-threshold case");
    let boxes = box_list(&case["boxes"]);
    let thresh = case["thresh"].as_f64().unwrap();
    let strict = nms(&boxes, &floats(&case["scores"]), thresh + 1e-7);
    assert_ne!(strict, indices(&case["keep"]));
    assert!(boxes
        .iter()
        .any(|a| boxes.iter().any(|b| f64::from(iou(a, b)) == thresh)));
}

#[test]
fn box_coding_equals_detectron() {
    let fx = fixture();
    let c = &fx["coding"];
    let coder = BoxCoder::default();
    assert_eq!(coder.weights.to_vec(), floats(&c["weights"]));
    assert_eq!(coder.clip, c["clip"].as_f64().unwrap() as f32);
    let (props, gts) = (box_list(&c["proposals"]), box_list(&c["gts"]));
    let (targets, deltas) = (box_list(&c["targets"]), box_list(&c["deltas"]));
    let decoded = box_list(&c["decoded"]);
    let ulps = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).abs();
    let (mut worst_log, mut worst_exp) = (0, 0f32);
    for i in 0..props.len() {
        let t = coder.encode(&props[i], &gts[i]);
        // The centre offsets are plain IEEE arithmetic: bit-exact. The log terms may differ
        // from NumPy's vectorised float32 log in the last bits.
        assert_eq!(t[..2], targets[i][..2], "encode {i}");
        for k in 2..4 {
            worst_log = worst_log.max(ulps(t[k], targets[i][k]));
        }
        // The corners are centre -/+ half the exp-scaled size: measured against that size.
        let d = coder.decode(&props[i], deltas[i]);
        let size = (decoded[i][2] - decoded[i][0]).max(decoded[i][3] - decoded[i][1]) + 1.0;
        for k in 0..4 {
            let scale = decoded[i][k].abs() + size;
            worst_exp = worst_exp.max((d[k] - decoded[i][k]).abs() / scale);
        }
    }
    eprintln!("log terms: {worst_log} ulp; decoded: {worst_exp} of |corner| + size");
    assert!(worst_log <= 4, "log terms {worst_log} ulp from NumPy's");
    assert!(
        worst_exp <= 1e-6,
        "decoded boxes {worst_exp} relative from NumPy's"
    );
}
