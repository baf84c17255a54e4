//! The `wgpu-lstm` command line. Until training lands, the main job is `check`: run the GPU
//! forward, backward and clipping on random data and compare every result with the f64 reference.

use clap::{Parser, Subcommand};
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use wgpu_lstm::io::{read_tensors, write_tensors, HostTensor, TensorMap};
use wgpu_lstm::reference::{self, LstmParams};
use wgpu_lstm::{gpu, DispatchCounts, ForwardOptions, Gpu, Lstm, LstmConfig, OutputGrads, Tensor};

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
    /// List the GPU adapters wgpu sees, with the limits and features that matter here.
    Devices,
    /// Run forward, backward and gradient clipping on the GPU and check them against the f64
    /// reference (exit status 1 if any error exceeds its tolerance).
    Check(CheckArgs),
    /// Run a PyTorch nn.LSTM state dict on inputs from a safetensors file; optionally backward
    /// and gradient clipping too. Writes the results as safetensors.
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
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed.wrapping_add(1));
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..=1.0)).collect() };
    let (x, dy) = (random(t * b * n_in), random(t * b * n_h));
    let xt = Tensor::from_slice(&gpu, &[t, b, n_in], &x)?;
    let dyt = Tensor::from_slice(&gpu, &[t, b, n_h], &dy)?;

    let start = Instant::now();
    let out = lstm.forward_train(&xt, None, None)?;
    let cache = out.cache.as_ref().expect("forward_train keeps a cache");
    lstm.backward(
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
    put(&mut results, "y".into(), &out.y)?;
    put(&mut results, "h_n".into(), &out.h_n)?;
    put(&mut results, "c_n".into(), &out.c_n)?;
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
        put(&mut results, "grad.c0".into(), &back.dc0)?;
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
        "{}: nn.LSTM({}, {}, num_layers={}, bias={}, bidirectional={}) on x {:?} → {} tensors in {}",
        gpu.info().name,
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
