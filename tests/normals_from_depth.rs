//! Normals-from-depth parity: sslbench's window PCA against the NumPy reference
//! (data-scripts/normals_from_depth_ref.py, numpy.linalg.eigh) on real metric depth, the
//! Middlebury 2014 Motorcycle of scikit-image with its calibration. Every valid pixel's normal
//! agrees within 0.01 degrees and the masks are equal, for both cases the script writes.

use ndarray::{Array2, ArrayD, Ix2};
use sslbench::data::npy;
use sslbench::tasks::normals::from_depth::{NormalFrame, NormalsFromDepth};
use sslbench::tasks::normals::geometry::{Intrinsics, ProjectionCrop};
use std::path::{Path, PathBuf};

const SCRIPT: &str =
    "python3 data-scripts/normals_from_depth_ref.py --out data/samples/normals-ref \
                      (or bash data-scripts/setup.sh)";

/// The reference folder; its absence fails the test with the command that writes it.
fn reference() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/samples/normals-ref");
    assert!(
        dir.join("plain/normals.npy").exists() && dir.join("nyu_style/normals.npy").exists(),
        "{} is missing or incomplete: run `{SCRIPT}`",
        dir.display()
    );
    dir
}

fn read(path: &Path) -> ArrayD<f64> {
    npy::read(path).unwrap_or_else(|e| panic!("{e:#}: run `{SCRIPT}`"))
}

fn read_f32_2d(path: &Path) -> Array2<f32> {
    read(path)
        .into_dimensionality::<Ix2>()
        .unwrap()
        .mapv(|v| v as f32)
}

fn check_case(name: &str) {
    let dir = reference();
    let case = dir.join(name);
    let params: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(case.join("params.json")).unwrap()).unwrap();
    let num = |k: &str| params[k].as_f64().unwrap();
    let depth = read_f32_2d(&dir.join(params["depth"].as_str().unwrap()));
    let raw = params["raw"].as_str().map(|f| read_f32_2d(&dir.join(f)));
    let crop = (!params["crop"].is_null()).then(|| {
        let c = |k: &str| params["crop"][k].as_u64().unwrap() as usize;
        ProjectionCrop {
            top: c("top"),
            left: c("left"),
            height: c("height"),
            width: c("width"),
        }
    });
    let fit = NormalsFromDepth {
        intrinsics: Intrinsics {
            fx: num("fx"),
            fy: num("fy"),
            cx: num("cx"),
            cy: num("cy"),
            origin: num("origin"),
        },
        crop,
        window: num("window") as usize,
        min_points: num("min_points") as usize,
        frame: NormalFrame::Camera,
    };
    let ours = fit
        .compute(depth.view(), raw.as_ref().map(|r| r.view()))
        .unwrap();
    let want = read(&case.join("normals.npy"));
    let want_mask = read(&case.join("mask.npy"));
    let (h, w) = depth.dim();
    assert_eq!(want.shape(), &[h, w, 3]);
    let mut valid = 0usize;
    let mut worst = 0.0f64;
    for r in 0..h {
        for c in 0..w {
            let mask = want_mask[&[r, c][..]] != 0.0;
            assert_eq!(
                ours.valid[[r, c]],
                mask,
                "{name}: mask differs at ({r}, {c})"
            );
            if !mask {
                assert_eq!(
                    [0, 1, 2].map(|k| ours.normals[[r, c, k]]),
                    [0.0; 3],
                    "{name}: a masked pixel's normal is not 0"
                );
                continue;
            }
            valid += 1;
            let a = [0, 1, 2].map(|k| ours.normals[[r, c, k]] as f64);
            let b = [0, 1, 2].map(|k| want[&[r, c, k][..]]);
            let dot = (a[0] * b[0] + a[1] * b[1] + a[2] * b[2])
                / ((a.iter().map(|v| v * v).sum::<f64>() * b.iter().map(|v| v * v).sum::<f64>())
                    .sqrt());
            let angle = dot.clamp(-1.0, 1.0).acos().to_degrees();
            worst = worst.max(angle);
            assert!(
                angle < 0.01,
                "{name}: normals at ({r}, {c}) differ by {angle} degrees: {a:?} vs {b:?}"
            );
        }
    }
    println!(
        "{name}: {valid} valid pixels of {}, worst angle {worst:e} degrees",
        h * w
    );
    // Real data, not a degenerate fixture: most of the frame is fitted.
    assert!(valid > h * w / 2, "{name}: only {valid} valid pixels");
}

#[test]
fn window_pca_matches_numpy_on_motorcycle_depth() {
    check_case("plain");
}

#[test]
fn nyu_arrangement_matches_numpy_filled_depth_raw_mask_and_crop() {
    check_case("nyu_style");
}
