//! The command line, run as a user would.

use std::process::Command;

fn wgpu_lstm(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wgpu-lstm"))
        .args(args)
        .output()
        .expect("run wgpu-lstm");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn devices_lists_an_adapter() {
    let (code, out, err) = wgpu_lstm(&["devices"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("max_storage_buffer_binding_size"), "{out}");
}

/// Started without XDG_RUNTIME_DIR, the CLI gives itself a private one (Mesa warns otherwise)
/// and removes it at exit.
#[test]
fn no_runtime_dir_warning_without_xdg_runtime_dir() {
    let out = Command::new(env!("CARGO_BIN_EXE_wgpu-lstm"))
        .arg("devices")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("run wgpu-lstm");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    // Named by the child's pid; the other tests' runs have XDG_RUNTIME_DIR set (.ci/run).
    let stray = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("wgpu-lstm-runtime-")
        })
        .count();
    assert_eq!(stray, 0, "runtime directories left in the temp directory");
}

#[test]
fn check_passes_on_awkward_sizes() {
    let (code, out, err) = wgpu_lstm(&[
        "check",
        "--seq-len",
        "7",
        "--batch",
        "3",
        "--input",
        "5",
        "--hidden",
        "13",
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(out.matches(" ok").count(), 11, "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    // T = 7: the step kernels record T + 1 forward and T + 6 backward; the sequence kernel
    // one chunk each way, plus the GEMMs and bias sum (auto takes it on CPU adapters).
    assert!(
        out.contains("dispatches (step recurrence): forward 8, backward 13")
            || out.contains("dispatches (sequence recurrence): forward 2, backward 6"),
        "{out}"
    );
    // Every cell: 11 checks, 12 with the projection's weight.
    for (cell, checks) in [
        (&["--cell", "gru"][..], 11),
        (&["--cell", "rnn", "--nonlinearity", "relu"][..], 11),
        (&["--proj-size", "4"][..], 12),
    ] {
        let args = [
            &[
                "check",
                "--seq-len",
                "5",
                "--batch",
                "2",
                "--input",
                "3",
                "--hidden",
                "9",
            ][..],
            cell,
        ]
        .concat();
        let (code, out, err) = wgpu_lstm(&args);
        assert_eq!(code, 0, "{cell:?}\n{out}\n{err}");
        assert_eq!(out.matches(" ok").count(), checks, "{out}");
    }
}

#[test]
fn bad_sizes_are_reported_not_panicked() {
    let (code, _, err) = wgpu_lstm(&["check", "--hidden", "0"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("hidden_size") && err.contains("must be at least 1"),
        "{err}"
    );
    let (code, _, err) = wgpu_lstm(&["check", "--device", "no-such-gpu"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no-such-gpu") && err.contains("mesa-vulkan-drivers"),
        "{err}"
    );
}

#[test]
fn infer_runs_a_pytorch_state_dict_and_matches_pytorch() {
    let golden = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/varlen_bidirectional_two_layers"
    );
    let out = std::env::temp_dir().join(format!(
        "wgpu-lstm-infer-{}.safetensors",
        std::process::id()
    ));
    let (code, stdout, err) = wgpu_lstm(&[
        "infer",
        "--weights",
        &format!("{golden}/weights.safetensors"),
        "--input",
        &format!("{golden}/input.safetensors"),
        "--grad-output",
        &format!("{golden}/grad_output.safetensors"),
        "--clip",
        "1.0",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{err}");
    let got = wgpu_lstm::io::read_tensors(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let want = wgpu_lstm::io::read_tensors(std::path::Path::new(&format!(
        "{golden}/expected.safetensors"
    )))
    .unwrap();
    // Outputs to 1e-5 absolute (they are below 1), gradients to 1e-4 of their largest entry,
    // as in the library tests.
    let error = |key: &str, relative_to_max: bool| {
        let (g, w) = (got[key].to_f64(), want[key].to_f64());
        let scale = if relative_to_max {
            w.iter().fold(1e-30f64, |m, v| m.max(v.abs()))
        } else {
            1.0
        };
        g.iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
            / scale
    };
    for key in ["y", "h_n", "c_n"] {
        assert!(
            error(key, false) <= 1e-5,
            "{key}: {:.2e}",
            error(key, false)
        );
    }
    for key in ["grad.x", "grad.h0", "grad.weight_hh_l1_reverse"] {
        assert!(error(key, true) <= 1e-4, "{key}: {:.2e}", error(key, true));
    }
    assert_eq!(got["clip.total_norm"].shape, vec![1]);
    let norm = got["clip.total_norm"].to_f64()[0];
    let unclipped = want["clip.total_norm"].to_f64()[0];
    assert!(
        (norm - unclipped).abs() / unclipped < 1e-5,
        "{norm} vs {unclipped}"
    );
    assert!(got.contains_key("clipped.weight_ih_l0_reverse"));
}

#[test]
fn infer_reports_bad_files() {
    let (code, _, err) = wgpu_lstm(&[
        "infer",
        "--weights",
        "/nonexistent.safetensors",
        "--input",
        "x",
        "--output",
        "/tmp/never",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent.safetensors"), "{err}");
    assert!(!std::path::Path::new("/tmp/never").exists());
}

#[test]
fn train_saves_a_checkpoint_that_sample_and_resume_use() {
    let dir = std::env::temp_dir().join(format!("wgpu-lstm-cli-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("c.safetensors");
    let ckpt_s = ckpt.to_str().unwrap();
    let small = [
        "--hidden",
        "16",
        "--batch",
        "4",
        "--seq-len",
        "8",
        "--log-every",
        "2",
        "--quiet",
    ];
    let (code, out, err) = wgpu_lstm(
        &[
            &["train", "--steps", "4", "--checkpoint", ckpt_s],
            &small[..],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("step 4: loss") && out.contains("tok/s") && out.contains("checkpoint:"),
        "{out}"
    );
    let (code, out, err) = wgpu_lstm(&[
        "sample",
        "--checkpoint",
        ckpt_s,
        "--prompt",
        "The ",
        "--length",
        "20",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim_end_matches('\n').chars().count(),
        4 + 20,
        "{out:?}"
    );
    let (code, out, err) = wgpu_lstm(&[
        "train",
        "--resume",
        ckpt_s,
        "--steps",
        "6",
        "--checkpoint",
        ckpt_s,
        "--log-every",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    // Without --quiet too: stdout is a pipe here, so plain lines (with an ETA), not a bar.
    assert!(
        out.contains("resumed at step 4")
            && out.contains("step 6: loss")
            && out.contains("| ETA 0s"),
        "{out}"
    );
    let (code, _, err) = wgpu_lstm(&["sample", "--checkpoint", ckpt_s, "--prompt", "€"]);
    assert_eq!(code, 2);
    assert!(err.contains("not in the vocabulary"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_saves_a_checkpoint_before_exiting() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("wgpu-lstm-cli-sigint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("c.safetensors");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgpu-lstm"))
        .args([
            "train",
            "--steps",
            "1000000",
            "--hidden",
            "8",
            "--batch",
            "2",
            "--seq-len",
            "4",
            "--quiet",
            "--log-every",
            "1",
        ])
        .args([
            "--checkpoint-every",
            "1000000",
            "--checkpoint",
            ckpt.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait until training runs, then interrupt.
    for line in lines.by_ref() {
        if line.unwrap().starts_with("step 3:") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("interrupted at step")),
        "{rest:?}"
    );
    assert!(wgpu_lstm::io::read_tensors(&ckpt)
        .unwrap()
        .contains_key("weight_hh_l0"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gradflow_writes_csv_svg_and_summary() {
    let dir = std::env::temp_dir().join(format!("wgpu-lstm-gradflow-{}", std::process::id()));
    let (code, out, err) = wgpu_lstm(&[
        "gradflow",
        "--seq-len",
        "100",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("RNN hidden") && out.contains("bound factor"),
        "{out}"
    );
    let csv = std::fs::read_to_string(dir.join("gradflow.csv")).unwrap();
    assert_eq!(csv.lines().count(), 101);
    assert!(
        csv.starts_with("k,lstm_dc_norm,lstm_dh_norm,t0_path_norm,forget_product_mean,rnn_dh_norm,gru_dh_norm,gru_z_path_norm,update_product_mean\n")
    );
    let svg = std::fs::read_to_string(dir.join("gradflow.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("RNN |dL/dh_k|") && svg.contains("GRU |dL/dh_k|")
    );
    assert!(std::fs::read_to_string(dir.join("summary.txt"))
        .unwrap()
        .contains("per-step rate"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_smoke_prints_the_table_and_json() {
    let smoke = ["bench", "--smoke", "--iters", "2", "--warmup", "1"];
    let (code, out, err) = wgpu_lstm(&[&smoke[..], &["--recurrence", "step"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("| 16x4x16x32 | training | step |") && out.contains("GFLOP/s"),
        "{out}"
    );
    // The step kernels: one dispatch per timestep forward, two when training (forward +
    // backward); T = 16 steps and the input GEMM.
    assert!(out.contains("| 1 (17) |") && out.contains("| 2 ("), "{out}");
    // Both recurrences in one run; the sequence kernel records O(1) dispatches per call: the
    // GEMM and one chunk forward; training adds 1 chunk, 4 GEMMs, 1 bias sum and 3 for clipping.
    let (code, out, err) = wgpu_lstm(
        &[
            &smoke[..],
            &["--recurrence", "step", "--recurrence", "sequence"],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("| 16x4x16x32 | inference | step |"), "{out}");
    assert!(
        out.contains("| 16x4x16x32 | inference | sequence |"),
        "{out}"
    );
    assert!(
        out.contains("| 0 (2) |") && out.contains("| 0 (11) |"),
        "{out}"
    );
    let (code, json, err) = wgpu_lstm(&[
        "bench",
        "--size",
        "3x2x5x7",
        "--iters",
        "1",
        "--json",
        "--recurrence",
        "sequence",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        json.contains("\"size\": \"3x2x5x7\"")
            && json.contains("\"mode\": \"training\"")
            && json.contains("\"recurrence\": \"sequence\""),
        "{json}"
    );
    let (code, _, err) = wgpu_lstm(&["bench", "--size", "3x2x5x7", "--recurrence", "loop"]);
    assert_eq!(code, 2);
    assert!(err.contains("--recurrence loop"), "{err}");
    let (code, _, err) = wgpu_lstm(&["bench", "--size", "3x2x5"]);
    assert_eq!(code, 2);
    assert!(err.contains("TxBxIxH"), "{err}");
    let one_call = [
        "bench", "--size", "3x2x5x7", "--iters", "1", "--warmup", "0",
    ];
    let (code, out, err) = wgpu_lstm(&[&one_call[..], &["--tiling", "wide-split"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("step tiling WideSplit"), "{out}");
    let (code, _, err) = wgpu_lstm(&[&one_call[..], &["--tiling", "tall"]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("--tiling tall"), "{err}");
}

#[test]
fn compare_script_joins_bench_json_with_a_baseline() {
    // The baseline is our own run relabelled as another engine (with every time doubled), so
    // the joined table is known: ratio 2.00 on every row. PyTorch itself is not needed.
    let (code, json, err) = wgpu_lstm(&["bench", "--size", "3x2x5x7", "--iters", "1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let dir = std::env::temp_dir().join(format!("wgpu-lstm-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ours = dir.join("ours.json");
    let theirs = dir.join("theirs.json");
    std::fs::write(&ours, &json).unwrap();
    let relabel = r#"import json, sys
d = json.load(open(sys.argv[1]))
d["engine"] = "test baseline"
for r in d["results"]:
    r["ms"] *= 2
    r["gflops"] /= 2
json.dump(d, open(sys.argv[2], "w"))"#;
    let status = std::process::Command::new("python3")
        .args(["-c", relabel])
        .args([&ours, &theirs])
        .status()
        .expect("python3 is needed (the CI installs it)");
    assert!(status.success());
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/compare.py"))
        .args([&ours, &theirs])
        .output()
        .expect("run compare.py");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.contains("baseline: test baseline"), "{table}");
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| 3x2x5x7"))
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows.iter().all(|r| r.contains("| 2.00 |")), "{table}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-lstm-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const TINY: [&str; 10] = [
    "--hidden",
    "12",
    "--batch",
    "2",
    "--seq-len",
    "5",
    "--log-every",
    "2",
    "--quiet",
    "--steps",
];

#[test]
fn train_every_cell_and_sample_checks_its_options() {
    let dir = temp_dir("cells");
    for (cell, extra) in [
        ("gru", &[][..]),
        ("lstm", &["--proj-size", "5"][..]),
        ("rnn", &["--nonlinearity", "relu"][..]),
    ] {
        let ckpt = dir.join(format!("{cell}.safetensors"));
        let ckpt = ckpt.to_str().unwrap();
        let args = [
            &["train", "--cell", cell, "--checkpoint", ckpt][..],
            extra,
            &TINY,
            &["4"],
        ]
        .concat();
        let (code, out, err) = wgpu_lstm(&args);
        assert_eq!(code, 0, "{cell}: {out}\n{err}");
        assert!(out.contains("step 4: loss"), "{out}");
        let (code, out, err) = wgpu_lstm(&[
            "sample",
            "--checkpoint",
            ckpt,
            "--prompt",
            "I ",
            "--length",
            "5",
        ]);
        assert_eq!(code, 0, "{cell}: {err}");
        assert!(out.starts_with("I "), "{out}");
    }
    assert!(wgpu_lstm(&["train", "--help"]).1.contains("--proj-size"));
    // A GRU checkpoint given to sample as something else.
    let gru = dir.join("gru.safetensors");
    let (code, _, err) = wgpu_lstm(&[
        "sample",
        "--checkpoint",
        gru.to_str().unwrap(),
        "--cell",
        "lstm",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--cell lstm") && err.contains("nn.GRU"),
        "{err}"
    );
    let (code, _, err) = wgpu_lstm(&[
        "sample",
        "--checkpoint",
        gru.to_str().unwrap(),
        "--proj-size",
        "3",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--proj-size 3") && err.contains("nn.GRU"),
        "{err}"
    );
    // Projections are an LSTM's; relu an RNN's.
    let (code, _, err) = wgpu_lstm(
        &[
            &["train", "--cell", "gru", "--proj-size", "2"][..],
            &TINY,
            &["1"],
        ]
        .concat(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("proj_size") && err.contains("nn.GRU"), "{err}");
    let (code, _, err) =
        wgpu_lstm(&[&["train", "--nonlinearity", "relu"][..], &TINY, &["1"]].concat());
    assert_eq!(code, 2);
    assert!(
        err.contains("nonlinearity") && err.contains("nn.LSTM"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sample_refuses_a_checkpoint_with_nan_weights() {
    use wgpu_lstm::io::{read_tensors_with_metadata, write_tensors_with_metadata, HostData};
    let dir = temp_dir("nan-sample");
    let ckpt = dir.join("c.safetensors");
    let (code, _, err) = wgpu_lstm(
        &[
            &["train", "--checkpoint", ckpt.to_str().unwrap()][..],
            &TINY,
            &["2"],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    let (mut tensors, meta) = read_tensors_with_metadata(&ckpt).unwrap();
    if let HostData::F32(v) = &mut tensors.get_mut("head.weight").unwrap().data {
        v.iter_mut().for_each(|x| *x = f32::NAN);
    }
    write_tensors_with_metadata(&ckpt, &tensors, meta).unwrap();
    let (code, out, err) = wgpu_lstm(&[
        "sample",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--length",
        "40",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("`head.weight` holds NaN"), "{err}");
    assert!(out.is_empty(), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_huge_bench_size_is_a_limit_error_not_an_abort() {
    let (code, _, err) = wgpu_lstm(&["bench", "--size", "99999999x99999999x9x9", "--iters", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("max_storage_buffer_binding_size"), "{err}");
}

#[test]
fn bad_clip_values_are_errors_not_off() {
    for clip in ["nan", "-1", "inf"] {
        let (code, _, err) =
            wgpu_lstm(&[&["train", &format!("--clip={clip}")][..], &TINY, &["1"]].concat());
        assert_eq!(code, 2, "--clip {clip}");
        assert!(err.contains("--clip"), "{err}");
    }
}

#[test]
fn a_diverging_run_fails_and_keeps_its_last_good_checkpoint() {
    let dir = temp_dir("diverge");
    let ckpt = dir.join("c.safetensors");
    let ckpt_s = ckpt.to_str().unwrap();
    // A good checkpoint first, then a run from it at an absurd learning rate.
    let (code, _, err) = wgpu_lstm(
        &[
            &["train", "--checkpoint", ckpt_s, "--optimizer", "sgd"][..],
            &TINY,
            &["2"],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    let good = std::fs::read(&ckpt).unwrap();
    let args = [
        "train",
        "--steps",
        "30",
        "--hidden",
        "12",
        "--batch",
        "2",
        "--seq-len",
        "5",
        "--log-every",
        "10",
        "--checkpoint-every",
        "10",
        "--optimizer",
        "sgd",
        "--lr",
        "1e38",
        "--clip",
        "0",
        "--quiet",
        "--checkpoint",
        ckpt_s,
    ];
    let (code, out, err) = wgpu_lstm(&args);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(err.contains("must be finite"), "{err}");
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        good,
        "the good checkpoint was replaced"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn infer_takes_gru_relu_and_projected_state_dicts() {
    let golden = |name: &str, file: &str| {
        format!(
            "{}/tests/golden/{name}/{file}.safetensors",
            env!("CARGO_MANIFEST_DIR")
        )
    };
    let dir = temp_dir("infer-cells");
    let out = dir.join("out.safetensors");
    let out_s = out.to_str().unwrap();
    for (name, extra) in [
        ("gru_bidirectional_varlen", &[][..]),
        ("rnn_relu_two_layers", &["--nonlinearity", "relu"][..]),
        ("lstm_proj_bidirectional_varlen", &[][..]),
    ] {
        let (w, i, g) = (
            golden(name, "weights"),
            golden(name, "input"),
            golden(name, "grad_output"),
        );
        let args = [
            &[
                "infer",
                "--weights",
                &w,
                "--input",
                &i,
                "--grad-output",
                &g,
                "--clip",
                "1",
                "--output",
                out_s,
            ][..],
            extra,
        ]
        .concat();
        let (code, stdout, err) = wgpu_lstm(&args);
        assert_eq!(code, 0, "{name}: {err}");
        let got = wgpu_lstm::io::read_tensors(&out).unwrap();
        let want =
            wgpu_lstm::io::read_tensors(std::path::Path::new(&golden(name, "expected"))).unwrap();
        let (y, wy) = (got["y"].to_f64(), want["y"].to_f64());
        let err = y
            .iter()
            .zip(&wy)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err <= 1e-5, "{name}: y error {err:e}\n{stdout}");
        assert!(
            !got.contains_key("c_n") || name.starts_with("lstm"),
            "{name}"
        );
    }
    // A relu RNN run as tanh differs: the option matters.
    let name = "rnn_relu_two_layers";
    let (w, i) = (golden(name, "weights"), golden(name, "input"));
    let (code, _, err) = wgpu_lstm(&["infer", "--weights", &w, "--input", &i, "--output", out_s]);
    assert_eq!(code, 0, "{err}");
    let y = wgpu_lstm::io::read_tensors(&out).unwrap()["y"].to_f64();
    let wy = wgpu_lstm::io::read_tensors(std::path::Path::new(&golden(name, "expected"))).unwrap()
        ["y"]
        .to_f64();
    assert!(y.iter().zip(&wy).any(|(a, b)| (a - b).abs() > 1e-3));
    // The cell of the file wins over a contradicting option.
    let gru = golden("gru_bidirectional_varlen", "weights");
    let (code, _, err) = wgpu_lstm(&[
        "infer",
        "--weights",
        &gru,
        "--input",
        &golden("gru_bidirectional_varlen", "input"),
        "--output",
        out_s,
        "--cell",
        "lstm",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("nn.GRU"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn infer_refuses_unknown_and_meaningless_gradient_names() {
    use wgpu_lstm::io::{write_tensors, HostTensor, TensorMap};
    let golden = |name: &str, file: &str| {
        format!(
            "{}/tests/golden/{name}/{file}.safetensors",
            env!("CARGO_MANIFEST_DIR")
        )
    };
    let dir = temp_dir("infer-names");
    let out = dir.join("out.safetensors");
    let grads = dir.join("grads.safetensors");
    let run = |name: &str, grad: &TensorMap| {
        write_tensors(&grads, grad).unwrap();
        wgpu_lstm(&[
            "infer",
            "--weights",
            &golden(name, "weights"),
            "--input",
            &golden(name, "input"),
            "--grad-output",
            grads.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ])
    };
    let lstm = "varlen_bidirectional_two_layers";
    let mut typo =
        wgpu_lstm::io::read_tensors(std::path::Path::new(&golden(lstm, "grad_output"))).unwrap();
    let dh_n = typo.remove("dh_n").unwrap();
    typo.insert("dhn".into(), dh_n);
    let (code, _, err) = run(lstm, &typo);
    assert_eq!(code, 2);
    assert!(err.contains("`dhn`") && err.contains("dh_n"), "{err}");
    let (code, _, err) = run(lstm, &TensorMap::new());
    assert_eq!(code, 2);
    assert!(err.contains("no gradients"), "{err}");
    // An RNN has no cell state: dc_n means nothing to it.
    let rnn = "rnn_bidirectional_varlen";
    let mut with_c =
        wgpu_lstm::io::read_tensors(std::path::Path::new(&golden(rnn, "grad_output"))).unwrap();
    with_c.insert("dc_n".into(), HostTensor::f32(&[4, 2, 6], vec![0.0; 48]));
    let (code, _, err) = run(rnn, &with_c);
    assert_eq!(code, 2);
    assert!(
        err.contains("`dc_n`") && err.contains("no cell state"),
        "{err}"
    );
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
