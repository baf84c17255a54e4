#!/usr/bin/env bash
# Builds the lab page and serves it on http://127.0.0.1:$PORT/ (default 8080). Open it in a
# browser with WebGPU (Chrome, Edge, Safari; Firefox with WebGPU enabled).
set -euo pipefail
cd "$(dirname "$0")"
bash build.sh
port=${PORT:-8080}
echo "serving the lab on http://127.0.0.1:$port/"
exec python3 -m http.server "$port" --bind 127.0.0.1 --directory .
