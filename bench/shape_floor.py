"""The floor of a shape-blind annotator: the GT pose worn by one shape for every sample.

A method that reads no shape (or whose inputs leave it open, as a hand's size is from its 2D joints)
cannot go below the mesh error of the exact GT pose (root rotation and translation included) on one
constant shape. This prints that error for the set's GT-median shape (the best constant guess per
parameter) and for the model's default shape (Anny: phenotypes 0.5), then the given methods' MPVPE
(``neuralannot eval --csv`` files) and the lowest ratio to the baseline a shape-blind method could
reach on these samples.

    neuralannot eval --data TEST --pred A.npz --csv A.csv     # per-sample errors, likewise B
    python bench/shape_floor.py --data TEST --part hand --method neuralannot A.csv --baseline smplifyx B.csv

Writes ``bench/results/shape_floor.json`` (``--out``) and prints the table.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from aux_overlap import per_sample
from common import machine_info
from neuralannot.data.loading import load_samples
from neuralannot.evaluation import ModelCache, evaluate, gt_params
from neuralannot.io import atomic_write_json
from neuralannot.io.pseudo_gt import PseudoGT
from neuralannot.io.records import gt_record

RESULTS = Path(__file__).parent / "results" / "shape_floor.json"


def gt_records(samples, shape: dict[str, np.ndarray] | None = None) -> dict[str, PseudoGT]:
    """The samples' GT records (:func:`~neuralannot.io.records.gt_record`), every shape parameter set to
    ``shape``'s where given."""
    records = {s.id: gt_record(s) for s in samples}
    if shape:
        records = {i: replace(r, params={**r.params, **shape}) for i, r in records.items()}
    return records


def constant_shapes(samples, cache: ModelCache) -> dict[str, dict[str, np.ndarray]]:
    """The GT-median shape of the set and the model's default shape, per shape parameter."""
    model = cache.get(samples[0].gt["model"], samples[0].gt.get("part", samples[0].part))
    keys = [k for k, spec in model.param_specs.items() if spec.kind == "shape"]
    gts = [gt_params(s.gt, model) for s in samples]
    keys = [k for k in keys if all(k in g for g in gts)]
    if not keys:
        raise SystemExit("the samples' GT has no shape parameters")
    median = {k: np.median(np.stack([g[k] for g in gts]), 0).astype(np.float32) for k in keys}
    default = {k: np.full(model.param_specs[k].shape, model.param_specs[k].default, np.float32) for k in keys}
    return {"GT-median shape": median, "default shape": default}


def mean_mpvpe(csv: str) -> float:
    """A method's mean MPVPE over the samples of its ``eval --csv`` file."""
    return float(np.mean(list(per_sample(Path(csv)).values())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a synthetic set (GT parameters)")
    ap.add_argument("--part", default="body", help="body | hand | face")
    ap.add_argument("--method", nargs=2, action="append", default=[], metavar=("NAME", "CSV"))
    ap.add_argument("--baseline", nargs=2, metavar=("NAME", "CSV"))
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    samples, _ = load_samples(args.data, args.part)
    cache = ModelCache()
    floors = {}
    for name, shape in constant_shapes(samples, cache).items():
        _, summary = evaluate(gt_records(samples, shape), samples, cache)
        floors[name] = {"mpvpe_mm": summary["mpvpe_mm"], "mpjpe_mm": summary["mpjpe_mm"],
                        "shape": {k: v.tolist() for k, v in shape.items()}}  # fmt: skip
    methods = {name: mean_mpvpe(csv) for name, csv in args.method}
    base = (args.baseline[0], mean_mpvpe(args.baseline[1])) if args.baseline else None
    print(f"{len(samples)} samples of {args.data}")
    print(f"{'':34} {'MPVPE':>8} {'MPJPE':>8} {'ratio':>7}")
    for name, f in floors.items():
        ratio = f"{f['mpvpe_mm'] / base[1]:7.3f}" if base else ""
        print(f"{'GT pose, ' + name:34} {f['mpvpe_mm']:8.2f} {f['mpjpe_mm']:8.2f} {ratio}")
    for name, v in [*methods.items(), *([base] if base else [])]:
        ratio = f"{v / base[1]:7.3f}" if base else ""
        print(f"{name:34} {v:8.2f} {'':>8} {ratio}")
    result = {"data": str(args.data), "part": args.part, "n": len(samples), "floors": floors,
              "methods": methods, "baseline": dict([base]) if base else None, "machine": machine_info()}
    atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
