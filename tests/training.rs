//! End-to-end training on the GPU: the loss falls, gradients of the head and loss are right,
//! a resumed run equals one that never stopped.

mod common;

use common::*;
use rand::SeedableRng;
use wgpu_lstm::train::{
    adding_batch, CharCorpus, Checkpoint, InputKind, Inputs, OptimizerConfig, OutputKind,
    SequenceModel, Targets, Task, TrainConfig, Trainer, BUILTIN_TEXT,
};
use wgpu_lstm::LstmConfig;

fn small_config(optimizer: OptimizerConfig) -> TrainConfig {
    TrainConfig {
        cell: wgpu_lstm::Cell::Lstm,
        nonlinearity: wgpu_lstm::Nonlinearity::Tanh,
        proj_size: 0,
        hidden_size: 24,
        num_layers: 1,
        batch: 8,
        seq_len: 12,
        optimizer,
        clip: Some(1.0),
        skip_nonfinite: false,
        seed: 3,
    }
}

#[test]
fn character_model_loss_falls() {
    let task = Task::Chars(CharCorpus::new(BUILTIN_TEXT).unwrap());
    let mut t = Trainer::new(gpu(), small_config(OptimizerConfig::adam(0.02)), task, 10).unwrap();
    let mut losses = Vec::new();
    for _ in 0..10 {
        for _ in 0..10 {
            t.step().unwrap();
        }
        losses.push(t.metrics().unwrap().loss);
    }
    eprintln!("loss every 10 steps: {losses:?}");
    // Uniform guessing over 58 characters costs ln 58 ≈ 4.06; 100 steps of Adam must get the
    // mean loss of the last 10 steps below 75% of the first 10's (unigram statistics alone give
    // about 3.1, so this needs context).
    assert!(losses[0] > 3.0, "{losses:?}");
    assert!(losses[9] < 0.75 * losses[0], "{losses:?}");
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    let dir = std::env::temp_dir().join(format!("wgpu-lstm-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let nesterov = OptimizerConfig::Sgd {
        lr: 0.1,
        momentum: 0.9,
        dampening: 0.0,
        weight_decay: 0.0,
        nesterov: true,
    };
    // Every cell, each with one of the optimizers.
    let runs = [
        (small_config(OptimizerConfig::adamw(0.01)), "LSTM"),
        (small_config(nesterov), "LSTM"),
        (
            TrainConfig {
                cell: wgpu_lstm::Cell::Gru,
                ..small_config(OptimizerConfig::adam(0.01))
            },
            "GRU",
        ),
        (
            TrainConfig {
                proj_size: 5,
                ..small_config(nesterov)
            },
            "LSTMP",
        ),
        (
            TrainConfig {
                cell: wgpu_lstm::Cell::Rnn,
                nonlinearity: wgpu_lstm::Nonlinearity::Relu,
                ..small_config(OptimizerConfig::adamw(0.01))
            },
            "relu RNN",
        ),
    ];
    for (i, (config, label)) in runs.into_iter().enumerate() {
        let optimizer = config.optimizer;
        let task = Task::Chars(CharCorpus::new(BUILTIN_TEXT).unwrap());
        let mut straight = Trainer::new(gpu(), config.clone(), task.clone(), 20).unwrap();
        for _ in 0..8 {
            straight.step().unwrap();
        }
        let mut first = Trainer::new(gpu(), config.clone(), task, 20).unwrap();
        for _ in 0..5 {
            first.step().unwrap();
        }
        let path = dir.join(format!("ckpt{i}.safetensors"));
        first.save_checkpoint(&path).unwrap();
        let checkpoint = Checkpoint::read(&path, Some(BUILTIN_TEXT)).unwrap();
        assert_eq!(checkpoint.step, 5);
        let mut resumed = Trainer::resume(gpu(), &checkpoint, 20).unwrap();
        for _ in 0..3 {
            resumed.step().unwrap();
        }
        // Same device, same arithmetic in the same order: bit-identical weights.
        assert_eq!(
            resumed.model().lstm().state_dict().unwrap(),
            straight.model().lstm().state_dict().unwrap(),
            "{label} {optimizer:?}"
        );
        assert_eq!(checkpoint.config, config, "{label}");
        assert_eq!(resumed.step_count(), 8);
        // A checkpoint of another text is refused.
        assert!(Checkpoint::read(&path, Some("another text entirely")).is_err());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The gradient of the whole model (LSTM, head, loss) along a random direction of one parameter,
/// against central differences of the GPU loss. f32 with ε = 1e-2 on losses of O(1): ~1e-3
/// relative; a wrong head or loss gradient is off by O(1).
fn directional_check(
    model: &SequenceModel,
    inputs: &Inputs,
    targets: &Targets,
    steps: usize,
    batch: usize,
    name: &str,
) {
    let arena = model.lstm().params();
    let w0 = arena.get(name).unwrap();
    let v = random(w0.len(), 1.0, 91);
    let loss_at = |shift: f32| {
        let w: Vec<f32> = w0.iter().zip(&v).map(|(a, b)| a + shift * b).collect();
        arena.set(name, &w).unwrap();
        model
            .forward_backward(inputs, targets, steps, batch)
            .unwrap()
            .loss
            .to_vec()
            .unwrap()[0] as f64
    };
    let eps = 1e-2;
    let numeric = (loss_at(eps) - loss_at(-eps)) / (2.0 * eps as f64);
    loss_at(0.0);
    let g = arena.grad(name).unwrap();
    let analytic: f64 = g.iter().zip(&v).map(|(a, b)| *a as f64 * *b as f64).sum();
    let rel = (numeric - analytic).abs() / analytic.abs().max(1e-3);
    assert!(
        rel < 1e-2,
        "{name}: numeric {numeric}, analytic {analytic} ({rel:.2e})"
    );
}

#[test]
fn cross_entropy_head_gradients_and_loss_value() {
    let (steps, batch, vocab) = (5, 3, 11);
    let config = LstmConfig::new(vocab, 9).with_layers(2).with_seed(4);
    let model = SequenceModel::new(
        gpu(),
        config,
        InputKind::Tokens { vocab },
        OutputKind::Classes { vocab },
    )
    .unwrap();
    let tokens: Vec<u32> = (0..steps * batch).map(|i| (i * 7 % vocab) as u32).collect();
    let mut targets: Vec<u32> = (0..steps * batch).map(|i| (i * 3 % vocab) as u32).collect();
    targets[4] = wgpu_lstm::train::IGNORE;
    let (inputs, targets) = (Inputs::Tokens(tokens), Targets::Classes(targets));
    for name in ["head.weight", "head.bias", "weight_hh_l0", "weight_ih_l1"] {
        directional_check(&model, &inputs, &targets, steps, batch, name);
    }
    // The loss value: the mean over counted steps of logsumexp - the target's logit, from the
    // head's own logits computed on the host in f64.
    let loss = model
        .forward_backward(&inputs, &targets, steps, batch)
        .unwrap()
        .loss
        .to_vec()
        .unwrap()[0] as f64;
    let x = model.encode_inputs(&inputs, steps, batch).unwrap();
    let y = model.lstm().forward(&x, None, None).unwrap().y;
    let logits = model.head(&y).unwrap().to_vec().unwrap();
    let Targets::Classes(t) = &targets else {
        unreachable!()
    };
    let mut sum = 0.0;
    let mut counted = 0;
    for (r, &target) in t.iter().enumerate() {
        if target == wgpu_lstm::train::IGNORE {
            continue;
        }
        let row: Vec<f64> = logits[r * vocab..][..vocab]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let m = row.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        sum += lse - row[target as usize];
        counted += 1;
    }
    let want = sum / counted as f64;
    assert!(
        (loss - want).abs() < 1e-5 * want.abs().max(1.0),
        "loss {loss} vs {want}"
    );
}

#[test]
fn regression_head_gradients_on_the_adding_problem() {
    let (steps, batch) = (7, 4);
    let model = SequenceModel::new(
        gpu(),
        LstmConfig::new(2, 6).with_seed(8),
        InputKind::Features { size: 2 },
        OutputKind::Regression,
    )
    .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (inputs, targets) = adding_batch(&mut rng, steps, batch);
    let (Inputs::Features(x), Targets::Values(y)) = (&inputs, &targets) else {
        unreachable!()
    };
    // Two markers per sequence, one in each half, and the target is the sum of their values.
    for b in 0..batch {
        let marked: Vec<usize> = (0..steps)
            .filter(|t| x[(t * batch + b) * 2 + 1] == 1.0)
            .collect();
        assert_eq!(marked.len(), 2);
        assert!(marked[0] < steps / 2 && marked[1] >= steps / 2);
        let sum: f32 = marked.iter().map(|t| x[(t * batch + b) * 2]).sum();
        assert!((sum - y[b]).abs() < 1e-6);
    }
    for name in ["head.weight", "head.bias", "weight_ih_l0", "bias_hh_l0"] {
        directional_check(&model, &inputs, &targets, steps, batch, name);
    }
}

#[test]
fn rnn_cell_trains_as_an_rnn() {
    let config = TrainConfig {
        cell: wgpu_lstm::Cell::Rnn,
        nonlinearity: wgpu_lstm::Nonlinearity::Tanh,
        proj_size: 0,
        ..small_config(OptimizerConfig::adam(0.01))
    };
    let mut t = Trainer::new(gpu(), config, Task::Adding, 5).unwrap();
    assert_eq!(t.model().lstm().config().cell, wgpu_lstm::Cell::Rnn);
    assert_eq!(
        t.model()
            .lstm()
            .params()
            .view("weight_hh_l0")
            .unwrap()
            .shape,
        vec![24, 24]
    );
    for _ in 0..5 {
        t.step().unwrap();
    }
    assert!(t.metrics().unwrap().loss.is_finite());
}

#[test]
fn mismatched_batches_are_errors() {
    let model = SequenceModel::new(
        gpu(),
        LstmConfig::new(5, 4),
        InputKind::Tokens { vocab: 5 },
        OutputKind::Classes { vocab: 5 },
    )
    .unwrap();
    let inputs = Inputs::Tokens(vec![0; 6]);
    assert!(model
        .forward_backward(&inputs, &Targets::Classes(vec![0; 5]), 3, 2)
        .is_err());
    assert!(model
        .forward_backward(&inputs, &Targets::Classes(vec![9; 6]), 3, 2)
        .is_err());
    assert!(model
        .forward_backward(&inputs, &Targets::Values(vec![0.0; 2]), 3, 2)
        .is_err());
    assert!(model
        .forward_backward(
            &Inputs::Tokens(vec![0; 5]),
            &Targets::Classes(vec![0; 6]),
            3,
            2
        )
        .is_err());
}

#[test]
fn batch_first_sequence_models_are_refused() {
    let config = LstmConfig::new(2, 3).with_batch_first(true);
    assert!(SequenceModel::new(
        gpu(),
        config,
        InputKind::Features { size: 2 },
        OutputKind::Regression
    )
    .is_err());
}
