//! `sslbench normals from-depth` end to end: the binary runs on the NYUv2 fixture's labelled
//! `.mat` (data-scripts/make_nyuv2_fixtures.py: 240 x 320 frames, the Middlebury Motorcycle and
//! two ViZDoom frames), h5py reads what it wrote (shapes, dtypes, attributes), and the normals
//! equal what the library computes in-process, bit for bit; they are unit vectors where valid,
//! and valid pixels lie inside the crop. Missing or unfit inputs are refused with the file named.

use serde_json::Value;
use sslbench::data::nyuv2::{DepthSource, LabeledMat};
use sslbench::tasks::normals::export::{NormalsExport, METHOD};
use sslbench::tasks::normals::from_depth::{NormalFrame, NormalsFromDepth};
use sslbench::tasks::normals::geometry::{Intrinsics, ProjectionCrop};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// NYU's intrinsics at half resolution (the fixture's frames are half NYU's), 1-based pixels.
const INTRINSICS: &str = "259.43,259.73,162.79,126.87,1";
/// NYU's projection crop at half resolution.
const CROP: ProjectionCrop = ProjectionCrop {
    top: 22,
    left: 20,
    height: 213,
    width: 280,
};

fn labeled() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/samples/nyuv2-fixture/nyu_depth_v2_labeled.mat");
    assert!(
        path.is_file(),
        "{} is missing: run data-scripts/setup.sh (it runs data-scripts/make_nyuv2_fixtures.py)",
        path.display()
    );
    path
}

/// The export the flags of [`from_depth`] ask for.
fn export() -> NormalsExport {
    NormalsExport {
        fit: NormalsFromDepth {
            intrinsics: Intrinsics {
                fx: 259.43,
                fy: 259.73,
                cx: 162.79,
                cy: 126.87,
                origin: 1.0,
            },
            crop: Some(CROP),
            window: 5,
            min_points: 12,
            frame: NormalFrame::Codebook,
        },
        depth_source: DepthSource::Depths,
        frames: Some(2..=3),
    }
}

fn sslbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sslbench"))
        .args(args)
        .output()
        .expect("the sslbench binary runs")
}

/// Runs `sslbench normals from-depth` with [`export`]'s settings on `frames`.
fn from_depth(data: &Path, out: &Path, frames: &str) -> Output {
    let (data, out) = (data.to_str().unwrap(), out.to_str().unwrap());
    let crop = format!("{},{},{},{}", CROP.top, CROP.left, CROP.height, CROP.width);
    let args = vec![
        "normals",
        "from-depth",
        "--data",
        data,
        "--out",
        out,
        "--window",
        "5",
        "--min-points",
        "12",
        "--frames",
        frames,
        "--frame",
        "codebook",
        "--intrinsics",
        INTRINSICS,
        "--crop",
        &crop,
    ];
    sslbench(&args)
}

/// What h5py reads: the layout and attributes as JSON; frame `k`'s normals and mask as .npy
/// beside the file.
const READER: &str = r#"
import json, sys
import h5py, numpy as np
path, k = sys.argv[1], int(sys.argv[2])
with h5py.File(path, "r") as f:
    attrs = {}
    for name, v in f.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        attrs[name] = v
    out = {
        "datasets": {n: {"shape": list(f[n].shape), "dtype": str(f[n].dtype)} for n in f},
        "attrs": attrs,
        "index": f["index"][:].tolist(),
    }
    np.save(path + ".normals.npy", f["normals"][k])
    np.save(path + ".valid.npy", f["valid"][k])
print(json.dumps(out))
"#;

fn h5py_read(path: &Path, k: usize) -> Value {
    let o = Command::new("python3")
        .arg("-c")
        .arg(READER)
        .arg(path)
        .arg(k.to_string())
        .output()
        .expect("python3 runs (with h5py and numpy: bash data-scripts/setup.sh installs them)");
    assert!(
        o.status.success(),
        "h5py could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn h5py_reads_the_normals_the_library_computes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("normals.h5");
    let o = from_depth(&labeled(), &out, "2..3");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("wrote 2 frames"));

    let got = h5py_read(&out, 1);
    let ds = &got["datasets"];
    assert_eq!(ds["normals"]["shape"], serde_json::json!([2, 240, 320, 3]));
    assert_eq!(ds["normals"]["dtype"], "float32");
    assert_eq!(ds["valid"]["shape"], serde_json::json!([2, 240, 320]));
    assert_eq!(ds["valid"]["dtype"], "uint8");
    assert_eq!(ds["index"]["dtype"], "uint32");
    assert_eq!(got["index"], serde_json::json!([2, 3]));
    let a = &got["attrs"];
    assert_eq!(a["method"], METHOD);
    assert_eq!(
        (a["window"].as_u64(), a["min_points"].as_u64()),
        (Some(5), Some(12))
    );
    let k = export().fit.intrinsics;
    for (name, want) in [("fx", k.fx), ("fy", k.fy), ("cx", k.cx), ("cy", k.cy)] {
        assert_eq!(a[name].as_f64(), Some(want), "{name}");
    }
    assert_eq!(a["pixel_origin"].as_f64(), Some(1.0));
    assert_eq!(a["crop"], serde_json::json!([22, 20, 213, 280]));
    assert_eq!(a["source"], "nyu_depth_v2_labeled.mat");
    assert_eq!(a["depth_source"], "depths");
    assert_eq!(a["mask_source"], "rawDepths");
    assert!(a["frame"].as_str().unwrap().starts_with("codebook"));

    // Frame 3 (k = 1), bit for bit against the library in-process.
    let mat = LabeledMat::open(&labeled()).unwrap();
    let want = export().frame(&mat, 3).unwrap();
    let normals = sslbench::data::npy::read(&out.with_extension("h5.normals.npy")).unwrap();
    let valid = sslbench::data::npy::read(&out.with_extension("h5.valid.npy")).unwrap();
    assert_eq!(normals.shape(), [240, 320, 3]);
    assert_eq!(valid.shape(), [240, 320]);
    let mut count = 0;
    for ((y, x), &v) in want.valid.indexed_iter() {
        assert_eq!(valid[[y, x]], f64::from(u8::from(v)), "mask ({y}, {x})");
        let n: Vec<f64> = (0..3).map(|c| normals[[y, x, c]]).collect();
        for (c, &got) in n.iter().enumerate() {
            assert_eq!(got, f64::from(want.normals[[y, x, c]]), "({y}, {x}, {c})");
        }
        if v {
            count += 1;
            assert!(
                CROP.contains(y, x),
                "valid pixel ({y}, {x}) outside the crop"
            );
            let length = n.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((length - 1.0).abs() < 1e-6, "({y}, {x}): length {length}");
        } else {
            assert!(n.iter().all(|&v| v == 0.0), "({y}, {x}): invalid but {n:?}");
        }
    }
    assert!(count > 10_000, "only {count} valid pixels");

    // The same inputs give the same bytes.
    let again = dir.path().join("again.h5");
    assert!(from_depth(&labeled(), &again, "2..3").status.success());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn missing_or_unfit_inputs_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("normals.h5");
    let missing = dir.path().join("nyu_depth_v2_labeled.mat");
    let o = from_depth(&missing, &out, "2..3");
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("download"),
        "{e}"
    );

    // The default crop is NYU's, for 480 x 640 frames: the 240 x 320 fixture does not fit it.
    let o = sslbench(&[
        "normals",
        "from-depth",
        "--data",
        labeled().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&labeled().display().to_string()) && e.contains("crop"),
        "{e}"
    );

    let o = from_depth(&labeled(), &out, "2..9");
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("nyu_depth_v2_labeled.mat") && e.contains("1 <= A <= B <= 3"),
        "{e}"
    );

    let o = from_depth(&labeled(), &dir.path().join("no/such/dir/n.h5"), "2..3");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no/such/dir/n.h5"), "{}", stderr(&o));

    // Nothing half written is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
