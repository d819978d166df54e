//! Dense cache entries: maps of different sizes stored in f32 (exactly) and f16 (to nearest
//! even), reopened without computing, resumed after an interruption to the same bytes, key
//! and item mismatches refused naming the fix, and `sslbench cache ls/verify/rm` on them.

mod common;

use anyhow::{bail, Result};
use common::{ok, sslbench};
use half::f16;
use sslbench::features::dense::{DenseDtype, DenseEntry, Map};
use sslbench::features::extract::Status;
use sslbench::features::key::FORMAT_VERSION;
use sslbench::features::{CacheKey, FeatureStore};
use std::cell::RefCell;
use std::path::Path;

fn key(dtype: DenseDtype) -> CacheKey {
    CacheKey {
        format_version: FORMAT_VERSION,
        weights: "random:seed=3".into(),
        arch: "resnet50(w=1,os=16)".into(),
        tap: "res4".into(),
        pooling: dtype.pooling(),
        transform: r#"{"scale":600,"max_size":1000}"#.into(),
        dataset: "sha256:0123".into(),
    }
}

/// Item names as the detection task writes them: each image, then its flip.
fn names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = format!("{:06}", 12 + 5 * (i / 2));
            if i % 2 == 1 {
                format!("{id}:flip")
            } else {
                id
            }
        })
        .collect()
}

/// The map of item `i`: 4 channels, a size of its own, values of a wide range (with two
/// f16 rounding ties, which must go to the even neighbour).
fn map(i: usize) -> Map {
    let shape = [4, 1 + i % 3, 2 + (3 * i) % 5];
    let n: usize = shape.iter().product();
    let mut state = 0x9e37_79b9_u32.wrapping_mul(i as u32 + 1);
    let mut values: Vec<f32> = (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let unit = (state >> 8) as f32 / (1u32 << 24) as f32;
            (unit - 0.3) * 10f32.powi((state % 7) as i32 - 3)
        })
        .collect();
    values[0] = 1.0 + 2f32.powi(-11);
    values[1] = 1.0 + 3.0 * 2f32.powi(-11);
    (values, shape)
}

/// A `compute` that records the indices it is asked for, and fails on `fail_at`.
fn computer<'a>(
    calls: &'a RefCell<Vec<Vec<usize>>>,
    fail_at: Option<usize>,
) -> impl FnMut(&[usize]) -> Result<Vec<Map>> + 'a {
    move |indices: &[usize]| {
        if fail_at.is_some_and(|k| indices.contains(&k)) {
            bail!("simulated kill at item {}", fail_at.unwrap());
        }
        calls.borrow_mut().push(indices.to_vec());
        Ok(indices.iter().map(|&i| map(i)).collect())
    }
}

fn never(_: &[usize]) -> Result<Vec<Map>> {
    panic!("compute called for a complete entry")
}

fn compute_all(store: &FeatureStore, dtype: DenseDtype, n: usize) -> DenseEntry {
    let calls = RefCell::new(Vec::new());
    let (entry, status) = store
        .get_or_compute_dense(
            &key(dtype),
            &names(n),
            dtype,
            2,
            computer(&calls, None),
            false,
        )
        .unwrap();
    assert_eq!(status, Status::Extracted { resumed_from: 0 });
    entry
}

#[test]
fn maps_of_different_sizes_read_back_f32_exactly_and_f16_rounded_to_nearest_even() {
    let cache = tempfile::tempdir().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let n = 5;
    for dtype in [DenseDtype::F32, DenseDtype::F16] {
        let entry = compute_all(&store, dtype, n);
        assert_eq!(entry.len(), n);
        assert_eq!(entry.names(), names(n).as_slice());
        assert_eq!(entry.names()[1], "000012:flip");
        let mut values = 0;
        for i in [3, 0, 4, 1, 2] {
            let (want, shape) = map(i);
            let (got, stored) = entry.read(i).unwrap();
            assert_eq!((stored, entry.shape(i)), (shape, shape));
            values += want.len();
            match dtype {
                DenseDtype::F32 => assert_eq!(got, want, "item {i}"),
                DenseDtype::F16 => {
                    assert_eq!(&got[..2], &[1.0, 1.0 + 2f32.powi(-9)], "ties to even");
                    for (g, w) in got.iter().zip(&want) {
                        assert_eq!(*g, f16::from_f32(*w).to_f32());
                        assert!((g - w).abs() <= w.abs() * 2f32.powi(-11) + 6e-8, "{g} {w}");
                    }
                }
            }
        }
        let t = entry.tensor(4, &candle_core::Device::Cpu).unwrap();
        assert_eq!(t.dims(), &map(4).1);
        assert_eq!(entry.bytes(), (values * dtype.size()) as u64);
        let file = sslbench::h5::open(entry.path()).unwrap();
        let bytes: u64 = file.attr("bytes").unwrap().read_scalar().unwrap();
        assert_eq!(bytes, entry.bytes());
        assert!(entry.read(n).is_err());
    }
    // Only the two entries are left: no batch folder, no temporary file.
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 2);
}

#[test]
fn a_complete_entry_is_opened_without_computing() {
    let cache = tempfile::tempdir().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let first = compute_all(&store, DenseDtype::F16, 3);
    let (again, status) = store
        .get_or_compute_dense(
            &key(DenseDtype::F16),
            &names(3),
            DenseDtype::F16,
            2,
            never,
            false,
        )
        .unwrap();
    assert_eq!(status, Status::Cached);
    assert_eq!(again.path(), first.path());
    assert_eq!(again.read(2).unwrap(), first.read(2).unwrap());
}

#[test]
fn an_interrupted_entry_resumes_from_its_finished_items_to_the_same_bytes() {
    let n = 7;
    let dtype = DenseDtype::F16;
    let whole = tempfile::tempdir().unwrap();
    let uninterrupted = compute_all(&FeatureStore::open(whole.path()).unwrap(), dtype, n);

    let cache = tempfile::tempdir().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let calls = RefCell::new(Vec::new());
    let err = store
        .get_or_compute_dense(
            &key(dtype),
            &names(n),
            dtype,
            2,
            computer(&calls, Some(4)),
            false,
        )
        .err()
        .unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("simulated kill") && msg.contains("resumes"),
        "{msg}"
    );
    assert_eq!(*calls.borrow(), vec![vec![0, 1], vec![2, 3]]);
    assert!(store.list().unwrap().is_empty(), "nothing half-written");
    // A write cut short by the kill leaves a temporary file behind: it is not trusted.
    let partial = cache
        .path()
        .join(format!("{}.dense-partial", key(dtype).digest()));
    std::fs::write(partial.join("0000000004.items.tmp999"), b"{\"start\":4").unwrap();

    // The rerun (with another batch size) computes items 4.. only.
    let calls = RefCell::new(Vec::new());
    let (entry, status) = store
        .get_or_compute_dense(
            &key(dtype),
            &names(n),
            dtype,
            3,
            computer(&calls, None),
            false,
        )
        .unwrap();
    assert_eq!(status, Status::Extracted { resumed_from: 4 });
    assert_eq!(*calls.borrow(), vec![vec![4, 5, 6]]);
    assert!(!partial.exists());
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    assert!(
        bytes(entry.path()) == bytes(uninterrupted.path()),
        "bit for bit"
    );
}

/// The child of `a_killed_process_resumes_...`: computes 40 items slowly into the store at
/// `$DENSE_KILL_STORE` (nothing without it).
#[test]
#[ignore]
fn child_computing_slowly() {
    let Some(root) = std::env::var_os("DENSE_KILL_STORE") else {
        return;
    };
    let store = FeatureStore::open(Path::new(&root)).unwrap();
    let slow = |idx: &[usize]| -> Result<Vec<Map>> {
        std::thread::sleep(std::time::Duration::from_millis(40));
        Ok(idx.iter().map(|&i| map(i)).collect())
    };
    let dtype = DenseDtype::F16;
    let _ = store.get_or_compute_dense(&key(dtype), &names(40), dtype, 2, slow, false);
}

#[test]
fn a_killed_process_resumes_from_its_finished_items_to_the_same_bytes() {
    let dtype = DenseDtype::F16;
    let whole = tempfile::tempdir().unwrap();
    let uninterrupted = compute_all(&FeatureStore::open(whole.path()).unwrap(), dtype, 40);

    let cache = tempfile::tempdir().unwrap();
    let partial = cache
        .path()
        .join(format!("{}.dense-partial", key(dtype).digest()));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_computing_slowly",
            "--ignored",
            "--test-threads=1",
        ])
        .env("DENSE_KILL_STORE", cache.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let batches = || {
        std::fs::read_dir(&partial).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "items")
            })
            .count()
        })
    };
    let started = std::time::Instant::now();
    while batches() < 3 {
        assert!(started.elapsed().as_secs() < 60, "the child wrote no batch");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    assert!(store.list().unwrap().is_empty(), "killed before the end");
    let done = 2 * batches();
    assert!((6..40).contains(&done), "{done}");

    let calls = RefCell::new(Vec::new());
    let (entry, status) = store
        .get_or_compute_dense(
            &key(dtype),
            &names(40),
            dtype,
            2,
            computer(&calls, None),
            false,
        )
        .unwrap();
    assert_eq!(status, Status::Extracted { resumed_from: done });
    assert_eq!(calls.borrow()[0], vec![done, done + 1]);
    assert_eq!(calls.borrow().len(), (40 - done) / 2);
    assert!(std::fs::read(entry.path()).unwrap() == std::fs::read(uninterrupted.path()).unwrap());
}

#[test]
fn a_truncated_batch_is_computed_again() {
    let dtype = DenseDtype::F32;
    let cache = tempfile::tempdir().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let calls = RefCell::new(Vec::new());
    let run = |fail_at: Option<usize>, calls: &RefCell<Vec<Vec<usize>>>| {
        store.get_or_compute_dense(
            &key(dtype),
            &names(6),
            dtype,
            2,
            computer(calls, fail_at),
            false,
        )
    };
    assert!(run(Some(5), &calls).is_err());
    let batch = cache
        .path()
        .join(format!("{}.dense-partial", key(dtype).digest()))
        .join("0000000002.items");
    let full = std::fs::read(&batch).unwrap();
    std::fs::write(&batch, &full[..full.len() - 1]).unwrap();
    let calls = RefCell::new(Vec::new());
    let (entry, status) = run(None, &calls).unwrap();
    assert_eq!(status, Status::Extracted { resumed_from: 2 });
    assert_eq!(*calls.borrow(), vec![vec![2, 3], vec![4, 5]]);
    assert_eq!(entry.read(3).unwrap(), map(3));
}

#[test]
fn other_items_another_key_or_a_bad_map_are_refused_naming_the_fix() {
    let cache = tempfile::tempdir().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let entry = compute_all(&store, DenseDtype::F32, 4);
    let path = entry.path().display().to_string();

    let mut other = names(4);
    other[3] = "000099".into();
    let err = store
        .get_or_compute_dense(
            &key(DenseDtype::F32),
            &other,
            DenseDtype::F32,
            2,
            never,
            false,
        )
        .err()
        .unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&path) && msg.contains("sslbench cache rm"),
        "{msg}"
    );
    assert!(
        msg.contains("`000017:flip`") && msg.contains("`000099`"),
        "{msg}"
    );

    let mut moved = key(DenseDtype::F32);
    moved.weights = "random:seed=4".into();
    let msg = format!(
        "{:#}",
        DenseEntry::open_as(entry.path(), &moved, &names(4))
            .err()
            .unwrap()
    );
    assert!(
        msg.contains("another key") && msg.contains("sslbench cache rm"),
        "{msg}"
    );

    // The dtype is part of the key; a f32 key cannot hold f16 values.
    let err = store
        .get_or_compute_dense(
            &key(DenseDtype::F32),
            &names(4),
            DenseDtype::F16,
            2,
            never,
            false,
        )
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("dense:f16"), "{err:#}");

    // A map beyond the f16 range, or of another channel count, is refused naming the item.
    let huge = |idx: &[usize]| -> Result<Vec<Map>> {
        Ok(idx.iter().map(|_| (vec![1e6; 4], [4, 1, 1])).collect())
    };
    let err = store
        .get_or_compute_dense(
            &key(DenseDtype::F16),
            &names(2),
            DenseDtype::F16,
            2,
            huge,
            false,
        )
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("`000012`") && format!("{err:#}").contains("f32"));
    let mut k = key(DenseDtype::F32);
    k.tap = "res3".into();
    let ragged = |idx: &[usize]| -> Result<Vec<Map>> {
        Ok(idx
            .iter()
            .map(|&i| (vec![0.5; 3 + i], [3 + i, 1, 1]))
            .collect())
    };
    let err = store
        .get_or_compute_dense(&k, &names(2), DenseDtype::F32, 2, ragged, false)
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("channels"), "{err:#}");
}

#[test]
fn an_index_that_disagrees_with_the_values_is_refused_on_open() {
    let cache = tempfile::tempdir().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let path = compute_all(&store, DenseDtype::F32, 3).path().to_path_buf();
    {
        let file = sslbench::h5::open_rw(&path).unwrap();
        let shapes = file.dataset("shapes").unwrap();
        let mut s: ndarray::Array2<u64> = shapes.read_2d().unwrap();
        s[[1, 2]] += 1;
        shapes.write(&s).unwrap();
    }
    let msg = format!("{:#}", DenseEntry::open(&path).err().unwrap());
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains("does not follow") && msg.contains("sslbench cache rm"),
        "{msg}"
    );
}

/// Entries are handed to data-loading threads.
#[test]
fn an_entry_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<DenseEntry>();
}

#[test]
fn cache_ls_verify_and_rm_know_dense_entries() {
    let cache = tempfile::tempdir().unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let entry = compute_all(&store, DenseDtype::F16, 3);
    let digest = key(DenseDtype::F16).digest();

    let ls = ok(sslbench(cache.path(), &["cache", "ls"]).output().unwrap());
    assert!(
        ls.contains(&digest) && ls.contains("dense:f16") && ls.contains("[3, 4]"),
        "{ls}"
    );
    let out = ok(sslbench(cache.path(), &["cache", "verify", &digest])
        .output()
        .unwrap());
    assert!(out.contains("1 entries verified"), "{out}");

    // One stored value changed in place: verification fails on the checksum.
    let path = entry.path().to_path_buf();
    drop(entry);
    {
        let file = sslbench::h5::open_rw(&path).unwrap();
        let features = file.dataset("features").unwrap();
        let mut values: Vec<f16> = features.read_raw().unwrap();
        values[7] = f16::from_f32(values[7].to_f32() + 1.0);
        features.write_raw(&values).unwrap();
    }
    let failed = sslbench(cache.path(), &["cache", "verify"])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let text = String::from_utf8_lossy(&failed.stdout);
    assert!(
        text.contains("checksum") && text.contains("sslbench cache rm"),
        "{text}"
    );

    let export = sslbench(cache.path(), &["cache", "export", &digest])
        .output()
        .unwrap();
    assert!(!export.status.success());
    assert!(String::from_utf8_lossy(&export.stderr).contains("dense entry"));

    ok(sslbench(cache.path(), &["cache", "rm", &digest])
        .output()
        .unwrap());
    assert!(store.list().unwrap().is_empty());
}

/// Bytes per item and read time per item of a res4 map of a 600 x 1000 image (1024 x 38 x 63),
/// in f16 and f32, first from disk (the file's pages dropped from the page cache with GNU
/// `dd iflag=nocache`), then from the page cache, in random order:
/// `cargo test --release --test dense_cache -- --ignored --nocapture`.
#[test]
#[ignore]
fn read_time_of_res4_maps() {
    let cache = tempfile::tempdir_in(".").unwrap();
    let store = FeatureStore::open(cache.path()).unwrap();
    let (n, shape) = (24, [1024, 38, 63]);
    let len: usize = shape.iter().product();
    let order: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % n).collect();
    for dtype in [DenseDtype::F16, DenseDtype::F32] {
        let maps = |idx: &[usize]| -> Result<Vec<Map>> {
            Ok(idx
                .iter()
                .map(|&i| {
                    let v = (0..len).map(|j| ((i * len + j) % 977) as f32 * 0.01);
                    (v.collect(), shape)
                })
                .collect())
        };
        let start = std::time::Instant::now();
        let (entry, _) = store
            .get_or_compute_dense(&key(dtype), &names(n), dtype, 4, maps, false)
            .unwrap();
        let write = start.elapsed().as_secs_f64() / n as f64;
        std::fs::File::open(entry.path())
            .unwrap()
            .sync_all()
            .unwrap();
        let dropped = std::process::Command::new("dd")
            .arg(format!("if={}", entry.path().display()))
            .args(["iflag=nocache", "count=0", "status=none"])
            .status()
            .is_ok_and(|s| s.success());
        let mut reads = Vec::new();
        for _ in 0..2 {
            let start = std::time::Instant::now();
            for &i in &order {
                assert_eq!(entry.read(i).unwrap().0.len(), len);
            }
            reads.push(start.elapsed().as_secs_f64() * 1e3 / n as f64);
        }
        let file = std::fs::metadata(entry.path()).unwrap().len();
        println!(
            "{}: {} bytes of values per item, file {} bytes per item; write {:.1} ms/item; \
             read {:.1} ms/item from disk (cache dropped: {dropped}), {:.1} ms/item cached",
            dtype.name(),
            entry.bytes() / n as u64,
            file / n as u64,
            write * 1e3,
            reads[0],
            reads[1]
        );
    }
}
