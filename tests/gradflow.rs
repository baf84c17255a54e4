//! The gradient-flow lab: GPU probes against the reference, the explicit cell path against its
//! closed form, and the lecture's claims (persistence through open forget gates, vanishing in a
//! vanilla RNN with a contracting W_hh).

mod common;

use common::*;
use wgpu_lstm::lab::{per_step_rate, run_lab, LabConfig};
use wgpu_lstm::reference::{
    gru_backward, gru_forward, lstm_backward, lstm_forward, rnn_backward, rnn_forward,
};
use wgpu_lstm::{Cell, Lstm, LstmConfig, OutputGrads};

/// Norms over (B, H) of a [T, B, H] array, per step.
fn step_norms(v: &[f64], steps: usize) -> Vec<f64> {
    let n = v.len() / steps;
    (0..steps)
        .map(|t| {
            v[t * n..(t + 1) * n]
                .iter()
                .map(|x| x * x)
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// Per-step norms are sums of B·H squares of gradients that are themselves within ~1e-6 of the
/// reference (tests/backward.rs); 1e-4 relative leaves room for the 1e-5 decay per step here.
fn assert_curve(name: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (*g as f64 - w).abs() / w.abs().max(1e-30);
        assert!(
            err < 1e-4,
            "{name}[{k}]: gpu {g:e}, reference {w:e} ({err:.1e})"
        );
    }
}

#[test]
fn probes_match_the_reference_and_t0_its_closed_form() {
    let (steps, batch, input, hidden) = (20, 3, 5, 7);
    let x = random(steps * batch * input, 1.0, 1);
    let dh_n = random(batch * hidden, 1.0, 2);
    let (xt, dht) = (
        upload(&[steps, batch, input], &x),
        upload(&[1, batch, hidden], &dh_n),
    );
    let grads = OutputGrads {
        dh_n: Some(&dht),
        ..Default::default()
    };

    let lstm = Lstm::new(gpu(), LstmConfig::new(input, hidden).with_seed(3)).unwrap();
    let out = lstm.forward_train(&xt, None, None).unwrap();
    let (_, probes) = lstm
        .backward_probed(out.cache.as_ref().unwrap(), &grads, false)
        .unwrap();
    let p = reference_params(&lstm);
    let (xr, dhr) = (to_f64(&x), to_f64(&dh_n));
    let fwd = lstm_forward(&p, &xr, steps, batch, None, None);
    let g = lstm_backward(
        &p,
        &xr,
        &fwd,
        &vec![0.0; steps * batch * hidden],
        Some(&dhr),
        None,
    );
    assert_curve(
        "LSTM |dL/dh_k|",
        &probes.dh_norm,
        &step_norms(&g.dh_steps, steps),
    );
    assert_curve(
        "LSTM |dL/dc_k|",
        &probes.dc_norm,
        &step_norms(&g.dc_steps, steps),
    );

    // t0(k) = dL/dh_T-1 ⊙ o_T-1 ⊙ tanh'(c_T-1) ⊙ f_T-1 ⊙ … ⊙ f_k+1, from the reference's gates.
    let bh = batch * hidden;
    let gate = |t: usize, b: usize, j: usize, k: usize| {
        fwd.gates[(t * batch + b) * 4 * hidden + k * hidden + j]
    };
    let mut path = vec![0.0; steps * bh];
    let mut fprod = vec![0.0; steps * bh];
    for b in 0..batch {
        for j in 0..hidden {
            let c = fwd.cs[steps * bh + b * hidden + j];
            let mut v = dhr[b * hidden + j] * gate(steps - 1, b, j, 3) * (1.0 - c.tanh().powi(2));
            let mut f = 1.0;
            for k in (0..steps).rev() {
                path[k * bh + b * hidden + j] = v;
                fprod[k * bh + b * hidden + j] = f;
                v *= gate(k, b, j, 1);
                f *= gate(k, b, j, 1);
            }
        }
    }
    assert_curve("t0 path", &probes.path_norm, &step_norms(&path, steps));
    let means: Vec<f64> = (0..steps)
        .map(|k| fprod[k * bh..(k + 1) * bh].iter().sum::<f64>() / bh as f64)
        .collect();
    assert_curve("forget product", &probes.forget_product_mean, &means);

    let rnn = Lstm::new(
        gpu(),
        LstmConfig::new(input, hidden)
            .with_cell(Cell::Rnn)
            .with_seed(4),
    )
    .unwrap();
    let out = rnn.forward_train(&xt, None, None).unwrap();
    let (_, probes) = rnn
        .backward_probed(out.cache.as_ref().unwrap(), &grads, false)
        .unwrap();
    let p = reference_params(&rnn);
    let fwd = rnn_forward(&p, &xr, steps, batch, None, false);
    let g = rnn_backward(&p, &xr, &fwd, &vec![0.0; steps * bh], Some(&dhr), false);
    assert_curve(
        "RNN |dL/dh_k|",
        &probes.dh_norm,
        &step_norms(&g.dh_steps, steps),
    );

    // The GRU: ∂L/∂h_k, and the explicit path through the update gates
    // dL/dh_T-1 ⊙ z_T-1 ⊙ … ⊙ z_k+1 with the product of the z.
    let gru = Lstm::new(
        gpu(),
        LstmConfig::new(input, hidden)
            .with_cell(Cell::Gru)
            .with_seed(5),
    )
    .unwrap();
    let out = gru.forward_train(&xt, None, None).unwrap();
    let (_, probes) = gru
        .backward_probed(out.cache.as_ref().unwrap(), &grads, false)
        .unwrap();
    let p = reference_params(&gru);
    let fwd = gru_forward(&p, &xr, steps, batch, None);
    let g = gru_backward(&p, &xr, &fwd, &vec![0.0; steps * bh], Some(&dhr));
    assert_curve(
        "GRU |dL/dh_k|",
        &probes.dh_norm,
        &step_norms(&g.dh_steps, steps),
    );
    let z = |t: usize, b: usize, j: usize| fwd.gates[(t * batch + b) * 4 * hidden + hidden + j];
    let (mut path, mut zprod) = (vec![0.0; steps * bh], vec![0.0; steps * bh]);
    for b in 0..batch {
        for j in 0..hidden {
            let (mut v, mut product) = (dhr[b * hidden + j], 1.0);
            for k in (0..steps).rev() {
                path[k * bh + b * hidden + j] = v;
                zprod[k * bh + b * hidden + j] = product;
                v *= z(k, b, j);
                product *= z(k, b, j);
            }
        }
    }
    assert_curve("GRU z path", &probes.path_norm, &step_norms(&path, steps));
    let means: Vec<f64> = (0..steps)
        .map(|k| zprod[k * bh..(k + 1) * bh].iter().sum::<f64>() / bh as f64)
        .collect();
    assert_curve("update product", &probes.forget_product_mean, &means);
}

#[test]
fn lstm_keeps_its_gradient_where_the_rnn_loses_it() {
    // First the RNN's ‖W_hh‖₂ at scale 1, then a scale that makes it 0.8 (a contraction): its
    // gradient must fall below 1e-6 of its start over T = 100 steps (0.8⁹⁹ ≈ 2.5e-10 bounds it),
    // while the LSTM with forget gates saturated open (bias +20) keeps its cell-path gradient.
    let base = LabConfig {
        forget_bias: 20.0,
        seed: 5,
        ..LabConfig::default()
    };
    let probe = run_lab(gpu(), &LabConfig { seq_len: 2, ..base }).unwrap();
    let scale = (0.8 / probe.rnn_w_norm) as f32;
    let r = run_lab(
        gpu(),
        &LabConfig {
            recurrent_scale: scale,
            ..base
        },
    )
    .unwrap();
    assert!((r.rnn_w_norm - 0.8).abs() < 1e-3, "{}", r.rnn_w_norm);
    let t = r.rnn_dh_norm.len();
    assert_eq!(t, 100);
    let rnn_ratio = r.rnn_dh_norm[0] / r.rnn_dh_norm[t - 1];
    let lstm_ratio = r.lstm.dc_norm[0] / r.lstm.dc_norm[t - 1];
    eprintln!("RNN end-to-end {rnn_ratio:.3e}, LSTM cell path {lstm_ratio:.3e}");
    assert!(rnn_ratio < 1e-6, "RNN gradient ratio {rnn_ratio:e}");
    assert!(lstm_ratio > 0.5, "LSTM cell-path ratio {lstm_ratio:e}");
    // The explicit path through the forget gates alone persists as well (f ≈ 1).
    assert!(r.lstm.forget_product_mean[0] > 0.99);
    assert!(per_step_rate(&r.rnn_dh_norm) < 0.9);
    // The GRU with its update gates saturated open (z ≈ 1): h_t ≈ h_t-1, and its gradient
    // persists along the explicit path diag(z_t), as the LSTM's does along diag(f_t).
    let gru_ratio = r.gru.dh_norm[0] / r.gru.dh_norm[t - 1];
    assert!(gru_ratio > 0.5, "GRU gradient ratio {gru_ratio:e}");
    assert!(r.gru.forget_product_mean[0] > 0.99);
}

#[test]
fn exploding_output_gate_path_is_capped_by_clipping() {
    let r = run_lab(
        gpu(),
        &LabConfig {
            forget_bias: 20.0,
            output_gate_scale: 24.0,
            ..LabConfig::default()
        },
    )
    .unwrap();
    let rate = per_step_rate(&r.lstm.dh_norm);
    assert!(
        rate > 1.0,
        "the output-gate path should explode, rate {rate}"
    );
    assert!(
        rate <= r.k_norm * r.w_o_norm,
        "rate {rate} above the bound {}",
        r.k_norm * r.w_o_norm
    );
    assert!(
        r.clip_before > 1e3 && (r.clip_after - 1.0).abs() < 1e-3,
        "{} → {}",
        r.clip_before,
        r.clip_after
    );
    assert!(r.summary().contains("explodes"), "{}", r.summary());
}

#[test]
fn probes_follow_each_sequence_length() {
    use wgpu_lstm::ForwardOptions;
    let (steps, batch, input, hidden) = (5, 2, 3, 4);
    let lstm = Lstm::new(gpu(), LstmConfig::new(input, hidden).with_seed(6)).unwrap();
    let x = upload(
        &[steps, batch, input],
        &random(steps * batch * input, 1.0, 7),
    );
    let dh = upload(&[1, batch, hidden], &random(batch * hidden, 1.0, 8));
    let out = lstm
        .run(
            &x,
            &ForwardOptions {
                lengths: Some(&[5, 3]),
                train: true,
                ..Default::default()
            },
        )
        .unwrap();
    let grads = OutputGrads {
        dh_n: Some(&dh),
        ..Default::default()
    };
    let (_, p) = lstm
        .backward_probed(out.cache.as_ref().unwrap(), &grads, false)
        .unwrap();
    // Each sequence starts its explicit path at its own last step.
    assert!(p.path_norm.iter().all(|&v| v > 0.0), "{:?}", p.path_norm);
    // At k = 2 (the last step of sequence 1) its forget-gate product is 1 for half the entries.
    assert!(
        p.forget_product_mean[2] >= 0.5,
        "{:?}",
        p.forget_product_mean
    );
}
