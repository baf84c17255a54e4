#!/usr/bin/env python3
"""Joins `wgpu-lstm bench --json` and `benches/pytorch_baseline.py --json` into one table.

    python3 benches/compare.py ours.json torch.json

Ratio = PyTorch ms / wgpu-lstm ms: above 1 we are faster. Only rows of the same size and mode
are joined; compare files from the same run on the same machine.
"""
import json
import sys


def main(ours_path, theirs_path):
    ours, theirs = (json.load(open(p)) for p in (ours_path, theirs_path))
    index = {(r["size"], r["mode"]): r for r in theirs["results"]}
    print(f"wgpu-lstm: {ours['device']}  |  baseline: {theirs['engine']} on {theirs['device']}\n")
    print("| size T×B×I×H | mode | wgpu-lstm ms | baseline ms | ratio (baseline/ours) | wgpu-lstm GFLOP/s | baseline GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for r in ours["results"]:
        t = index.get((r["size"], r["mode"]))
        if t is None:
            continue
        print(f"| {r['size']} | {r['mode']}{' (' + r['recurrence'] + ')' if 'recurrence' in r else ''} | {r['ms']:.3f} | {t['ms']:.3f} | {t['ms'] / r['ms']:.2f} | "
              f"{r['gflops']:.1f} | {t['gflops']:.1f} |")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
