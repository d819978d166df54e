//! Reader parity for NYUv2's files: fixtures in the exact layouts (the v7.3 `.mat` behind its
//! user block, v5 `splits.mat`, `all_normals.pklz`, per-image `.mat` and PNG normals), written
//! by data-scripts/make_nyuv2_fixtures.py from the Middlebury Motorcycle depth and ViZDoom
//! frames, read back here and compared with the arrays the script wrote (`expected.h5`); the
//! shipped `vocab40.mat`; nearest-centre labels against scikit-learn's; and the refusals.

use ndarray::{s, Array2, Array3, Array4, Ix3, Ix4};
use sslbench::data::nyuv2::{
    read_normals_mat, read_normals_png, AllNormals, LabeledMat, NormalsImage, NormalsMap, Splits,
};
use sslbench::tasks::normals::codebook::{Codebook, CodebookSource, IGNORE_LABEL};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/samples/nyuv2-fixture");
    assert!(
        dir.join("expected.h5").is_file(),
        "{} is missing: run data-scripts/setup.sh (it runs data-scripts/make_nyuv2_fixtures.py)",
        dir.display()
    );
    dir.join(name)
}

/// The shipped codebook, kept as test data (tests/fixtures/normals/README.md).
fn vocab40() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/normals/vocab40.mat")
}

struct Expected {
    images: Array4<u8>,
    depths: Array3<f32>,
    raw_depths: Array3<f32>,
    normals: Array4<f32>,
    valid: Array3<u8>,
    labels: Array3<u8>,
}

fn expected() -> Expected {
    let f = sslbench::h5::open(fixture("expected.h5")).unwrap();
    let d = |k: &str| f.dataset(k).unwrap();
    Expected {
        images: d("images").read::<u8, Ix4>().unwrap(),
        depths: d("depths").read::<f32, Ix3>().unwrap(),
        raw_depths: d("raw_depths").read::<f32, Ix3>().unwrap(),
        normals: d("normals").read::<f32, Ix4>().unwrap(),
        valid: d("valid").read::<u8, Ix3>().unwrap(),
        labels: d("labels").read::<u8, Ix3>().unwrap(),
    }
}

fn err_text<T>(r: anyhow::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn labeled_mat_reads_frames_in_the_usual_orientation() {
    let e = expected();
    let mat = LabeledMat::open(&fixture("nyu_depth_v2_labeled.mat")).unwrap();
    assert_eq!(mat.len(), e.images.dim().0);
    assert_eq!((mat.height(), mat.width()), (240, 320));
    for i in 0..mat.len() {
        assert_eq!(
            mat.image(i).unwrap(),
            e.images.slice(s![i, .., .., ..]),
            "image {i}"
        );
        assert_eq!(
            mat.depth(i).unwrap(),
            e.depths.slice(s![i, .., ..]),
            "depth {i}"
        );
        assert_eq!(
            mat.raw_depth(i).unwrap(),
            e.raw_depths.slice(s![i, .., ..]),
            "raw {i}"
        );
    }
    // Real depth: the Motorcycle frame holds unmeasured pixels, and depths fills them.
    let raw = mat.raw_depth(0).unwrap();
    assert!(raw.iter().any(|&z| z == 0.0));
    assert!(mat.depth(0).unwrap().iter().all(|&z| z > 2.0 && z < 5.1));
    assert!(mat.image(3).is_err());
}

#[test]
fn splits_are_one_based() {
    let splits = Splits::read(&fixture("splits.mat")).unwrap();
    assert_eq!(splits.train, vec![1, 3]);
    assert_eq!(splits.test, vec![2]);
    splits.check_against(3, Path::new("x.mat")).unwrap();
    assert!(err_text(splits.check_against(2, Path::new("x.mat"))).contains("x.mat"));
}

fn assert_normals_match(
    map_normals: &Array3<f32>,
    map_valid: &Array2<bool>,
    e: &Expected,
    i: usize,
    tol: f32,
) {
    let valid = e.valid.slice(s![i, .., ..]).mapv(|v| v != 0);
    assert_eq!(map_valid, &valid, "mask {i}");
    let want = e.normals.slice(s![i, .., .., ..]);
    for ((y, x), &v) in map_valid.indexed_iter() {
        if v {
            for c in 0..3 {
                let d = (map_normals[[y, x, c]] - want[[y, x, c]]).abs();
                assert!(d <= tol, "image {i} ({y}, {x}, {c}): {d}");
            }
        }
    }
}

#[test]
fn all_normals_pklz_equals_what_the_script_wrote() {
    let e = expected();
    let all = AllNormals::read(&fixture("all_normals.pklz")).unwrap();
    assert_eq!(all.names(), ["000001", "000002", "000003"]);
    assert_eq!(all.find("000002"), Some(1));
    let mat = LabeledMat::open(&fixture("nyu_depth_v2_labeled.mat")).unwrap();
    for i in 0..all.len() {
        let map = all.get(i).unwrap();
        assert_eq!(map.index, i + 1);
        assert_eq!(
            map.normals,
            e.normals.slice(s![i, .., .., ..]),
            "normals {i}"
        );
        assert_normals_match(&map.normals, &map.valid, &e, i, 0.0);
        let paired = NormalsImage::pair(&mat, map).unwrap();
        assert_eq!(paired.rgb, e.images.slice(s![i, .., .., ..]));
        assert_eq!(paired.index, i + 1);
    }
}

#[test]
fn per_image_mat_and_png_equal_what_the_script_wrote() {
    let e = expected();
    for i in 0..3 {
        let map = read_normals_mat(&fixture(&format!("normals_mat/{:06}.mat", i + 1))).unwrap();
        assert_eq!(
            (map.index, map.name.as_str()),
            (i + 1, format!("{:06}", i + 1).as_str())
        );
        assert_normals_match(&map.normals, &map.valid, &e, i, 0.0);
        let png = fixture(&format!("normals_png/{:05}.png", i + 1));
        let mask = fixture(&format!("masks/{i:04}.png"));
        let map = read_normals_png(&png, Some(&mask)).unwrap();
        assert_eq!(map.index, i + 1);
        // 8-bit codes: within half a step, 1/255.
        assert_normals_match(&map.normals, &map.valid, &e, i, 1.0 / 255.0 + 1e-6);
        // Without the mask file, the all-zero codes the script wrote for invalid pixels
        // mark the same pixels.
        assert_eq!(read_normals_png(&png, None).unwrap().valid, map.valid);
    }
}

/// A map's pixels in row-major order, as [`Codebook::labels`] takes them.
fn pixels(map: &NormalsMap) -> (Vec<[f32; 3]>, Vec<bool>) {
    let normals = map.normals.as_standard_layout();
    let triples = normals
        .as_slice()
        .unwrap()
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (triples, map.valid.iter().copied().collect())
}

#[test]
fn vocab40_holds_40_unit_centres_and_labels_match_scikit_learn() {
    let codebook = Codebook::from_vocab_mat(&vocab40(), 40).unwrap();
    assert_eq!(codebook.centres.len(), 40);
    for c in &codebook.centres {
        assert!(((c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt() - 1.0).abs() < 1e-12);
    }
    let first = codebook.centres[0];
    assert!((first[0] - 0.49595648).abs() < 1e-8 && (first[2] - 0.86772804).abs() < 1e-8);
    let CodebookSource::File { path, sha256 } = &codebook.source else {
        panic!("{:?}", codebook.source)
    };
    assert!(path.ends_with("vocab40.mat"));
    // The published file (research note §1.1).
    assert_eq!(
        sha256,
        "4acfec87c3f02df5795afb171f28002eb16b36382ca4fdc30d4b7fd701cac2fc"
    );
    assert!(err_text(Codebook::from_vocab_mat(&vocab40(), 20)).contains("vocab40.mat"));

    let e = expected();
    let all = AllNormals::read(&fixture("all_normals.pklz")).unwrap();
    let mut labelled = 0;
    for i in 0..all.len() {
        let map = all.get(i).unwrap();
        let (normals, valid) = pixels(&map);
        let labels =
            Array2::from_shape_vec(map.valid.dim(), codebook.labels(&normals, &valid).unwrap())
                .unwrap();
        assert_eq!(labels, e.labels.slice(s![i, .., ..]), "labels {i}");
        labelled += labels.iter().filter(|&&l| l != IGNORE_LABEL).count();
    }
    assert!(labelled > 100_000);
}

#[test]
fn bad_files_are_refused_with_the_file_named() {
    let bad = |name: &str| fixture(&format!("bad/{name}"));
    let cases: Vec<(PathBuf, String, &str)> = vec![
        (
            bad("missing.mat"),
            err_text(LabeledMat::open(&bad("missing.mat"))),
            "does not exist",
        ),
        (
            bad("transposed.mat"),
            err_text(LabeledMat::open(&bad("transposed.mat"))),
            "looks transposed",
        ),
        (
            bad("no_depths.mat"),
            err_text(LabeledMat::open(&bad("no_depths.mat"))),
            "no dataset `depths`",
        ),
        (
            bad("wrong_rank.mat"),
            err_text(LabeledMat::open(&bad("wrong_rank.mat"))),
            "(N, 3, W, H)",
        ),
        (
            fixture("splits.mat"),
            err_text(LabeledMat::open(&fixture("splits.mat"))),
            "not an HDF5",
        ),
        (
            fixture("nyu_depth_v2_labeled.mat"),
            err_text(Splits::read(&fixture("nyu_depth_v2_labeled.mat"))),
            "v7.3",
        ),
        (
            fixture("normals_mat/000001.mat"),
            err_text(Splits::read(&fixture("normals_mat/000001.mat"))),
            "no numeric variable `trainNdxs`",
        ),
        (
            fixture("splits.mat"),
            err_text(Codebook::from_vocab_mat(&fixture("splits.mat"), 40)),
            "no variable `vocabs`",
        ),
        (
            bad("missing.pklz"),
            err_text(AllNormals::read(&bad("missing.pklz"))),
            "cannot open",
        ),
        (
            fixture("splits.mat"),
            err_text(AllNormals::read(&fixture("splits.mat"))),
            "not gzip",
        ),
        (
            bad("non_unit.pklz"),
            err_text(AllNormals::read(&bad("non_unit.pklz")).and_then(|a| a.get(0))),
            "not 1",
        ),
        (
            bad("non_unit_mat/000002.mat"),
            err_text(read_normals_mat(&bad("non_unit_mat/000002.mat"))),
            "not 1",
        ),
        (
            fixture("splits.mat"),
            err_text(read_normals_mat(&fixture("splits.mat"))),
            "no numeric variable `nx`",
        ),
    ];
    for (file, message, what) in cases {
        let name = file.display().to_string();
        assert!(message.contains(&name), "{message:?} does not name {name}");
        assert!(message.contains(what), "{message:?} does not say {what:?}");
    }
}
