//! `wgpu-lstm check`: forward, backward and clipping on the GPU against the f64 reference,
//! for any cell.

use super::options::CellArgs;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Instant;
use wgpu_lstm::reference::{self, StackInputs, StackShape};
use wgpu_lstm::{Gpu, Lstm, LstmConfig, OutputGrads, Tensor};

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
    #[command(flatten)]
    cell: CellArgs,
    /// Adapter to use: a case-insensitive part of its name (see `devices`).
    #[arg(long)]
    device: Option<String>,
}

/// Tolerances of the check, as in the test suite: f32 against f64 for dot products of up to
/// this many terms; longer ones round more, like the square root of their length.
const FORWARD_TOL: f64 = 1e-5;
const GRAD_TOL: f64 = 1e-4;
const TOL_TERMS: f64 = 257.0;

pub(crate) fn run(a: &CheckArgs) -> wgpu_lstm::Result<ExitCode> {
    let (t, b, n_in, n_h) = (a.seq_len, a.batch, a.input, a.hidden);
    // The f64 reference runs on the host: keep the problem to what it does in minutes.
    let work = [t, b, n_in.max(n_h), n_h]
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d));
    if t == 0 || b == 0 || work.is_none_or(|w| w > 1 << 32) {
        return Err(wgpu_lstm::Error::Invalid(format!(
            "check needs T, B ≥ 1 and T·B·max(I,H)·H ≤ 2^32 (the host reference must finish); got T={t} B={b} I={n_in} H={n_h}"
        )));
    }
    let (cell, proj_size, nonlinearity) = a.cell.resolve();
    let config = LstmConfig::new(n_in, n_h)
        .with_cell(cell)
        .with_proj_size(proj_size)
        .with_nonlinearity(nonlinearity)
        .with_seed(a.seed);
    config.validate()?;
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    println!("adapter: {} ({:?})", gpu.info().name, gpu.info().backend);
    let lstm = Lstm::new(&gpu, config)?;
    let r = config.output_size();
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed.wrapping_add(1));
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..=1.0)).collect() };
    let (x, dy) = (random(t * b * n_in), random(t * b * r));
    let xt = Tensor::from_slice(&gpu, &[t, b, n_in], &x)?;
    let dyt = Tensor::from_slice(&gpu, &[t, b, r], &dy)?;

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
    let names = lstm.params().names();
    let grads: Vec<Vec<f32>> = names
        .iter()
        .map(|n| lstm.params().grad(n))
        .collect::<Result<_, _>>()?;
    let clip = lstm.params().clip_grad_norm(a.clip, false)?;
    let norm = clip.total_norm()?;
    let elapsed = start.elapsed();

    let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let params: HashMap<String, Vec<f64>> = names
        .iter()
        .map(|n| Ok((n.clone(), f64s(&lstm.params().get(n)?))))
        .collect::<wgpu_lstm::Result<_>>()?;
    let shape = StackShape::of(&config);
    let xr = f64s(&x);
    let inputs = StackInputs {
        x: &xr,
        steps: t,
        batch: b,
        lengths: None,
        h0: None,
        c0: None,
    };
    let fwd = reference::stack_forward(&shape, &params, &inputs);
    let want = reference::stack_backward(&shape, &params, &inputs, &f64s(&dy), None, None);
    let mut all: Vec<f64> = names.iter().flat_map(|n| want.params[n].clone()).collect();
    let clip_ref = reference::clip_grad_norm(&mut all, a.clip as f64);

    let widen = (n_in.max(n_h) as f64 / TOL_TERMS).sqrt().max(1.0);
    let mut ok = true;
    let mut report = |what: &str, err: f64, tol: f64| {
        let tol = tol * widen;
        let pass = err <= tol;
        ok &= pass;
        println!(
            "  {what:<16} max error {err:.2e}  (tolerance {tol:.1e}) {}",
            if pass { "ok" } else { "FAIL" }
        );
    };
    println!(
        "nn.{} T={t} B={b} I={n_in} H={n_h}{}: forward, backward, clip in {:.1} ms (wall, readbacks included)",
        cell.name(),
        if proj_size > 0 { format!(" P={proj_size}") } else { String::new() },
        elapsed.as_secs_f64() * 1e3
    );
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
    report("dx", scaled(&back.dx.to_vec()?, &want.x), GRAD_TOL);
    report("dh0", scaled(&back.dh0.to_vec()?, &want.h0), GRAD_TOL);
    report("dc0", scaled(&back.dc0.to_vec()?, &want.c0), GRAD_TOL);
    for (name, got) in names.iter().zip(&grads) {
        report(
            &format!("d{name}"),
            scaled(got, &want.params[name]),
            GRAD_TOL,
        );
    }
    report(
        "clip norm",
        (norm as f64 - clip_ref.total_norm).abs() / clip_ref.total_norm,
        1e-5,
    );
    let (recurrence, d) = lstm.dispatch_counts(t, b)?;
    println!(
        "dispatches ({} recurrence): forward {}, backward {}, clip {}; one submit each",
        recurrence.name(),
        d.forward,
        d.backward,
        d.clip
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
