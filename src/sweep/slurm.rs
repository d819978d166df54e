//! The Slurm executor: one `sbatch` script per stage of the DAG (pretext runs, extractions,
//! cells as array jobs, collect), chained with `afterok` dependencies, submitted with
//! `sbatch --parsable`; job states come from `squeue` and `sacct`. Each array task runs
//! `sslbench sweep FILE --job KIND:$SLURM_ARRAY_TASK_ID`. Tasks are requeued on
//! preemption (`--requeue`) and warned 60 s before a time limit (`--signal=TERM@60`).

use super::file::SlurmSection;
use super::job::JobId;
use super::status::{state_dir, write_jobs};
use super::{Context as SweepContext, Plan};
use crate::atomic::write_atomic;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One stage to submit: its kind (`pretrain`, `extract`, `cell`, `collect`) and the indices
/// of its array tasks (none for `collect`).
pub struct Stage {
    /// The job kind.
    pub kind: &'static str,
    /// The array indices.
    pub indices: Vec<usize>,
}

/// Whether a program is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The `#SBATCH` header of a stage.
fn header(s: &SlurmSection, name: &str, log: &Path, array: Option<&str>) -> String {
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name={name}"),
        format!("#SBATCH --output={}", log.display()),
        "#SBATCH --requeue".into(),
        "#SBATCH --signal=TERM@60".into(),
        "#SBATCH --ntasks=1".into(),
    ];
    let opt = |flag: &str, v: Option<String>| v.map(|v| format!("#SBATCH --{flag}={v}"));
    lines.extend(opt("partition", s.partition.clone()));
    lines.extend(opt("account", s.account.clone()));
    lines.extend(opt("time", s.time.clone()));
    lines.extend(opt("cpus-per-task", s.cpus.map(|c| c.to_string())));
    lines.extend(opt("mem", s.memory.clone()));
    lines.extend(opt("gpus-per-task", s.gpus.map(|g| g.to_string())));
    if let Some(a) = array {
        let max = s.max_array.map(|m| format!("%{m}")).unwrap_or_default();
        lines.push(format!("#SBATCH --array={a}{max}"));
    }
    lines.extend(s.extra.iter().map(|e| format!("#SBATCH {e}")));
    lines.join("\n") + "\n"
}

/// Quotes a word for bash.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The script of a stage.
pub fn script(plan: &Plan, ctx: &SweepContext, stage: &Stage) -> Result<String> {
    let name = format!("{}-{}", super::plan::stem(&plan.file), stage.kind);
    let logs = state_dir(plan, &ctx.out).join("logs");
    let collect = stage.kind == "collect";
    let (log, array, job) = if collect {
        (logs.join("collect.log"), None, "collect".to_string())
    } else {
        let list: Vec<String> = stage.indices.iter().map(|i| i.to_string()).collect();
        (
            logs.join(format!("{}-%a.log", stage.kind)),
            Some(list.join(",")),
            format!("{}:$SLURM_ARRAY_TASK_ID", stage.kind),
        )
    };
    let exe = std::env::current_exe().context("cannot find the sslbench binary")?;
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let mut words: Vec<String> = ctx
        .job_args()
        .iter()
        .map(|w| quote(&w.to_string_lossy()))
        .collect();
    words.push("--job".into());
    words.push(format!("\"{job}\""));
    Ok(format!(
        "{}cd {}\n{} {}\nrc=$?\n# A training loop stopped by SIGTERM has saved its checkpoint: requeue the task.\n\
         if [ $rc -eq {} ]; then scontrol requeue \"${{SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}}${{SLURM_ARRAY_TASK_ID:+_$SLURM_ARRAY_TASK_ID}}\"; fi\nexit $rc\n",
        header(&plan.slurm, &name, &log, array.as_deref()),
        quote(&cwd.to_string_lossy()),
        quote(&exe.to_string_lossy()),
        words.join(" "),
        crate::train::stop::EXIT_REQUEUE
    ))
}

/// Writes and submits each stage after the previous one (`afterok`); prints the scripts
/// instead with `dry_run`. Records the job ids for `--status`.
pub fn submit(plan: &Plan, ctx: &SweepContext, stages: &[Stage], dry_run: bool) -> Result<()> {
    if !dry_run && !on_path("sbatch") {
        bail!(
            "--executor slurm: `sbatch` is not on PATH; run on a Slurm login node, add Slurm's \
             bin folder to PATH, or use --executor local"
        );
    }
    let dir = state_dir(plan, &ctx.out);
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut previous: Option<String> = None;
    let mut jobs = BTreeMap::new();
    for stage in stages
        .iter()
        .filter(|s| s.kind == "collect" || !s.indices.is_empty())
    {
        let text = script(plan, ctx, stage)?;
        let path = dir.join(format!("{}.sbatch", stage.kind));
        if dry_run {
            println!("# {}\n{text}", path.display());
            continue;
        }
        write_atomic(&path, text.as_bytes())?;
        let mut cmd = Command::new("sbatch");
        cmd.arg("--parsable");
        if let Some(p) = &previous {
            cmd.arg(format!("--dependency=afterok:{p}"))
                .arg("--kill-on-invalid-dep=yes");
        }
        let output = cmd.arg(&path).output().context("cannot run sbatch")?;
        if !output.status.success() {
            bail!(
                "sbatch {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let id = String::from_utf8_lossy(&output.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        eprintln!("submitted {} as job {id}", stage.kind);
        for i in &stage.indices {
            jobs.insert(format!("{}:{i}", stage.kind), format!("{id}_{i}"));
        }
        if stage.kind == "collect" {
            jobs.insert(JobId::Collect.to_string(), id.clone());
        }
        previous = Some(id);
    }
    if !dry_run {
        write_jobs(plan, &ctx.out, &jobs)?;
    }
    Ok(())
}

/// Job states by id (`1234_3` → `RUNNING`) from `sacct`, then `squeue` (newer).
pub fn states(ids: &[String]) -> Result<BTreeMap<String, String>> {
    let mut states = BTreeMap::new();
    let jobs: Vec<String> = {
        let mut j: Vec<String> = ids
            .iter()
            .map(|i| i.split('_').next().unwrap_or(i).to_string())
            .collect();
        j.sort();
        j.dedup();
        j
    };
    if jobs.is_empty() {
        return Ok(states);
    }
    let list = jobs.join(",");
    if on_path("sacct") {
        let out = Command::new("sacct")
            .args(["-n", "-P", "-X", "-o", "JobID,State", "-j", &list])
            .output()
            .context("cannot run sacct")?;
        states.extend(parse_pairs(&String::from_utf8_lossy(&out.stdout), '|'));
    }
    if on_path("squeue") {
        let out = Command::new("squeue")
            .args(["-h", "-r", "-t", "all", "-o", "%i %T", "-j", &list])
            .output()
            .context("cannot run squeue")?;
        states.extend(parse_pairs(&String::from_utf8_lossy(&out.stdout), ' '));
    }
    Ok(states)
}

/// `ID<sep>STATE` lines; `CANCELLED by 0` reads `CANCELLED`.
pub fn parse_pairs(text: &str, sep: char) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.trim().split_once(sep))
        .map(|(id, state)| {
            let state = state.split_whitespace().next().unwrap_or_default();
            (id.trim().to_string(), state.to_string())
        })
        .collect()
}

/// The job-id file of a sweep, for messages.
pub fn jobs_file(plan: &Plan, out: &Path) -> PathBuf {
    state_dir(plan, out).join("jobs.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_lines_parse() {
        let p = parse_pairs("12_0|COMPLETED\n12_1|CANCELLED by 0\n", '|');
        assert_eq!(p[1], ("12_1".into(), "CANCELLED".into()));
        let q = parse_pairs("13_2 RUNNING\n", ' ');
        assert_eq!(q[0], ("13_2".into(), "RUNNING".into()));
    }

    #[test]
    fn the_header_has_every_field() {
        let s = SlurmSection {
            partition: Some("gpu".into()),
            gpus: Some(1),
            max_array: Some(4),
            extra: vec!["--qos=high".into()],
            ..SlurmSection::default()
        };
        let h = header(&s, "n", Path::new("l-%a.log"), Some("0,2"));
        for line in [
            "--partition=gpu",
            "--gpus-per-task=1",
            "--array=0,2%4",
            "#SBATCH --qos=high",
        ] {
            assert!(h.contains(line), "{h}");
        }
    }
}
