#!/usr/bin/env python3
"""PyTorch's cuDNN LSTM at the sizes of `wgpu-lstm bench`, timed the same way, same JSON schema.

    python3 benches/pytorch_baseline.py --json > torch.json
    python3 benches/compare.py ours.json torch.json

fp32 with TF32 off (torch.backends.cuda.matmul.allow_tf32 = False, cudnn.allow_tf32 = False),
CUDA-event timing, median of --iters calls after --warmup. Inference is a forward pass under
no_grad; training is forward, backward from a fixed dy, and clip_grad_norm_(max_norm=1), as in
`wgpu-lstm bench`. Without CUDA it runs on the CPU with wall-clock timing (to test the script).
"""
import argparse
import json
import statistics
import time

import torch

STANDARD = ["100x64x512x512", "100x64x1024x1024", "100x1x512x512", "150x16x256x256", "25x64x512x512"]
SMOKE = ["8x2x7x13", "16x4x16x32"]


def timer(device):
    if device.type == "cuda":
        def timed(fn):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end)
    else:
        def timed(fn):
            t0 = time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1e3
    return timed


def measure(size, mode, device, warmup, iters):
    t, b, i, h = map(int, size.split("x"))
    lstm = torch.nn.LSTM(i, h).to(device)
    x = torch.randn(t, b, i, device=device)
    dy = torch.randn(t, b, h, device=device)
    params = list(lstm.parameters())

    def inference():
        with torch.no_grad():
            lstm(x)

    def training():
        lstm.zero_grad(set_to_none=False)
        y, _ = lstm(x)
        y.backward(dy)
        torch.nn.utils.clip_grad_norm_(params, 1.0)

    fn = inference if mode == "inference" else training
    timed = timer(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for k in range(warmup + iters):
        ms = timed(fn)
        if k >= warmup:
            times.append(ms)
    ms = statistics.median(times)
    flops = 2 * t * b * 4 * h * (i + h) * (3 if mode == "training" else 1)
    memory = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0
    return {
        "size": size, "T": t, "B": b, "I": i, "H": h, "mode": mode, "ms": ms, "ms_min": min(times),
        "us_per_step": ms * 1e3 / t, "gflops": flops / (ms * 1e-3) / 1e9, "memory_bytes": memory,
        "timing": "cuda-events" if device.type == "cuda" else "wall-clock",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", action="append", help="TxBxIxH (repeatable)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    sizes = args.size or (SMOKE if args.smoke else STANDARD)
    rows = [measure(s, m, device, args.warmup, args.iters) for s in sizes for m in ("inference", "training")]
    out = {"engine": f"pytorch {torch.__version__} cudnn {torch.backends.cudnn.version()}", "device": name,
           "flops": "forward 2*T*B*4H*(I+H), training 3x", "results": rows}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"device: {name}, {out['engine']}")
        for r in rows:
            print(f"{r['size']:>18} {r['mode']:>9}: {r['ms']:.3f} ms, {r['us_per_step']:.1f} us/step, {r['gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
