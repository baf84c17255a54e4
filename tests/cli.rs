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
    assert_eq!(out.matches(" ok").count(), 7, "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("forward 8 (1 GEMM + 7 steps)"), "{out}");
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
