//! The scratch pool: activation buffers are reused by calls of the same sizes once their results
//! are dropped, and a reused buffer's old contents never leak into a result (the parts a call
//! does not overwrite — omitted initial states, omitted output gradients, backward carries — are
//! cleared). Each test opens its own device, since the pool belongs to the device.

mod common;

use common::stack::{FORWARD_TOL, GRAD_TOL};
use common::*;
use std::collections::HashMap;
use wgpu_lstm::reference::{stack_backward, stack_forward, StackInputs, StackShape};
use wgpu_lstm::{ForwardOptions, Gpu, Lstm, LstmConfig, OutputGrads, Tensor};

fn device() -> Gpu {
    Gpu::new().unwrap_or_else(|e| panic!("these tests need a GPU adapter: {e}"))
}

#[test]
fn reused_buffers_do_not_leak_old_values() {
    let gpu = device();
    let config = LstmConfig::new(5, 11)
        .with_layers(2)
        .with_bidirectional(true)
        .with_seed(7);
    let lstm = Lstm::new(&gpu, config).unwrap();
    let (steps, batch, dirs, n_h) = (6, 3, 2, 11);
    let states = 2 * dirs * batch * n_h;
    let upload = |shape: &[usize], data: &[f32]| Tensor::from_slice(&gpu, shape, data).unwrap();
    let x_data = random(steps * batch * 5, 1.0, 1);
    let x = upload(&[steps, batch, 5], &x_data);
    let state_shape = [2 * dirs, batch, n_h];

    // First call: every optional input given, with large values, so that its buffers hold
    // values far from those of the second call.
    let big = |n: usize, seed: u64| random(n, 50.0, seed);
    let (h0, c0) = (
        upload(&state_shape, &big(states, 2)),
        upload(&state_shape, &big(states, 3)),
    );
    let out = lstm
        .run(
            &x,
            &ForwardOptions {
                h0: Some(&h0),
                c0: Some(&c0),
                lengths: None,
                train: true,
            },
        )
        .unwrap();
    let dy = upload(
        &[steps, batch, dirs * n_h],
        &big(steps * batch * dirs * n_h, 4),
    );
    let (dh_n, dc_n) = (
        upload(&state_shape, &big(states, 5)),
        upload(&state_shape, &big(states, 6)),
    );
    let grads = OutputGrads {
        dy: Some(&dy),
        dh_n: Some(&dh_n),
        dc_n: Some(&dc_n),
    };
    lstm.backward(out.cache.as_ref().unwrap(), &grads, false)
        .unwrap();
    drop(out);
    gpu.wait().unwrap();
    let free_after_first = gpu.scratch_free_bytes();
    assert!(
        free_after_first > 0,
        "the first call's activations were not pooled"
    );

    // Second call, same sizes: zero initial states and only dh_n.
    let out = lstm
        .run(
            &x,
            &ForwardOptions {
                train: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(
        gpu.scratch_free_bytes() < free_after_first,
        "the second call did not reuse pooled buffers"
    );
    let dh_n_data = random(states, 1.0, 8);
    let dh_n = upload(&state_shape, &dh_n_data);
    let back = lstm
        .backward(
            out.cache.as_ref().unwrap(),
            &OutputGrads {
                dh_n: Some(&dh_n),
                ..Default::default()
            },
            false,
        )
        .unwrap();

    let shape = StackShape::of(&config);
    let p = lstm.params();
    let params: HashMap<String, Vec<f64>> = p
        .views()
        .iter()
        .map(|v| (v.name.clone(), to_f64(&p.get(&v.name).unwrap())))
        .collect();
    let xr = to_f64(&x_data);
    let inputs = StackInputs {
        x: &xr,
        steps,
        batch,
        lengths: None,
        h0: None,
        c0: None,
    };
    let want = stack_forward(&shape, &params, &inputs);
    assert_close("y", &out.y.to_vec().unwrap(), &want.y, FORWARD_TOL);
    assert_close("h_n", &out.h_n.to_vec().unwrap(), &want.h_n, FORWARD_TOL);
    assert_close("c_n", &out.c_n.to_vec().unwrap(), &want.c_n, FORWARD_TOL);
    let zeros = vec![0.0; steps * batch * dirs * n_h];
    let g = stack_backward(
        &shape,
        &params,
        &inputs,
        &zeros,
        Some(&to_f64(&dh_n_data)),
        None,
    );
    let check = |name: &str, got: &[f32], want: &[f64]| {
        let err = max_error_scaled(got, want);
        assert!(err <= GRAD_TOL, "d{name}: error {err:.3e} > {GRAD_TOL:.0e}");
    };
    check("x", &back.dx.to_vec().unwrap(), &g.x);
    check("h0", &back.dh0.to_vec().unwrap(), &g.h0);
    check("c0", &back.dc0.to_vec().unwrap(), &g.c0);
    for v in p.views() {
        check(&v.name, &p.grad(&v.name).unwrap(), &g.params[&v.name]);
    }
}

#[test]
fn results_kept_by_the_caller_are_not_reused() {
    let gpu = device();
    let lstm = Lstm::new(&gpu, LstmConfig::new(3, 4).with_seed(3)).unwrap();
    let first_x = Tensor::from_slice(&gpu, &[2, 1, 3], &random(6, 1.0, 1)).unwrap();
    let second_x = Tensor::from_slice(&gpu, &[2, 1, 3], &random(6, 1.0, 2)).unwrap();
    let first = lstm.forward(&first_x, None, None).unwrap();
    let first_y = first.y.to_vec().unwrap();
    let second = lstm.forward(&second_x, None, None).unwrap();
    assert_ne!(second.y.to_vec().unwrap(), first_y);
    assert_eq!(
        first.y.to_vec().unwrap(),
        first_y,
        "a kept output was overwritten"
    );
    drop((first, second));
    assert!(gpu.scratch_free_bytes() > 0);
    gpu.release_scratch();
    assert_eq!(gpu.scratch_free_bytes(), 0);
}
