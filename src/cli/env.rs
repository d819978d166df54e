//! `sslbench env serve|check`: run a gym bridge server in the foreground, or check that a
//! bridge answers (its spaces, a reset, random steps, their speed and frame statistics).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sslbench_envs::bridge::{server_command, BridgeConfig, BridgeEnv, OptionValue, Transport};
use sslbench_envs::{Env, Observation};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `sslbench env`.
#[derive(Args)]
pub struct EnvArgs {
    #[command(subcommand)]
    command: EnvCommand,
}

#[derive(Subcommand)]
enum EnvCommand {
    /// Serve a simulator over the gym bridge in the foreground (Ctrl-C stops it); prints
    /// `READY <address>` once listening.
    Serve(ServeArgs),
    /// Start (or connect to) a bridge, print its spaces, reset, take random steps, and report
    /// steps/s and frame statistics.
    Check(CheckArgs),
}

/// What both subcommands share: the simulator and how to run its server.
#[derive(Args)]
struct Simulator {
    /// Adapter option KEY=VALUE (repeatable), e.g. --option frame_skip=4 --option depth=true.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    options: Vec<String>,
    /// The Python interpreter that runs the server.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The server script [default: $SSLBENCH_GYM_BRIDGE, else the copy built into sslbench].
    #[arg(long)]
    script: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    /// Environment id: vizdoom:my_way_home, miniworld:MiniWorld-OneRoom-v0, gibson:Beechwood,
    /// gym:<gymnasium id>.
    env: String,
    /// Where to listen: tcp:HOST:PORT (port 0 picks one) or unix:PATH.
    #[arg(long, default_value = "tcp:127.0.0.1:0")]
    listen: String,
    #[command(flatten)]
    simulator: Simulator,
}

#[derive(Clone, Copy, ValueEnum)]
enum TransportArg {
    Unix,
    Tcp,
}

#[derive(Args)]
struct CheckArgs {
    /// Environment id (see `serve`); with --address, the one the server serves by default.
    #[arg(required_unless_present = "address")]
    env: Option<String>,
    /// Connect to this running server (tcp:HOST:PORT or unix:PATH) instead of starting one.
    #[arg(long)]
    address: Option<String>,
    /// Random steps to take.
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Seed of the reset and of the random actions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How a started server listens.
    #[arg(long, value_enum, default_value = "unix")]
    transport: TransportArg,
    /// Seconds the server may take to start (the simulator loads within it).
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    #[command(flatten)]
    simulator: Simulator,
}

/// Runs `sslbench env`.
pub fn run(args: EnvArgs) -> Result<()> {
    match args.command {
        EnvCommand::Serve(a) => serve(a),
        EnvCommand::Check(a) => check(a),
    }
}

fn config(env: String, simulator: Simulator) -> Result<BridgeConfig> {
    let mut cfg = BridgeConfig::new(env);
    cfg.python = simulator.python;
    cfg.script = simulator.script;
    for item in &simulator.options {
        let Some((key, value)) = item.split_once('=') else {
            bail!("--option {item:?}: expected KEY=VALUE, e.g. --option frame_skip=4");
        };
        cfg.options
            .insert(key.trim().to_string(), OptionValue::parse(value));
    }
    Ok(cfg)
}

fn serve(args: ServeArgs) -> Result<()> {
    let cfg = config(args.env, args.simulator)?;
    cfg.validate()?;
    let mut command = server_command(&cfg, &args.listen)?;
    eprintln!("serving {} on {} (Ctrl-C stops)", cfg.env, args.listen);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let e = command.exec();
        Err(e).with_context(|| {
            format!(
                "cannot run `{}`: install Python 3 or pass --python",
                cfg.python
            )
        })
    }
    #[cfg(not(unix))]
    {
        let status = command.status().with_context(|| {
            format!(
                "cannot run `{}`: install Python 3 or pass --python",
                cfg.python
            )
        })?;
        if !status.success() {
            bail!("the bridge server exited: {status}");
        }
        Ok(())
    }
}

fn check(args: CheckArgs) -> Result<()> {
    let mut cfg = config(args.env.unwrap_or_default(), args.simulator)?;
    cfg.start_timeout = args.timeout;
    cfg.transport = match args.transport {
        TransportArg::Unix => Transport::Unix,
        TransportArg::Tcp => Transport::Tcp,
    };
    let started = Instant::now();
    let mut env = match &args.address {
        Some(address) => BridgeEnv::connect(address, cfg)?,
        None => BridgeEnv::start(cfg)?,
    };
    println!("{}", env.describe());
    println!(
        "ready in {:.2} s; pixels through {}",
        started.elapsed().as_secs_f64(),
        if env.uses_shared_memory() {
            "shared memory"
        } else {
            "the socket"
        }
    );
    let spaces = env.spaces().clone();
    println!(
        "actions: {} ({})",
        spaces.action.n,
        spaces.action.names.join(", ")
    );
    let o = &spaces.observation;
    println!(
        "observation: {}x{} RGB{}{}",
        o.width,
        o.height,
        if o.depth { " + depth" } else { "" },
        if o.goal > 0 {
            format!(" + goal[{}]", o.goal)
        } else {
            String::new()
        }
    );
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut stats = FrameStats::default();
    let first = env.reset(Some(args.seed))?;
    stats.add(&first);
    let (mut episodes, mut successes, mut total) = (0u64, 0u64, 0.0);
    let start = Instant::now();
    for _ in 0..args.steps {
        let t = env.step(rng.random_range(0..spaces.action.n))?;
        total += t.reward;
        stats.add(&t.observation);
        if t.terminated || t.truncated {
            episodes += 1;
            successes += u64::from(t.info.success);
            env.reset(Some(args.seed + episodes))?;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{} random steps in {seconds:.2} s: {:.0} steps/s; {episodes} episodes ended ({successes} reached the target); total reward {total:.3}",
        args.steps,
        args.steps as f64 / seconds.max(1e-9)
    );
    stats.print();
    Ok(())
}

/// Frame statistics over the observations seen.
#[derive(Default)]
struct FrameStats {
    frames: usize,
    channel_sums: [f64; 3],
    pixels: usize,
    min: u8,
    max: u8,
    constant_frames: usize,
    depth: Option<(f32, f32)>,
}

impl FrameStats {
    fn add(&mut self, o: &Observation) {
        let data = &o.rgb.data;
        if self.frames == 0 {
            self.min = u8::MAX;
        }
        self.frames += 1;
        self.pixels += data.len() / 3;
        for px in data.chunks_exact(3) {
            for (sum, &v) in self.channel_sums.iter_mut().zip(px) {
                *sum += v as f64;
            }
        }
        self.min = self.min.min(data.iter().copied().min().unwrap_or(0));
        self.max = self.max.max(data.iter().copied().max().unwrap_or(0));
        if data.iter().all(|&v| v == data[0]) {
            self.constant_frames += 1;
        }
        if let Some(d) = &o.depth {
            let (lo, hi) = self.depth.unwrap_or((f32::MAX, f32::MIN));
            let lo = d.iter().copied().fold(lo, f32::min);
            let hi = d.iter().copied().fold(hi, f32::max);
            self.depth = Some((lo, hi));
        }
    }

    fn print(&self) {
        let n = self.pixels.max(1) as f64;
        let [r, g, b] = self.channel_sums.map(|s| s / n);
        println!(
            "frames: {} seen, mean RGB ({r:.1}, {g:.1}, {b:.1}), values {}..{}, {} constant",
            self.frames, self.min, self.max, self.constant_frames
        );
        if let Some((lo, hi)) = self.depth {
            println!("depth: {lo:.3}..{hi:.3} m");
        }
    }
}
