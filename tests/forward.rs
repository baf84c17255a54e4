//! GPU forward pass against the f64 reference, on shapes that are not multiples of any tile.

mod common;

use common::*;
use wgpu_lstm::reference::lstm_forward;
use wgpu_lstm::{Error, Lstm, LstmConfig};

/// f32 against f64. Each pre-activation is a dot product of I + H + 2 terms of size ≲ 1, so its
/// rounding error is about √(I+H)·2⁻²⁴ ≈ 1e-6 for the largest sizes here; activations have slope
/// ≤ 1 and the cell state adds at most one such error per step (scaled by f < 1). 1e-5 of
/// max(1, |value|) leaves room for T = 200 while a wrong index or gate is off by ≳ 1e-2.
const TOL: f64 = 1e-5;

struct Case {
    steps: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    initial_state: bool,
}

fn check(case: &Case, seed: u64) -> f64 {
    let Case {
        steps,
        batch,
        input,
        hidden,
        initial_state,
    } = *case;
    let lstm = Lstm::new(gpu(), LstmConfig::new(input, hidden).with_seed(seed)).unwrap();
    let x = random(steps * batch * input, 1.0, seed + 1);
    let h0 = random(batch * hidden, 1.0, seed + 2);
    let c0 = random(batch * hidden, 2.0, seed + 3);
    let xt = upload(&[steps, batch, input], &x);
    let (h0t, c0t) = (
        upload(&[1, batch, hidden], &h0),
        upload(&[1, batch, hidden], &c0),
    );
    let out = if initial_state {
        lstm.forward(&xt, Some(&h0t), Some(&c0t)).unwrap()
    } else {
        lstm.forward(&xt, None, None).unwrap()
    };
    let p = reference_params(&lstm);
    let (h0r, c0r) = (to_f64(&h0), to_f64(&c0));
    let want = lstm_forward(
        &p,
        &to_f64(&x),
        steps,
        batch,
        initial_state.then_some(&h0r[..]),
        initial_state.then_some(&c0r[..]),
    );
    let name = format!("T={steps} B={batch} I={input} H={hidden} state={initial_state}");
    let y = out.y.to_vec().unwrap();
    let h_n = out.h_n.to_vec().unwrap();
    let c_n = out.c_n.to_vec().unwrap();
    assert_close(&format!("{name} y"), &y, &want.y, TOL);
    assert_close(&format!("{name} h_n"), &h_n, &want.h_n, TOL);
    assert_close(&format!("{name} c_n"), &c_n, &want.c_n, TOL);
    max_error(&y, &want.y)
}

#[test]
fn matches_reference_on_awkward_shapes() {
    let sizes = [
        (1, 1, 1, 1),
        (3, 1, 7, 13),
        (7, 3, 13, 7),
        (1, 13, 33, 3),
        (5, 7, 1, 33),
        (2, 17, 3, 17),
        (3, 33, 13, 257),
        (2, 3, 257, 33),
    ];
    let mut worst: f64 = 0.0;
    for (i, &(steps, batch, input, hidden)) in sizes.iter().enumerate() {
        for initial_state in [false, true] {
            let case = Case {
                steps,
                batch,
                input,
                hidden,
                initial_state,
            };
            worst = worst.max(check(&case, 100 + i as u64));
        }
    }
    eprintln!("worst y error over all shapes: {worst:.3e}");
}

#[test]
fn long_sequence_with_large_forget_bias() {
    // T = 200 with the forget gate's bias at +5: the cell state integrates over the whole
    // sequence, so per-step errors accumulate instead of being forgotten.
    let (steps, batch, input, hidden) = (200, 2, 5, 9);
    let lstm = Lstm::new(gpu(), LstmConfig::new(input, hidden).with_seed(7)).unwrap();
    let mut bias = lstm.params().get("bias_hh_l0").unwrap();
    for b in &mut bias[hidden..2 * hidden] {
        *b += 5.0;
    }
    lstm.params().set("bias_hh_l0", &bias).unwrap();
    let x = random(steps * batch * input, 1.0, 8);
    let out = lstm
        .forward(&upload(&[steps, batch, input], &x), None, None)
        .unwrap();
    let want = lstm_forward(
        &reference_params(&lstm),
        &to_f64(&x),
        steps,
        batch,
        None,
        None,
    );
    let c_max = want.c_n.iter().fold(0.0f64, |m, c| m.max(c.abs()));
    assert!(
        c_max > 3.0,
        "the cell state should integrate (max |c_T| = {c_max})"
    );
    assert_close("long y", &out.y.to_vec().unwrap(), &want.y, TOL);
    assert_close("long c_n", &out.c_n.to_vec().unwrap(), &want.c_n, TOL);
}

#[test]
fn training_forward_equals_inference_forward() {
    let (steps, batch, input, hidden) = (6, 5, 4, 19);
    let lstm = Lstm::new(gpu(), LstmConfig::new(input, hidden).with_seed(3)).unwrap();
    let x = upload(
        &[steps, batch, input],
        &random(steps * batch * input, 1.0, 4),
    );
    let a = lstm.forward(&x, None, None).unwrap();
    let b = lstm.forward_train(&x, None, None).unwrap();
    assert!(a.cache.is_none() && b.cache.is_some());
    assert_eq!(a.y.to_vec().unwrap(), b.y.to_vec().unwrap());
    assert_eq!(a.c_n.to_vec().unwrap(), b.c_n.to_vec().unwrap());
}

#[test]
fn weights_are_reused_and_updates_take_effect() {
    let lstm = Lstm::new(gpu(), LstmConfig::new(3, 4)).unwrap();
    let x = upload(&[2, 1, 3], &random(6, 1.0, 9));
    let first = lstm.forward(&x, None, None).unwrap().y.to_vec().unwrap();
    assert_eq!(
        first,
        lstm.forward(&x, None, None).unwrap().y.to_vec().unwrap()
    );
    lstm.params().set("weight_ih_l0", &[0.0; 48]).unwrap();
    lstm.params().set("weight_hh_l0", &vec![0.0; 64]).unwrap();
    lstm.params().set("bias_ih_l0", &[0.0; 16]).unwrap();
    lstm.params().set("bias_hh_l0", &[0.0; 16]).unwrap();
    // All pre-activations 0: i = f = o = 1/2, g = 0, so c and h stay 0.
    let zero = lstm.forward(&x, None, None).unwrap().y.to_vec().unwrap();
    assert!(zero.iter().all(|&v| v == 0.0), "{zero:?}");
}

#[test]
fn nan_and_inf_inputs_propagate_like_pytorch() {
    let (steps, batch, input, hidden) = (3, 2, 2, 3);
    let lstm = Lstm::new(gpu(), LstmConfig::new(input, hidden).with_seed(11)).unwrap();
    let mut x = random(steps * batch * input, 1.0, 12);
    x[0] = f32::NAN; // t = 0, batch 0: every later output of batch 0 is NaN
    x[(steps - 1) * batch * input + input] = f32::INFINITY; // last step, batch 1
    let out = lstm
        .forward(&upload(&[steps, batch, input], &x), None, None)
        .unwrap();
    let y = out.y.to_vec().unwrap();
    let want = lstm_forward(
        &reference_params(&lstm),
        &to_f64(&x),
        steps,
        batch,
        None,
        None,
    );
    for (i, (&g, &w)) in y.iter().zip(&want.y).enumerate() {
        assert_eq!(
            g.is_nan(),
            w.is_nan(),
            "element {i}: gpu {g}, reference {w}"
        );
        if !w.is_nan() {
            assert!(
                (g as f64 - w).abs() < TOL,
                "element {i}: gpu {g}, reference {w}"
            );
        }
    }
    assert!(
        y[..hidden].iter().all(|v| v.is_nan()),
        "batch 0 at t = 0 must be NaN"
    );
}

#[test]
fn shape_errors_name_the_tensor() {
    let lstm = Lstm::new(gpu(), LstmConfig::new(4, 6)).unwrap();
    let bad_x = upload(&[2, 3, 5], &[0.0; 30]);
    let err = lstm
        .forward(&bad_x, None, None)
        .err()
        .expect("wrong I must fail");
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Shape { .. }) && msg.contains("`x`") && msg.contains("[2, 3, 5]"),
        "{msg}"
    );

    let x = upload(&[2, 3, 4], &[0.0; 24]);
    let h0 = upload(&[1, 2, 6], &[0.0; 12]);
    let err = lstm
        .forward(&x, Some(&h0), None)
        .err()
        .expect("wrong h0 must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("`h0`") && msg.contains("[1, 3, 6]") && msg.contains("[1, 2, 6]"),
        "{msg}"
    );

    let two_d = upload(&[2, 4], &[0.0; 8]);
    assert!(matches!(
        lstm.forward(&two_d, None, None),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn zero_sized_dimensions_are_errors() {
    let lstm = Lstm::new(gpu(), LstmConfig::new(4, 6)).unwrap();
    for shape in [[0, 2, 4], [3, 0, 4]] {
        let x = upload(&shape, &[]);
        let err = lstm
            .forward(&x, None, None)
            .err()
            .expect("zero-sized x must fail");
        assert!(err.to_string().contains("T, B ≥ 1"), "{err}");
    }
    assert!(matches!(
        Lstm::new(gpu(), LstmConfig::new(0, 6)),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        Lstm::new(gpu(), LstmConfig::new(4, 0)),
        Err(Error::Invalid(_))
    ));
}
