//! The `wgpu-lstm` command line: `train` (the main job), `sample`, `infer`, `check`, `devices`.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use wgpu_lstm::bench::{
    json as bench_json, measure, table as bench_table, BenchSize, Mode, SMOKE_SIZES, STANDARD_SIZES,
};
use wgpu_lstm::io::{read_tensors, write_tensors, HostTensor, TensorMap};
use wgpu_lstm::lab::{run_lab, LabConfig};
use wgpu_lstm::reference::{self, LstmParams};
use wgpu_lstm::train::{
    CharCorpus, Checkpoint, OptimizerConfig, Task, TrainConfig, Trainer, ADDING_BASELINE_MSE,
    BUILTIN_TEXT,
};
use wgpu_lstm::{
    gpu, Cell, DispatchCounts, ForwardOptions, Gpu, Lstm, LstmConfig, OutputGrads, Tensor,
};

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
    Train(TrainArgs),
    /// Generate text from a character-model checkpoint.
    Sample(SampleArgs),
    /// The lecture's experiment: measure how the gradient of a loss at the last step flows back
    /// through time in an LSTM and a vanilla RNN; writes a CSV, an SVG plot and a summary.
    Gradflow(GradflowArgs),
    /// Time inference and training (forward + backward + clip) at standard sizes; prints a
    /// table (or JSON) with ms per call, µs per step, GFLOP/s, dispatches per step and memory.
    Bench(BenchArgs),
    /// List the GPU adapters wgpu sees, with the limits and features that matter here.
    Devices,
    /// Run forward, backward and gradient clipping on the GPU and check them against the f64
    /// reference (exit status 1 if any error exceeds its tolerance).
    Check(CheckArgs),
    /// Run a PyTorch nn.LSTM (or nn.RNN) state dict on inputs from a safetensors file;
    /// optionally backward and gradient clipping too. Writes the results as safetensors.
    Infer(InferArgs),
}

#[derive(clap::Args)]
struct InferArgs {
    /// The state dict: `safetensors.torch.save_file(lstm.state_dict(), PATH)`.
    #[arg(long)]
    weights: PathBuf,
    /// Inputs: `x` [T,B,I] float32 (or [B,T,I] with --batch-first), optional `h0`, `c0`
    /// [L·D,B,H], optional `lengths` [B] (int32 or int64).
    #[arg(long)]
    input: PathBuf,
    /// Where to write `y`, `h_n`, `c_n` (and the gradients). Written atomically.
    #[arg(long)]
    output: PathBuf,
    /// Gradients of the outputs: `dy` (shaped like y), optional `dh_n`, `dc_n`. Runs the backward
    /// pass and writes `grad.x`, `grad.h0`, `grad.c0` and `grad.<parameter>`.
    #[arg(long)]
    grad_output: Option<PathBuf>,
    /// With --grad-output: clip the gradients to this global L2 norm and write `clip.total_norm`
    /// and `clipped.<parameter>`.
    #[arg(long, requires = "grad_output")]
    clip: Option<f32>,
    /// Sequences are [B, T, F] (the module's batch_first=True).
    #[arg(long)]
    batch_first: bool,
    /// Adapter to use: a case-insensitive part of its name (see `devices`).
    #[arg(long)]
    device: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TaskArg {
    /// Next-character prediction on a text (built in, or --text FILE).
    Chars,
    /// The adding problem (Hochreiter & Schmidhuber 1997).
    Adding,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CellArg {
    Lstm,
    Rnn,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OptimizerArg {
    Sgd,
    Adam,
    Adamw,
}

#[derive(clap::Args)]
struct TrainArgs {
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
    /// The recurrent cell: the LSTM, or the vanilla tanh RNN it is compared with.
    #[arg(long, value_enum, default_value_t = CellArg::Lstm)]
    cell: CellArg,
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
    /// No progress bar, one line per --log-every steps instead.
    #[arg(long)]
    quiet: bool,
    /// Adapter to use: a case-insensitive part of its name (see `devices`).
    #[arg(long)]
    device: Option<String>,
}

#[derive(clap::Args)]
struct SampleArgs {
    /// A checkpoint written by `train --task chars`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Text to start from (characters must be in the model's vocabulary).
    #[arg(long, default_value = "\n")]
    prompt: String,
    /// Softmax temperature; 0 always takes the most likely character.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Characters to generate.
    #[arg(long, default_value_t = 300)]
    length: usize,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Adapter to use.
    #[arg(long)]
    device: Option<String>,
}

#[derive(clap::Args)]
struct GradflowArgs {
    /// Timesteps T.
    #[arg(long, default_value_t = 100)]
    seq_len: usize,
    /// Hidden units of both models.
    #[arg(long, default_value_t = 32)]
    hidden: usize,
    /// Added to the LSTM's forget-gate bias (e.g. 5: gates saturated open).
    #[arg(long, default_value_t = 0.0)]
    forget_bias: f32,
    /// Multiplies the recurrent weights of both models.
    #[arg(long, default_value_t = 1.0)]
    recurrent_scale: f32,
    /// Multiplies the LSTM's output-gate block W_o of weight_hh (the exploding case).
    #[arg(long, default_value_t = 1.0)]
    output_gate_scale: f32,
    /// max_norm of the clipping demonstrated at the end.
    #[arg(long, default_value_t = 1.0)]
    clip: f32,
    /// Seed of weights, inputs and the loss gradient.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder for gradflow.csv, gradflow.svg and summary.txt.
    #[arg(long, default_value = "gradflow")]
    out: PathBuf,
    /// Adapter to use.
    #[arg(long)]
    device: Option<String>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Sizes as TxBxIxH (repeatable) [default: 100x64x512x512 100x64x1024x1024 100x1x512x512
    /// 150x16x256x256 25x64x512x512].
    #[arg(long = "size")]
    sizes: Vec<String>,
    /// Tiny sizes for a smoke run on a software rasteriser.
    #[arg(long)]
    smoke: bool,
    /// Timed calls per size and mode (the median is reported).
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Untimed calls first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Print JSON (the schema of benches/pytorch_baseline.py) instead of the table.
    #[arg(long)]
    json: bool,
    /// Adapter to use.
    #[arg(long)]
    device: Option<String>,
    /// Tiling of the recurrent step kernels: auto, wide, narrow, split or wide-split (see the
    /// README's portability notes) [default: $WGPU_LSTM_TILING, else auto].
    #[arg(long)]
    tiling: Option<String>,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Timesteps T.
    #[arg(long, default_value_t = 50)]
    seq_len: usize,
    /// Batch size B.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Input features I.
    #[arg(long, default_value_t = 33)]
    input: usize,
    /// Hidden units H.
    #[arg(long, default_value_t = 65)]
    hidden: usize,
    /// Gradient-clipping threshold (max_norm).
    #[arg(long, default_value_t = 1.0)]
    clip: f32,
    /// Seed of weights and data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Adapter to use: a case-insensitive part of its name (see `devices`).
    #[arg(long)]
    device: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train(&args),
        Command::Sample(args) => sample(&args),
        Command::Gradflow(args) => gradflow(&args),
        Command::Bench(args) => bench(&args),
        Command::Devices => devices(),
        Command::Check(args) => check(&args),
        Command::Infer(args) => infer(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn devices() -> wgpu_lstm::Result<ExitCode> {
    let adapters = gpu::list_adapters();
    if adapters.is_empty() {
        return Err(wgpu_lstm::Error::NoAdapter {
            detail: String::new(),
        });
    }
    for a in adapters {
        let (i, l) = (&a.info, &a.limits);
        println!(
            "{} ({:?}, {:?}) driver: {} {}",
            i.name, i.backend, i.device_type, i.driver, i.driver_info
        );
        println!(
            "  max_storage_buffer_binding_size  {}",
            l.max_storage_buffer_binding_size
        );
        println!("  max_buffer_size                  {}", l.max_buffer_size);
        println!(
            "  max_storage_buffers_per_stage    {}",
            l.max_storage_buffers_per_shader_stage
        );
        println!(
            "  max_compute_workgroups_per_dim   {}",
            l.max_compute_workgroups_per_dimension
        );
        println!(
            "  max_compute_invocations_per_wg   {}",
            l.max_compute_invocations_per_workgroup
        );
        println!(
            "  max_compute_workgroup_storage    {}",
            l.max_compute_workgroup_storage_size
        );
        println!(
            "  timestamp queries                {}",
            a.features.contains(wgpu::Features::TIMESTAMP_QUERY)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Tolerances of the check, as in the test suite: f32 against f64.
const FORWARD_TOL: f64 = 1e-5;
const GRAD_TOL: f64 = 1e-4;

fn check(a: &CheckArgs) -> wgpu_lstm::Result<ExitCode> {
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    println!("adapter: {} ({:?})", gpu.info().name, gpu.info().backend);
    let (t, b, n_in, n_h) = (a.seq_len, a.batch, a.input, a.hidden);
    let lstm = Lstm::new(&gpu, LstmConfig::new(n_in, n_h).with_seed(a.seed))?;
    // The f64 reference runs on the host: keep the problem to what it does in minutes.
    let work = [t, b, n_in.max(n_h), n_h]
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d));
    if t == 0 || b == 0 || work.is_none_or(|w| w > 1 << 32) {
        return Err(wgpu_lstm::Error::Invalid(format!(
            "check needs T, B ≥ 1 and T·B·max(I,H)·H ≤ 2^32 (the host reference must finish); got T={t} B={b} I={n_in} H={n_h}"
        )));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed.wrapping_add(1));
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..=1.0)).collect() };
    let (x, dy) = (random(t * b * n_in), random(t * b * n_h));
    let xt = Tensor::from_slice(&gpu, &[t, b, n_in], &x)?;
    let dyt = Tensor::from_slice(&gpu, &[t, b, n_h], &dy)?;

    let start = Instant::now();
    let out = lstm.forward_train(&xt, None, None)?;
    let cache = out.cache.as_ref().expect("forward_train keeps a cache");
    let back = lstm.backward(
        cache,
        &OutputGrads {
            dy: Some(&dyt),
            ..Default::default()
        },
        false,
    )?;
    let grads: Vec<Vec<f32>> = names()
        .iter()
        .map(|n| lstm.params().grad(n))
        .collect::<Result<_, _>>()?;
    let clip = lstm.params().clip_grad_norm(a.clip, false)?;
    let norm = clip.total_norm()?;
    let elapsed = start.elapsed();

    let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let get = |n: &str| lstm.params().get(n).map(|v| f64s(&v));
    let p = LstmParams {
        input_size: n_in,
        hidden_size: n_h,
        weight_ih: get("weight_ih_l0")?,
        weight_hh: get("weight_hh_l0")?,
        bias_ih: get("bias_ih_l0")?,
        bias_hh: get("bias_hh_l0")?,
    };
    let fwd = reference::lstm_forward(&p, &f64s(&x), t, b, None, None);
    let want = reference::lstm_backward(&p, &f64s(&x), &fwd, &f64s(&dy), None, None);
    let mut all: Vec<f64> = [
        &want.weight_ih,
        &want.weight_hh,
        &want.bias_ih,
        &want.bias_hh,
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect();
    let clip_ref = reference::clip_grad_norm(&mut all, a.clip as f64);

    let mut ok = true;
    let mut report = |what: &str, err: f64, tol: f64| {
        let pass = err <= tol;
        ok &= pass;
        println!(
            "  {what:<14} max error {err:.2e}  (tolerance {tol:.0e}) {}",
            if pass { "ok" } else { "FAIL" }
        );
    };
    println!("T={t} B={b} I={n_in} H={n_h}: forward, backward, clip in {:.1} ms (wall, readbacks included)", elapsed.as_secs_f64() * 1e3);
    report("y", elementwise(&out.y.to_vec()?, &fwd.y), FORWARD_TOL);
    report(
        "h_n",
        elementwise(&out.h_n.to_vec()?, &fwd.h_n),
        FORWARD_TOL,
    );
    report(
        "c_n",
        elementwise(&out.c_n.to_vec()?, &fwd.c_n),
        FORWARD_TOL,
    );
    let wants = [
        &want.weight_ih,
        &want.weight_hh,
        &want.bias_ih,
        &want.bias_hh,
    ];
    report("dx", scaled(&back.dx.to_vec()?, &want.x), GRAD_TOL);
    report("dh0", scaled(&back.dh0.to_vec()?, &want.h0), GRAD_TOL);
    report("dc0", scaled(&back.dc0.to_vec()?, &want.c0), GRAD_TOL);
    for ((name, got), w) in names().iter().zip(&grads).zip(wants) {
        report(&format!("d{name}"), scaled(got, w), GRAD_TOL);
    }
    report(
        "clip norm",
        (norm as f64 - clip_ref.total_norm).abs() / clip_ref.total_norm,
        1e-5,
    );
    let d = DispatchCounts::for_steps(t);
    println!(
        "dispatches: forward {} (1 GEMM + {t} steps), backward {} ({t} steps + dh0 + 4 GEMMs + bias sum), clip {}; one submit each",
        d.forward, d.backward, d.clip
    );
    println!(
        "gradient norm {norm:.4} → coefficient {:.4}",
        clip.coefficient()?
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn names() -> [&'static str; 4] {
    ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
}

fn elementwise(got: &[f32], want: &[f64]) -> f64 {
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).abs() / w.abs().max(1.0))
        .fold(0.0, f64::max)
}

fn scaled(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(f64::MIN_POSITIVE, |m, w| m.max(w.abs()));
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).abs() / scale)
        .fold(0.0, f64::max)
}

fn infer(a: &InferArgs) -> wgpu_lstm::Result<ExitCode> {
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    let lstm = Lstm::load(&gpu, &a.weights, a.batch_first)?;
    let inputs = read_tensors(&a.input)?;
    let grad_file = a.grad_output.as_deref().map(read_tensors).transpose()?;
    let known = ["x", "h0", "c0", "lengths"];
    if let Some(extra) = inputs.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(wgpu_lstm::Error::Invalid(format!(
            "{}: unexpected tensor `{extra}` (expected x, h0, c0, lengths)",
            a.input.display()
        )));
    }
    let upload = |map: &TensorMap, key: &str| -> wgpu_lstm::Result<Option<Tensor>> {
        map.get(key)
            .map(|t| Tensor::from_slice(&gpu, &t.shape, t.as_f32(key)?))
            .transpose()
    };
    let x = upload(&inputs, "x")?.ok_or_else(|| {
        wgpu_lstm::Error::Invalid(format!("{}: no tensor `x`", a.input.display()))
    })?;
    let (h0, c0) = (upload(&inputs, "h0")?, upload(&inputs, "c0")?);
    let lengths = inputs
        .get("lengths")
        .map(|t| t.as_indices("lengths"))
        .transpose()?;
    let out = lstm.run(
        &x,
        &ForwardOptions {
            h0: h0.as_ref(),
            c0: c0.as_ref(),
            lengths: lengths.as_deref(),
            train: grad_file.is_some(),
        },
    )?;
    let mut results = TensorMap::new();
    let put = |results: &mut TensorMap, name: String, t: &Tensor| -> wgpu_lstm::Result<()> {
        results.insert(name, HostTensor::f32(t.shape(), t.to_vec()?));
        Ok(())
    };
    // nn.RNN has no cell state: no c_n, c0 or their gradients.
    let lstm_cell = lstm.config().cell == Cell::Lstm;
    put(&mut results, "y".into(), &out.y)?;
    put(&mut results, "h_n".into(), &out.h_n)?;
    if lstm_cell {
        put(&mut results, "c_n".into(), &out.c_n)?;
    }
    if let (Some(g), Some(cache)) = (&grad_file, &out.cache) {
        let (dy, dh_n, dc_n) = (upload(g, "dy")?, upload(g, "dh_n")?, upload(g, "dc_n")?);
        let grads = OutputGrads {
            dy: dy.as_ref(),
            dh_n: dh_n.as_ref(),
            dc_n: dc_n.as_ref(),
        };
        let back = lstm.backward(cache, &grads, false)?;
        put(&mut results, "grad.x".into(), &back.dx)?;
        put(&mut results, "grad.h0".into(), &back.dh0)?;
        if lstm_cell {
            put(&mut results, "grad.c0".into(), &back.dc0)?;
        }
        let names: Vec<String> = lstm
            .params()
            .views()
            .iter()
            .map(|v| v.name.clone())
            .collect();
        for n in &names {
            put(
                &mut results,
                format!("grad.{n}"),
                &lstm.params().grad_tensor(n)?,
            )?;
        }
        if let Some(max_norm) = a.clip {
            let clip = lstm.params().clip_grad_norm(max_norm, false)?;
            results.insert(
                "clip.total_norm".into(),
                HostTensor::f32(&[1], vec![clip.total_norm()?]),
            );
            for n in &names {
                put(
                    &mut results,
                    format!("clipped.{n}"),
                    &lstm.params().grad_tensor(n)?,
                )?;
            }
        }
    }
    write_tensors(&a.output, &results)?;
    let c = lstm.config();
    println!(
        "{}: nn.{:?}({}, {}, num_layers={}, bias={}, bidirectional={}) on x {:?} → {} tensors in {}",
        gpu.info().name,
        c.cell,
        c.input_size,
        c.hidden_size,
        c.num_layers,
        c.bias,
        c.bidirectional,
        x.shape(),
        results.len(),
        a.output.display()
    );
    Ok(ExitCode::SUCCESS)
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

fn train(a: &TrainArgs) -> wgpu_lstm::Result<ExitCode> {
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    let text = read_text(&a.text)?;
    let log_every = a.log_every.max(1);
    let mut trainer = match &a.resume {
        Some(path) => {
            let checkpoint = Checkpoint::read(path, Some(&text))?;
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
            let config = TrainConfig {
                cell: if a.cell == CellArg::Rnn {
                    Cell::Rnn
                } else {
                    Cell::Lstm
                },
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
    println!(
        "model: {:?}, {} layer(s) × {} units, batch {} × {} steps, {} lr {}, clip {}",
        c.cell,
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

    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise}] {msg}")
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
            let msg = format!(
                "{loss_name} {:.4} | {:.0} tok/s | grad norm {:.3} | clipped {:.0}%",
                m.loss,
                rate,
                m.grad_norm,
                m.clip_rate * 100.0
            );
            if a.quiet {
                println!("step {step}: {msg}");
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

fn sample(a: &SampleArgs) -> wgpu_lstm::Result<ExitCode> {
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    let checkpoint = Checkpoint::read(&a.checkpoint, None)?;
    let vocab = checkpoint
        .vocab()
        .ok_or_else(|| {
            wgpu_lstm::Error::Invalid(format!(
                "{} is not a character model",
                a.checkpoint.display()
            ))
        })?
        .to_vec();
    let trainer = Trainer::resume(&gpu, &checkpoint, 1)?;
    let prompt = a.prompt.replace("\\n", "\n");
    let tokens = CharCorpus::with_vocab(&prompt, vocab.clone())?.tokens;
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    let generated = trainer
        .model()
        .generate(&tokens, a.length, a.temperature, &mut rng)?;
    let text: String = generated.iter().map(|&t| vocab[t as usize]).collect();
    println!("{prompt}{text}");
    Ok(ExitCode::SUCCESS)
}

fn gradflow(a: &GradflowArgs) -> wgpu_lstm::Result<ExitCode> {
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    let config = LabConfig {
        seq_len: a.seq_len,
        hidden: a.hidden,
        forget_bias: a.forget_bias,
        recurrent_scale: a.recurrent_scale,
        output_gate_scale: a.output_gate_scale,
        clip: a.clip,
        seed: a.seed,
        ..LabConfig::default()
    };
    let start = Instant::now();
    let result = run_lab(&gpu, &config)?;
    result.write(&a.out)?;
    print!("{}", result.summary());
    println!(
        "\nwrote {0}/gradflow.csv, {0}/gradflow.svg, {0}/summary.txt in {1:.1} s on {2}",
        a.out.display(),
        start.elapsed().as_secs_f64(),
        gpu.info().name
    );
    Ok(ExitCode::SUCCESS)
}

fn bench(a: &BenchArgs) -> wgpu_lstm::Result<ExitCode> {
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    if let Some(name) = &a.tiling {
        let tiling = wgpu_lstm::StepTiling::parse(name).ok_or_else(|| {
            wgpu_lstm::Error::Invalid(format!(
                "--tiling {name}: expected auto, wide, narrow, split or wide-split"
            ))
        })?;
        gpu.set_step_tiling(tiling);
    }
    let sizes: Vec<BenchSize> = if !a.sizes.is_empty() {
        a.sizes
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?
    } else if a.smoke {
        SMOKE_SIZES.to_vec()
    } else {
        STANDARD_SIZES.to_vec()
    };
    if a.iters == 0 {
        return Err(wgpu_lstm::Error::Invalid(
            "--iters must be at least 1".into(),
        ));
    }
    let info = gpu.info();
    let device = format!(
        "{} ({:?}, {}), step tiling {:?}",
        info.name,
        info.backend,
        info.driver_info,
        gpu.step_tiling()
    );
    let mut rows = Vec::new();
    for size in &sizes {
        for mode in [Mode::Inference, Mode::Training] {
            let row = measure(&gpu, *size, mode, a.warmup, a.iters)?;
            if !a.json {
                eprintln!("{size} {mode}: {:.3} ms", row.ms);
            }
            rows.push(row);
        }
    }
    if a.json {
        print!("{}", bench_json(&device, &rows));
    } else {
        println!("device: {device}");
        println!("GFLOP/s counts forward 2·T·B·4H·(I+H), training 3× that; median of {} calls after {} warm-up\n", a.iters, a.warmup);
        print!("{}", bench_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}
