"""NeuralAnnot vs the optimisation baselines on the same synthetic samples (paper Tables 4–7).

Per setting — ``from3d`` (MoCap set: noisy GT 3D joints, some missing; baseline 3D SMPLify-X) and
``from2d`` (wild set: noisy GT 2D joints; baseline 2D SMPLify-X) — every annotator runs on the SAME
samples and is scored against the GT meshes (direct). Then the same plain regressor is trained on
each annotator's pseudo-GTs and tested on a held-out synthetic set with GT meshes (indirect;
``--indirect-gt`` adds the bound, the regressor trained on the GT; ``--regressor joints`` reads 3D joints).

    python bench/compare.py [--n 400] [--n-test 200] [--min-steps 1500] [--settings from3d,from2d]
                            [--val-n 400 --val-seed 101] [--aux-n 2000 [--aux-config C]]

``--aux-n N`` (from 2D): also the annotator trained jointly with the embedded synthetic 3D set of N
samples (``annotate --aux-data synthetic:N``; rows ``neuralannot_aux`` and ``hybrid_aux``), with
``--aux-config``'s network where given. The ``neuralannot`` row is the config's own annotator: by
default since the twenty-ninth session it already trains with the embedded set of 2,000 (``aux_data``).

The defaults were tuned on the validation set (``--val-seed``, a different seed from ``--seed``); with
``--val-n > 0`` the direct comparison also runs on it and both go in the JSON (``validation``), so the
reported test figures are never the ones the settings were chosen on.

Writes ``bench/results/compare.json`` (see ``neuralannot.comparison``) and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import machine_info
from neuralannot.annotators.aux_mocap import SYNTHETIC_AUX_KINDS, SYNTHETIC_AUX_SEED, load_aux
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.pipeline import load_samples
from neuralannot.comparison import (
    AUX_METHODS,
    METHODS,
    REGRESSORS,
    SETTINGS,
    compare_direct,
    compare_indirect,
)
from neuralannot.data.synthetic.generator import generate
from neuralannot.demo import verdict
from neuralannot.io import atomic_write_json

RESULTS = Path(__file__).parent / "results" / "compare.json"


def _fmt(v, w: int = 7, p: int = 1) -> str:
    return f"{'n/a':>{w}}" if v is None else f"{v:{w}.{p}f}"


def print_direct(setting: str, table: dict) -> None:
    print(f"\n{setting}: direct error on the annotated set (GT meshes), same samples")
    cols = ("MPJPE", "MPVPE", "PA-MPVPE", "pose-only", "shape-only", "shape MAE", "ratio", "to best",
            "samples/s", "total s")  # fmt: skip
    print(f"  {'method':>12} " + " ".join(f"{c:>{max(len(c), 7)}}" for c in cols))
    for name, r in table.items():
        print(f"  {name:>12} {_fmt(r['mpjpe_mm'])} {_fmt(r['mpvpe_mm'])} {_fmt(r['pa_mpvpe_mm'], 8)} "
              f"{_fmt(r.get('mpvpe_pose_only_mm'), 9)} {_fmt(r.get('mpvpe_shape_only_mm'), 10)} "
              f"{_fmt(r.get('shape_mae'), 9, 3)} {_fmt(r['mpvpe_ratio_to_baseline'], 7, 2)} "
              f"{_fmt(r.get('mpvpe_ratio_to_best_baseline'), 7, 2)} "
              f"{_fmt(r.get('samples_per_s'), 9)} {_fmt(r.get('pipeline_s'), 7, 0)}")  # fmt: skip
    best = next((r.get("best_baseline") for r in table.values()), None)
    print(f"  ratio: to the setting's SMPLify-X row; to best: to the strongest SMPLify-X row ({best})")
    if "neuralannot" in table and best:
        print(f"  verdict: {verdict(table)}")
    const = [r["shape_mae_constant_guess"] for r in table.values() if r.get("shape_mae_constant_guess")]
    if const:
        print(f"  shape MAE of the best constant guess (GT median): {const[0]:.3f}")


def print_indirect(setting: str, table: dict) -> None:
    print(f"\n{setting}: indirect — regressor trained on each annotator's pseudo-GTs, held-out test set")
    gt = (table.get("gt") or {}).get("mpvpe_mm")
    print(f"  {'annotator':>12} {'PA-MPJPE':>8} {'PA-MPVPE':>8} {'MPVPE':>7}" + (" to gt" if gt else ""))
    for name, r in table.items():
        ratio = f" {_fmt(r['mpvpe_mm'] / gt, 5, 2)}" if gt and r["mpvpe_mm"] is not None else ""
        errors = f"{_fmt(r['pa_mpjpe_mm'], 8)} {_fmt(r['pa_mpvpe_mm'], 8)} {_fmt(r['mpvpe_mm'])}"
        print(f"  {name:>12} {errors}{ratio}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="samples per annotated synthetic set")
    ap.add_argument("--n-test", type=int, default=200, help="held-out samples of the indirect test (0: skip)")
    ap.add_argument("--settings", default="from3d,from2d")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma-separated; also two_stage_hybrid (second stage on the hybrid's pseudo-GTs)")
    ap.add_argument("--min-steps", type=int, default=1500, help="annotator training steps")
    ap.add_argument("--regressor-steps", type=int, default=1000, help="indirect regressor training steps")
    ap.add_argument("--regressor", choices=REGRESSORS, default="image",
                    help="indirect regressor: image (the paper's) or joints (image + 3D joints, from3d only)")
    ap.add_argument("--indirect-gt", action="store_true",
                    help="indirect: add the regressor trained on the GT parameters (the bound), row 'gt'")
    ap.add_argument("--fit-iterations", type=int, default=30, help="SMPLify-X L-BFGS iterations per stage")
    ap.add_argument("--hybrid-iterations", type=int, default=20)
    ap.add_argument("--eft-iterations", type=int, default=20)
    ap.add_argument("--eft-lr", type=float, default=1e-4)
    ap.add_argument("--spin-rounds", type=int, default=1)
    ap.add_argument("--config", type=Path, default=Path(__file__).parents[1] / "configs" / "cpu.yaml")
    ap.add_argument("--data-dir", type=Path, default=Path("out/bench"))
    ap.add_argument("--workers", type=int, default=2, help="synthetic-data generation processes")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--seed", type=int, default=0, help="test-set seed (wild: seed + 1)")
    ap.add_argument("--val-n", type=int, default=0, help="validation samples (0: no validation run)")
    ap.add_argument("--val-seed", type=int, default=101, help="validation-set seed (tuning)")
    ap.add_argument("--aux-n", type=int, default=0,
                    help="from 2D: also train with the embedded synthetic 3D set of N samples (0: off)")
    ap.add_argument("--aux-config", type=Path, default=None, help="config of the auxiliary rows (--config)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"n": args.n, "n_test": args.n_test, "settings": {}, "indirect": {}, "validation": {}}
    for setting in args.settings.split(","):
        mode, _, baseline = SETTINGS[setting]
        kind = "mocap" if mode == "mocap" else "wild"
        if args.val_n > 0:
            vseed = args.val_seed + (kind == "wild")
            *_, vtable, _, _ = run_direct(
                args, setting, args.val_n, vseed, f"{setting}_{args.val_n}_val{vseed}"
            )
            result["validation"][setting] = {"seed": vseed, "n": args.val_n, "methods": vtable}
            print(f"\n[validation set, seed {vseed}]")
            print_direct(setting, vtable)
        seed = args.seed + (kind == "wild")
        samples, cfg, table, records, wall = run_direct(
            args, setting, args.n, seed, f"{setting}_{args.n}_s{args.seed}"
        )
        result["settings"][setting] = {
            "baseline": baseline, "methods": table, "wall_s": wall,
        }  # fmt: skip
        if _aux_wanted(args, setting):
            result["settings"][setting]["aux"] = (
                f"synth --kind {SYNTHETIC_AUX_KINDS['body']} --n {args.aux_n} --seed {SYNTHETIC_AUX_SEED}; "
                f"config {args.aux_config or args.config}"
            )
        print_direct(setting, table)
        if args.n_test > 0:
            test = args.data_dir / f"synth_{kind}_{args.n_test}_s{seed + 100}"
            generate(kind, args.n_test, test, seed=seed + 100, workers=args.workers)
            test_samples, _ = load_samples(test, "body")
            result["indirect"][setting] = compare_indirect(
                records,
                samples,
                test_samples,
                cfg,
                args.data_dir / "compare" / f"{setting}_{args.n}_s{args.seed}" / "indirect",
                args.regressor_steps,
                regressor="joints" if args.regressor == "joints" and setting == "from3d" else "image",
                gt_reference=args.indirect_gt,
            )
            print_indirect(setting, result["indirect"][setting])
        atomic_write_json(args.out, {**result, "args": _args(args), "machine": machine_info()})
    # the keys of the issue: from3d / from2d → method → metrics; baseline under its own name
    result["from3d"] = result["settings"].get("from3d", {}).get("methods")
    result["from2d"] = result["settings"].get("from2d", {}).get("methods")
    result["command"] = "python bench/compare.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out"
    )
    atomic_write_json(args.out, {**result, "args": _args(args), "machine": machine_info()})
    print(json.dumps({s: {m: r["mpvpe_mm"] for m, r in t["methods"].items()}
                      for s, t in result["settings"].items()}))  # fmt: skip


def run_direct(args, setting: str, n: int, seed: int, work_name: str):
    """Synthesize (or reuse) the set of ``setting`` with ``n`` samples and ``seed`` and run every method
    on it; returns (samples, config, table, records, wall seconds)."""
    mode = SETTINGS[setting][0]
    kind = "mocap" if mode == "mocap" else "wild"
    data = args.data_dir / f"synth_{kind}_{n}_s{seed}"
    generate(kind, n, data, seed=seed, workers=args.workers)
    samples, _ = load_samples(data, "body", needs_3d=mode == "mocap")
    cfg = AnnotatorConfig.from_yaml(args.config, mode=mode, min_steps=args.min_steps, seed=args.seed)
    methods, aux, aux_cfg = _methods(args), None, None
    if _aux_wanted(args, setting):
        methods = (*methods, *(m for m in AUX_METHODS if m not in methods))
        aux_cfg = AnnotatorConfig.from_yaml(args.aux_config or args.config, mode=mode,
                                            min_steps=args.min_steps, seed=args.seed)  # fmt: skip
        aux = load_aux(f"synthetic:{args.aux_n}", aux_cfg, samples)
    t0 = time.perf_counter()
    table, records = compare_direct(
        setting, samples, cfg, args.data_dir / "compare" / work_name, methods,
        args.fit_iterations, args.hybrid_iterations, args.eft_iterations, args.eft_lr, args.spin_rounds,
        aux=aux, aux_cfg=aux_cfg,
    )  # fmt: skip
    return samples, cfg, table, records, time.perf_counter() - t0


def _methods(args) -> tuple[str, ...]:  # noqa: N802
    return tuple(args.methods.split(","))


def _aux_wanted(args, setting: str) -> bool:
    """Whether ``setting`` gets the rows trained with the synthetic auxiliary set (from 2D only)."""
    return args.aux_n > 0 and SETTINGS[setting][0] == "wild"


def _args(args) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


if __name__ == "__main__":
    main()
