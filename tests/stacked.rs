//! Stacked, bidirectional, variable-length, bias-free, batch-first and streaming LSTMs on the
//! GPU against the f64 reference (the single-layer reference composed one sequence at a time).

mod common;

use common::stack::{check_on, Case};
use common::*;
use wgpu_lstm::{Cell, ForwardOptions, Lstm, LstmConfig, Nonlinearity, Tensor};

fn check(case: &Case, seed: u64) {
    check_on(gpu(), case, seed)
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
    // bit for bit on one device. Every cell, the LSTM also with projections.
    let (steps, batch, input, n_h) = (24, 2, 3, 10);
    let configs = [
        LstmConfig::new(input, n_h),
        LstmConfig::new(input, n_h).with_proj_size(4),
        LstmConfig::new(input, n_h).with_cell(Cell::Gru),
        LstmConfig::new(input, n_h)
            .with_cell(Cell::Rnn)
            .with_nonlinearity(Nonlinearity::Relu),
    ];
    for config in configs {
        let lstm = Lstm::new(gpu(), config.with_layers(2).with_seed(9)).unwrap();
        let width = config.output_size();
        let x = random(steps * batch * input, 1.0, 10);
        let whole = lstm
            .forward(&upload(&[steps, batch, input], &x), None, None)
            .unwrap();
        let mut y = Vec::new();
        let mut state: Option<(Tensor, Tensor)> = None;
        for chunk in [5, 1, 11, 7] {
            let start = y.len() / (batch * width);
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
        let (h_n, c_n) = state.unwrap();
        assert_eq!(y, whole.y.to_vec().unwrap(), "{config:?}");
        assert_eq!(
            h_n.to_vec().unwrap(),
            whole.h_n.to_vec().unwrap(),
            "{config:?}"
        );
        assert_eq!(
            c_n.to_vec().unwrap(),
            whole.c_n.to_vec().unwrap(),
            "{config:?}"
        );
    }
}

#[test]
fn every_cell_without_bias_batch_first_and_stacked() {
    let cells = [
        LstmConfig::new(6, 11).with_cell(Cell::Gru),
        LstmConfig::new(6, 11).with_proj_size(5),
        LstmConfig::new(6, 11)
            .with_cell(Cell::Rnn)
            .with_nonlinearity(Nonlinearity::Relu),
    ];
    for (i, config) in cells.into_iter().enumerate() {
        let seed = 700 + 10 * i as u64;
        let case = |config, steps, batch, lengths| Case {
            config,
            steps,
            batch,
            lengths,
        };
        check(
            &case(
                config.with_bias(false).with_batch_first(true),
                4,
                3,
                Some(vec![4, 1, 3]),
            ),
            seed,
        );
        check(&case(config.with_layers(3), 6, 2, None), seed + 1);
        // T = 1, B = 1.
        check(&case(config.with_bidirectional(true), 1, 1, None), seed + 2);
        // A long sequence: errors would grow through the recurrence.
        check(&case(config, 120, 2, None), seed + 3);
    }
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

#[test]
fn sizes_in_multiples_of_four_take_the_vec4_matrix_products() {
    // I, H and the column offsets of the second direction are multiples of 4, so every matrix
    // product (projection, dW_ih, dW_hh, dx, both layers) stages its operands as vec4; T·B = 21
    // rows and 4H = 80 columns leave partial 64×64 tiles.
    let config = LstmConfig::new(8, 20)
        .with_layers(2)
        .with_bidirectional(true);
    check(
        &Case {
            config,
            steps: 7,
            batch: 3,
            lengths: Some(vec![7, 4, 6]),
        },
        360,
    );
}
