"""Throughput and accuracy on one device (a GPU, or the CPU): training, annotation, SMPLify-X.

Makes its own synthetic MoCap and wild sets (known GT meshes), then on ``--device``:

- NeuralAnnot, trained on each set and run on the same set (``run_annotate``): MoCap with the frozen
  EfficientNet-Lite0 (the CPU config), MoCap fine-tuned end to end at 256² (backbone at lr 1e-4, heads
  1e-3), the same with AMP
  (CUDA only: bfloat16 where supported), and wild mode (frozen); training samples/s, annotation
  samples/s, MPVPE against the GT meshes;
- 3D SMPLify-X on the MoCap set and 2D SMPLify-X on the wild set (``fit_dataset``): samples/s, MPVPE.

Prints a table and writes ``bench/results/gpu.json``. Nothing in it is estimated: a run that
cannot happen on this device (AMP on the CPU) is recorded as skipped, with the reason.

    python bench/gpu.py [--device cuda] [--n 2000] [--steps 800] [--fit-n 500]
    python bench/gpu.py --small [--out /tmp/gpu.json]   # seconds on a CPU: the tests run this

``--small``: 8 samples of 96 px per set, ResNet-18 without pretrained weights on 64-px crops, 3
steps, SMPLify-X with 2 iterations per stage; a check that every part runs, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import machine_info
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.optimize import fit_dataset
from neuralannot.annotators.optimize_problem import FitOptions
from neuralannot.annotators.pipeline import load_samples, run_annotate
from neuralannot.data.synthetic.generator import generate
from neuralannot.evaluation import evaluate
from neuralannot.io import atomic_write_json
from neuralannot.io.pseudo_gt import read_pseudo_gt

RESULTS = Path(__file__).parent / "results" / "gpu.json"
ROOT = Path(__file__).resolve().parents[1]

#: fine-tuned end to end: the pretrained backbone at a tenth of the heads' learning rate
FINETUNED = {"freeze_backbone": False, "input_size": 256, "batch_size": 128, "backbone_lr": 1e-4}
#: (run name, dataset kind, config overrides); ``amp`` runs need CUDA
RUNS = [
    ("mocap_frozen", "mocap", {}),
    ("mocap_finetuned", "mocap", FINETUNED),
    ("mocap_finetuned_amp", "mocap", {**FINETUNED, "amp": True}),
    ("wild_frozen", "wild", {}),
]
#: SMPLify-X runs (``smplifyx_<method>``) and the set each fits
FITS = [("3d", "mocap"), ("2d", "wild")]
#: --small: a tiny network that needs no weights file
SMALL = {"backbone": "resnet18", "backbone_weights": "none", "input_size": 64, "batch_size": 4,
         "head_hidden": [32]}  # fmt: skip


def _round(v, nd=1):
    return None if v is None else round(float(v), nd)


def train_run(name: str, kind: str, data: Path, work: Path, overrides: dict, args) -> dict:
    if overrides.get("amp") and torch.device(args.device).type != "cuda":
        return {"run": name, "skipped": "AMP runs on CUDA only"}
    if args.num_workers is not None:  # DataLoader processes: no effect on the results
        overrides = {"num_workers": args.num_workers, **overrides}
    cfg = AnnotatorConfig.from_yaml(ROOT / "configs" / "cpu.yaml", mode=kind, min_steps=args.steps, epochs=1,
                                    checkpoint_every=10**6, **overrides)  # fmt: skip
    if args.small:
        cfg = AnnotatorConfig.from_dict({**cfg.to_dict(), **SMALL})
    out = work / f"{name}.npz"
    t0 = time.perf_counter()
    s = run_annotate(data, out, cfg, work / name, device=args.device, resume=False, progress=not args.small)
    wall = time.perf_counter() - t0
    records, _ = read_pseudo_gt(out, as_dict=True)
    samples, _ = load_samples(data, cfg.part)
    _, m = evaluate(records, samples)
    return {
        "run": name, "mode": kind, "backbone": cfg.backbone, "frozen": cfg.freeze_backbone,
        "input_size": cfg.input_size, "batch_size": cfg.batch_size, "amp": cfg.amp,
        "lr": cfg.lr, "backbone_lr": cfg.backbone_lr,
        "steps": s["train"]["history"][-1]["step"], "n": len(samples), "wall_s": _round(wall),
        "train_samples_per_s": _round(s["train"]["samples_per_s"]),
        "annotate_samples_per_s": _round(s["annotate"]["samples_per_s"]),
        "mpvpe_mm": _round(m["mpvpe_mm"]), "mpjpe_mm": _round(m["mpjpe_mm"]),
    }  # fmt: skip


def fit_run(method: str, data: Path, args) -> dict:
    samples, _ = load_samples(data, "body", needs_3d=method == "3d", limit=args.fit_n)
    opt = FitOptions(iterations=args.fit_iterations)
    records, s = fit_dataset(samples, method, device=args.device, options=opt, batch_size=args.fit_batch)
    _, m = evaluate({r.sample_id: r for r in records}, samples)
    return {
        "run": f"smplifyx_{method}", "n": len(samples), "iterations": args.fit_iterations,
        "batch_size": args.fit_batch, "wall_s": _round(s["wall_s"]),
        "samples_per_s": _round(s["samples_per_s"], 2),
        "mpvpe_mm": _round(m["mpvpe_mm"]), "mpjpe_mm": _round(m["mpjpe_mm"]),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--small", action="store_true", help="a few seconds on a CPU (tests)")
    ap.add_argument("--n", type=int, default=None, help="samples per synthetic set (2000; small: 8)")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (800; small: 3)")
    ap.add_argument("--fit-n", type=int, default=None, help="SMPLify-X samples per set (500; small: 4)")
    ap.add_argument("--fit-iterations", type=int, default=None, help="per stage (30; small: 2)")
    ap.add_argument("--fit-batch", type=int, default=None, help="SMPLify-X batch (256; small: 4)")
    known = [r[0] for r in RUNS] + [f"smplifyx_{m}" for m, _ in FITS]
    ap.add_argument("--runs", default=",".join(known))
    ap.add_argument("--data-dir", type=Path, default=Path("out/bench/gpu"))
    ap.add_argument("--workers", type=int, default=2, help="synthetic-data generation processes")
    ap.add_argument("--num-workers", type=int, default=None, help="training DataLoader processes (config's)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    small = {"n": 8, "steps": 3, "fit_n": 4, "fit_iterations": 2, "fit_batch": 4}
    full = {"n": 2000, "steps": 800, "fit_n": 500, "fit_iterations": 30, "fit_batch": 256}
    for k, v in (small if args.small else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    wanted = args.runs.split(",")
    size = 96 if args.small else 256
    unknown = set(wanted) - set(known)
    if unknown:
        ap.error(f"unknown --runs {sorted(unknown)}")
    needed = {k for name, k, _ in RUNS if name in wanted} | {k for m, k in FITS if f"smplifyx_{m}" in wanted}
    sets = {}
    for seed, kind in enumerate(("mocap", "wild")):  # only the sets a wanted run reads
        sets[kind] = args.data_dir / f"synth_{kind}_{args.n}_{size}px"
        if kind in needed:  # a finished set is read back as it is (no renderer needed)
            generate(kind, args.n, sets[kind], seed=seed, workers=args.workers, image_size=size, masks=False,
                     progress=not args.small)  # fmt: skip
    work = args.data_dir / ("work_small" if args.small else "work")
    dev = torch.device(args.device)
    machine = machine_info()
    if dev.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(dev)
    rows = []
    result = {"machine": machine, "device": args.device, "small": args.small,
              "args": {k: str(v) for k, v in vars(args).items()}, "runs": rows}  # fmt: skip

    def done(row: dict) -> None:  # every finished run is on disk (a run killed by a time limit keeps them)
        rows.append(row)
        print(json.dumps(row), flush=True)
        atomic_write_json(args.out, result)

    for name, kind, overrides in RUNS:
        if name in wanted:
            done(train_run(name, kind, sets[kind], work, overrides, args))
    for method, kind in FITS:
        if f"smplifyx_{method}" in wanted:
            done(fit_run(method, sets[kind], args))
    print(f"\n{'run':>22} {'train/s':>9} {'annotate/s':>10} {'fit/s':>8} {'MPVPE mm':>9}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['run']:>22}  skipped: {r['skipped']}")
            continue
        cells = [r.get("train_samples_per_s"), r.get("annotate_samples_per_s"), r.get("samples_per_s")]
        text = [f"{'-' if c is None else c:>{w}}" for c, w in zip(cells, (9, 10, 8), strict=True)]
        print(f"{r['run']:>22} {' '.join(text)} {r['mpvpe_mm'] if r['mpvpe_mm'] is not None else '-':>9}")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
