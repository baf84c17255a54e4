#!/usr/bin/env bash
# The browser tests (README "Run the tests"): the GPU-against-reference checks of tests/web.rs
# as wasm inside headless Chromium's WebGPU (SwiftShader on a machine without a GPU), then the
# lab page (web/) driven by web/test_page.py. Installs what is missing: chromium and
# chromium-driver (Debian), the wasm32 target, and the wasm-bindgen CLI of the version in
# Cargo.lock (the test runner must match the library exactly).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in chromium chromium-driver python3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $version" ]; then
  echo "installing wasm-bindgen-cli $version"
  # A debug build installs in half the time (3 min against 6 on 2 cores); the test runner is
  # then ~20 s slower over the whole run.
  cargo install -q --force --debug wasm-bindgen-cli --version "$version"
fi

# Chromium's WebGPU on SwiftShader; Mesa and Chromium want a runtime directory.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d)
  export XDG_RUNTIME_DIR
fi
export CHROMEDRIVER=${CHROMEDRIVER:-$(command -v chromedriver)}
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-900}
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
cargo build --lib --target wasm32-unknown-unknown --no-default-features
cargo test --target wasm32-unknown-unknown --no-default-features --test web -- --nocapture

bash web/build.sh
python3 web/test_page.py
