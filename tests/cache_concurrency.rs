//! A cache that many processes share (issue 15): four `sslbench extract` of one key give one
//! extraction and three reads; a writer killed mid-extraction is taken over by the reader
//! waiting for it, which resumes from its chunks; `cache gc` removes a dead writer's leftovers
//! and keeps a live one's.

mod common;

use common::{ok, photo_folder, sslbench};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// `sslbench extract` of res3 of the width-1/8 random ResNet-50 at 128 px, one image a chunk.
fn extract_args(spec: &str) -> Vec<String> {
    let backbone = format!(
        "{}/configs/backbones/resnet50_w8_random.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    [
        "extract",
        "--backbone",
        &backbone,
        "--dataset",
        spec,
        "--taps",
        "res3",
        "--set",
        "extract.batch_size=1",
        "--set",
        "extract.chunk_size=1",
        "--set",
        "transform.resize=128",
        "--set",
        "transform.size=128",
    ]
    .map(String::from)
    .to_vec()
}

fn spawn(cache: &Path, args: &[String]) -> Child {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sslbench(cache, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The lines a child writes to stderr, as they come.
fn stderr_lines(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).split(b'\n').map_while(Result::ok) {
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
        }
    });
    rx
}

fn files_with(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default()
}

fn chunks(cache: &Path) -> usize {
    files_with(cache, "partial")
        .iter()
        .map(|p| files_with(p, "chunk").len())
        .sum()
}

fn entry_contents(cache: &Path) -> (Vec<f32>, String) {
    let entries = files_with(cache, "h5");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let file = sslbench::h5::open(&entries[0]).unwrap();
    let features = file.dataset("features").unwrap().read_raw().unwrap();
    let checksum = file
        .attr("checksum")
        .unwrap()
        .read_scalar::<hdf5::types::VarLenUnicode>()
        .unwrap()
        .to_string();
    (features, checksum)
}

#[test]
fn four_processes_on_one_key_extract_once_and_read_three_times() {
    let images = tempfile::tempdir().unwrap();
    let args = extract_args(&photo_folder(images.path(), 12));
    let cache = tempfile::tempdir().unwrap();
    let children: Vec<Child> = (0..4).map(|_| spawn(cache.path(), &args)).collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(|c| ok(c.wait_with_output().unwrap()))
        .collect();
    let extracted = outputs.iter().filter(|o| o.contains("(extracted)")).count();
    let cached = outputs.iter().filter(|o| o.contains("(cached)")).count();
    assert_eq!((extracted, cached), (1, 3), "{outputs:#?}");
    let verified = ok(sslbench(cache.path(), &["cache", "verify"])
        .output()
        .unwrap());
    assert!(verified.contains("1 entries verified"), "{verified}");
    assert!(!verified.contains("left "), "{verified}");
}

#[test]
fn a_waiting_reader_takes_over_a_killed_writer_and_resumes_from_its_chunks() {
    let images = tempfile::tempdir().unwrap();
    let args = extract_args(&photo_folder(images.path(), 12));
    let cache = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut writer = spawn(cache.path(), &args);
    while files_with(cache.path(), "lock").is_empty() {
        assert!(writer.try_wait().unwrap().is_none(), "writer ended early");
        assert!(Instant::now() < deadline, "no lock taken");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut reader = spawn(cache.path(), &args);
    let said = stderr_lines(&mut reader);
    let named = format!("waiting for pid {}", writer.id());
    while !said
        .recv_timeout(Duration::from_secs(60))
        .expect("the reader never said whom it waits for")
        .contains(&named)
    {}
    while chunks(cache.path()) < 1 {
        assert!(writer.try_wait().unwrap().is_none(), "writer ended early");
        assert!(Instant::now() < deadline, "no chunk written");
        std::thread::sleep(Duration::from_millis(1));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    let out = reader.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr: Vec<String> = said.try_iter().collect();
    assert!(out.status.success(), "{stdout}\n{stderr:#?}");
    let resumed_from: usize = stdout
        .split("resumed from image ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the reader did not resume: {stdout}\n{stderr:#?}"));
    assert!((1..12).contains(&resumed_from), "{stdout}");

    let clean = tempfile::tempdir().unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(sslbench(clean.path(), &args).output().unwrap());
    assert_eq!(entry_contents(cache.path()), entry_contents(clean.path()));
    assert!(files_with(cache.path(), "lock").is_empty());
}

#[test]
fn gc_removes_a_dead_writers_lock_and_partial_and_keeps_a_live_one() {
    let cache = tempfile::tempdir().unwrap();
    let root = cache.path();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let dead = sslbench::lock::Owner {
        pid: dead_pid,
        ..sslbench::lock::Owner::me()
    };
    std::fs::write(root.join("aaaa.lock"), serde_json::to_vec(&dead).unwrap()).unwrap();
    std::fs::create_dir_all(root.join("aaaa.partial")).unwrap();
    std::fs::write(root.join("aaaa.partial/0000000000.chunk"), b"x").unwrap();
    let live = sslbench::lock::try_acquire(&root.join("bbbb.lock"))
        .unwrap()
        .unwrap();
    std::fs::create_dir_all(root.join("bbbb.dense-partial")).unwrap();
    // Files written before their rename: a dead writer's entry and derived file, and one of a
    // live process (this test's), which gc keeps.
    let tmp = |name: &str, pid: u32| format!("{name}.tmp{pid}");
    std::fs::write(root.join(tmp("cccc.h5", dead_pid)), b"x").unwrap();
    std::fs::create_dir_all(root.join("normals-labels")).unwrap();
    std::fs::write(
        root.join("normals-labels").join(tmp("eeee.h5", dead_pid)),
        b"x",
    )
    .unwrap();
    let mine = root.join(tmp("dddd.h5", std::process::id()));
    std::fs::write(&mine, b"x").unwrap();

    let verified = ok(sslbench(root, &["cache", "verify"]).output().unwrap());
    let line = |name: &str| {
        verified
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not listed: {verified}"))
            .to_string()
    };
    assert!(
        line("aaaa.lock").contains(&format!("pid {dead_pid}")),
        "{verified}"
    );
    assert!(line("aaaa.partial").contains("stale"), "{verified}");
    assert!(line("bbbb.dense-partial").contains("alive"), "{verified}");
    assert!(line("cccc.h5.tmp").contains("temporary"), "{verified}");
    assert!(line("eeee.h5.tmp").contains("temporary"), "{verified}");
    assert!(verified.contains("sslbench cache gc"), "{verified}");

    let collected = ok(sslbench(root, &["cache", "gc"]).output().unwrap());
    assert!(collected.contains("4 leftovers removed"), "{collected}");
    assert!(!root.join("aaaa.lock").exists() && !root.join("aaaa.partial").exists());
    assert!(!root.join(tmp("cccc.h5", dead_pid)).exists());
    assert!(!root
        .join("normals-labels")
        .join(tmp("eeee.h5", dead_pid))
        .exists());
    assert!(mine.exists(), "a live writer's file was removed");
    assert!(root.join("bbbb.lock").exists() && root.join("bbbb.dense-partial").exists());
    assert!(collected.contains("kept"), "{collected}");
    drop(live);
    let collected = ok(sslbench(root, &["cache", "gc"]).output().unwrap());
    assert!(collected.contains("1 leftovers removed"), "{collected}");
    assert!(!root.join("bbbb.dense-partial").exists());
}
