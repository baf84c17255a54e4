//! State dicts in and out: configuration inference and clear errors for bad files.

mod common;

use common::*;
use std::path::Path;
use wgpu_lstm::io::{
    parse_tensors, read_tensors, serialize_tensors, HostData, HostTensor, TensorMap,
};
use wgpu_lstm::{Error, Lstm, LstmConfig};

fn golden_weights() -> TensorMap {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/varlen_bidirectional_two_layers/weights.safetensors");
    read_tensors(&p).unwrap()
}

fn err_of(map: &TensorMap) -> String {
    match Lstm::from_state_dict(gpu(), map, false) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn config_is_inferred_from_names_and_shapes() {
    let c = LstmConfig::from_state_dict(&golden_weights()).unwrap();
    assert_eq!(
        (
            c.input_size,
            c.hidden_size,
            c.num_layers,
            c.bidirectional,
            c.bias
        ),
        (5, 7, 2, true, true)
    );
    let lstm = Lstm::new(gpu(), LstmConfig::new(3, 4).with_bias(false).with_layers(3)).unwrap();
    let c = LstmConfig::from_state_dict(&lstm.state_dict().unwrap()).unwrap();
    assert_eq!(
        (
            c.input_size,
            c.hidden_size,
            c.num_layers,
            c.bidirectional,
            c.bias
        ),
        (3, 4, 3, false, false)
    );
}

#[test]
fn missing_extra_misshaped_and_mistyped_tensors_name_the_tensor() {
    let mut m = golden_weights();
    m.remove("bias_hh_l1_reverse");
    let e = err_of(&m);
    assert!(
        e.contains("bias_hh_l1_reverse") && e.contains("missing"),
        "{e}"
    );

    let mut m = golden_weights();
    m.insert(
        "weight_hr_l0".into(),
        HostTensor::f32(&[7, 3], vec![0.0; 21]),
    );
    let e = err_of(&m);
    assert!(e.contains("weight_hr_l0") && e.contains("proj_size"), "{e}");

    let mut m = golden_weights();
    m.insert(
        "weight_hh_l1".into(),
        HostTensor::f32(&[28, 6], vec![0.0; 168]),
    );
    let e = err_of(&m);
    assert!(
        e.contains("weight_hh_l1") && e.contains("[28, 7]") && e.contains("[28, 6]"),
        "{e}"
    );

    let mut m = golden_weights();
    let t = m["bias_ih_l0"].clone();
    m.insert(
        "bias_ih_l0".into(),
        HostTensor {
            data: HostData::F64(t.to_f64()),
            shape: t.shape,
        },
    );
    let e = err_of(&m);
    assert!(
        e.contains("bias_ih_l0") && e.contains("float64") && e.contains("float32"),
        "{e}"
    );
}

#[test]
fn rnn_and_foreign_state_dicts_are_recognised() {
    let mut rnn = TensorMap::new();
    rnn.insert(
        "weight_ih_l0".into(),
        HostTensor::f32(&[4, 3], vec![0.0; 12]),
    );
    rnn.insert(
        "weight_hh_l0".into(),
        HostTensor::f32(&[4, 4], vec![0.0; 16]),
    );
    let c = LstmConfig::from_state_dict(&rnn).unwrap();
    assert_eq!(
        (c.cell, c.hidden_size, c.bias),
        (wgpu_lstm::Cell::Rnn, 4, false)
    );
    // 2·H rows fit no cell: the error names the tensor and what each cell expects.
    let mut odd = rnn.clone();
    odd.insert(
        "weight_ih_l0".into(),
        HostTensor::f32(&[8, 3], vec![0.0; 24]),
    );
    odd.insert(
        "weight_hh_l0".into(),
        HostTensor::f32(&[8, 4], vec![0.0; 32]),
    );
    let e = err_of(&odd);
    for part in [
        "weight_hh_l0",
        "[8, 4]",
        "nn.LSTM",
        "nn.GRU",
        "nn.RNN",
        "proj_size",
    ] {
        assert!(e.contains(part), "{part} not in: {e}");
    }
    let mut other = TensorMap::new();
    other.insert("fc.weight".into(), HostTensor::f32(&[2, 2], vec![0.0; 4]));
    assert!(err_of(&other).contains("weight_ih_l0"));
}

#[test]
fn broken_files_are_errors_not_panics() {
    let good = serialize_tensors(&golden_weights()).unwrap();
    assert!(parse_tensors(&good, "good").is_ok());
    // Truncated: header or data cut short.
    for cut in [0, 4, 8, 20, good.len() / 2, good.len() - 1] {
        assert!(
            matches!(parse_tensors(&good[..cut], "cut"), Err(Error::Invalid(_))),
            "cut at {cut}"
        );
    }
    // A header length that lies.
    let mut lying = good.clone();
    lying[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(matches!(
        parse_tensors(&lying, "lying"),
        Err(Error::Invalid(_))
    ));
    // Garbage.
    assert!(parse_tensors(b"not a safetensors file at all", "junk").is_err());
    let missing = Lstm::load(gpu(), Path::new("/nonexistent/w.safetensors"), false)
        .err()
        .unwrap();
    assert!(
        matches!(missing, Error::Io { .. }) && missing.to_string().contains("/nonexistent"),
        "{missing}"
    );
}

#[test]
fn saves_atomically_and_keeps_the_old_file_on_failure() {
    let dir = std::env::temp_dir().join(format!("wgpu-lstm-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.safetensors");
    let lstm = Lstm::new(gpu(), LstmConfig::new(2, 3)).unwrap();
    lstm.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // A save that fails (a tensor whose data does not match its shape) leaves the file alone and
    // no temporary file behind.
    let mut bad = lstm.state_dict().unwrap();
    bad.insert(
        "weight_ih_l0".into(),
        HostTensor::f32(&[12, 2], vec![0.0; 5]),
    );
    assert!(wgpu_lstm::io::write_tensors(&path, &bad).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    let back = Lstm::load(gpu(), &path, false).unwrap();
    assert_eq!(back.state_dict().unwrap(), lstm.state_dict().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The committed regression cases of the fuzzer and of hand-made hostile files: each is refused
/// with an error (the loader, the checkpoint reader and `infer` alike), never a panic.
#[test]
fn hostile_files_are_refused_with_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 14, "{cases:?}");
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let loaded = Lstm::load(gpu(), &case, false);
        assert!(loaded.is_err(), "{name}: loaded as a model");
        assert!(
            wgpu_lstm::train::Checkpoint::read(&case, None).is_err(),
            "{name}: read as a checkpoint"
        );
        // The tensors of a file that parses must still be rejected where they are used.
        if let Ok(map) = read_tensors(&case) {
            for (k, t) in &map {
                if k == "lengths" {
                    assert!(
                        t.as_indices(k).is_err(),
                        "{name}: negative lengths accepted"
                    );
                }
            }
        }
        eprintln!("{name}: {}", loaded.err().unwrap());
    }
}

/// One layer's tensors of an nn.GRU (`rows` = 3·H) or nn.LSTM with projections.
fn layer(w_ih: [usize; 2], w_hh: [usize; 2], w_hr: Option<[usize; 2]>) -> TensorMap {
    let mut m = TensorMap::new();
    let t = |s: [usize; 2]| HostTensor::f32(&s, vec![0.1; s[0] * s[1]]);
    m.insert("weight_ih_l0".into(), t(w_ih));
    m.insert("weight_hh_l0".into(), t(w_hh));
    if let Some(w_hr) = w_hr {
        m.insert("weight_hr_l0".into(), t(w_hr));
    }
    m
}

#[test]
fn gru_and_projected_lstm_state_dicts_are_recognised() {
    use wgpu_lstm::Cell;
    // The example: nn.GRU(?, 13) has weight_hh_l0 [39, 13].
    let c = LstmConfig::from_state_dict(&layer([39, 5], [39, 13], None)).unwrap();
    assert_eq!((c.cell, c.hidden_size, c.proj_size), (Cell::Gru, 13, 0));
    // nn.LSTM(5, 13, proj_size=4): weight_hh_l0 [52, 4], weight_hr_l0 [4, 13].
    let m = layer([52, 5], [52, 4], Some([4, 13]));
    let c = LstmConfig::from_state_dict(&m).unwrap();
    assert_eq!((c.cell, c.hidden_size, c.proj_size), (Cell::Lstm, 13, 4));
    let lstm = Lstm::from_state_dict(gpu(), &m, false).unwrap();
    assert_eq!(
        lstm.params().view("weight_hr_l0").unwrap().shape,
        vec![4, 13]
    );
    // A projection that does not fit the LSTM is named.
    let e = err_of(&layer([52, 5], [52, 4], Some([4, 12])));
    assert!(
        e.contains("weight_hh_l0") && e.contains("weight_hr_l0"),
        "{e}"
    );
}

#[test]
fn the_nonlinearity_comes_from_the_caller() {
    use wgpu_lstm::{Cell, Nonlinearity};
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/rnn_relu_two_layers/weights.safetensors");
    // PyTorch does not save it: a relu RNN's state dict loads as tanh unless told.
    let tanh = Lstm::load(gpu(), &golden, false).unwrap();
    assert_eq!(tanh.config().nonlinearity, Nonlinearity::Tanh);
    let relu =
        Lstm::load_with(gpu(), &golden, |c| c.with_nonlinearity(Nonlinearity::Relu)).unwrap();
    assert_eq!(
        (relu.config().cell, relu.config().nonlinearity),
        (Cell::Rnn, Nonlinearity::Relu)
    );
    // Only an RNN has one.
    let e = LstmConfig::new(3, 4)
        .with_nonlinearity(Nonlinearity::Relu)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("nonlinearity") && e.contains("nn.LSTM"), "{e}");
}

#[test]
fn bad_projection_settings_are_errors() {
    use wgpu_lstm::{Cell, Tensor};
    // As PyTorch: "proj_size has to be smaller than hidden_size".
    for p in [5, 6] {
        let e = Lstm::new(gpu(), LstmConfig::new(3, 5).with_proj_size(p))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("proj_size has to be smaller than hidden_size"),
            "{e}"
        );
    }
    let e = Lstm::new(
        gpu(),
        LstmConfig::new(3, 5).with_cell(Cell::Gru).with_proj_size(2),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("proj_size") && e.contains("nn.GRU"), "{e}");
    // h0 is [L·D, B, P]; c0 stays [L·D, B, H].
    let lstm = Lstm::new(gpu(), LstmConfig::new(3, 5).with_proj_size(2)).unwrap();
    let x = upload(&[4, 2, 3], &[0.1; 24]);
    let wide = Tensor::from_slice(gpu(), &[1, 2, 5], &[0.0; 10]).unwrap();
    let e = lstm
        .forward(&x, Some(&wide), None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("`h0`") && e.contains("[1, 2, 2]") && e.contains("[1, 2, 5]"),
        "{e}"
    );
    let narrow = Tensor::from_slice(gpu(), &[1, 2, 2], &[0.0; 4]).unwrap();
    let e = lstm
        .forward(&x, None, Some(&narrow))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`c0`") && e.contains("[1, 2, 5]"), "{e}");
    assert!(lstm.forward(&x, Some(&narrow), Some(&wide)).is_ok());
}
