//! `sslbench sweep` through its DAG on this machine (`--executor local --jobs N`), and the
//! checks that fail before anything runs or is submitted: a missing backbone or task file,
//! an unknown `[slurm]` field, `--executor slurm` without `sbatch` on PATH; `--dry-run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::scores;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `sslbench ARGS` in the repository root.
fn sslbench(args: &[&str], path: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sslbench"));
    cmd.current_dir(root()).args(args);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.output().expect("sslbench runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A sweep file in `dir` from the CI sweep with `edit` applied to its text.
fn sweep_with(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(root().join("configs/sweeps/ci_slurm.toml")).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, edit(text)).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn bad_sweeps_fail_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let cases = [
        (
            sweep_with(dir.path(), "a", |t| {
                t.replace("resnet50_w8_random", "no_such_backbone")
            }),
            "no_such_backbone",
        ),
        (
            sweep_with(dir.path(), "b", |t| {
                t.replace("voc07_lowshot", "no_such_task")
            }),
            "no_such_task",
        ),
        (
            sweep_with(dir.path(), "c", |t| {
                t.replace("max_array = 2", "max_arrays = 2")
            }),
            "max_arrays",
        ),
    ];
    for (file, named) in cases {
        for executor in ["local", "slurm"] {
            let r = sslbench(&["sweep", &file, "--executor", executor, "--out", o], None);
            assert!(!r.status.success(), "{file} ran");
            assert!(stderr(&r).contains(named), "{}", stderr(&r));
            assert!(!out.exists(), "{file}: something was written");
        }
    }
    // An unknown field given with --set slurm.* is refused as well.
    let file = "configs/sweeps/ci_slurm.toml";
    let r = sslbench(
        &[
            "sweep",
            file,
            "--set",
            "slurm.gpu=1",
            "--dry-run",
            "--executor",
            "slurm",
        ],
        None,
    );
    assert!(
        !r.status.success() && stderr(&r).contains("gpu"),
        "{}",
        stderr(&r)
    );
    // An override no task of the sweep reads (a typo) is refused, not dropped.
    let r = sslbench(
        &[
            "sweep",
            file,
            "--set",
            "lowshto.k=1,2",
            "--dry-run",
            "--executor",
            "slurm",
        ],
        None,
    );
    assert!(
        !r.status.success() && stderr(&r).contains("lowshto.k"),
        "{}",
        stderr(&r)
    );
    // No sbatch on PATH: said so.
    let r = sslbench(
        &["sweep", file, "--executor", "slurm", "--out", o],
        Some("/nonexistent"),
    );
    assert!(
        stderr(&r).contains("`sbatch` is not on PATH"),
        "{}",
        stderr(&r)
    );
    assert!(!out
        .join(".sweep")
        .join("ci_slurm")
        .join("jobs.json")
        .exists());
}

#[test]
fn a_dry_run_prints_every_stage_script() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("out");
    let r = sslbench(
        &[
            "sweep",
            "configs/sweeps/ci_slurm.toml",
            "--executor",
            "slurm",
            "--dry-run",
            "--set",
            "slurm.partition=gpu",
            "--out",
            o.to_str().unwrap(),
        ],
        Some("/nonexistent"),
    );
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{}", stderr(&r));
    for part in [
        "--job \"pretrain:$SLURM_ARRAY_TASK_ID\"",
        "#SBATCH --array=0,1,2,3%2",
        "--job \"cell:$SLURM_ARRAY_TASK_ID\"",
        "--job \"collect\"",
        "#SBATCH --partition=gpu",
        "#SBATCH --requeue",
    ] {
        assert!(text.contains(part), "no {part} in\n{text}");
    }
    assert!(!o.join(".sweep/ci_slurm/jobs.json").exists());
}

#[test]
fn local_jobs_in_processes_equal_one_process_and_resume_skips_done_cells() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, jobs: &str, extra: &[&str]| {
        let d = dir.path();
        let (out, runs, cache) = (
            d.join(name),
            d.join(format!("{name}-runs")),
            d.join(format!("{name}-cache")),
        );
        let mut args = vec![
            "sweep".to_string(),
            "configs/sweeps/ci_slurm.toml".into(),
            "--jobs".into(),
            jobs.into(),
        ];
        for (flag, p) in [("--out", &out), ("--runs", &runs), ("--cache", &cache)] {
            args.push(flag.into());
            args.push(p.to_string_lossy().into_owned());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sslbench(&refs, None);
        assert!(r.status.success(), "{}", stderr(&r));
        (out, r)
    };
    let (one, _) = run("one", "1", &[]);
    let (two, _) = run("two", "2", &[]);
    assert_eq!(scores(&one).len(), 4);
    assert_eq!(scores(&one), scores(&two));
    assert!(two.join("sweep_ci_slurm.md").is_file());
    // Resume: one cell removed, only it is redone.
    let gone = two.join("voc07_svm_ci_rotation.json");
    let kept = two.join("voc07_lowshot_resnet50_w8_random.json");
    let before = std::fs::metadata(&kept).unwrap().modified().unwrap();
    std::fs::remove_file(&gone).unwrap();
    let (_, r) = run("two", "2", &["--resume"]);
    assert!(stderr(&r).contains("1 of 4 cells"), "{}", stderr(&r));
    assert_eq!(
        std::fs::metadata(&kept).unwrap().modified().unwrap(),
        before
    );
    assert_eq!(scores(&one), scores(&two));
    let status = sslbench(
        &[
            "sweep",
            "configs/sweeps/ci_slurm.toml",
            "--status",
            "--out",
            two.to_str().unwrap(),
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("4/4 cells done"));
}
