"""Time the image backbones on CPU: forward and forward+backward, ms per image.

Batch 32, float32, random weights (speed does not depend on them). ``forward``: eval mode under
``torch.no_grad``; ``forward_backward``: train mode, pooled features → scalar loss → ``backward``.
ResNet-50 only at 128² and 256². Prints a table and writes ``bench/results/backbones.json``.

    python bench/backbones.py [--batch 32] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from common import machine_info
from neuralannot.io import atomic_write_json
from neuralannot.models import build_backbone

RESULTS = Path(__file__).parent / "results" / "backbones.json"
CASES = {"resnet18": (128, 192, 256), "resnet50": (128, 256), "efficientnet_lite0": (128, 192, 256)}


def time_call(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in ms, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _forward(bb, x):
    bb.eval()
    with torch.no_grad():
        bb(x)


def _forward_backward(bb, x):
    bb.train()
    bb.zero_grad(set_to_none=True)
    bb(x).square().mean().backward()


def bench(batch: int, repeats: int) -> list[dict]:
    rows = []
    gen = torch.Generator().manual_seed(0)
    print(f"{'backbone':>18} {'size':>5} {'fwd ms/img':>11} {'fwd+bwd ms/img':>15}", flush=True)
    for name, sizes in CASES.items():
        bb = build_backbone(name, weights="none")
        for size in sizes:
            x = torch.randn(batch, 3, size, size, generator=gen)
            fwd = time_call(lambda b=bb, x=x: _forward(b, x), repeats)
            fwd_bwd = time_call(lambda b=bb, x=x: _forward_backward(b, x), repeats)
            rows.append(
                {
                    "backbone": name,
                    "size": size,
                    "batch": batch,
                    "forward_ms_per_image": round(fwd / batch, 3),
                    "forward_backward_ms_per_image": round(fwd_bwd / batch, 3),
                }
            )
            print(f"{name:>18} {size:>5} {fwd / batch:11.2f} {fwd_bwd / batch:15.2f}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = bench(args.batch, args.repeats)
    result = {
        "machine": machine_info(),
        "device": "cpu",
        "dtype": "float32",
        "note": "median of repeats after one warm-up; other jobs may have shared the CPU cores",
        "rows": rows,
    }
    atomic_write_json(args.out, result)
    print(json.dumps({"written": str(args.out)}))


if __name__ == "__main__":
    main()
