#!/usr/bin/env bash
# The project's test command (README "Run the tests"): every test on the default adapter
# (Vulkan; lavapipe on a machine without a GPU), then the GPU-against-reference tests again on
# wgpu's OpenGL backend (Mesa's llvmpipe here) to check portability across backends.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets
cargo test --doc
WGPU_BACKEND=gl cargo test --test forward --test backward --test clip --test embedding --test stacked --test golden --test dropout --test optim --test training --test gradflow --test tiling --test recurrence --test scratch --test long_reductions --test checkpoints
