//! PyTorch as the outside oracle: state dicts saved by `safetensors.torch.save_file`, inputs and
//! float64 results written by tests/golden/make_goldens.py, compared with what this engine
//! computes from the same files.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use wgpu_lstm::io::{read_tensors, TensorMap};
use wgpu_lstm::Nonlinearity::{Relu, Tanh};
use wgpu_lstm::{Cell, ForwardOptions, Lstm, Nonlinearity, OutputGrads, Tensor};

/// f32 on the GPU against PyTorch in f64 on the same f32 inputs; as in tests/forward.rs.
const FORWARD_TOL: f64 = 1e-5;
/// Gradients relative to each tensor's largest entry; as in tests/backward.rs.
const GRAD_TOL: f64 = 1e-4;

/// (directory, batch_first, nonlinearity): options of the module that its state dict does not
/// hold. The cell and proj_size are inferred from the names and shapes.
const CONFIGS: [(&str, bool, Nonlinearity); 13] = [
    ("one_layer", false, Tanh),
    ("two_layers", false, Tanh),
    ("bidirectional", false, Tanh),
    ("varlen_bidirectional_two_layers", false, Tanh),
    ("odd_sizes_t1_b1", false, Tanh),
    ("long_sequence", false, Tanh),
    ("no_bias_batch_first", true, Tanh),
    ("rnn_bidirectional_varlen", false, Tanh), // nn.RNN: no cell state
    ("rnn_relu_two_layers", false, Relu),
    ("gru_bidirectional_varlen", false, Tanh),
    ("gru_no_bias_batch_first_t1", true, Tanh),
    ("lstm_proj_bidirectional_varlen", false, Tanh),
    ("lstm_proj_no_bias_batch_first", true, Tanh),
];

/// The cell each golden must be inferred as (PyTorch's class).
fn cell_of(name: &str) -> (Cell, usize) {
    match name {
        n if n.starts_with("rnn") => (Cell::Rnn, 0),
        n if n.starts_with("gru") => (Cell::Gru, 0),
        "lstm_proj_bidirectional_varlen" => (Cell::Lstm, 3),
        "lstm_proj_no_bias_batch_first" => (Cell::Lstm, 2),
        _ => (Cell::Lstm, 0),
    }
}

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn load(name: &str, file: &str) -> TensorMap {
    read_tensors(&dir(name).join(file)).unwrap_or_else(|e| panic!("{name}/{file}: {e}"))
}

fn tensor(map: &TensorMap, key: &str) -> Option<Tensor> {
    map.get(key)
        .map(|t| upload(&t.shape, t.as_f32(key).unwrap()))
}

#[test]
fn pytorch_goldens_match() {
    for (name, batch_first, nonlinearity) in CONFIGS {
        let lstm = Lstm::load_with(gpu(), &dir(name).join("weights.safetensors"), |c| {
            c.with_batch_first(batch_first)
                .with_nonlinearity(nonlinearity)
        })
        .unwrap();
        let c = lstm.config();
        assert_eq!(
            (c.cell, c.proj_size),
            cell_of(name),
            "{name}: inferred {c:?}"
        );
        let (input, grad_out, expected) = (
            load(name, "input.safetensors"),
            load(name, "grad_output.safetensors"),
            load(name, "expected.safetensors"),
        );
        let x = tensor(&input, "x").unwrap();
        let (h0, c0) = (tensor(&input, "h0"), tensor(&input, "c0"));
        let lengths = input
            .get("lengths")
            .map(|l| l.as_indices("lengths").unwrap());
        let out = lstm
            .run(
                &x,
                &ForwardOptions {
                    h0: h0.as_ref(),
                    c0: c0.as_ref(),
                    lengths: lengths.as_deref(),
                    train: true,
                },
            )
            .unwrap();
        let forward = |key: &str, t: &Tensor| {
            let want = &expected[key];
            assert_eq!(t.shape(), want.shape.as_slice(), "{name} {key} shape");
            assert_close(
                &format!("{name} {key}"),
                &t.to_vec().unwrap(),
                &want.to_f64(),
                FORWARD_TOL,
            );
        };
        forward("y", &out.y);
        forward("h_n", &out.h_n);
        if expected.contains_key("c_n") {
            forward("c_n", &out.c_n);
        }

        let (dy, dh_n, dc_n) = (
            tensor(&grad_out, "dy"),
            tensor(&grad_out, "dh_n"),
            tensor(&grad_out, "dc_n"),
        );
        let grads = OutputGrads {
            dy: dy.as_ref(),
            dh_n: dh_n.as_ref(),
            dc_n: dc_n.as_ref(),
        };
        let back = lstm
            .backward(out.cache.as_ref().unwrap(), &grads, false)
            .unwrap();
        let gradient = |key: &str, got: Vec<f32>| {
            let err = max_error_scaled(&got, &expected[key].to_f64());
            assert!(
                err <= GRAD_TOL,
                "{name} {key}: error {err:.3e} > {GRAD_TOL:.0e}"
            );
        };
        gradient("grad.x", back.dx.to_vec().unwrap());
        if h0.is_some() {
            gradient("grad.h0", back.dh0.to_vec().unwrap());
        }
        if c0.is_some() {
            gradient("grad.c0", back.dc0.to_vec().unwrap());
        }
        let names: Vec<String> = lstm
            .params()
            .views()
            .iter()
            .map(|v| v.name.clone())
            .collect();
        for n in &names {
            gradient(&format!("grad.{n}"), lstm.params().grad(n).unwrap());
        }

        let max_norm = expected["clip.max_norm"].to_f64()[0] as f32;
        let norm = lstm
            .params()
            .clip_grad_norm(max_norm, false)
            .unwrap()
            .total_norm()
            .unwrap();
        let want = expected["clip.total_norm"].to_f64()[0];
        assert!(
            ((norm as f64) - want).abs() / want < 1e-5,
            "{name} clip norm {norm} vs {want}"
        );
        for n in &names {
            gradient(&format!("clipped.{n}"), lstm.params().grad(n).unwrap());
        }
    }
}

#[test]
fn saved_state_dicts_round_trip() {
    for name in [
        "varlen_bidirectional_two_layers",
        "gru_bidirectional_varlen",
        "lstm_proj_bidirectional_varlen",
    ] {
        let lstm = Lstm::load(gpu(), &dir(name).join("weights.safetensors"), false).unwrap();
        let original = load(name, "weights.safetensors");
        let path = std::env::temp_dir().join(format!(
            "wgpu-lstm-roundtrip-{name}-{}.safetensors",
            std::process::id()
        ));
        lstm.save(&path).unwrap();
        let saved = read_tensors(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            saved, original,
            "{name}: what we save must be what PyTorch saved"
        );
    }
}
