"""NeuralAnnot on the synthetic benchmark: direct errors against GT meshes + the paper's ablations.

Generates (or reuses) a synthetic MoCap set (noisy GT 3D joints, some missing) and a wild set (noisy
2D joints only), trains the annotator on each set and annotates the SAME set, then measures MPJPE,
MPVPE and PA-MPVPE against the GT meshes. Ablations in the shape of the paper's Tables 2 and 3:

- inputs (MoCap set, MPJPE): image | joints | image+joints (rotations output)
- outputs (MPVPE): MoCap set and wild set, each with rotations | embedding

    python bench/neural.py [--n 600] [--epochs 8] [--config configs/cpu.yaml] [--data-dir out/bench] \
        [--seeds 0 1 2] [--head paper|swing] [--threads 1]

With several ``--seeds`` every seed gets its own pair of sets (MoCap seed s, wild seed s + 1) and its
own training seed; the tables give the mean ± standard deviation over seeds and in how many seeds
each ordering of the paper holds. ``--head paper`` (the default here) ablates the paper's plain
network: the swing head reads the GT 3D joints at its output whatever the inputs are, so an
"image only" row would not be image only. Writes ``bench/results/neural.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from common import machine_info
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.pipeline import load_samples, run_annotate
from neuralannot.data.synthetic.generator import generate
from neuralannot.evaluation import evaluate
from neuralannot.io import atomic_write_json
from neuralannot.io.pseudo_gt import read_pseudo_gt

RESULTS = Path(__file__).parent / "results" / "neural.json"


def run(kind: str, data: Path, work: Path, cfg: AnnotatorConfig, tag: str) -> dict:
    out = work / f"{tag}.npz"
    t0 = time.perf_counter()
    summary = run_annotate(data, out, cfg, work / "runs", progress=True)
    wall = time.perf_counter() - t0
    records, _ = read_pseudo_gt(out, as_dict=True)
    samples, _ = load_samples(data, cfg.part)
    _, metrics = evaluate(records, samples)
    row = {
        "set": kind,
        "inputs": cfg.inputs,
        "outputs": cfg.outputs,
        "n": metrics["n"],
        "mpjpe_mm": metrics["mpjpe_mm"],
        "pa_mpjpe_mm": metrics["pa_mpjpe_mm"],
        "mpvpe_mm": metrics["mpvpe_mm"],
        "pa_mpvpe_mm": metrics["pa_mpvpe_mm"],
        "reproj_px": metrics["reproj_px"],
        "wall_s": round(wall, 1),
        "train_samples_per_s": round(summary["train"]["samples_per_s"], 1),
        "annotate_samples_per_s": round(summary["annotate"]["samples_per_s"], 1),
        "final_loss": summary["train"]["history"][-1]["loss"],
    }
    print(json.dumps(row), flush=True)
    return row


def _fmt(v) -> str:
    return "   n/a" if v is None else f"{v:6.1f}"


def _stats(values: list[float]) -> dict:
    vals = [v for v in values if v is not None]
    return {
        "mean": statistics.fmean(vals) if vals else None,
        "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "per_seed": values,
    }


def _mean_std(st: dict) -> str:
    return "   n/a" if st["mean"] is None else f"{st['mean']:6.1f} ± {st['std']:4.1f}"


# the paper's orderings (lower is better): MoCap inputs by MPJPE, outputs by MPVPE
ORDERINGS = {
    "mocap inputs: image+joints < image < joints (MPJPE)": [
        ("mocap", "image+joints", "rotations", "mpjpe_mm"),
        ("mocap", "image", "rotations", "mpjpe_mm"),
        ("mocap", "joints", "rotations", "mpjpe_mm"),
    ],
    "mocap outputs: rotations < embedding (MPVPE)": [
        ("mocap", "image+joints", "rotations", "mpvpe_mm"),
        ("mocap", "image+joints", "embedding", "mpvpe_mm"),
    ],
    "wild outputs: embedding < rotations (MPVPE)": [
        ("wild", "image", "embedding", "mpvpe_mm"),
        ("wild", "image", "rotations", "mpvpe_mm"),
    ],
}
RUNS = [("mocap", i, "rotations") for i in ("image+joints", "joints", "image")]
RUNS += [("mocap", "image+joints", "embedding")]
RUNS += [("wild", "image", "embedding"), ("wild", "image", "rotations")]
METRICS = ("mpjpe_mm", "mpvpe_mm", "pa_mpvpe_mm")


def _holds(rows: dict, chain: list) -> bool:
    vals = [rows[c[:3]][c[3]] for c in chain]
    return all(a is not None and b is not None and a < b for a, b in zip(vals, vals[1:], strict=False))


def run_seed(args, seed: int) -> dict:
    """Every ablation run on the sets of one seed."""
    sets = {}
    for kind in ("mocap", "wild"):
        sets[kind] = args.data_dir / f"synth_{kind}_{args.n}_s{seed}"
        generate(kind, args.n, sets[kind], seed=seed + (kind == "wild"), workers=args.workers)

    def cfg(mode, inputs, outputs):
        return AnnotatorConfig.from_yaml(
            args.config,
            mode=mode,
            inputs=inputs,
            outputs=outputs,
            head=args.head if mode == "mocap" else None,
            epochs=args.epochs,
            min_steps=args.min_steps,
            seed=seed,
        )

    work = args.data_dir / f"neural_{args.head}_s{seed}"
    return {
        key: run(key[0], sets[key[0]], work, cfg(*key), "_".join(key).replace("+", "-"))
        for key in RUNS
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=600, help="samples per synthetic set")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--min-steps", type=int, default=None, help="override the config's min_steps")
    ap.add_argument("--config", type=Path, default=Path(__file__).parents[1] / "configs" / "cpu.yaml")
    ap.add_argument("--data-dir", type=Path, default=Path("out/bench"))
    ap.add_argument("--workers", type=int, default=2, help="synthetic-data generation processes")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--head", choices=("paper", "swing"), default="paper", help="MoCap head")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    per_seed = {seed: run_seed(args, seed) for seed in args.seeds}
    table = {
        "|".join(key): {
            m: _stats([per_seed[s][key][m] for s in args.seeds]) for m in METRICS
        }
        for key in RUNS
    }
    orderings = {
        name: {"holds_in": sum(_holds(per_seed[s], chain) for s in args.seeds), "of": len(args.seeds)}
        for name, chain in ORDERINGS.items()
    }
    result = {
        "table": table,
        "orderings": orderings,
        "runs": {str(s): list(rows.values()) for s, rows in per_seed.items()},
        "config": AnnotatorConfig.from_yaml(args.config, head=args.head).to_dict(),
        "n": args.n,
        "command": "python bench/neural.py "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if v is not None and k != "out"
        ),
        "machine": machine_info(),
    }
    atomic_write_json(args.out, result)
    print(f"\n{len(args.seeds)} seed(s) {args.seeds}, n = {args.n}, MoCap head {args.head}; mean ± std, mm")
    print(f"  {'set':>5} {'inputs':>12} {'outputs':>9}  {'MPJPE':>13}  {'MPVPE':>13}  {'PA-MPVPE':>13}")
    for key in RUNS:
        t = table["|".join(key)]
        print(f"  {key[0]:>5} {key[1]:>12} {key[2]:>9}  " + "  ".join(_mean_std(t[m]) for m in t))
    print("paper orderings:")
    for name, o in orderings.items():
        print(f"  {name}: holds in {o['holds_in']} of {o['of']} seeds")


if __name__ == "__main__":
    main()
