//! The sequence kernel (one dispatch per layer and direction for all T steps) against the f64
//! reference and against the step kernels, for every cell and option; its dispatch counts; its
//! limits; and very long sequences.
//!
//! Each test opens its own device, since the recurrence is a setting of the device.

mod common;

use common::random;
use common::stack::{check_on, check_within, Case, FORWARD_TOL, GRAD_TOL};
use wgpu_lstm::{
    Cell, Error, Gpu, Lstm, LstmConfig, Nonlinearity, OutputGrads, Recurrence, Tensor,
};

fn device(recurrence: Recurrence) -> Gpu {
    let gpu = Gpu::new().unwrap_or_else(|e| panic!("these tests need a GPU adapter: {e}"));
    gpu.set_recurrence(recurrence);
    assert_eq!(gpu.recurrence(), recurrence);
    gpu
}

/// Every cell with layers, both directions, lengths and initial states (check_on draws h0,
/// c0), and the shapes that fill no warp: H = 1, B = 1, T = 1; H = 37; H = 70 (over 64
/// invocations); LSTMP with P < H.
#[test]
fn sequence_kernel_matches_the_reference() {
    let gpu = device(Recurrence::Sequence);
    let stacked = |c: LstmConfig| c.with_layers(2).with_bidirectional(true);
    let cases = [
        (LstmConfig::new(3, 1), 1, 1, None),
        (stacked(LstmConfig::new(5, 37)), 9, 3, Some(vec![9, 2, 5])),
        (LstmConfig::new(7, 70), 6, 2, None),
        (
            stacked(LstmConfig::new(5, 37).with_cell(Cell::Gru)),
            7,
            3,
            Some(vec![7, 2, 5]),
        ),
        (
            stacked(LstmConfig::new(3, 19).with_cell(Cell::Rnn)),
            7,
            2,
            Some(vec![7, 3]),
        ),
        (
            LstmConfig::new(4, 23)
                .with_cell(Cell::Rnn)
                .with_nonlinearity(Nonlinearity::Relu)
                .with_bidirectional(true),
            6,
            5,
            Some(vec![6, 1, 4, 6, 2]),
        ),
        (
            stacked(LstmConfig::new(5, 19).with_proj_size(7)),
            8,
            3,
            Some(vec![8, 3, 6]),
        ),
        (
            LstmConfig::new(3, 70).with_proj_size(1).with_bias(false),
            5,
            4,
            None,
        ),
    ];
    for (seed, (config, steps, batch, lengths)) in cases.into_iter().enumerate() {
        let case = Case {
            config,
            steps,
            batch,
            lengths,
        };
        check_on(&gpu, &case, 700 + seed as u64);
    }
}

/// What a model gives with the step kernels and with the sequence kernel, read back: y, h_n,
/// c_n, dx, dh0, dc0 and every parameter gradient, and the gradient probes.
fn both_recurrences(gpu: &Gpu, lstm: &Lstm, x: &Tensor, dy: &Tensor) -> [Vec<Vec<f32>>; 2] {
    [Recurrence::Step, Recurrence::Sequence].map(|recurrence| {
        gpu.set_recurrence(recurrence);
        assert_eq!(
            lstm.dispatch_counts(x.shape()[0], x.shape()[1]).unwrap().0,
            recurrence
        );
        lstm.set_training_calls(0); // the same dropout masks
        let out = lstm.forward_train(x, None, None).unwrap();
        let cache = out.cache.as_ref().unwrap();
        let (back, probes) = lstm
            .backward_probed(cache, &OutputGrads::dy(dy), false)
            .unwrap();
        let mut all = vec![
            out.y.to_vec().unwrap(),
            out.h_n.to_vec().unwrap(),
            out.c_n.to_vec().unwrap(),
        ];
        all.extend([back.dx, back.dh0, back.dc0].map(|t| t.to_vec().unwrap()));
        for name in lstm.params().names() {
            all.push(lstm.params().grad(&name).unwrap());
        }
        all.extend([
            probes.dh_norm,
            probes.dc_norm,
            probes.path_norm,
            probes.forget_product_mean,
        ]);
        all
    })
}

/// The two recurrences give the same numbers within f32 rounding (they sum the products in
/// different orders): dropout between layers with the same masks, and the gradient probes.
#[test]
fn sequence_kernel_equals_the_step_kernels() {
    let gpu = device(Recurrence::Step);
    let configs = [
        LstmConfig::new(6, 21).with_layers(2).with_dropout(0.5),
        LstmConfig::new(6, 21)
            .with_cell(Cell::Gru)
            .with_layers(2)
            .with_dropout(0.3),
        LstmConfig::new(6, 21)
            .with_cell(Cell::Rnn)
            .with_bidirectional(true),
        LstmConfig::new(6, 21).with_proj_size(5),
    ];
    let (steps, batch) = (11, 3);
    for (seed, config) in configs.into_iter().enumerate() {
        let lstm = Lstm::new(&gpu, config.with_seed(40 + seed as u64)).unwrap();
        let x = Tensor::from_slice(&gpu, &[steps, batch, 6], &random(steps * batch * 6, 1.0, 1))
            .unwrap();
        let width = config.directions() * config.output_size();
        let dy = random(steps * batch * width, 1.0, 2);
        let dy = Tensor::from_slice(&gpu, &[steps, batch, width], &dy).unwrap();
        let [step, sequence] = both_recurrences(&gpu, &lstm, &x, &dy);
        for (i, (a, b)) in step.iter().zip(&sequence).enumerate() {
            let scale = a.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
            let err = a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale;
            // Both are within FORWARD_TOL / GRAD_TOL of the reference; between each other
            // only the order of the sums differs (observed ≲ 1e-6).
            assert!(
                err < 1e-5,
                "{config:?}: output {i} differs by {err:e} (relative)"
            );
        }
    }
}

/// With the sequence kernel a call records O(1) dispatches: forward the input GEMM and one
/// chunk, backward one chunk (dh_0 in it) and the GEMMs and bias sums, per layer and
/// direction; and exactly what dispatch_counts says.
#[test]
fn sequence_kernel_records_one_dispatch_per_layer_and_direction() {
    let gpu = device(Recurrence::Sequence);
    let (steps, batch) = (9, 3);
    for config in [
        LstmConfig::new(5, 6),
        LstmConfig::new(5, 6)
            .with_cell(Cell::Gru)
            .with_layers(2)
            .with_bidirectional(true),
        LstmConfig::new(5, 6).with_proj_size(3),
        LstmConfig::new(5, 6).with_cell(Cell::Rnn).with_bias(false),
    ] {
        let lstm = Lstm::new(&gpu, config).unwrap();
        let x =
            Tensor::from_slice(&gpu, &[steps, batch, 5], &vec![0.1; steps * batch * 5]).unwrap();
        let (recurrence, want) = lstm.dispatch_counts(steps, batch).unwrap();
        assert_eq!(recurrence, Recurrence::Sequence);
        let gemms = 4 + usize::from(config.proj_size > 0);
        let sums = match (config.bias, config.cell) {
            (false, _) => 0,
            (true, Cell::Gru) => 2,
            (true, _) => 1,
        };
        assert_eq!(
            (want.forward, want.backward),
            (2, 1 + gemms + sums),
            "{config:?}"
        );
        let per_model = config.num_layers * config.directions();
        let before = gpu.dispatch_count();
        let out = lstm.forward_train(&x, None, None).unwrap();
        assert_eq!(
            (gpu.dispatch_count() - before) as usize,
            per_model * want.forward
        );
        let before = gpu.dispatch_count();
        lstm.backward(out.cache.as_ref().unwrap(), &OutputGrads::default(), false)
            .unwrap();
        assert_eq!(
            (gpu.dispatch_count() - before) as usize,
            per_model * want.backward
        );
    }
}

/// A size past what the kernel keeps in registers: forced, a clear Error::Limit naming it;
/// under auto, the step kernels, with the right answer.
#[test]
fn too_large_for_the_sequence_kernel() {
    let gpu = device(Recurrence::Sequence);
    let lstm = Lstm::new(&gpu, LstmConfig::new(2, 300)).unwrap();
    let x = Tensor::from_slice(&gpu, &[2, 1, 2], &[0.5; 4]).unwrap();
    match lstm.forward(&x, None, None) {
        Err(Error::Limit {
            limit,
            needed,
            available,
            ..
        }) => {
            assert!(limit.contains("registers"), "{limit}");
            assert!(needed > available);
        }
        other => panic!("expected Error::Limit, got {:?}", other.map(|_| ())),
    }
    assert!(lstm.dispatch_counts(2, 1).is_err());
    gpu.set_recurrence(Recurrence::Auto);
    assert_eq!(lstm.dispatch_counts(2, 1).unwrap().0, Recurrence::Step);
    let case = Case {
        config: LstmConfig::new(2, 300),
        steps: 2,
        batch: 1,
        lengths: None,
    };
    check_on(&gpu, &case, 5);
}

/// T = 10^5 steps at H = 8: a bounded number of chunks (each within llvmpipe's loop limit),
/// forward and backward against the reference.
#[test]
fn very_long_sequence_in_bounded_chunks() {
    let gpu = device(Recurrence::Sequence);
    let config = LstmConfig::new(2, 8);
    let steps = 100_000;
    let lstm = Lstm::new(&gpu, config).unwrap();
    let (_, counts) = lstm.dispatch_counts(steps, 1).unwrap();
    assert!(counts.forward <= 11 && counts.backward <= 16, "{counts:?}");
    let case = Case {
        config,
        steps,
        batch: 1,
        lengths: None,
    };
    // The reference sums the same products in f64; a contracting LSTM keeps the f32 rounding
    // of each step from compounding, so the usual tolerances hold at any T.
    check_within(&gpu, &case, 11, (FORWARD_TOL, GRAD_TOL));
}
