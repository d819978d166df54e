//! `sslbench sweep --executor slurm` on a real one-node Slurm (data-scripts/slurm_local.sh;
//! .ci/run installs Debian's slurm-wlm and munge): the CI sweep finishes through the
//! scheduler with the same scores as `--executor local`; one array task cancelled mid-run is
//! the only cell `--resume` redoes. Skipped, saying so, where `sbatch` is not installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::scores;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn sh(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .current_dir(root())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Starts the one-node Slurm unless one answers, and stops it on drop if it started it.
struct Cluster(bool);

impl Cluster {
    fn up() -> Cluster {
        if sh("sinfo", &["-h", "-o", "%T"]).status.success() {
            return Cluster(false);
        }
        let o = sh("bash", &["data-scripts/slurm_local.sh", "start"]);
        assert!(o.status.success(), "slurm did not start: {}", text(&o));
        Cluster(true)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.0 {
            let o = sh("bash", &["data-scripts/slurm_local.sh", "stop"]);
            eprintln!("slurm stopped: {}", text(&o));
        }
    }
}

/// `sslbench sweep configs/sweeps/ci_slurm.toml` with the folders of `d` and `extra`.
fn sweep(d: &Path, name: &str, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sslbench"));
    cmd.current_dir(root())
        .args(["sweep", "configs/sweeps/ci_slurm.toml"])
        .arg("--out")
        .arg(d.join(name))
        .arg("--runs")
        .arg(d.join(format!("{name}-runs")))
        .arg("--cache")
        .arg(d.join(format!("{name}-cache")))
        .args(extra);
    cmd.output().expect("sslbench runs")
}

/// Polls `cond` every 200 ms; panics with `what` after `limit`.
fn wait(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_sweep_runs_through_slurm_and_resumes_the_cancelled_cell() {
    if !on_path("sbatch") {
        eprintln!("skipped: no `sbatch` on PATH (bash data-scripts/slurm_local.sh install)");
        return;
    }
    let cluster = Cluster::up();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let local = sweep(d, "local", &["--jobs", "2"]);
    assert!(local.status.success(), "{}", text(&local));

    let sub = sweep(d, "slurm", &["--executor", "slurm"]);
    assert!(sub.status.success(), "{}", text(&sub));
    let jobs: std::collections::BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(d.join("slurm/.sweep/ci_slurm/jobs.json")).unwrap(),
    )
    .unwrap();
    // Cancel the first cell task seen running.
    let cell = jobs["cell:0"].split('_').next().unwrap().to_string();
    let mut cancelled = String::new();
    wait(Duration::from_secs(120), "a cell task running", || {
        let q = sh(
            "squeue",
            &["-h", "-r", "-t", "RUNNING", "-o", "%i", "-j", &cell],
        );
        if let Some(id) = String::from_utf8_lossy(&q.stdout).lines().next() {
            cancelled = id.trim().to_string();
        }
        !cancelled.is_empty()
    });
    assert!(sh("scancel", &[&cancelled]).status.success());
    let index: usize = cancelled.split('_').nth(1).unwrap().parse().unwrap();
    eprintln!("cancelled {cancelled} (cell {index})");
    // The other cells finish; the collect job dies with its dependency.
    let status = || text(&sweep(d, "slurm", &["--status"]));
    wait(Duration::from_secs(120), "the other cells done", || {
        let s = status();
        s.contains("3/4 cells done") && !s.contains("running") && !s.contains("pending")
    });
    let s = status();
    eprintln!("{s}");
    assert!(s.contains("failed: CANCELLED"), "{s}");
    let out = d.join("slurm");
    let stamps = |out: &Path| -> Vec<(PathBuf, std::time::SystemTime)> {
        let mut v: Vec<_> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .map(|p| {
                let t = std::fs::metadata(&p).unwrap().modified().unwrap();
                (p, t)
            })
            .collect();
        v.sort();
        v
    };
    let before = stamps(&out);
    assert_eq!(before.len(), 3);

    let resumed = sweep(d, "slurm", &["--executor", "slurm", "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(
        text(&resumed).contains("1 of 4 cells"),
        "{}",
        text(&resumed)
    );
    wait(Duration::from_secs(120), "the sweep's tables", || {
        out.join("sweep_ci_slurm.md").is_file()
    });
    let after = stamps(&out);
    for (path, t) in &before {
        let now = after.iter().find(|(p, _)| p == path).unwrap().1;
        assert_eq!(*t, now, "{} was redone", path.display());
    }
    assert_eq!(scores(&d.join("local")), scores(&out));

    let ids: Vec<String> = jobs
        .values()
        .map(|j| j.split('_').next().unwrap().to_string())
        .collect();
    let acct = sh("sacct", &["-c", "-n", "-o", "JobID,JobName,State"]);
    eprintln!("sacct -c:\n{}", text(&acct));
    let shown = text(&acct);
    assert!(ids.iter().all(|id| shown.contains(id.as_str())), "{shown}");
    let started = cluster.0;
    drop(cluster);
    for daemon in ["slurmctld", "slurmd", "munged"] {
        let left = sh("pgrep", &["-x", daemon]);
        assert!(!started || !left.status.success(), "{daemon} still runs");
    }
}
