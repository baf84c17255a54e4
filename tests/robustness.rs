//! Robustness: property tests over random configurations (GPU against the reference),
//! determinism of training, two threads sharing one device, and checkpoints that survive a
//! process killed in the middle of writing them.

mod common;

use common::*;
use proptest::prelude::*;
use std::collections::HashMap;
use wgpu_lstm::reference::{stack_backward, stack_forward, StackInputs, StackShape};
use wgpu_lstm::train::{CharCorpus, OptimizerConfig, Task, TrainConfig, Trainer, BUILTIN_TEXT};
use wgpu_lstm::{Cell, ForwardOptions, Lstm, LstmConfig, OutputGrads};

/// Random weights saturate some activations; the gradients through them are tiny and carry the
/// cancellation of 1 - y² in f32 (proptest found tanh(z) = 0.99999, dx ≈ 1e-5 off by 2e-3
/// relative). With dy of size ≤ 1, gradients below 1e-3 are compared to within 1e-7 absolute.
const FLOOR: f64 = 1e-3;

proptest! {
    // Each case compiles nothing new (pipelines are cached) and runs in milliseconds on lavapipe.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random cell, sizes, layers, directions, bias, lengths and seeds: outputs within 1e-5 and
    /// gradients within 1e-4 (of each tensor's largest entry, or of FLOOR) of the f64
    /// reference, as in tests/stacked.rs.
    #[test]
    fn random_configurations_match_the_reference(
        rnn in any::<bool>(),
        steps in 1usize..9,
        batch in 1usize..6,
        input in 1usize..20,
        hidden in 1usize..20,
        layers in 1usize..4,
        bidirectional in any::<bool>(),
        bias in any::<bool>(),
        varlen in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let cell = if rnn { Cell::Rnn } else { Cell::Lstm };
        let c = LstmConfig::new(input, hidden).with_cell(cell).with_layers(layers)
            .with_bidirectional(bidirectional).with_bias(bias).with_seed(seed);
        let lengths: Option<Vec<usize>> = varlen.then(|| (0..batch).map(|b| 1 + (b * 7 + seed as usize) % steps).collect());
        let lstm = Lstm::new(gpu(), c).unwrap();
        let (d, states) = (c.directions(), layers * c.directions() * batch * hidden);
        let x = random(steps * batch * input, 1.0, seed);
        let h0 = random(states, 0.5, seed + 1);
        let dy = random(steps * batch * d * hidden, 1.0, seed + 2);
        let state_shape = [layers * d, batch, hidden];
        let (xt, h0t) = (upload(&[steps, batch, input], &x), upload(&state_shape, &h0));
        let out = lstm.run(&xt, &ForwardOptions { h0: Some(&h0t), lengths: lengths.as_deref(), train: true, ..Default::default() }).unwrap();
        let dyt = upload(&[steps, batch, d * hidden], &dy);
        let back = lstm.backward(out.cache.as_ref().unwrap(), &OutputGrads { dy: Some(&dyt), ..Default::default() }, false).unwrap();

        let shape = StackShape::of(lstm.config());
        let p: HashMap<String, Vec<f64>> = lstm.params().views().iter()
            .map(|v| (v.name.clone(), to_f64(&lstm.params().get(&v.name).unwrap()))).collect();
        let (xr, h0r) = (to_f64(&x), to_f64(&h0));
        let inputs = StackInputs { x: &xr, steps, batch, lengths: lengths.as_deref(), h0: Some(&h0r), c0: None };
        let want = stack_forward(&shape, &p, &inputs);
        prop_assert!(max_error(&out.y.to_vec().unwrap(), &want.y) <= 1e-5);
        prop_assert!(max_error(&out.h_n.to_vec().unwrap(), &want.h_n) <= 1e-5);
        let g = stack_backward(&shape, &p, &inputs, &to_f64(&dy), None, None);
        prop_assert!(max_error_scaled_floor(&back.dx.to_vec().unwrap(), &g.x, FLOOR) <= 1e-4);
        prop_assert!(max_error_scaled_floor(&back.dh0.to_vec().unwrap(), &g.h0, FLOOR) <= 1e-4);
        for v in lstm.params().views() {
            let err = max_error_scaled_floor(&lstm.params().grad(&v.name).unwrap(), &g.params[&v.name], FLOOR);
            prop_assert!(err <= 1e-4, "{}: {err:.2e}", v.name);
        }
    }
}

fn small_run(dropout_layers: usize) -> TrainConfig {
    TrainConfig {
        cell: Cell::Lstm,
        nonlinearity: wgpu_lstm::Nonlinearity::Tanh,
        proj_size: 0,
        hidden_size: 16,
        num_layers: dropout_layers,
        batch: 4,
        seq_len: 10,
        optimizer: OptimizerConfig::adam(0.01),
        clip: Some(0.5),
        skip_nonfinite: true,
        seed: 21,
    }
}

#[test]
fn same_seed_same_device_gives_bit_identical_weights() {
    // No float atomics anywhere: every reduction has a fixed order.
    let run = || {
        let task = Task::Chars(CharCorpus::new(BUILTIN_TEXT).unwrap());
        let mut t = Trainer::new(gpu(), small_run(2), task, 12).unwrap();
        for _ in 0..12 {
            t.step().unwrap();
        }
        t.metrics().unwrap();
        t.model().lstm().state_dict().unwrap()
    };
    let first = run();
    assert_eq!(first, run());
}

#[test]
fn two_threads_on_one_gpu_match_running_alone() {
    let make = |seed: u64, input: usize, hidden: usize| {
        Lstm::new(
            gpu(),
            LstmConfig::new(input, hidden)
                .with_layers(2)
                .with_seed(seed),
        )
        .unwrap()
    };
    let work = |lstm: &Lstm, seed: u64| -> (Vec<f32>, Vec<f32>) {
        let c = lstm.config();
        let (t, b) = (9, 3);
        let x = upload(
            &[t, b, c.input_size],
            &random(t * b * c.input_size, 1.0, seed),
        );
        let dy = upload(
            &[t, b, c.hidden_size],
            &random(t * b * c.hidden_size, 1.0, seed + 1),
        );
        let mut y = Vec::new();
        for _ in 0..5 {
            let out = lstm.forward_train(&x, None, None).unwrap();
            lstm.backward(
                out.cache.as_ref().unwrap(),
                &OutputGrads {
                    dy: Some(&dy),
                    ..Default::default()
                },
                false,
            )
            .unwrap();
            y = out.y.to_vec().unwrap();
        }
        (y, lstm.params().grad("weight_hh_l1").unwrap())
    };
    let (a, b) = (make(1, 5, 7), make(2, 3, 11));
    let alone = (work(&a, 10), work(&b, 20));
    let together = std::thread::scope(|s| {
        let ha = s.spawn(|| work(&a, 10));
        let hb = s.spawn(|| work(&b, 20));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert_eq!(alone, together);
}

#[test]
fn a_process_killed_while_saving_leaves_a_loadable_checkpoint() {
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("wgpu-lstm-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("c.safetensors");
    // A checkpoint every step, so that kills land in the middle of writes as often as not.
    for (i, delay_ms) in [0u64, 7, 19, 41, 83, 127].into_iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wgpu-lstm"))
            .args([
                "train",
                "--steps",
                "1000000",
                "--hidden",
                "64",
                "--batch",
                "8",
                "--seq-len",
                "16",
                "--quiet",
            ])
            .args([
                "--checkpoint-every",
                "1",
                "--log-every",
                "50",
                "--checkpoint",
                ckpt.to_str().unwrap(),
            ])
            .args(if i > 0 {
                vec!["--resume", ckpt.to_str().unwrap()]
            } else {
                vec![]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until this run has written a checkpoint, then kill it a little later, while it
        // keeps writing one every step.
        let modified = || std::fs::metadata(&ckpt).and_then(|m| m.modified()).ok();
        let before = modified();
        let start = std::time::Instant::now();
        while modified() == before && start.elapsed().as_secs() < 120 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL: no handler runs
        child.wait().unwrap();
        if ckpt.exists() {
            let c = wgpu_lstm::train::Checkpoint::read(&ckpt, Some(BUILTIN_TEXT));
            assert!(
                c.is_ok(),
                "kill {i}: the checkpoint does not load: {:?}",
                c.err()
            );
        }
    }
    assert!(ckpt.exists(), "no checkpoint was ever written");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cache_outlives_its_model_but_fits_no_other() {
    // The cache names its model by a counter: a new model of the same configuration, even one
    // whose buffers land where the dropped one's were, is another model.
    let config = LstmConfig::new(2, 3);
    let x = upload(&[2, 1, 2], &[0.1; 4]);
    for _ in 0..300 {
        let cache = {
            let first = Lstm::new(gpu(), config).unwrap();
            first.forward_train(&x, None, None).unwrap().cache.unwrap()
        };
        let second = Lstm::new(gpu(), config).unwrap();
        let err = second
            .backward(&cache, &Default::default(), false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("another model"), "{err}");
    }
}
