//! The whole-model check of tests/stacked.rs (layers, directions, lengths, batch-first, both
//! cells; forward and backward against the f64 reference), on a given device.

use super::{assert_close, max_error_scaled, random, to_f64};
use std::collections::HashMap;
use wgpu_lstm::reference::{stack_backward, stack_forward, StackInputs, StackShape};
use wgpu_lstm::{ForwardOptions, Gpu, Lstm, LstmConfig, OutputGrads, Tensor};

/// Forward outputs: as in tests/forward.rs (f32 against f64, ≲ 1e-6 observed).
pub const FORWARD_TOL: f64 = 1e-5;
/// Gradients, relative to each tensor's largest entry: as in tests/backward.rs.
pub const GRAD_TOL: f64 = 1e-4;

/// One configuration and input size.
pub struct Case {
    pub config: LstmConfig,
    pub steps: usize,
    pub batch: usize,
    pub lengths: Option<Vec<usize>>,
}

async fn params_of(lstm: &Lstm) -> HashMap<String, Vec<f64>> {
    let p = lstm.params();
    let mut out = HashMap::new();
    for v in p.views() {
        out.insert(v.name.clone(), to_f64(&p.get_async(&v.name).await.unwrap()));
    }
    out
}

/// `[B, T, F]` → `[T, B, F]` (or back: the same swap of the first two axes).
fn swap01(a: &[f32], d0: usize, d1: usize, f: usize) -> Vec<f32> {
    let mut out = vec![0.0; a.len()];
    for i in 0..d0 {
        for j in 0..d1 {
            out[(j * d0 + i) * f..][..f].copy_from_slice(&a[(i * d1 + j) * f..][..f]);
        }
    }
    out
}

/// Runs `case` forward and backward on `gpu` and compares everything with the f64 reference.
#[cfg(not(target_arch = "wasm32"))]
pub fn check_on(gpu: &Gpu, case: &Case, seed: u64) {
    check_within(gpu, case, seed, (FORWARD_TOL, GRAD_TOL))
}

/// [`check_on`] with other tolerances (forward outputs, gradients), for cases whose f32
/// rounding grows beyond what the defaults allow (e.g. very long dot products).
#[cfg(not(target_arch = "wasm32"))]
pub fn check_within(gpu: &Gpu, case: &Case, seed: u64, tolerances: (f64, f64)) {
    pollster::block_on(check_within_async(gpu, case, seed, tolerances))
}

/// [`check_within`] as a future: the same check in the browser (tests/web.rs).
pub async fn check_within_async(
    gpu: &Gpu,
    case: &Case,
    seed: u64,
    (forward_tol, grad_tol): (f64, f64),
) {
    let c = case.config;
    let (steps, batch) = (case.steps, case.batch);
    let (n_h, r, dirs, layers) = (c.hidden_size, c.output_size(), c.directions(), c.num_layers);
    let label = format!(
        "{} {:?} P={} L={layers} D={dirs} bias={} batch_first={} T={steps} B={batch} I={} H={n_h} lengths={:?}",
        c.cell.name(), c.nonlinearity, c.proj_size, c.bias, c.batch_first, c.input_size, case.lengths
    );
    let lstm = Lstm::new(gpu, c.with_seed(seed)).unwrap();
    let upload = |shape: &[usize], data: &[f32]| Tensor::from_slice(gpu, shape, data).unwrap();
    let (h_states, c_states) = (layers * dirs * batch * r, layers * dirs * batch * n_h);
    let x = random(steps * batch * c.input_size, 1.0, seed + 1);
    let (h0, c0) = (
        random(h_states, 0.5, seed + 2),
        random(c_states, 1.0, seed + 3),
    );
    let dy = random(steps * batch * dirs * r, 1.0, seed + 4);
    let (dh_n, dc_n) = (
        random(h_states, 1.0, seed + 5),
        random(c_states, 1.0, seed + 6),
    );

    // The GPU sees batch-first tensors when configured; the reference is time-major.
    let to_gpu = |a: &[f32], f: usize| {
        if c.batch_first {
            swap01(a, steps, batch, f)
        } else {
            a.to_vec()
        }
    };
    let from_gpu = |a: &[f32], f: usize| {
        if c.batch_first {
            swap01(a, batch, steps, f)
        } else {
            a.to_vec()
        }
    };
    let seq_shape = |f: usize| {
        if c.batch_first {
            [batch, steps, f]
        } else {
            [steps, batch, f]
        }
    };
    let (h_shape, c_shape) = ([layers * dirs, batch, r], [layers * dirs, batch, n_h]);
    let xt = upload(&seq_shape(c.input_size), &to_gpu(&x, c.input_size));
    let (h0t, c0t) = (upload(&h_shape, &h0), upload(&c_shape, &c0));
    let out = lstm
        .run(
            &xt,
            &ForwardOptions {
                h0: Some(&h0t),
                c0: Some(&c0t),
                lengths: case.lengths.as_deref(),
                train: true,
            },
        )
        .unwrap();
    let dyt = upload(&seq_shape(dirs * r), &to_gpu(&dy, dirs * r));
    let (dhnt, dcnt) = (upload(&h_shape, &dh_n), upload(&c_shape, &dc_n));
    let grads = OutputGrads {
        dy: Some(&dyt),
        dh_n: Some(&dhnt),
        dc_n: Some(&dcnt),
    };
    let back = lstm
        .backward(out.cache.as_ref().unwrap(), &grads, false)
        .unwrap();

    let shape = StackShape::of(&c);
    let p = params_of(&lstm).await;
    let (xr, h0r, c0r) = (to_f64(&x), to_f64(&h0), to_f64(&c0));
    let inputs = StackInputs {
        x: &xr,
        steps,
        batch,
        lengths: case.lengths.as_deref(),
        h0: Some(&h0r),
        c0: Some(&c0r),
    };
    let want = stack_forward(&shape, &p, &inputs);
    let y = from_gpu(&out.y.to_vec_async().await.unwrap(), dirs * r);
    assert_close(&format!("{label} y"), &y, &want.y, forward_tol);
    assert_close(
        &format!("{label} h_n"),
        &out.h_n.to_vec_async().await.unwrap(),
        &want.h_n,
        forward_tol,
    );
    assert_close(
        &format!("{label} c_n"),
        &out.c_n.to_vec_async().await.unwrap(),
        &want.c_n,
        forward_tol,
    );

    let g = stack_backward(
        &shape,
        &p,
        &inputs,
        &to_f64(&dy),
        Some(&to_f64(&dh_n)),
        Some(&to_f64(&dc_n)),
    );
    let compare = |name: &str, got: &[f32], want: &[f64]| {
        let err = max_error_scaled(got, want);
        assert!(
            err <= grad_tol,
            "{label} d{name}: error {err:.3e} > {grad_tol:.0e}"
        );
    };
    compare(
        "x",
        &from_gpu(&back.dx.to_vec_async().await.unwrap(), c.input_size),
        &g.x,
    );
    compare("h0", &back.dh0.to_vec_async().await.unwrap(), &g.h0);
    compare("c0", &back.dc0.to_vec_async().await.unwrap(), &g.c0);
    for v in lstm.params().views() {
        let grad = lstm.params().grad_async(&v.name).await.unwrap();
        compare(&v.name, &grad, &g.params[&v.name]);
    }
}
