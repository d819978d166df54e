//! Steps per second of the built-in environment under random actions: one environment, and a
//! `VecEnv` of two stepped in parallel, at 64x64 and 256x256.
//!
//! `cargo run --release -p sslbench-envs --example bench_builtin`

use std::time::{Duration, Instant};

use sslbench_envs::builtin::{BuiltinConfig, BuiltinEnv};
use sslbench_envs::{Env, EnvError, VecEnv};

/// How long each measurement runs.
const BUDGET: Duration = Duration::from_secs(2);

/// A xorshift64* stream for the random actions.
struct Actions(u64);

impl Actions {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % 3
    }
}

fn config(size: usize) -> BuiltinConfig {
    BuiltinConfig {
        width: size,
        height: size,
        ..BuiltinConfig::default()
    }
}

/// Steps per second of one environment, resetting at episode ends.
fn single(size: usize) -> Result<f64, EnvError> {
    let mut env = BuiltinEnv::new(config(size))?;
    let mut actions = Actions(0x9E37_79B9_7F4A_7C15);
    env.reset(Some(0))?;
    let (start, mut steps) = (Instant::now(), 0u64);
    while start.elapsed() < BUDGET {
        for _ in 0..100 {
            let t = env.step(actions.next())?;
            if t.terminated || t.truncated {
                env.reset(None)?;
            }
        }
        steps += 100;
    }
    Ok(steps as f64 / start.elapsed().as_secs_f64())
}

/// Environment steps per second of a `VecEnv` of `n`.
fn vectorised(size: usize, n: usize) -> Result<f64, EnvError> {
    let envs = (0..n)
        .map(|_| BuiltinEnv::new(config(size)).map(|e| Box::new(e) as Box<dyn Env>))
        .collect::<Result<Vec<_>, _>>()?;
    let mut vec = VecEnv::new(envs, 0)?;
    let mut actions = Actions(0x2545_F491_4F6C_DD1D);
    vec.reset()?;
    let (start, mut steps) = (Instant::now(), 0u64);
    while start.elapsed() < BUDGET {
        for _ in 0..50 {
            let a: Vec<usize> = (0..n).map(|_| actions.next()).collect();
            vec.step(&a)?;
        }
        steps += 50 * n as u64;
    }
    Ok(steps as f64 / start.elapsed().as_secs_f64())
}

fn main() -> Result<(), EnvError> {
    println!("built-in environment, random actions, release build");
    println!("| frame | single env (steps/s) | VecEnv x2 (env steps/s) |");
    println!("|---|---:|---:|");
    for size in [64, 256] {
        let one = single(size)?;
        let two = vectorised(size, 2)?;
        println!("| {size}x{size} | {one:.0} | {two:.0} |");
    }
    Ok(())
}
