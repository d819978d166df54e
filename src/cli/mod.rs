//! The `sslbench` command line: `extract`, `cache ls|verify|rm|export`, `run`, `svm`,
//! `sweep`, `table`, `report`, `pretrain`, `env serve|check`, `nav`, `proposals`, `normals from-depth`.

mod cache;
mod env;
mod extract;
mod nav;
mod normals;
mod pretrain;
mod proposals;
mod report;
mod run;
mod setup;
mod svm;
mod sweep;
mod table;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// sslbench: the Goyal et al. (ICCV 2019) benchmark suite for frozen self-supervised backbones.
#[derive(Parser)]
#[command(name = "sslbench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Extract features at some taps of a backbone on a dataset into the feature cache.
    Extract(extract::ExtractArgs),
    /// Inspect the feature cache: list, verify or remove entries.
    Cache(cache::CacheArgs),
    /// Run a task described by tasks/<task>.toml on a backbone.
    Run(run::RunArgs),
    /// The VOC07 SVM protocol on features saved as .npy (FAIR's train_svm_kfold inputs).
    Svm(svm::SvmArgs),
    /// Run every task of a sweep file on every backbone it lists (each extraction once).
    Sweep(sweep::SweepArgs),
    /// Tables of results JSONs in the paper's shape, beside its published numbers.
    Table(table::TableArgs),
    /// One static HTML page of a results folder: tables beside the published numbers, every
    /// run's plots and images, pretext logs, and what produced each run.
    Report(report::ReportArgs),
    /// Train a trunk with a pretext task (Jigsaw, Colorization, Rotation).
    Pretrain(pretrain::PretrainArgs),
    /// Serve a simulator over the gym bridge, or check that a bridge answers.
    Env(env::EnvArgs),
    /// Selective-search proposals for a dataset, written in Detectron's pickle format.
    Proposals(proposals::ProposalsArgs),
    /// Train PPO navigation agents on frozen taps (one per tap and seed), evaluate on held-out
    /// episodes: the short form of `run` for tasks/gibson_nav.toml.
    Nav(nav::NavArgs),
    /// Surface normals for NYUv2: `from-depth` computes them from the labelled set's depth
    /// (window PCA) and writes them with their masks as HDF5 that h5py reads.
    Normals(normals::NormalsArgs),
}

/// Parses the command line, runs it, and turns an error into a message and exit code 1 (75,
/// [`crate::train::stop::EXIT_REQUEUE`], for a training loop stopped by SIGTERM).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Extract(args) => extract::run(args),
        Command::Cache(args) => cache::run(args),
        Command::Run(args) => run::run(args),
        Command::Svm(args) => svm::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Table(args) => table::run(args),
        Command::Report(args) => report::run(args),
        Command::Pretrain(args) => pretrain::run(args),
        Command::Env(args) => env::run(args),
        Command::Nav(args) => nav::run(args),
        Command::Proposals(args) => proposals::run(args),
        Command::Normals(args) => normals::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if e.chain().any(|c| c.is::<crate::train::stop::Stopped>()) {
                return ExitCode::from(crate::train::stop::EXIT_REQUEUE);
            }
            ExitCode::FAILURE
        }
    }
}
