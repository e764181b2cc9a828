"""Hands, face and whole body: NeuralAnnot against SMPLify-X on the same synthetic samples (paper
Tables 4–6 in shape).

- ``hand`` (synthetic hand set: 3D joints with 2 mm noise, 30 % left hands): from 3D joints
  (NeuralAnnot MoCap vs 3D SMPLify-X) and from the 2D joints of the same samples (wild vs 2D
  SMPLify-X), each with the hybrid; MPJPE, MPVPE, FreiHAND AUC (0–50 mm).
- ``face``: from 2D landmarks (``face`` kind: NeuralAnnot wild vs 2D SMPLify-X) and from 3D
  landmarks (``face3d`` kind: MoCap vs 3D SMPLify-X), each with the hybrid; the point-to-surface
  error after rigid (``surface``) and similarity (``PA-surf``) alignment, and MPVPE.
- ``wholebody`` (synthetic COCO-WholeBody-style set): the integrated body + hands + face annotator;
  MPVPE over the whole mesh and per part (hands, face; :mod:`neuralannot.evaluation`).

    python bench/parts.py [--parts hand,face,wholebody] [--n-hand 200] [--n-face 200]
                          [--n-wholebody 100] [--min-steps 1500] [--seed 0] [--threads 1]
                          [--settings from2d] [--aux-n 2000]

``--aux-n N``: from 2D, also the annotator trained jointly with an auxiliary 3D set of N samples of
the part's 3D kind (hand: ``hand``, face: ``face3d``; its own seed, set seed + 50) and the hybrid
from it (rows ``neuralannot_aux``, ``hybrid_aux``; ``annotate --aux-data``).

Writes ``bench/results/parts.json`` and prints one table per part and setting, with the MPVPE ratio to
the SMPLify-X row of the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import machine_info
from neuralannot.annotators.aux_mocap import AuxMocap
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.pipeline import load_samples, run_annotate
from neuralannot.comparison import AUX_METHODS, SETTINGS, compare_direct
from neuralannot.data.synthetic.generator import generate
from neuralannot.evaluation import evaluate
from neuralannot.io import atomic_write_json
from neuralannot.io.pseudo_gt import read_pseudo_gt

RESULTS = Path(__file__).parent / "results" / "parts.json"
COLUMNS = (("MPJPE", "mpjpe_mm"), ("PA-MPJPE", "pa_mpjpe_mm"), ("MPVPE", "mpvpe_mm"),
           ("PA-MPVPE", "pa_mpvpe_mm"), ("AUC-J", "auc_j"), ("AUC-V", "auc_v"), ("surface", "surface_mm"),
           ("PA-surf", "pa_surface_mm"),
           ("L hand", "mpvpe_lhand_mm"),
           ("R hand", "mpvpe_rhand_mm"), ("face", "mpvpe_face_mm"), ("ratio", "mpvpe_ratio_to_baseline"),
           ("total s", "pipeline_s"))  # fmt: skip
METHODS = ("neuralannot", "baseline", "hybrid")
AUX_KIND = {"hand": "hand", "face": "face3d"}  # the 3D kind an auxiliary set of the part comes from


def print_table(title: str, table: dict) -> None:
    cols = [(c, k) for c, k in COLUMNS if any(r.get(k) is not None for r in table.values())]
    print(f"\n{title}")
    print(f"  {'method':>15} " + " ".join(f"{c:>9}" for c, _ in cols))
    for name, r in table.items():
        cells = ("n/a" if r.get(k) is None else f"{r[k]:.3f}" if k.startswith("auc") else f"{r[k]:.1f}"
                 for _, k in cols)  # fmt: skip
        print(f"  {name:>15} " + " ".join(f"{c:>9}" for c in cells))


def run_part(args, part: str, settings: tuple[str, ...], n: int, seed: int, kinds: dict | None = None
             ) -> dict:
    """Synthesize (or reuse) the ``part`` set (``kinds``: another synthetic kind per setting) and compare
    the annotators in each setting on it."""
    out = {}
    for setting in settings:
        if args.settings and setting not in args.settings.split(","):
            continue
        kind = (kinds or {}).get(setting, part)
        data = args.data_dir / f"synth_{kind}_{n}_s{seed}"
        generate(kind, n, data, seed=seed, workers=args.workers)
        mode = SETTINGS[setting][0]
        samples, _ = load_samples(data, part, needs_3d=mode == "mocap")
        cfg = AnnotatorConfig.from_yaml(args.config, mode=mode, part=part, min_steps=args.min_steps,
                                        seed=args.seed, **_epochs(args))  # fmt: skip
        t0 = time.perf_counter()
        work = args.data_dir / "parts" / f"{part}_{setting}_s{seed}"
        methods, aux, aux_note = METHODS, None, None
        if args.aux_n and mode == "wild" and part in AUX_KIND:
            aux_data = args.data_dir / f"synth_{AUX_KIND[part]}_{args.aux_n}_s{seed + 50}"
            generate(AUX_KIND[part], args.aux_n, aux_data, seed=seed + 50, workers=args.workers)
            aux = AuxMocap(load_samples(aux_data, part, needs_3d=True)[0], source=aux_data)
            methods = (*METHODS, *AUX_METHODS)
            aux_note = f"synth --kind {AUX_KIND[part]} --n {args.aux_n} --seed {seed + 50}"
        try:
            table, _ = compare_direct(setting, samples, cfg, work, methods, progress=False, aux=aux)
        except ValueError as err:  # e.g. no SMPLify-X for this part: the annotator alone
            print(f"{part} {setting}: {err}; NeuralAnnot alone")
            table, _ = compare_direct(setting, samples, cfg, work, ("neuralannot",), progress=False)
            table["note"] = {"baseline": str(err)}
        out[setting] = {"n": len(samples), "seed": seed, "config": cfg.to_dict(), "methods": table,
                        "wall_s": time.perf_counter() - t0}  # fmt: skip
        if aux_note:
            out[setting]["aux"] = aux_note
        print_table(f"{part}, {setting} ({len(samples)} samples, seed {seed})",
                    {k: v for k, v in table.items() if k != "note"})  # fmt: skip
    return out


def run_wholebody(args, n: int, seed: int) -> dict:
    """The integrated whole-body annotator on a synthetic whole-body set, scored per part."""
    data = args.data_dir / f"synth_wholebody_{n}_s{seed}"
    generate("wholebody", n, data, seed=seed, workers=args.workers)
    cfg = AnnotatorConfig.from_yaml(args.config, mode="wild", part="wholebody", min_steps=args.min_steps,
                                    seed=args.seed, **_epochs(args))  # fmt: skip
    work = args.data_dir / "parts" / f"wholebody_s{seed}"
    t0 = time.perf_counter()
    summary = run_annotate(data, work / "neuralannot.npz", cfg, work / "runs", progress=False)
    wall = time.perf_counter() - t0
    records, _ = read_pseudo_gt(work / "neuralannot.npz", as_dict=True)
    samples, _ = load_samples(data, "wholebody")
    _, m = evaluate(records, samples)
    row = {k: v for k, v in m.items() if not k.startswith("n_")} | {"pipeline_s": wall,
                                                                   "valid": summary["annotate"]["valid"]}
    print_table(f"wholebody, from2d ({len(samples)} samples, seed {seed})", {"neuralannot": row})
    return {"from2d": {"n": len(samples), "seed": seed, "config": cfg.to_dict(),
                       "methods": {"neuralannot": row}, "wall_s": wall}}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="hand,face,wholebody")
    ap.add_argument("--n-hand", type=int, default=200)
    ap.add_argument("--n-face", type=int, default=200)
    ap.add_argument("--n-wholebody", type=int, default=100)
    ap.add_argument("--min-steps", type=int, default=1500, help="annotator training steps (at least)")
    ap.add_argument("--epochs", type=int, default=None, help="override the config's epochs (smoke runs)")
    ap.add_argument("--config", type=Path, default=Path(__file__).parents[1] / "configs" / "cpu.yaml")
    ap.add_argument("--data-dir", type=Path, default=Path("out/bench"))
    ap.add_argument("--workers", type=int, default=2, help="synthetic-data generation processes")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--seed", type=int, default=0,
                    help="set seed (hand: seed + 300, face: + 400, whole body: + 500)")
    ap.add_argument("--settings", default=None, help="only these settings (from3d,from2d; default all)")
    ap.add_argument("--aux-n", type=int, default=0,
                    help="from 2D: also train with an auxiliary 3D set of this many samples (0: off)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {}
    for part in args.parts.split(","):
        if part == "hand":
            result["hand"] = run_part(args, "hand", ("from3d", "from2d"), args.n_hand, args.seed + 300)
        elif part == "face":
            # from 3D: the face3d kind (3D landmarks, studio style), same seed
            result["face"] = run_part(args, "face", ("from2d", "from3d"), args.n_face, args.seed + 400,
                                      kinds={"from3d": "face3d"})  # fmt: skip
        elif part == "wholebody":
            result["wholebody"] = run_wholebody(args, args.n_wholebody, args.seed + 500)
        else:
            raise SystemExit(f"unknown part {part!r}: hand | face | wholebody")
        atomic_write_json(args.out, {**result, "args": _args(args), "machine": machine_info()})
    result["command"] = "python bench/parts.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out"
    )
    atomic_write_json(args.out, {**result, "args": _args(args), "machine": machine_info()})
    mpvpe = {p: {s: {m: r.get("mpvpe_mm") for m, r in t["methods"].items() if m != "note"}
                 for s, t in v.items()} for p, v in result.items() if isinstance(v, dict)}  # fmt: skip
    print(json.dumps(mpvpe))


def _epochs(args) -> dict:
    return {} if args.epochs is None else {"epochs": args.epochs}


def _args(args) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


if __name__ == "__main__":
    main()
