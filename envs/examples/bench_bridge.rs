//! Steps per second through the gym bridge, for data-scripts/bench_envs.sh.
//!
//! ```text
//! cargo run --release -p sslbench-envs --example bench_bridge -- \
//!     --env vizdoom:my_way_home --transport unix --actions-file actions.txt --seed 1 \
//!     [--shared-memory false] [--spin-us 1000] [--envs 2] [--option k=v]
//! ```
//!
//! Spawns the server(s), then times the same loop as `envs/bridge/inprocess.py bench`: reset
//! with the seed, take the actions, reset with seed+1, seed+2, ... at episode ends. Server
//! start-up is not timed. With `--envs N`, N bridged environments step in a `VecEnv` (each
//! takes the same action; episodes reset automatically) and steps count every environment's.
//! Prints one JSON line.

use std::time::Instant;

use sslbench_envs::bridge::{BridgeConfig, BridgeEnv, OptionValue, Transport};
use sslbench_envs::{Env, VecEnv};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = BridgeConfig::new("vizdoom:my_way_home");
    let mut actions_file = None;
    let mut seed = 0u64;
    let mut envs = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--env" => cfg.env = value()?,
            "--transport" => {
                cfg.transport = match value()?.as_str() {
                    "unix" => Transport::Unix,
                    "tcp" => Transport::Tcp,
                    other => return Err(format!("--transport {other}: unix or tcp").into()),
                }
            }
            "--shared-memory" => cfg.shared_memory = value()?.parse()?,
            "--spin-us" => cfg.spin_us = value()?.parse()?,
            "--envs" => envs = value()?.parse()?,
            "--actions-file" => actions_file = Some(value()?),
            "--seed" => seed = value()?.parse()?,
            "--option" => {
                let item = value()?;
                let (k, v) = item.split_once('=').ok_or("--option needs KEY=VALUE")?;
                cfg.options.insert(k.to_string(), OptionValue::parse(v));
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let path = actions_file.ok_or("--actions-file is required")?;
    let actions: Vec<usize> = std::fs::read_to_string(path)?
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let label = format!(
        "\"transport\": \"{}\", \"shared_memory\": {}, \"spin_us\": {}, \"envs\": {envs}",
        format!("{:?}", cfg.transport).to_lowercase(),
        cfg.shared_memory,
        cfg.spin_us
    );
    let (seconds, episodes) = if envs == 1 {
        time_one(BridgeEnv::start(cfg)?, &actions, seed)?
    } else {
        let list = (0..envs)
            .map(|_| BridgeEnv::start(cfg.clone()).map(|e| Box::new(e) as Box<dyn Env>))
            .collect::<Result<Vec<_>, _>>()?;
        time_vec(VecEnv::new(list, seed)?, &actions)?
    };
    let steps = actions.len() * envs;
    println!(
        "{{{label}, \"steps\": {steps}, \"seconds\": {seconds}, \"steps_per_s\": {}, \"episodes\": {episodes}}}",
        steps as f64 / seconds
    );
    Ok(())
}

/// One environment, the loop of inprocess.py bench.
fn time_one(
    mut env: BridgeEnv,
    actions: &[usize],
    seed: u64,
) -> Result<(f64, u64), Box<dyn std::error::Error>> {
    let mut episodes = 0u64;
    let start = Instant::now();
    env.reset(Some(seed))?;
    for &action in actions {
        let t = env.step(action)?;
        if t.terminated || t.truncated {
            episodes += 1;
            env.reset(Some(seed + episodes))?;
        }
    }
    Ok((start.elapsed().as_secs_f64(), episodes))
}

/// N environments in parallel, each taking the same action.
fn time_vec(mut envs: VecEnv, actions: &[usize]) -> Result<(f64, u64), Box<dyn std::error::Error>> {
    let mut episodes = 0u64;
    let start = Instant::now();
    envs.reset()?;
    for &action in actions {
        let steps = envs.step(&vec![action; envs.len()])?;
        episodes += steps.iter().filter(|s| s.end.is_some()).count() as u64;
    }
    Ok((start.elapsed().as_secs_f64(), episodes))
}
