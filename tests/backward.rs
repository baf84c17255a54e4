//! GPU backward pass (BPTT) against the f64 reference.

mod common;

use common::*;
use wgpu_lstm::reference::{lstm_backward, lstm_forward};
use wgpu_lstm::{Lstm, LstmConfig, OutputGrads};

/// Gradients sum T·B products per weight entry and carry dc through T steps; f32 accumulation
/// over K terms errs by about √K·2⁻²⁴ of the terms' scale. 1e-4 of each tensor's largest entry
/// covers K up to ~10⁴ with margin; a wrong index or a missing term is off by ≳ 1e-2.
const TOL: f64 = 1e-4;

const NAMES: [&str; 4] = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"];

struct Setup {
    steps: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    seed: u64,
    /// Exploding case: gates held open (i, o ≈ 1, f ≈ 0), the candidate's recurrent block set to
    /// `gain`·I and inputs tiny, so that h_t ≈ tanh(gain · h_{t-1}) stays in the linear regime
    /// and ∂h_t/∂h_{t-1} ≈ gain: the gradient grows like gainᵀ backwards in time. (This is the
    /// case that exposed the inaccuracy of a driver's builtin tanh near 0; see activations.wgsl.)
    linear_gain: Option<f32>,
    /// Added to the forget gate's bias (persistent case).
    forget_bias: f32,
    /// Loss on every output (dy) or only on the final state (dh_n, dc_n).
    every_step: bool,
}

impl Setup {
    fn new(steps: usize, batch: usize, input: usize, hidden: usize, seed: u64) -> Setup {
        Setup {
            steps,
            batch,
            input,
            hidden,
            seed,
            linear_gain: None,
            forget_bias: 0.0,
            every_step: true,
        }
    }

    /// Runs both; returns the largest scaled error over all gradients and the reference's
    /// gradient norms (‖dh0‖, ‖dc0‖).
    fn check(&self) -> (f64, f64, f64) {
        let (steps, batch, input, hidden, seed) =
            (self.steps, self.batch, self.input, self.hidden, self.seed);
        let lstm = Lstm::new(gpu(), LstmConfig::new(input, hidden).with_seed(seed)).unwrap();
        let arena = lstm.params();
        let mut b = arena.get("bias_hh_l0").unwrap();
        b[hidden..2 * hidden]
            .iter_mut()
            .for_each(|v| *v += self.forget_bias);
        arena.set("bias_hh_l0", &b).unwrap();
        let mut x_scale = 1.0;
        if let Some(gain) = self.linear_gain {
            let mut w = random(4 * hidden * hidden, 0.01, seed + 7);
            for j in 0..hidden {
                w[(2 * hidden + j) * hidden + j] += gain;
            }
            arena.set("weight_hh_l0", &w).unwrap();
            let gate_bias = [5.0, -5.0, 0.0, 5.0];
            let b: Vec<f32> = (0..4 * hidden).map(|r| gate_bias[r / hidden]).collect();
            arena.set("bias_hh_l0", &b).unwrap();
            arena.set("bias_ih_l0", &vec![0.0; 4 * hidden]).unwrap();
            x_scale = 1e-9; // h_T ≈ 1.4⁴⁰·1e-9 ≈ 1e-3: linear over the whole sequence
        }

        let bh = batch * hidden;
        let x = random(steps * batch * input, x_scale, seed + 1);
        let h0 = random(bh, 0.5 * x_scale, seed + 2);
        let c0 = random(bh, x_scale, seed + 3);
        let dy = random(steps * bh, 1.0, seed + 4);
        let dh_n = random(bh, 1.0, seed + 5);
        let dc_n = random(bh, 1.0, seed + 6);
        let state = [1, batch, hidden];
        let (xt, h0t, c0t) = (
            upload(&[steps, batch, input], &x),
            upload(&state, &h0),
            upload(&state, &c0),
        );
        let (dyt, dhnt, dcnt) = (
            upload(&[steps, batch, hidden], &dy),
            upload(&state, &dh_n),
            upload(&state, &dc_n),
        );

        let out = lstm.forward_train(&xt, Some(&h0t), Some(&c0t)).unwrap();
        let grads = OutputGrads {
            dy: self.every_step.then_some(&dyt),
            dh_n: Some(&dhnt),
            dc_n: Some(&dcnt),
        };
        let back = lstm
            .backward(out.cache.as_ref().unwrap(), &grads, false)
            .unwrap();

        let p = reference_params(&lstm);
        let (xr, h0r, c0r) = (to_f64(&x), to_f64(&h0), to_f64(&c0));
        let fwd = lstm_forward(&p, &xr, steps, batch, Some(&h0r), Some(&c0r));
        let dy_r = if self.every_step {
            to_f64(&dy)
        } else {
            vec![0.0; steps * bh]
        };
        let want = lstm_backward(
            &p,
            &xr,
            &fwd,
            &dy_r,
            Some(&to_f64(&dh_n)),
            Some(&to_f64(&dc_n)),
        );

        let label = format!("T={steps} B={batch} I={input} H={hidden}");
        let mut worst: f64 = 0.0;
        let mut compare = |name: &str, got: Vec<f32>, want: &[f64]| {
            let err = max_error_scaled(&got, want);
            assert!(err <= TOL, "{label} {name}: error {err:.3e} > {TOL:.0e}");
            worst = worst.max(err);
        };
        compare("dx", back.dx.to_vec().unwrap(), &want.x);
        compare("dh0", back.dh0.to_vec().unwrap(), &want.h0);
        compare("dc0", back.dc0.to_vec().unwrap(), &want.c0);
        let wants = [
            &want.weight_ih,
            &want.weight_hh,
            &want.bias_ih,
            &want.bias_hh,
        ];
        for (name, w) in NAMES.iter().zip(wants) {
            compare(name, arena.grad(name).unwrap(), w);
        }
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        (worst, norm(&want.h0), norm(&want.c0))
    }
}

#[test]
fn gradients_match_reference_on_awkward_shapes() {
    let shapes = [
        (1, 1, 1, 1),
        (1, 3, 7, 13),
        (3, 1, 13, 7),
        (7, 3, 3, 33),
        (5, 13, 33, 3),
        (2, 17, 5, 17),
        (3, 2, 257, 13),
        (2, 3, 7, 257),
    ];
    let mut worst: f64 = 0.0;
    for (i, &(t, b, n_in, n_h)) in shapes.iter().enumerate() {
        worst = worst.max(Setup::new(t, b, n_in, n_h, 200 + i as u64).check().0);
    }
    eprintln!("worst scaled gradient error: {worst:.3e}");
}

#[test]
fn long_sequence_with_large_forget_bias_keeps_gradients() {
    let mut s = Setup::new(200, 2, 3, 9, 31);
    s.forget_bias = 5.0;
    s.every_step = false; // loss on the final state only: the gradient must travel 200 steps
    let (err, _, dc0) = s.check();
    eprintln!("T=200 forget bias +5: error {err:.3e}, |dc0| = {dc0:.3e}");
    // dc_n has norm ≈ √(B·H/3) ≈ 2.4; with f ≈ σ(5) the cell path keeps ≈ 0.993²⁰⁰ ≈ 0.25 of it.
    assert!(
        dc0 > 0.1,
        "the gradient should persist along the cell path, |dc0| = {dc0}"
    );
}

#[test]
fn stiff_recurrent_weights_with_growing_gradients() {
    // Gain 1.4 per step over 40 steps: ‖dh0‖ ≈ 1.4⁴⁰·‖dh_n‖ ≈ 10⁶. The comparison is relative to
    // each tensor's largest entry, so it checks the large, growing entries.
    let mut s = Setup::new(40, 3, 4, 11, 57);
    s.linear_gain = Some(1.4);
    s.every_step = false;
    let (err, dh0, _) = s.check();
    eprintln!("stiff: error {err:.3e}, |dh0| = {dh0:.3e}");
    assert!(
        dh0 > 1e4,
        "the gradient should explode backwards in time, |dh0| = {dh0}"
    );
}

#[test]
fn accumulate_adds_to_the_gradient_arena() {
    let (steps, batch, input, hidden) = (4, 3, 5, 6);
    let lstm = Lstm::new(gpu(), LstmConfig::new(input, hidden).with_seed(5)).unwrap();
    let x = upload(
        &[steps, batch, input],
        &random(steps * batch * input, 1.0, 6),
    );
    let dy = upload(
        &[steps, batch, hidden],
        &random(steps * batch * hidden, 1.0, 7),
    );
    let grads = OutputGrads {
        dy: Some(&dy),
        ..Default::default()
    };
    let cache = lstm.forward_train(&x, None, None).unwrap().cache.unwrap();
    lstm.backward(&cache, &grads, false).unwrap();
    let once: Vec<Vec<f32>> = NAMES
        .iter()
        .map(|n| lstm.params().grad(n).unwrap())
        .collect();
    lstm.backward(&cache, &grads, true).unwrap();
    for (name, once) in NAMES.iter().zip(&once) {
        let twice = lstm.params().grad(name).unwrap();
        for (a, b) in twice.iter().zip(once) {
            assert!(
                (a - 2.0 * b).abs() <= 1e-6 * b.abs().max(1.0),
                "{name}: {a} vs 2·{b}"
            );
        }
    }
    // Without accumulate the arena is overwritten, whatever it held.
    lstm.backward(&cache, &grads, false).unwrap();
    assert_eq!(lstm.params().grad("weight_hh_l0").unwrap(), once[1]);
    lstm.params().zero_grad().unwrap();
    assert!(lstm
        .params()
        .grad("bias_ih_l0")
        .unwrap()
        .iter()
        .all(|&v| v == 0.0));
}

#[test]
fn backward_shape_errors_name_the_tensor() {
    let lstm = Lstm::new(gpu(), LstmConfig::new(2, 3)).unwrap();
    let x = upload(&[4, 2, 2], &[0.5; 16]);
    let cache = lstm.forward_train(&x, None, None).unwrap().cache.unwrap();
    let bad = upload(&[4, 2, 4], &[0.0; 32]);
    let err = lstm
        .backward(
            &cache,
            &OutputGrads {
                dy: Some(&bad),
                ..Default::default()
            },
            false,
        )
        .err()
        .expect("wrong dy must fail");
    assert!(
        err.to_string().contains("`dy`") && err.to_string().contains("[4, 2, 3]"),
        "{err}"
    );
    let bad_state = upload(&[1, 3, 3], &[0.0; 9]);
    let err = lstm
        .backward(
            &cache,
            &OutputGrads {
                dc_n: Some(&bad_state),
                ..Default::default()
            },
            false,
        )
        .err()
        .expect("wrong dc_n must fail");
    assert!(err.to_string().contains("`dc_n`"), "{err}");
}

#[test]
fn cache_is_tied_to_its_model_and_keeps_its_own_copy_of_x() {
    let (steps, batch, input, hidden) = (4, 2, 3, 5);
    let a = Lstm::new(gpu(), LstmConfig::new(input, hidden).with_seed(1)).unwrap();
    let b = Lstm::new(gpu(), LstmConfig::new(input, hidden).with_seed(2)).unwrap();
    let xv = random(steps * batch * input, 1.0, 3);
    let x = upload(&[steps, batch, input], &xv);
    let dy = upload(
        &[steps, batch, hidden],
        &random(steps * batch * hidden, 1.0, 4),
    );
    let grads = OutputGrads {
        dy: Some(&dy),
        ..Default::default()
    };
    let cache = a.forward_train(&x, None, None).unwrap().cache.unwrap();
    let err = b
        .backward(&cache, &grads, false)
        .err()
        .expect("another model's cache must fail");
    assert!(err.to_string().contains("another model"), "{err}");

    a.backward(&cache, &grads, false).unwrap();
    let clean = a.params().grad("weight_ih_l0").unwrap();
    // Overwrite the caller's x between forward and backward: dW_ih must not change.
    let cache = a.forward_train(&x, None, None).unwrap().cache.unwrap();
    gpu()
        .queue()
        .write_buffer(x.buffer(), 0, bytemuck::cast_slice(&vec![9.0f32; xv.len()]));
    a.backward(&cache, &grads, false).unwrap();
    assert_eq!(a.params().grad("weight_ih_l0").unwrap(), clean);
}
