//! Metric parity: sslbench's normals evaluation against the NumPy reference
//! (data-scripts/normals_metrics_ref.py: float64, np.percentile median, strict thresholds) on
//! real normals (computed from the Middlebury Motorcycle depth), three images pooled. Mean and
//! median agree within 1e-9 and the threshold counts and fractions exactly; the decoding agrees
//! with NumPy's, and the codebook labels equal scikit-learn's pairwise_distances_argmin.

use ndarray::ArrayD;
use sslbench::data::npy;
use sslbench::tasks::normals::codebook::{Codebook, CodebookSource, IGNORE_LABEL};
use sslbench::tasks::normals::metrics::{angular_errors, decode_probabilities, evaluate};
use std::path::{Path, PathBuf};

const SCRIPT: &str =
    "python3 data-scripts/normals_metrics_ref.py --normals data/samples/normals-ref \
                      --out data/samples/normals-metrics (after normals_from_depth_ref.py; or bash \
                      data-scripts/setup.sh)";
const IMAGES: usize = 3;

fn fixture() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/samples/normals-metrics");
    assert!(
        dir.join("metrics.json").exists(),
        "{} is missing: run `{SCRIPT}`",
        dir.display()
    );
    dir
}

fn read(name: &str) -> ArrayD<f64> {
    npy::read(&fixture().join(name)).unwrap_or_else(|e| panic!("{e:#}: run `{SCRIPT}`"))
}

fn triples(a: &ArrayD<f64>) -> Vec<[f64; 3]> {
    a.as_slice()
        .unwrap()
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect()
}

fn mask(i: usize) -> Vec<bool> {
    read(&format!("mask_{i}.npy"))
        .iter()
        .map(|&v| v != 0.0)
        .collect()
}

fn codebook() -> Codebook {
    let path = fixture().join("codebook.npy");
    Codebook::new(
        triples(&read("codebook.npy")),
        CodebookSource::File {
            path: path.display().to_string(),
            sha256: String::new(),
        },
    )
    .unwrap()
}

/// Our decoding of image `i`, checked against NumPy's.
fn decoded(i: usize) -> Vec<[f64; 3]> {
    let probs: Vec<f32> = read(&format!("probs_{i}.npy"))
        .iter()
        .map(|&v| v as f32)
        .collect();
    let ours = decode_probabilities(&probs, &codebook().centres).unwrap();
    let want = triples(&read(&format!("decoded_{i}.npy")));
    assert_eq!(ours.len(), want.len());
    for (p, (a, b)) in ours.iter().zip(&want).enumerate() {
        for c in 0..3 {
            assert!(
                (a[c] - b[c]).abs() < 1e-12,
                "image {i} pixel {p}: {a:?} vs {b:?}"
            );
        }
    }
    ours
}

fn check(predictions: &[Vec<[f64; 3]>]) {
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("metrics.json")).unwrap())
            .unwrap();
    let gts: Vec<Vec<[f64; 3]>> = (0..IMAGES)
        .map(|i| triples(&read(&format!("gt_{i}.npy"))))
        .collect();
    let masks: Vec<Vec<bool>> = (0..IMAGES).map(mask).collect();
    let mut passes = 0;
    let m = evaluate(|pooled| {
        passes += 1;
        for i in 0..IMAGES {
            pooled.add(&angular_errors(&predictions[i], &gts[i], &masks[i])?)?;
        }
        Ok(())
    })
    .unwrap();
    println!("{m:?} in {passes} passes");
    assert_eq!(m.pixels, want["pixels"].as_u64().unwrap());
    let mean = want["mean"].as_f64().unwrap();
    let median = want["median"].as_f64().unwrap();
    assert!((m.mean - mean).abs() <= 1e-9, "mean {} vs {mean}", m.mean);
    assert!(
        (m.median - median).abs() <= 1e-9,
        "median {} vs {median}",
        m.median
    );
    for t in 0..3 {
        assert_eq!(m.below[t], want["below"][t].as_u64().unwrap());
        assert_eq!(
            m.percent_below[t],
            want["percent_below"][t].as_f64().unwrap()
        );
    }
}

#[test]
fn pooled_metrics_match_numpy_on_numpys_decoding() {
    check(
        &(0..IMAGES)
            .map(|i| triples(&read(&format!("decoded_{i}.npy"))))
            .collect::<Vec<_>>(),
    );
}

#[test]
fn decoding_and_pooled_metrics_match_numpy_end_to_end() {
    check(&(0..IMAGES).map(decoded).collect::<Vec<_>>());
}

#[test]
fn codebook_labels_equal_sklearn_pairwise_distances_argmin() {
    let book = codebook();
    for i in 0..IMAGES {
        let gt: Vec<[f32; 3]> = triples(&read(&format!("gt_{i}.npy")))
            .iter()
            .map(|n| n.map(|v| v as f32))
            .collect();
        let ours = book.labels(&gt, &mask(i)).unwrap();
        let want: Vec<u8> = read(&format!("labels_{i}.npy"))
            .iter()
            .map(|&v| v as u8)
            .collect();
        assert_eq!(ours.len(), want.len());
        let differ = ours.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(
            differ, 0,
            "image {i}: {differ} labels differ from scikit-learn's"
        );
        assert!(ours.contains(&IGNORE_LABEL) && ours.iter().any(|&l| l < 40));
    }
}
