"""NeuralAnnot on the synthetic benchmark: direct errors against GT meshes + the paper's ablations.

Generates (or reuses) a synthetic MoCap set (noisy GT 3D joints, some missing) and a wild set (noisy
2D joints only), trains the annotator on each set and annotates the SAME set, then measures MPJPE,
MPVPE and PA-MPVPE against the GT meshes. Ablations in the shape of the paper's Tables 2 and 3:

- inputs (MoCap set, MPJPE): image | joints | image+joints (rotations output)
- outputs (MPVPE): MoCap set and wild set, each with rotations | embedding

    python bench/neural.py [--n 600] [--epochs 8] [--config configs/cpu.yaml] [--data-dir out/bench]

Writes ``bench/results/neural.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=600, help="samples per synthetic set")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--min-steps", type=int, default=None, help="override the config's min_steps")
    ap.add_argument("--config", type=Path, default=Path(__file__).parents[1] / "configs" / "cpu.yaml")
    ap.add_argument("--data-dir", type=Path, default=Path("out/bench"))
    ap.add_argument("--workers", type=int, default=2, help="synthetic-data generation processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    sets = {}
    for kind in ("mocap", "wild"):
        sets[kind] = args.data_dir / f"synth_{kind}_{args.n}_s{args.seed}"
        generate(kind, args.n, sets[kind], seed=args.seed + (kind == "wild"), workers=args.workers)

    def cfg(mode, inputs=None, outputs=None):
        return AnnotatorConfig.from_yaml(
            args.config,
            mode=mode,
            inputs=inputs,
            outputs=outputs,
            epochs=args.epochs,
            min_steps=args.min_steps,
            seed=args.seed,
        )

    work = args.data_dir / "neural"
    rows = {}
    for inputs in ("image+joints", "joints", "image"):
        rows[("mocap", inputs, "rotations")] = run(
            "mocap", sets["mocap"], work, cfg("mocap", inputs), f"mocap_{inputs}_rot"
        )
    rows[("mocap", "image+joints", "embedding")] = run(
        "mocap", sets["mocap"], work, cfg("mocap", "image+joints", "embedding"), "mocap_emb"
    )
    for outputs in ("embedding", "rotations"):
        rows[("wild", "image", outputs)] = run(
            "wild", sets["wild"], work, cfg("wild", "image", outputs), f"wild_{outputs}"
        )
    result = {
        "ablation_inputs": {
            i: rows[("mocap", i, "rotations")]["mpjpe_mm"] for i in ("image", "joints", "image+joints")
        },
        "ablation_outputs": {
            "mocap": {o: rows[("mocap", "image+joints", o)]["mpvpe_mm"] for o in ("rotations", "embedding")},
            "wild": {o: rows[("wild", "image", o)]["mpvpe_mm"] for o in ("rotations", "embedding")},
        },
        "runs": list(rows.values()),
        "config": cfg("mocap").to_dict(),
        "n": args.n,
        "command": "python bench/neural.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out"
        ),
        "machine": machine_info(),
    }
    atomic_write_json(args.out, result)
    print("\nTable 2 shape — MoCap set, inputs (rotations output), MPJPE mm:")
    for i in ("image", "joints", "image+joints"):
        print(f"  {i:>14}: {_fmt(result['ablation_inputs'][i])}")
    print("Table 3 shape — outputs, MPVPE mm:")
    for s in ("mocap", "wild"):
        for o in ("rotations", "embedding"):
            print(f"  {s:>6} {o:>10}: {_fmt(result['ablation_outputs'][s][o])}")
    print("\nall runs:")
    for r in rows.values():
        print(
            f"  {r['set']:>5} {r['inputs']:>12} {r['outputs']:>9}  MPJPE {_fmt(r['mpjpe_mm'])}  "
            f"MPVPE {_fmt(r['mpvpe_mm'])}  PA-MPVPE {_fmt(r['pa_mpvpe_mm'])}  "
            f"train {r['train_samples_per_s']:6.1f}/s  annotate {r['annotate_samples_per_s']:6.1f}/s  "
            f"{r['wall_s']:.0f} s"
        )


if __name__ == "__main__":
    main()
