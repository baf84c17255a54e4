//! Checkpoints: the current format round-trips with explicit keys, checkpoints of the format
//! before it still resume (to what the version that wrote them computed), corrupted or
//! diverged files are refused, and a diverged run never overwrites a good checkpoint.

mod common;

use common::gpu;
use wgpu_lstm::io::{
    read_tensors, read_tensors_with_metadata, write_tensors_with_metadata, HostData,
};
use wgpu_lstm::train::{
    CharCorpus, Checkpoint, OptimizerConfig, Task, TrainConfig, Trainer, BUILTIN_TEXT,
};
use wgpu_lstm::{Cell, Error};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-lstm-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn small_run(optimizer: OptimizerConfig) -> Trainer {
    let config = TrainConfig {
        cell: Cell::Lstm,
        nonlinearity: wgpu_lstm::Nonlinearity::Tanh,
        proj_size: 0,
        hidden_size: 8,
        num_layers: 1,
        batch: 2,
        seq_len: 4,
        optimizer,
        clip: Some(1.0),
        skip_nonfinite: false,
        seed: 1,
    };
    let task = Task::Chars(CharCorpus::new(BUILTIN_TEXT).unwrap());
    Trainer::new(gpu(), config, task, 10).unwrap()
}

/// The largest difference between the f32 tensors two files share.
fn max_difference(a: &wgpu_lstm::io::TensorMap, b: &wgpu_lstm::io::TensorMap) -> f64 {
    let mut worst = 0.0f64;
    for (name, t) in a {
        let (HostData::F32(x), HostData::F32(y)) = (&t.data, &b[name].data) else {
            panic!("{name} is not f32");
        };
        for (p, q) in x.iter().zip(y) {
            worst = worst.max((p - q).abs() as f64);
        }
    }
    worst
}

#[test]
fn checkpoints_of_the_previous_format_still_resume() {
    // Written by the release before format 2 (commit a826c27): 4 steps, then that release's
    // own resume to step 6. Resuming here must continue the same run.
    for (name, text) in [("adam", Some(BUILTIN_TEXT)), ("sgd_rnn", None)] {
        let old = fixture(&format!("checkpoint_v1_{name}.safetensors"));
        let checkpoint = Checkpoint::read(&old, text).unwrap();
        assert_eq!(checkpoint.step, 4, "{name}");
        let mut t = Trainer::resume(gpu(), &checkpoint, 10).unwrap();
        t.step().unwrap();
        t.step().unwrap();
        let path = temp(&format!("resumed_{name}.safetensors"));
        t.save_checkpoint(&path).unwrap();
        let ours = read_tensors(&path).unwrap();
        let theirs = read_tensors(&fixture(&format!(
            "checkpoint_v1_{name}_resumed_to_6.safetensors"
        )))
        .unwrap();
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>()
        );
        // The same steps on the same kind of device; only the order of f32 additions may
        // differ between the versions (their step kernels changed).
        let diff = max_difference(&ours, &theirs);
        assert!(diff < 1e-5, "{name}: weights differ by {diff:e}");
    }
    // The SGD one kept its momentum and cell.
    let sgd = Checkpoint::read(&fixture("checkpoint_v1_sgd_rnn.safetensors"), None).unwrap();
    assert_eq!(sgd.config.cell, Cell::Rnn);
    assert!(
        matches!(sgd.config.optimizer, OptimizerConfig::Sgd { momentum, .. } if momentum == 0.9)
    );
}

#[test]
fn the_current_format_stores_every_setting_under_its_own_key() {
    let optimizer = OptimizerConfig::Sgd {
        lr: 0.125,
        momentum: 0.5,
        dampening: 0.25,
        weight_decay: 0.0625,
        nesterov: false,
    };
    let mut t = small_run(optimizer);
    t.step().unwrap();
    let path = temp("v2.safetensors");
    t.save_checkpoint(&path).unwrap();
    let (_, meta) = read_tensors_with_metadata(&path).unwrap();
    assert_eq!(meta["format"], "wgpu-lstm checkpoint 2");
    assert_eq!(meta["optimizer"], "sgd");
    assert_eq!(meta["optimizer.dampening"], "0.25");
    assert_eq!(meta["cell"], "lstm");
    let back = Checkpoint::read(&path, Some(BUILTIN_TEXT)).unwrap();
    assert_eq!(back.config, *t.config());
    assert_eq!(back.step, 1);
}

#[test]
fn a_flipped_byte_is_an_error_naming_the_tensor() {
    let mut t = small_run(OptimizerConfig::adam(0.01));
    t.step().unwrap();
    let path = temp("flipped.safetensors");
    t.save_checkpoint(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // The last byte of the data region: the last tensor in name order.
    let last = bytes.len() - 1;
    assert!(last > 8 + header);
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let err = Checkpoint::read(&path, Some(BUILTIN_TEXT))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("corrupted") && err.contains("`weight_ih_l0`"),
        "{err}"
    );
    // A file without checksums (a plain PyTorch state dict) still loads.
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/one_layer/weights.safetensors");
    let (_, meta) = read_tensors_with_metadata(&golden).unwrap();
    assert!(meta.keys().all(|k| !k.starts_with("crc32.")));
}

#[test]
fn non_finite_weights_never_replace_a_checkpoint_nor_resume() {
    let mut t = small_run(OptimizerConfig::adam(0.01));
    t.step().unwrap();
    let path = temp("good.safetensors");
    t.save_checkpoint(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    // One NaN weight, as a diverged run would have everywhere.
    let arena = t.model().lstm().params();
    let mut w = arena.get("weight_hh_l0").unwrap();
    w[3] = f32::NAN;
    arena.set("weight_hh_l0", &w).unwrap();
    let err = t.save_checkpoint(&path).err().unwrap();
    assert!(matches!(err, Error::NonFinite(_)), "{err}");
    assert!(
        err.to_string()
            .contains("`weight_hh_l0` holds NaN (element 3)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        good,
        "the good checkpoint was replaced"
    );

    // A checkpoint with a NaN weight (written by hand) does not resume.
    let (mut tensors, meta) = read_tensors_with_metadata(&path).unwrap();
    if let HostData::F32(v) = &mut tensors.get_mut("head.bias").unwrap().data {
        v[0] = f32::INFINITY;
    }
    let bad = temp("nan.safetensors");
    write_tensors_with_metadata(&bad, &tensors, meta).unwrap();
    let checkpoint = Checkpoint::read(&bad, Some(BUILTIN_TEXT)).unwrap();
    let err = Trainer::resume(gpu(), &checkpoint, 10)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`head.bias` holds inf"), "{err}");
}

#[test]
fn a_checkpoint_without_its_optimizer_state_names_what_is_missing() {
    let mut t = small_run(OptimizerConfig::adam(0.01));
    t.step().unwrap();
    let path = temp("no_state.safetensors");
    t.save_checkpoint(&path).unwrap();
    let (mut tensors, meta) = read_tensors_with_metadata(&path).unwrap();
    tensors.remove("optimizer.exp_avg_sq");
    write_tensors_with_metadata(&path, &tensors, meta).unwrap();
    let checkpoint = Checkpoint::read(&path, Some(BUILTIN_TEXT)).unwrap();
    let err = Trainer::resume(gpu(), &checkpoint, 10)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`optimizer.exp_avg_sq`"), "{err}");
}

#[test]
fn a_diverging_run_stops_with_an_error() {
    let mut t = small_run(OptimizerConfig::sgd(1e38));
    let mut stopped = None;
    for _ in 0..10 {
        t.step().unwrap();
    }
    if let Err(e) = t.metrics() {
        stopped = Some(e);
    }
    let err = stopped.expect("a run at lr 1e38 went on");
    assert!(matches!(err, Error::NonFinite(_)), "{err}");
}
