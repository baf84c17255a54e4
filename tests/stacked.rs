//! Stacked, bidirectional, variable-length, bias-free, batch-first and streaming LSTMs on the
//! GPU against the f64 reference (the single-layer reference composed one sequence at a time).

mod common;

use common::*;
use std::collections::HashMap;
use wgpu_lstm::reference::{stack_backward, stack_forward, StackShape};
use wgpu_lstm::{ForwardOptions, Lstm, LstmConfig, OutputGrads, Tensor};

/// Forward outputs: as in tests/forward.rs (f32 against f64, ≲ 1e-6 observed).
const FORWARD_TOL: f64 = 1e-5;
/// Gradients, relative to each tensor's largest entry: as in tests/backward.rs.
const GRAD_TOL: f64 = 1e-4;

struct Case {
    config: LstmConfig,
    steps: usize,
    batch: usize,
    lengths: Option<Vec<usize>>,
}

fn params_of(lstm: &Lstm) -> HashMap<String, Vec<f64>> {
    let p = lstm.params();
    p.views()
        .iter()
        .map(|v| (v.name.clone(), to_f64(&p.get(&v.name).unwrap())))
        .collect()
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

fn check(case: &Case, seed: u64) {
    let c = case.config;
    let (steps, batch) = (case.steps, case.batch);
    let (n_h, dirs, layers) = (c.hidden_size, c.directions(), c.num_layers);
    let label = format!(
        "L={layers} D={dirs} bias={} batch_first={} T={steps} B={batch} I={} H={n_h} lengths={:?}",
        c.bias, c.batch_first, c.input_size, case.lengths
    );
    let lstm = Lstm::new(gpu(), c.with_seed(seed)).unwrap();
    let states = layers * dirs * batch * n_h;
    let x = random(steps * batch * c.input_size, 1.0, seed + 1);
    let (h0, c0) = (random(states, 0.5, seed + 2), random(states, 1.0, seed + 3));
    let dy = random(steps * batch * dirs * n_h, 1.0, seed + 4);
    let (dh_n, dc_n) = (random(states, 1.0, seed + 5), random(states, 1.0, seed + 6));

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
    let state_shape = [layers * dirs, batch, n_h];
    let xt = upload(&seq_shape(c.input_size), &to_gpu(&x, c.input_size));
    let (h0t, c0t) = (upload(&state_shape, &h0), upload(&state_shape, &c0));
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
    let dyt = upload(&seq_shape(dirs * n_h), &to_gpu(&dy, dirs * n_h));
    let (dhnt, dcnt) = (upload(&state_shape, &dh_n), upload(&state_shape, &dc_n));
    let grads = OutputGrads {
        dy: Some(&dyt),
        dh_n: Some(&dhnt),
        dc_n: Some(&dcnt),
    };
    let back = lstm
        .backward(out.cache.as_ref().unwrap(), &grads, false)
        .unwrap();

    let shape = StackShape {
        cell: c.cell,
        input_size: c.input_size,
        hidden_size: n_h,
        num_layers: layers,
        bidirectional: c.bidirectional,
    };
    let p = params_of(&lstm);
    let (xr, h0r, c0r) = (to_f64(&x), to_f64(&h0), to_f64(&c0));
    let lens = case.lengths.as_deref();
    let want = stack_forward(&shape, &p, &xr, steps, batch, lens, Some(&h0r), Some(&c0r));
    let y = from_gpu(&out.y.to_vec().unwrap(), dirs * n_h);
    assert_close(&format!("{label} y"), &y, &want.y, FORWARD_TOL);
    assert_close(
        &format!("{label} h_n"),
        &out.h_n.to_vec().unwrap(),
        &want.h_n,
        FORWARD_TOL,
    );
    assert_close(
        &format!("{label} c_n"),
        &out.c_n.to_vec().unwrap(),
        &want.c_n,
        FORWARD_TOL,
    );

    let g = stack_backward(
        &shape,
        &p,
        &xr,
        steps,
        batch,
        lens,
        Some(&h0r),
        Some(&c0r),
        &to_f64(&dy),
        Some(&to_f64(&dh_n)),
        Some(&to_f64(&dc_n)),
    );
    let compare = |name: &str, got: &[f32], want: &[f64]| {
        let err = max_error_scaled(got, want);
        assert!(
            err <= GRAD_TOL,
            "{label} d{name}: error {err:.3e} > {GRAD_TOL:.0e}"
        );
    };
    compare(
        "x",
        &from_gpu(&back.dx.to_vec().unwrap(), c.input_size),
        &g.x,
    );
    compare("h0", &back.dh0.to_vec().unwrap(), &g.h0);
    compare("c0", &back.dc0.to_vec().unwrap(), &g.c0);
    for v in lstm.params().views() {
        compare(
            &v.name,
            &lstm.params().grad(&v.name).unwrap(),
            &g.params[&v.name],
        );
    }
}

#[test]
fn two_layers() {
    let config = LstmConfig::new(7, 13).with_layers(2);
    check(
        &Case {
            config,
            steps: 5,
            batch: 3,
            lengths: None,
        },
        300,
    );
}

#[test]
fn bidirectional() {
    let config = LstmConfig::new(5, 9).with_bidirectional(true);
    check(
        &Case {
            config,
            steps: 6,
            batch: 2,
            lengths: None,
        },
        310,
    );
    check(
        &Case {
            config,
            steps: 1,
            batch: 1,
            lengths: None,
        },
        311,
    );
}

#[test]
fn two_bidirectional_layers_with_lengths() {
    let config = LstmConfig::new(3, 17)
        .with_layers(2)
        .with_bidirectional(true);
    check(
        &Case {
            config,
            steps: 7,
            batch: 4,
            lengths: Some(vec![7, 1, 4, 6]),
        },
        320,
    );
}

#[test]
fn three_layers_variable_lengths_unidirectional() {
    let config = LstmConfig::new(4, 6).with_layers(3);
    check(
        &Case {
            config,
            steps: 9,
            batch: 3,
            lengths: Some(vec![2, 9, 5]),
        },
        330,
    );
}

#[test]
fn without_bias_and_batch_first() {
    let config = LstmConfig::new(6, 5)
        .with_bias(false)
        .with_batch_first(true)
        .with_bidirectional(true);
    check(
        &Case {
            config,
            steps: 4,
            batch: 3,
            lengths: Some(vec![4, 2, 3]),
        },
        340,
    );
    let config = LstmConfig::new(6, 33).with_layers(2).with_batch_first(true);
    check(
        &Case {
            config,
            steps: 3,
            batch: 2,
            lengths: None,
        },
        341,
    );
}

#[test]
fn long_bidirectional_sequence() {
    let config = LstmConfig::new(3, 8).with_bidirectional(true);
    check(
        &Case {
            config,
            steps: 120,
            batch: 2,
            lengths: Some(vec![120, 77]),
        },
        350,
    );
}

#[test]
fn padding_outputs_are_zero_and_states_are_per_sequence() {
    let (steps, batch, n_h) = (5, 3, 4);
    let lstm = Lstm::new(gpu(), LstmConfig::new(2, n_h).with_bidirectional(true)).unwrap();
    let x = upload(&[steps, batch, 2], &random(steps * batch * 2, 1.0, 1));
    let lengths = [5, 2, 3];
    let out = lstm
        .run(
            &x,
            &ForwardOptions {
                lengths: Some(&lengths),
                ..Default::default()
            },
        )
        .unwrap();
    let y = out.y.to_vec().unwrap();
    for (b, &len) in lengths.iter().enumerate() {
        for t in 0..steps {
            let row = &y[(t * batch + b) * 2 * n_h..][..2 * n_h];
            assert_eq!(
                row.iter().all(|&v| v == 0.0),
                t >= len,
                "b={b} t={t}: {row:?}"
            );
        }
        // Forward h_n = y at the sequence's last step; reverse h_n = y at step 0.
        let h_n = out.h_n.to_vec().unwrap();
        assert_eq!(
            &h_n[b * n_h..][..n_h],
            &y[((len - 1) * batch + b) * 2 * n_h..][..n_h]
        );
        assert_eq!(
            &h_n[(batch + b) * n_h..][..n_h],
            &y[b * 2 * n_h + n_h..][..n_h]
        );
    }
}

#[test]
fn streaming_in_chunks_equals_one_shot() {
    // The state stays on the GPU between calls: h_n, c_n of one chunk are the next chunk's
    // h0, c0. Chunks run the same arithmetic in the same order, so the results are identical
    // bit for bit on one device.
    let (steps, batch, input, n_h) = (24, 2, 3, 10);
    let lstm = Lstm::new(
        gpu(),
        LstmConfig::new(input, n_h).with_layers(2).with_seed(9),
    )
    .unwrap();
    let x = random(steps * batch * input, 1.0, 10);
    let whole = lstm
        .forward(&upload(&[steps, batch, input], &x), None, None)
        .unwrap();
    let mut y = Vec::new();
    let mut state: Option<(Tensor, Tensor)> = None;
    for chunk in [5, 1, 11, 7] {
        let start = y.len() / (batch * n_h);
        let xs = &x[start * batch * input..(start + chunk) * batch * input];
        let out = lstm
            .forward(
                &upload(&[chunk, batch, input], xs),
                state.as_ref().map(|s| &s.0),
                state.as_ref().map(|s| &s.1),
            )
            .unwrap();
        y.extend(out.y.to_vec().unwrap());
        state = Some((out.h_n, out.c_n));
    }
    assert_eq!(y, whole.y.to_vec().unwrap());
    let (h, c) = state.unwrap();
    assert_eq!(h.to_vec().unwrap(), whole.h_n.to_vec().unwrap());
    assert_eq!(c.to_vec().unwrap(), whole.c_n.to_vec().unwrap());
}

#[test]
fn bad_lengths_and_states_are_errors() {
    let lstm = Lstm::new(gpu(), LstmConfig::new(2, 3).with_layers(2)).unwrap();
    let x = upload(&[4, 2, 2], &[0.0; 16]);
    for (lengths, what) in [
        (vec![4], "[2]"),
        (vec![0, 4], "1..=4"),
        (vec![5, 1], "1..=4"),
    ] {
        let err = lstm
            .run(
                &x,
                &ForwardOptions {
                    lengths: Some(&lengths),
                    ..Default::default()
                },
            )
            .err()
            .unwrap();
        assert!(err.to_string().contains(what), "{lengths:?}: {err}");
    }
    let h0 = upload(&[1, 2, 3], &[0.0; 6]); // needs [2, 2, 3] for two layers
    let err = lstm.forward(&x, Some(&h0), None).err().unwrap();
    assert!(
        err.to_string().contains("`h0`") && err.to_string().contains("[2, 2, 3]"),
        "{err}"
    );
}

#[test]
fn vanilla_rnn_stacked_bidirectional_with_lengths() {
    use wgpu_lstm::Cell;
    let config = LstmConfig::new(5, 7).with_cell(Cell::Rnn);
    check(
        &Case {
            config,
            steps: 6,
            batch: 3,
            lengths: None,
        },
        360,
    );
    let config = LstmConfig::new(3, 17)
        .with_cell(Cell::Rnn)
        .with_layers(2)
        .with_bidirectional(true);
    check(
        &Case {
            config,
            steps: 7,
            batch: 4,
            lengths: Some(vec![7, 1, 4, 6]),
        },
        361,
    );
    let config = LstmConfig::new(4, 33)
        .with_cell(Cell::Rnn)
        .with_bias(false)
        .with_batch_first(true);
    check(
        &Case {
            config,
            steps: 1,
            batch: 2,
            lengths: None,
        },
        362,
    );
}
