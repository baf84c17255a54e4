//! `wgpu-lstm check`: forward, backward and clipping on the GPU against the f64 reference.

use rand::{Rng, SeedableRng};
use std::process::ExitCode;
use std::time::Instant;
use wgpu_lstm::reference::{self, LstmParams};
use wgpu_lstm::{DispatchCounts, Gpu, Lstm, LstmConfig, OutputGrads, Tensor};

#[derive(clap::Args)]
pub(crate) struct CheckArgs {
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

const FORWARD_TOL: f64 = 1e-5;
const GRAD_TOL: f64 = 1e-4;

pub(crate) fn run(a: &CheckArgs) -> wgpu_lstm::Result<ExitCode> {
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
        weight_hr: None,
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
