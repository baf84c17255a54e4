//! A private XDG runtime directory for processes started without one. Mesa's drivers (lavapipe,
//! llvmpipe) print `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` when it
//! is unset, before anything else the command says; .ci/run does the same with `mktemp -d`.

use std::path::PathBuf;

/// When XDG_RUNTIME_DIR is unset or empty, creates a private directory (mode 0700, as the XDG
/// spec asks) for this process, points the variable at it and returns it, for removal at exit.
/// Call before any GPU instance exists and before other threads start.
pub(crate) fn ensure_runtime_dir() -> Option<PathBuf> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| !v.is_empty()) || cfg!(not(unix)) {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("wgpu-lstm-runtime-{}", std::process::id()));
    if create_private(&dir).is_err() {
        return None; // the drivers' warning is harmless: carry on without
    }
    // Edition 2021: set_var is safe to call; this runs first in main, with no other threads.
    std::env::set_var("XDG_RUNTIME_DIR", &dir);
    Some(dir)
}

#[cfg(unix)]
fn create_private(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private(_dir: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}
