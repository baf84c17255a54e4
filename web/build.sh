#!/usr/bin/env bash
# Builds the lab page's engine: wgpu-lstm-web for wasm32, then its JavaScript bindings into
# web/pkg (what index.html loads). Needs the wasm target and the wasm-bindgen CLI of the version
# in Cargo.lock (scripts/test-web.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p wgpu-lstm-web --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir web/pkg \
  target/wasm32-unknown-unknown/debug/wgpu_lstm_web.wasm
