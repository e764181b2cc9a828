"""Time the Anny body forward on this machine: joints only, full mesh, forward+backward.

Per-sample random phenotypes and poses (the training case), float32, both LBS backends
(``warp_lbs``: NVIDIA Warp sparse kernel; ``lbs``: dense torch). Prints a table and writes
``bench/results/body_forward.json``.

    python bench/body_forward.py [--batches 1 16 64 256] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from common import machine_info
from neuralannot.bodies import load_body_model
from neuralannot.bodies.joints import get_regressor
from neuralannot.io import atomic_write_json

RESULTS = Path(__file__).parent / "results" / "body_forward.json"


def random_params(model, batch: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    p = model.default_params(batch)
    p["body_pose"] = 0.3 * torch.randn(batch, 21, 3, generator=gen)
    p["root_pose"] = torch.randn(batch, 3, generator=gen)
    p["phenotype"] = torch.rand(batch, 6, generator=gen)
    return p


def time_call(fn, repeats: int) -> float:
    fn()  # warm-up (Warp compiles its kernel on first use)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _no_grad(model, params, return_vertices=True, regressor=None):
    with torch.no_grad():
        if regressor is not None:
            return regressor(model(params, vertex_ids=regressor.vertex_ids))
        return model(params, return_vertices=return_vertices)


def _fwd_bwd(model, params):
    p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    model(p).vertices.square().sum().backward()


def bench(batches: list[int], repeats: int) -> list[dict]:
    rows = []
    gen = torch.Generator().manual_seed(0)
    for backend in ("warp_lbs", "lbs"):
        model = load_body_model("anny", part="body", skinning=backend)
        coco = get_regressor(model, "coco17")
        for batch in batches:
            params = random_params(model, batch, gen)

            cases = {
                "full_mesh": lambda m=model, p=params: _no_grad(m, p),
                "forward_backward": lambda m=model, p=params: _fwd_bwd(m, p),
            }
            if backend == "warp_lbs":  # skinning-free paths do not depend on the backend
                cases = {
                    "joints_only": lambda m=model, p=params: _no_grad(m, p, return_vertices=False),
                    "coco17_subset": lambda m=model, p=params, r=coco: _no_grad(m, p, regressor=r),
                    **cases,
                }
            for case, fn in cases.items():
                ms = time_call(fn, repeats if batch < 256 else max(2, repeats // 2))
                rows.append(
                    {
                        "backend": backend if "mesh" in case or "backward" in case else "-",
                        "case": case,
                        "batch": batch,
                        "ms": round(ms, 2),
                        "ms_per_sample": round(ms / batch, 3),
                    }
                )
                print(
                    f"{rows[-1]['backend']:>9} {case:>17} B={batch:<4} {ms:9.1f} ms "
                    f"{ms / batch:8.3f} ms/sample",
                    flush=True,
                )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = bench(args.batches, args.repeats)
    result = {
        "machine": machine_info(),
        "dtype": "float32",
        "phenotypes": "per-sample random",
        "rows": rows,
    }
    atomic_write_json(args.out, result)
    print(json.dumps({"written": str(args.out)}))


if __name__ == "__main__":
    main()
