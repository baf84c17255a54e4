//! `wgpu-lstm train`: the training loop with progress, checkpoints and Ctrl-C.

use super::options::CellArgs;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use wgpu_lstm::train::{
    CharCorpus, Checkpoint, OptimizerConfig, Task, TrainConfig, Trainer, ADDING_BASELINE_MSE,
    BUILTIN_TEXT,
};
use wgpu_lstm::{Cell, Gpu, Nonlinearity};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TaskArg {
    /// Next-character prediction on a text (built in, or --text FILE).
    Chars,
    /// The adding problem (Hochreiter & Schmidhuber 1997).
    Adding,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OptimizerArg {
    Sgd,
    Adam,
    Adamw,
}

#[derive(clap::Args)]
pub(crate) struct TrainArgs {
    /// What to learn.
    #[arg(long, value_enum, default_value_t = TaskArg::Chars)]
    task: TaskArg,
    /// Train the character model on this UTF-8 text instead of the built-in one.
    #[arg(long)]
    text: Option<PathBuf>,
    /// Timesteps per sequence [default: 64 for chars, 50 for adding].
    #[arg(long)]
    seq_len: Option<usize>,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[command(flatten)]
    cell: CellArgs,
    /// Hidden units per layer.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Stacked LSTM layers.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Optimizer (PyTorch's formulas and defaults).
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    optimizer: OptimizerArg,
    /// Learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0)]
    momentum: f32,
    /// Weight decay [default: 0, or 0.01 for AdamW].
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Clip the global gradient norm to this value; 0 turns clipping off.
    #[arg(long, default_value_t = 1.0)]
    clip: f32,
    /// Skip steps whose gradient norm is NaN or infinite.
    #[arg(long)]
    skip_nonfinite: bool,
    /// Seed of the weights and of every batch.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training steps (in total, counting those of a resumed run) [default: 400 for chars, 500 for adding].
    #[arg(long)]
    steps: Option<u64>,
    /// Read the metrics back every N steps (the only host waits of the loop).
    #[arg(long, default_value_t = 10)]
    log_every: usize,
    /// Checkpoint file, written atomically every --checkpoint-every steps, at the end and on Ctrl-C.
    #[arg(long, default_value = "wgpu-lstm-checkpoint.safetensors")]
    checkpoint: PathBuf,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 100)]
    checkpoint_every: u64,
    /// Continue the run saved in this checkpoint (its settings win over the options above,
    /// except --steps, --checkpoint, --checkpoint-every, --log-every and --device).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// No progress bar, one line per --log-every steps instead (also what happens when stdout
    /// is not a terminal).
    #[arg(long)]
    quiet: bool,
    /// Adapter to use: a case-insensitive part of its name (see `devices`).
    #[arg(long)]
    device: Option<String>,
}

fn read_text(path: &Option<PathBuf>) -> wgpu_lstm::Result<String> {
    match path {
        Some(p) => std::fs::read_to_string(p).map_err(|source| wgpu_lstm::Error::Io {
            path: p.display().to_string(),
            source,
        }),
        None => Ok(BUILTIN_TEXT.to_string()),
    }
}

pub(crate) fn run(a: &TrainArgs) -> wgpu_lstm::Result<ExitCode> {
    // 0 turns clipping off; NaN or a negative value is a mistake, not "off".
    if !(a.clip.is_finite() && a.clip >= 0.0) {
        return Err(wgpu_lstm::Error::Invalid(format!(
            "--clip {}: expected a finite number ≥ 0 (0 turns clipping off)",
            a.clip
        )));
    }
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    let text = read_text(&a.text)?;
    let log_every = a.log_every.max(1);
    let mut trainer = match &a.resume {
        Some(path) => {
            let checkpoint = Checkpoint::read(path, Some(&text))?;
            let c = &checkpoint.config;
            a.cell
                .check(c.cell, c.proj_size, &path.display().to_string())?;
            Trainer::resume(&gpu, &checkpoint, log_every)?
        }
        None => {
            let task = match a.task {
                TaskArg::Chars => Task::Chars(CharCorpus::new(&text)?),
                TaskArg::Adding => Task::Adding,
            };
            let optimizer = match a.optimizer {
                OptimizerArg::Sgd => OptimizerConfig::Sgd {
                    lr: a.lr,
                    momentum: a.momentum,
                    dampening: 0.0,
                    weight_decay: a.weight_decay.unwrap_or(0.0),
                    nesterov: false,
                },
                OptimizerArg::Adam => OptimizerConfig::Adam {
                    lr: a.lr,
                    betas: (0.9, 0.999),
                    eps: 1e-8,
                    weight_decay: a.weight_decay.unwrap_or(0.0),
                },
                OptimizerArg::Adamw => OptimizerConfig::AdamW {
                    lr: a.lr,
                    betas: (0.9, 0.999),
                    eps: 1e-8,
                    weight_decay: a.weight_decay.unwrap_or(0.01),
                },
            };
            let (cell, proj_size, nonlinearity) = a.cell.resolve();
            let config = TrainConfig {
                cell,
                nonlinearity,
                proj_size,
                hidden_size: a.hidden,
                num_layers: a.layers,
                batch: a.batch,
                seq_len: a
                    .seq_len
                    .unwrap_or(if a.task == TaskArg::Adding { 50 } else { 64 }),
                optimizer,
                clip: (a.clip > 0.0).then_some(a.clip),
                skip_nonfinite: a.skip_nonfinite,
                seed: a.seed,
            };
            Trainer::new(&gpu, config, task, log_every)?
        }
    };
    let is_adding = matches!(trainer.task(), Task::Adding);
    // The defaults finish in about two minutes on a 2-core machine with lavapipe.
    let total = a.steps.unwrap_or(if is_adding { 500 } else { 400 });
    let c = trainer.config().clone();
    let task_line = match trainer.task() {
        Task::Chars(corpus) => format!(
            "character model, {} characters, vocabulary {}",
            corpus.tokens.len(),
            corpus.vocab.len()
        ),
        Task::Adding => format!(
            "adding problem, T = {} (always answering 1.0 scores MSE {:.3})",
            c.seq_len, ADDING_BASELINE_MSE
        ),
    };
    println!("adapter: {} ({:?})", gpu.info().name, gpu.info().backend);
    println!("task: {task_line}");
    let cell = match (c.cell, c.proj_size, c.nonlinearity) {
        (Cell::Rnn, _, Nonlinearity::Relu) => "RNN (relu)".to_string(),
        (Cell::Rnn, _, Nonlinearity::Tanh) => "RNN (tanh)".to_string(),
        (cell, 0, _) => cell.name().to_string(),
        (cell, p, _) => format!("{} (proj_size {p})", cell.name()),
    };
    println!(
        "model: {cell}, {} layer(s) × {} units, batch {} × {} steps, {} lr {}, clip {}",
        c.num_layers,
        c.hidden_size,
        c.batch,
        c.seq_len,
        c.optimizer.name(),
        c.optimizer.lr(),
        c.clip.map_or("off".into(), |v| v.to_string())
    );
    if trainer.step_count() > 0 {
        println!("resumed at step {}", trainer.step_count());
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    // Without a handler (e.g. one is already installed) Ctrl-C simply ends the process.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));

    // Plain lines where a bar would not be seen (a pipe, a log file, CI).
    let plain = a.quiet || !std::io::stdout().is_terminal();
    let bar = if plain {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise}, ETA {eta}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(trainer.step_count());
    let loss_name = if is_adding { "MSE" } else { "loss" };
    let start = Instant::now();
    let start_step = trainer.step_count();
    let mut first: Option<f32> = None;
    let mut last = None;
    let mut curve = Vec::new();
    while trainer.step_count() < total {
        trainer.step()?;
        let step = trainer.step_count();
        if trainer.step_count() % log_every as u64 == 0 || step == total {
            let m = trainer.metrics()?;
            first.get_or_insert(m.loss);
            last = Some(m);
            curve.push((step, m.loss));
            let rate = (step - start_step) as f64 * trainer.tokens_per_step() as f64
                / start.elapsed().as_secs_f64();
            let mut msg = format!(
                "{loss_name} {:.4} | {:.0} tok/s | grad norm {:.3} | clipped {:.0}%",
                m.loss,
                rate,
                m.grad_norm,
                m.clip_rate * 100.0
            );
            if m.skipped > 0 {
                msg += &format!(" | skipped {} non-finite", m.skipped);
            }
            if plain {
                let done = (step - start_step) as f64;
                let left = start.elapsed().as_secs_f64() / done.max(1.0) * (total - step) as f64;
                println!("step {step}: {msg} | ETA {}", eta(left));
            }
            bar.set_message(msg);
        }
        bar.set_position(step);
        if step % a.checkpoint_every.max(1) == 0 {
            trainer.save_checkpoint(&a.checkpoint)?;
        }
        if interrupted.load(Ordering::SeqCst) {
            trainer.save_checkpoint(&a.checkpoint)?;
            bar.abandon();
            println!(
                "interrupted at step {step}: checkpoint saved to {} (continue with --resume)",
                a.checkpoint.display()
            );
            return Ok(ExitCode::from(130));
        }
    }
    trainer.save_checkpoint(&a.checkpoint)?;
    bar.finish();
    let elapsed = start.elapsed().as_secs_f64();
    let steps_run = trainer.step_count() - start_step;
    println!(
        "done: {steps_run} steps in {elapsed:.1} s, {:.0} tokens/s",
        steps_run as f64 * trainer.tokens_per_step() as f64 / elapsed.max(1e-9)
    );
    if let (Some(first), Some(last)) = (first, last) {
        println!("{loss_name}: first {log_every} steps {first:.4} → last {log_every} steps {:.4} (final step {:.4})", last.loss, last.last_loss);
        if is_adding {
            println!(
                "baseline (always 1.0): {ADDING_BASELINE_MSE:.4}; {}",
                if last.loss < ADDING_BASELINE_MSE / 10.0 {
                    "learned"
                } else {
                    "not (yet) better than 10× below the baseline"
                }
            );
        }
    }
    let picks: Vec<String> = curve
        .iter()
        .step_by((curve.len() / 8).max(1))
        .map(|(s, l)| format!("{s}:{l:.3}"))
        .collect();
    println!("curve (step:{loss_name}): {}", picks.join(" "));
    println!("checkpoint: {}", a.checkpoint.display());
    Ok(ExitCode::SUCCESS)
}

/// Seconds left as the progress lines show them: `45s`, `3m05s`, `1h02m`.
fn eta(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn eta_reads_as_a_duration() {
        assert_eq!(super::eta(44.6), "45s");
        assert_eq!(super::eta(185.0), "3m05s");
        assert_eq!(super::eta(3720.0), "1h02m");
    }
}
