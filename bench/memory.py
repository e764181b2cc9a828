"""Memory of `neuralannot predict` on a large set: does RSS stay flat as the samples stream through?

Renders a small pool of synthetic MoCap samples, writes an N-sample shard folder that reuses the
pool's images and joints under fresh ids (cheap, no rendering), trains a tiny annotator on the pool
and runs `neuralannot predict` on the N samples in a subprocess, sampling its RSS (VmRSS in
/proc/<pid>/status) and its progress (complete part files) every ``--interval`` seconds.

    python bench/memory.py [--n 100000] [--pool 200] [--out-format json] [--data-dir out/bench/memory]

Prints a table and writes ``bench/results/memory.json``: peak RSS (VmHWM), RSS at 10/50/100 % of the
samples, the slope of RSS over the samples (MB per 10k, fitted from 10 % to 100 %), samples/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common import machine_info
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.io import atomic_write_json

RESULTS = Path(__file__).parent / "results" / "memory.json"
CONFIG = {  # the CPU config's frozen EfficientNet-Lite0 on small crops: the bench measures memory
    "backbone": "efficientnet_lite0", "backbone_weights": "imagenet", "freeze_backbone": True,
    "input_size": 64, "batch_size": 64, "epochs": 1, "min_steps": 30, "head_hidden": [256],
}  # fmt: skip
CHUNK = 512  # records per part file


def build_large_set(pool: Path, out: Path, n: int, shard_size: int = 10000) -> None:
    """Shard folder of ``n`` samples cycling through the pool's samples (absolute image paths, new ids)."""
    meta = json.loads((pool / "meta.json").read_text())
    if (out / "meta.json").is_file() and json.loads((out / "meta.json").read_text())["num_samples"] == n:
        return
    raws = [json.loads(line) for shard in meta["shards"] for line in (pool / shard).read_text().splitlines()]
    for raw in raws:
        raw["image"] = str((pool / raw["image"]).resolve())
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    for start in range(0, n, shard_size):
        shards.append(f"shard-{len(shards):05d}.jsonl")
        with open(out / shards[-1], "w", encoding="utf-8") as f:
            for i in range(start, min(start + shard_size, n)):
                raw = raws[i % len(raws)]
                f.write(json.dumps(dict(raw, id=f"{raw['id']}/{i}"), separators=(",", ":")) + "\n")
    atomic_write_json(out / "meta.json", dict(meta, num_samples=n, shards=shards))


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS / VmHWM of a process in MB ({} once it has exited)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024.0
    return out


def monitor(cmd: list[str], parts: Path, interval: float, log: Path) -> tuple[list[dict], float]:
    """Run ``cmd``, sampling RSS and finished records (part files x CHUNK); returns samples, peak MB."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    t0, rows, peak = time.perf_counter(), [], 0.0
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=err, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            st = proc_status(proc.pid)
            done = len(list(parts.glob("part-*.jsonl"))) * CHUNK if parts.is_dir() else 0
            if st:
                peak = max(peak, st.get("VmHWM", 0.0))
                rows.append({"t": time.perf_counter() - t0, "rss_mb": st["VmRSS"], "done": done})
            time.sleep(interval)
    if proc.returncode:
        raise SystemExit(f"predict failed ({proc.returncode}); see {log}")
    return rows, peak


def summarize(rows: list[dict], n: int, peak: float) -> dict:
    done = np.array([min(r["done"], n) for r in rows], float)
    rss = np.array([r["rss_mb"] for r in rows])
    t = np.array([r["t"] for r in rows])

    def at(frac: float) -> float | None:
        idx = np.flatnonzero(done >= frac * n)
        return round(float(rss[idx[0]]), 1) if idx.size else None

    run = (done >= 0.1 * n) & (done < n)  # steady annotation, before the last chunk and the merge
    slope = np.polyfit(done[run], rss[run], 1)[0] * 1e4 if run.sum() > 2 and np.ptp(done[run]) > 0 else None
    moving = np.flatnonzero(done > 0)
    last = np.flatnonzero(done >= n)[0]
    rate = (done[last] - done[moving[0]]) / max(t[last] - t[moving[0]], 1e-9)
    return {
        "n": n,
        "peak_rss_mb": round(peak, 1),
        "rss_start_mb": round(float(rss[0]), 1),
        "rss_first_chunk_mb": round(float(rss[moving[0]]), 1),  # samples loaded, model built
        "rss_10pct_mb": at(0.1),
        "rss_50pct_mb": at(0.5),
        "rss_100pct_mb": at(1.0),
        "rss_max_annotating_mb": round(float(rss[run].max()), 1) if run.any() else None,
        "rss_max_merging_mb": round(float(rss[done >= n].max()), 1),
        "slope_mb_per_10k": None if slope is None else round(float(slope), 2),
        "samples_per_s": round(float(rate), 1),
        "wall_s": round(float(t[-1]), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100000, help="samples to annotate")
    ap.add_argument("--pool", type=int, default=200, help="rendered samples the large set reuses")
    ap.add_argument("--data-dir", type=Path, default=Path("out/bench/memory"))
    ap.add_argument("--out-format", choices=("json", "npz"), default="json")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between RSS samples")
    args = ap.parse_args()
    from neuralannot.data.synthetic.generator import generate

    d = args.data_dir
    generate("mocap", args.pool, d / "pool", seed=11, shard_size=100, image_size=128, masks=False)
    build_large_set(d / "pool", d / f"set{args.n}", args.n)
    cfg_path = d / "config.yaml"
    cfg_path.write_text(json.dumps(CONFIG))  # JSON is YAML
    digest = AnnotatorConfig.from_yaml(cfg_path, mode="mocap", part="body", body_model="anny").digest()
    cli = [sys.executable, "-m", "neuralannot.cli"]
    subprocess.run([*cli, "train", "--data", d / "pool", "--config", cfg_path, "--work-dir", d / "work"],
                   check=True)  # fmt: skip
    ckpt = d / "work" / digest / "checkpoint.pt"
    run_dir = d / f"predict{args.n}"
    if run_dir.exists():  # a fresh run every time (predict would resume)
        shutil.rmtree(run_dir)
    out = run_dir / f"pgt.{args.out_format}"
    cmd = [*cli, "predict", "--data", d / f"set{args.n}", "--checkpoint", ckpt, "--out", out,
           "--work-dir", run_dir, "--chunk-size", str(CHUNK), "--batch-size", "64"]  # fmt: skip
    rows, peak = monitor([str(c) for c in cmd], run_dir / digest / "parts" / "rank0", args.interval,
                         d / "predict.log")  # fmt: skip
    result = {**summarize(rows, args.n, peak), "out_format": args.out_format, "config": CONFIG}
    keys = ("n", "peak_rss_mb", "rss_first_chunk_mb", "rss_10pct_mb", "rss_50pct_mb", "rss_100pct_mb",
            "rss_max_merging_mb", "slope_mb_per_10k", "samples_per_s", "wall_s")  # fmt: skip
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    print("| " + " | ".join(str(result[k]) for k in keys) + " |")
    RESULTS.parent.mkdir(exist_ok=True)
    timeline = rows[:: max(1, len(rows) // 400)]  # at most ~400 points
    atomic_write_json(RESULTS, {"machine": machine_info(), "result": result, "timeline": timeline})
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
