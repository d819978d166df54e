//! Training one agent (one tap, one seed): rollouts on the training environments, PPO
//! updates, the progress log and atomic checkpoints that `--resume` continues from.
//!
//! A resumed run restores the weights, Adam's moments and the update count exactly; its
//! environments start fresh episodes (a simulator's state cannot be saved), seeded from the
//! update it resumes at, so a resumed run is reproducible but not identical to an
//! uninterrupted one.

use super::agent::Agent;
use super::config::NavConfig;
use super::envs::{self, Phase};
use super::log::Row;
use super::perception::Perception;
use super::ppo;
use super::rollout::{Rollout, Sample};
use crate::seed::stream as seeded;
use crate::train::log::CsvLog;
use crate::train::run_dir::{RunDir, RunSpec};
use crate::train::stop::Cadence;
use anyhow::Result;
use sslbench_envs::{Frame, Observation, VecEnv};
use std::path::PathBuf;
use std::time::Instant;

const STREAM_POLICY_INIT: u64 = 11;
const STREAM_UPDATE: u64 = 12;
const STREAM_EPISODES: u64 = 13;
/// The agent's training log in its folder.
pub const LOG: &str = "progress.csv";

/// One agent's training job.
pub struct AgentRun<'a> {
    /// The task.
    pub cfg: &'a NavConfig,
    /// The frozen trunk at the agent's tap.
    pub perception: &'a Perception<'a>,
    /// The environment's number of actions.
    pub actions: usize,
    /// The run seed.
    pub seed: u64,
    /// The agent's folder (checkpoints, progress.csv).
    pub dir: PathBuf,
    /// Continue from the last checkpoint.
    pub resume: bool,
    /// Digest of everything that shapes training; a resume under another is refused.
    pub digest: String,
}

/// A trained agent and its log.
pub struct Trained {
    /// The agent after its last update.
    pub agent: Agent,
    /// Every update's row.
    pub rows: Vec<Row>,
    /// Seconds spent training in this process.
    pub seconds: f64,
}

/// Encodes observations' frames and stores them in the rollout; returns their frame ids.
pub fn observe(
    perception: &Perception<'_>,
    rollout: &mut Rollout,
    frames: &[&Frame],
) -> Result<Vec<usize>> {
    rollout.push_frames(&perception.encode(frames)?)
}

/// Puts first observations into a fresh rollout's stacks.
pub fn start(
    perception: &Perception<'_>,
    rollout: &mut Rollout,
    first: &[Observation],
) -> Result<()> {
    let frames: Vec<&Frame> = first.iter().map(|o| &o.rgb).collect();
    for (e, id) in observe(perception, rollout, &frames)?
        .into_iter()
        .enumerate()
    {
        rollout.advance(e, id, true);
    }
    Ok(())
}

/// Trains (or resumes, or reloads a finished) agent.
pub fn train(run: &AgentRun) -> Result<Trained> {
    let cfg = run.cfg;
    let device = run.perception.device().clone();
    let mut agent = Agent::new(
        cfg,
        run.perception.shape,
        run.actions,
        run.seed ^ STREAM_POLICY_INIT,
        &device,
    )?;
    let (run_dir, start_update) = RunDir::open(
        &run.dir,
        RunSpec {
            what: "navigation",
            seed: run.seed,
            digest: run.digest.clone(),
            keep: cfg.run.keep_checkpoints,
            resume: run.resume,
            log: LOG,
        },
        &agent.params,
        &mut agent.optimizer,
    )?;
    let mut log = CsvLog::<Row>::open(&run.dir.join(LOG), start_update)?;
    let updates = cfg.updates();
    let started = Instant::now();
    if start_update < updates {
        let episodes = rand::RngCore::next_u64(&mut seeded(
            run.seed,
            &[STREAM_EPISODES, start_update as u64],
        ));
        let mut venv = envs::make(&cfg.env, Phase::Train, episodes)?;
        let mut rollout = Rollout::new(venv.len(), cfg.compress.stack);
        start(run.perception, &mut rollout, &venv.reset()?)?;
        let bar = crate::progress::bar(
            (updates - start_update) as u64,
            &format!("PPO {} seed {}", run.perception.tap().name(), run.seed),
            "updates",
        );
        let mut cadence = Cadence::new(cfg.run.checkpoint_every, cfg.run.checkpoint_seconds);
        for update in start_update..updates {
            let t0 = Instant::now();
            let mut rng = seeded(run.seed, &[STREAM_UPDATE, update as u64]);
            rollout.carry_over();
            let ended = collect(
                &agent,
                run.perception,
                &mut venv,
                &mut rollout,
                cfg,
                &mut rng,
                &bar,
            )?;
            let stacks: Vec<&[usize]> = (0..rollout.envs()).map(|e| rollout.current(e)).collect();
            let last = agent.values(&rollout, &stacks)?;
            let (adv, ret) = ppo::gae(
                &rollout.samples,
                rollout.envs(),
                &last,
                cfg.ppo.gamma,
                cfg.ppo.gae_lambda,
            );
            let stats = agent.learn(&rollout, &adv, &ret, cfg, &mut rng)?;
            let done = update + 1;
            let fps = cfg.frames_per_update() as f64 / t0.elapsed().as_secs_f64();
            let row = Row::new(
                done,
                done * cfg.frames_per_update(),
                &ended,
                &stats,
                fps,
                started.elapsed().as_secs_f64(),
            );
            bar.set_message(format!(
                "return {:.2}  success {:.0}%  {:.0} fps",
                row.return_mean, row.success_rate, fps
            ));
            log.push(row)?;
            if cadence.due(done, updates) {
                run_dir.save(done, &agent.params, &agent.optimizer)?;
                cadence.check(done)?;
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    Ok(Trained {
        agent,
        rows: log.rows().to_vec(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Steps the environments for one rollout; returns the (return, success) of episodes ended.
fn collect(
    agent: &Agent,
    perception: &Perception<'_>,
    venv: &mut VecEnv,
    rollout: &mut Rollout,
    cfg: &NavConfig,
    rng: &mut impl rand::Rng,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<(f64, bool)>> {
    let n = venv.len();
    let mut ended = Vec::new();
    for _ in 0..cfg.ppo.rollout {
        let decisions = agent.act(rollout, rng, false)?;
        let actions: Vec<usize> = decisions.iter().map(|d| d.action as usize).collect();
        let steps = venv.step(&actions)?;
        let finals: Vec<usize> = (0..n)
            .filter(|&e| steps[e].final_observation.is_some())
            .collect();
        let mut frames: Vec<&Frame> = steps.iter().map(|s| &s.observation.rgb).collect();
        frames.extend(
            finals
                .iter()
                .filter_map(|&e| steps[e].final_observation.as_ref().map(|o| &o.rgb)),
        );
        let ids = observe(perception, rollout, &frames)?;
        let mut bootstrap = vec![0f32; n];
        if !finals.is_empty() {
            let stacks: Vec<Vec<usize>> = finals
                .iter()
                .enumerate()
                .map(|(k, &e)| rollout.stacked(e, ids[n + k], false))
                .collect();
            let refs: Vec<&[usize]> = stacks.iter().map(Vec::as_slice).collect();
            for (&e, v) in finals.iter().zip(agent.values(rollout, &refs)?) {
                bootstrap[e] = v;
            }
        }
        for (e, (step, d)) in steps.iter().zip(&decisions).enumerate() {
            if let Some(why) = &step.aborted {
                bar.println(format!(
                    "warning: environment {e} restarted, its episode dropped: {why}"
                ));
            }
            let boundary = step.terminated || step.truncated;
            rollout.samples.push(Sample {
                stack: rollout.current(e).to_vec(),
                action: d.action,
                logp: d.logp,
                value: d.value,
                reward: step.reward as f32,
                boundary,
                bootstrap: bootstrap[e],
            });
            rollout.advance(e, ids[e], boundary);
            if let Some(end) = &step.end {
                ended.push((end.total, end.success));
            }
        }
    }
    Ok(ended)
}
