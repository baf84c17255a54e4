//! The `wgpu-lstm` command line: `train` (the main job), `sample`, `infer`, `check`, `devices`.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "wgpu-lstm",
    version,
    about = "A GPU LSTM engine on wgpu compute shaders"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an LSTM on the GPU: a character model on a built-in text (default) or the adding
    /// problem. Shows loss, throughput, gradient norm and clip rate; saves checkpoints.
    Train(cli::train::TrainArgs),
    /// Generate text from a character-model checkpoint.
    Sample(cli::sample::SampleArgs),
    /// The lecture's experiment: measure how the gradient of a loss at the last step flows back
    /// through time in an LSTM, a GRU and a vanilla RNN; writes a CSV, an SVG plot and a summary.
    Gradflow(cli::gradflow::GradflowArgs),
    /// Time inference and training (forward + backward + clip) at standard sizes; prints a
    /// table (or JSON) with ms per call, µs per step, GFLOP/s, dispatches per step and memory.
    Bench(cli::bench::BenchArgs),
    /// List the GPU adapters wgpu sees, with the limits and features that matter here.
    Devices,
    /// Run forward, backward and gradient clipping on the GPU and check them against the f64
    /// reference (exit status 1 if any error exceeds its tolerance).
    Check(cli::check::CheckArgs),
    /// Run a PyTorch nn.LSTM (or nn.RNN) state dict on inputs from a safetensors file;
    /// optionally backward and gradient clipping too. Writes the results as safetensors.
    Infer(cli::infer::InferArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime_dir = cli::runtime::ensure_runtime_dir();
    let result = match cli.command {
        Command::Train(args) => cli::train::run(&args),
        Command::Sample(args) => cli::sample::run(&args),
        Command::Gradflow(args) => cli::gradflow::run(&args),
        Command::Bench(args) => cli::bench::run(&args),
        Command::Devices => cli::devices::run(),
        Command::Check(args) => cli::check::run(&args),
        Command::Infer(args) => cli::infer::run(&args),
    };
    if let Some(dir) = runtime_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
