//! The `sslbench` binary end to end on real photos (data/samples): a killed extraction
//! resumes from its last finished chunk and ends with the same features as an uninterrupted
//! one; `cache ls/verify/rm`; `run` writes a results JSON.

mod common;

use common::{ok, photo_folder, sample, sslbench};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn chunk_files(cache: &Path) -> usize {
    std::fs::read_dir(cache)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "partial"))
        .flat_map(|p| std::fs::read_dir(p).unwrap())
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "chunk")
        })
        .count()
}

fn features(cache: &Path) -> Vec<f32> {
    let entry = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "h5"))
        .expect("an entry");
    sslbench::h5::open(entry)
        .unwrap()
        .dataset("features")
        .unwrap()
        .read_raw()
        .unwrap()
}

#[test]
fn killed_extraction_resumes_and_matches_an_uninterrupted_run() {
    let images = tempfile::tempdir().unwrap();
    let spec = photo_folder(images.path(), 16);
    let backbone = format!(
        "{}/configs/backbones/resnet50_random.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let args = |spec: &str| -> Vec<String> {
        [
            "extract",
            "--backbone",
            &backbone,
            "--dataset",
            spec,
            "--taps",
            "res4",
            "--set",
            "extract.batch_size=2",
            "--set",
            "extract.chunk_size=2",
        ]
        .map(String::from)
        .to_vec()
    };
    let args = args(&spec);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let killed = tempfile::tempdir().unwrap();
    let mut child = sslbench(killed.path(), &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while chunk_files(killed.path()) < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "no chunk written");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = chunk_files(killed.path());
    assert!((2..8).contains(&kept), "{kept} chunks after the kill");

    let resumed = ok(sslbench(killed.path(), &args).output().unwrap());
    assert!(
        resumed.contains(&format!("resumed from image {}", 2 * kept)),
        "{resumed}"
    );

    let clean = tempfile::tempdir().unwrap();
    ok(sslbench(clean.path(), &args).output().unwrap());
    assert_eq!(features(killed.path()), features(clean.path()));
    assert_eq!(chunk_files(killed.path()), 0);
}

#[test]
fn cache_commands_and_run_write_what_they_say() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let voc = format!("voc:{}:trainval", sample("labelme-voc").display());
    let root = env!("CARGO_MANIFEST_DIR");
    let backbone = format!("{root}/configs/backbones/alexnet_jigsaw_random.toml");
    let task = format!("{root}/tasks/extract.toml");
    let text = ok(sslbench(
        cache.path(),
        &[
            "run",
            &task,
            "--backbone",
            &backbone,
            "--taps",
            "conv1,conv5,pool5",
            "--set",
            &format!("data.spec={voc:?}"),
            "--set",
            "data.classes=[\"bus\",\"car\",\"person\"]",
            "--out",
            out.path().to_str().unwrap(),
        ],
    )
    .output()
    .unwrap());
    assert!(text.contains("wrote"), "{text}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("extract_alexnet_jigsaw_random.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["schema"], "sslbench.result/2");
    let entries = json["details"]["datasets"][0]["entries"]
        .as_array()
        .unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["cache_key"]["pooling"], "avg:28/9/0");
    assert!(json["config"]["transform"]["size"] == 227);

    let ls = ok(sslbench(cache.path(), &["cache", "ls"]).output().unwrap());
    assert!(ls.contains("[3, 9600]") && ls.contains("[3, 9216]"), "{ls}");
    let digest = entries[1]["digest"].as_str().unwrap();
    ok(sslbench(cache.path(), &["cache", "verify", digest])
        .output()
        .unwrap());
    ok(sslbench(cache.path(), &["cache", "rm", digest])
        .output()
        .unwrap());
    let failed = sslbench(cache.path(), &["cache", "verify", digest])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("no cache entry matches"));
}

/// A typo in a section name is refused before any work, naming the section and the valid
/// ones; an old section name says what it is called now.
#[test]
fn an_unknown_section_is_refused_naming_it() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = |task: &str, set: &str| {
        let args = [
            "run",
            task,
            "--backbone",
            "configs/backbones/resnet50_w8_random.toml",
            "--out",
            out.path().to_str().unwrap(),
            "--set",
            set,
        ];
        let done = sslbench(cache.path(), &args).output().unwrap();
        assert!(!done.status.success());
        String::from_utf8_lossy(&done.stderr).into_owned()
    };
    let err = run("tasks/voc07_svm.toml", "svmm.folds=3");
    assert!(
        err.contains("unknown section [svmm]") && err.contains("svm"),
        "{err}"
    );
    let err = run("tasks/gibson_nav.toml", "features.size=16");
    assert!(err.contains("[features] is now [compress]"), "{err}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}
