//! Proposal files as published and as re-saved: Detectron's pickles from Python 2 (byte-exact
//! cPickle output) and Python 3 (protocols 2 and 5, numpy 1 and numpy 2 module paths),
//! py-faster-rcnn's `.mat` files (compressed and not), MATLAB structs and chars; the Detectron
//! writer, checked against Python 2's bytes and read back by Python 3; and the errors.
//! Fixtures: data-scripts/make_proposal_fixtures.py.

use serde_json::Value;
use sslbench::data::mat5::{self, MatData, MatValue};
use sslbench::data::pickle::{self, PyValue};
use sslbench::proposals::file::{self as proposals, ProposalSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/proposals")
        .join(name)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The ProposalSet that expected.json describes for fixture `name`.
fn expected_set(name: &str) -> ProposalSet {
    let e = &expected()[name];
    let ids = e["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let boxes = e["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|img| {
            img.as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    let v: Vec<f32> = b
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap() as f32)
                        .collect();
                    [v[0], v[1], v[2], v[3]]
                })
                .collect()
        })
        .collect();
    let scores = e["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    ProposalSet { ids, boxes, scores }
}

fn check_fixture(name: &str) -> ProposalSet {
    let got = proposals::read(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let want = expected_set(name);
    assert_eq!(got, want, "{name}");
    // Not a vacuous comparison: the fixtures hold 3 images with 3, 0 and 20 boxes.
    assert_eq!(
        got.boxes.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 0, 20],
        "{name}"
    );
    got
}

#[test]
fn python2_detectron_pickle() {
    let set = check_fixture("detectron_py2.pkl");
    assert_eq!(set.ids, vec!["12", "17", "23"]);
    assert_eq!(set.boxes[0][1], [10.5, 20.25, 30.0, 40.0]);
}

#[test]
fn python3_protocol2_resave() {
    check_fixture("detectron_py3_protocol2.pkl");
}

#[test]
fn python3_protocol5_rpn_file_with_ids_and_mixed_dtypes() {
    let set = check_fixture("rpn_py3_protocol5.pkl");
    assert_eq!(set.ids, vec!["2008000002", "2008000003", "2012004331"]);
    assert!(set.scores[2].iter().any(|&s| s > 0.0));
    let v = pickle::read(&fixture("rpn_py3_protocol5.pkl")).unwrap();
    assert_eq!(
        v.get("cfg").and_then(PyValue::text).as_deref(),
        Some("MODEL:\n  TYPE: generalized_rcnn\n")
    );
    // The first boxes array is big-endian and Fortran-ordered in the file.
    let first = &v.get("boxes").unwrap().items().unwrap()[0];
    let a = first.as_array().unwrap();
    assert!(a.dtype.big_endian && a.fortran_order);
}

#[test]
fn py_faster_rcnn_mat_with_images() {
    let set = check_fixture("ss_voc_2007_test.mat");
    assert_eq!(set.ids, vec!["000012", "000017", "000023"]);
}

#[test]
fn py_faster_rcnn_mat_compressed_in_image_set_order() {
    let path = fixture("ss_voc_2007_test_compressed.mat");
    let set = check_fixture("ss_voc_2007_test_compressed.mat");
    let split: Vec<String> = ["000012", "000017", "000023"].map(String::from).to_vec();
    assert_eq!(set.for_ids(&split, &path).unwrap(), set.boxes);
    let err = set.for_ids(&split[..2], &path).unwrap_err().to_string();
    assert!(err.contains("3 images") && err.contains("has 2"), "{err}");
}

#[test]
fn matlab_struct_char_and_integers() {
    let vars = mat5::read(&fixture("matlab_struct_char.mat")).unwrap();
    let e = &expected()["matlab_struct_char.mat"];
    let Some(MatValue::Struct { dims, elements, .. }) = vars.get("info") else {
        panic!("info is not a struct: {:?}", vars.get("info"));
    };
    assert_eq!(dims, &vec![1, 1]);
    let info = &elements[0];
    assert_eq!(info["name"].text().unwrap(), e["name"].as_str().unwrap());
    let size = info["size"].numeric().unwrap();
    assert_eq!(size.dims, vec![2, 3]);
    let want: Vec<f64> = e["size_row_major"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(mat5::row_major(&size.to_f64_vec(), &size.dims), want);
    let labels = info["labels"].numeric().unwrap();
    let want: Vec<i64> = e["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(labels.data, MatData::I64(want));
    let want: Vec<bool> = e["valid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_bool().unwrap())
        .collect();
    assert_eq!(info["valid"].numeric().unwrap().data, MatData::Bool(want));
    let MatValue::Cell { cells, .. } = &info["nested"] else {
        panic!("nested is not a cell")
    };
    assert_eq!(cells[0].numeric().unwrap().to_f64_vec(), vec![1.5, -2.0]);
    assert_eq!(cells[1].text().unwrap(), "inner");
    let names: Vec<String> = e["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().into())
        .collect();
    assert_eq!(vars["names"].char_rows().unwrap(), names);
    let cube = vars["cube"].numeric().unwrap();
    let dims: Vec<usize> = e["cube_dims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(cube.dims, dims);
    let want: Vec<f64> = e["cube_row_major"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(mat5::row_major(&cube.to_f64_vec(), &cube.dims), want);
}

#[test]
fn mat_v73_is_refused_as_hdf5() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v73.mat");
    let mut bytes = vec![b' '; 512];
    let head = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 .";
    bytes[..head.len()].copy_from_slice(head);
    bytes.extend_from_slice(b"\x89HDF\r\n\x1a\n");
    bytes.extend_from_slice(&[0; 64]);
    std::fs::write(&path, &bytes).unwrap();
    let err = format!("{:#}", mat5::read(&path).unwrap_err());
    assert!(
        err.contains("v73.mat") && err.contains("HDF5") && err.contains("-v7"),
        "{err}"
    );
}

#[test]
fn writer_equals_python2_cpickle_bytes() {
    let set = proposals::read(&fixture("detectron_py2.pkl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ss.pkl");
    proposals::write_detectron(&out, &set).unwrap();
    let ours = std::fs::read(&out).unwrap();
    let python2 = std::fs::read(fixture("detectron_py2.pkl")).unwrap();
    assert_eq!(
        ours, python2,
        "the writer must emit what Python 2's cPickle emitted"
    );
}

#[test]
fn round_trip_with_voc2012_ids_and_scores() {
    let set = ProposalSet {
        ids: vec!["2008_000002".into(), "000005".into()],
        boxes: vec![vec![[1.0, 2.0, 3.5, 4.25]; 300], vec![]],
        scores: vec![(0..300).map(|i| i as f32 / 7.0).collect(), vec![]],
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ss.pkl");
    proposals::write_detectron(&out, &set).unwrap();
    let back = proposals::read(&out).unwrap();
    assert_eq!(back.ids, vec!["2008000002", "5"]);
    assert_eq!(back.boxes, set.boxes);
    assert_eq!(back.scores, set.scores);
    // The split's VOC ids find their images in any order.
    let split = vec!["000005".to_string(), "2008_000002".to_string()];
    let got = back.for_ids(&split, &out).unwrap();
    assert_eq!(got, vec![set.boxes[1].clone(), set.boxes[0].clone()]);
    // Without scores, zeros are written.
    let bare = ProposalSet {
        scores: vec![],
        ..set.clone()
    };
    proposals::write_detectron(&out, &bare).unwrap();
    assert_eq!(proposals::read(&out).unwrap().scores[0], vec![0.0; 300]);
}

#[test]
fn python_reads_what_we_wrote() {
    let probe = Command::new("python3")
        .args(["-c", "import numpy"])
        .output();
    match probe {
        Err(e) => return eprintln!("SKIP python_reads_what_we_wrote: python3 not runnable ({e})"),
        Ok(o) if !o.status.success() => {
            return eprintln!(
                "SKIP python_reads_what_we_wrote: python3 has no numpy ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            )
        }
        Ok(_) => {}
    }
    let set = ProposalSet {
        ids: vec!["000012".into(), "2008_000002".into()],
        boxes: vec![
            vec![[0.0, 1.0, 2.0, 3.0], [10.5, 20.25, 30.0, 40.0]],
            vec![],
        ],
        scores: vec![],
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ss.pkl");
    proposals::write_detectron(&out, &set).unwrap();
    let script = r#"
import json, pickle, sys, warnings
import numpy as np
warnings.simplefilter("error")
with open(sys.argv[1], "rb") as f:
    d = pickle.load(f, encoding="latin1")
print(json.dumps({
    "keys": sorted(d),
    "indexes": d["indexes"],
    "index_types": [type(i).__name__ for i in d["indexes"]],
    "dtypes": [str(b.dtype) for b in d["boxes"]] + [str(s.dtype) for s in d["scores"]],
    "shapes": [list(b.shape) for b in d["boxes"]] + [list(s.shape) for s in d["scores"]],
    "boxes": [b.tolist() for b in d["boxes"]],
    "scores": [s.tolist() for s in d["scores"]],
}))
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python3 could not load our pickle: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got: Value = serde_json::from_slice(&o.stdout).unwrap();
    let want = serde_json::json!({
        "keys": ["boxes", "indexes", "scores"],
        "indexes": [12, 2008000002],
        "index_types": ["int", "int"],
        "dtypes": ["float32", "float32", "float32", "float32"],
        "shapes": [[2, 4], [0, 4], [2], [0]],
        "boxes": [[[0.0, 1.0, 2.0, 3.0], [10.5, 20.25, 30.0, 40.0]], []],
        "scores": [[0.0, 0.0], []],
    });
    assert_eq!(got, want);
}

#[test]
fn truncated_pickle_names_the_file_and_offset() {
    let bytes = std::fs::read(fixture("detectron_py2.pkl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pkl");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = format!("{:#}", proposals::read(&path).unwrap_err());
    assert!(
        err.contains("cut.pkl") && err.contains("truncated") && err.contains("offset"),
        "{err}"
    );
}

#[test]
fn unknown_opcode_is_named_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.pkl");
    std::fs::write(&path, b"\x80\x02}q\x01\xffK\x01.").unwrap();
    let err = format!("{:#}", pickle::read(&path).unwrap_err());
    assert!(
        err.contains("bad.pkl") && err.contains("0xff") && err.contains("offset 5"),
        "{err}"
    );
    // A known opcode that builds arbitrary objects is named too.
    std::fs::write(&path, b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.").unwrap();
    let err = format!("{:#}", pickle::read(&path).unwrap_err());
    assert!(err.contains("os.system") && err.contains("REDUCE"), "{err}");
}

#[test]
fn ids_that_do_not_match_the_split_are_a_clear_error() {
    let path = fixture("detectron_py2.pkl");
    let set = proposals::read(&path).unwrap();
    let split: Vec<String> = ["000012", "000005", "000007", "2008_000002"]
        .map(String::from)
        .to_vec();
    let err = set.for_ids(&split, &path).unwrap_err().to_string();
    assert!(err.contains("detectron_py2.pkl"), "{err}");
    assert!(err.contains("3 of the split's 4 images"), "{err}");
    assert!(err.contains("000005, 000007, 2008_000002"), "{err}");
    assert!(err.contains("sslbench proposals"), "{err}");
}

#[test]
fn python2_cpickle_values_and_their_bytes() {
    // Written by Python 2.7.18's cPickle with numpy 1.16.6 (see the fixture script).
    let bytes = std::fs::read(fixture("py2_misc.pkl")).unwrap();
    let v = pickle::from_bytes(&bytes).unwrap();
    let ints = v.get("l").unwrap().items().unwrap();
    assert_eq!(ints.len(), 1001);
    assert_eq!(ints[1000], PyValue::Int(1000));
    let big = v.get("big").unwrap().items().unwrap();
    assert_eq!(
        big,
        &[
            PyValue::Int(1 << 40),
            PyValue::Int(-5),
            PyValue::Int(70000),
            PyValue::Float(1.5),
            PyValue::None,
            PyValue::Bool(true)
        ]
    );
    let arrays = v.get("arr").unwrap().items().unwrap();
    let f8 = arrays[0].as_array().unwrap();
    assert_eq!(
        (f8.shape.clone(), f8.to_f64_vec().unwrap()),
        (vec![2, 3], vec![0., 1., 2., 3., 4., 5.])
    );
    let fortran = arrays[1].as_array().unwrap();
    assert!(fortran.fortran_order && fortran.dtype.big_endian);
    assert_eq!(fortran.to_i64_vec().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(
        arrays[2].as_array().unwrap().to_f32_vec().unwrap(),
        vec![1.0, 0.0]
    );
    // The writer emits exactly what cPickle emitted for the same values.
    assert_eq!(pickle::to_bytes(&v).unwrap(), bytes);
}
