"""Does an annotator's gain come from test poses that its auxiliary 3D set also holds?

The embedded auxiliary set (``--aux-data synthetic``) and the synthetic benchmark sets draw their body
poses from the same CMU library (mirrored, jittered), so a test pose may have a near twin in the set
the network learned 3D from, which a user's real set would not. For every test sample this finds the
nearest auxiliary pose (mean geodesic angle over the body joints' local rotations) and reports two
methods' MPVPE by tertile of that distance: a gain carried by the near twins shows as a ratio that
rises with the distance.

    neuralannot eval --data TEST --pred A.npz --csv A.csv     # per-sample errors, likewise B
    python bench/aux_overlap.py --data TEST --aux AUX --method lifter A.csv --baseline smplifyx B.csv

Writes ``bench/results/aux_overlap.json`` (``--out``) and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import roma
import torch

from common import machine_info
from neuralannot.io import atomic_write_json

RESULTS = Path(__file__).parent / "results" / "aux_overlap.json"


def body_poses(folder: Path) -> tuple[list[str], torch.Tensor]:
    """Sample ids and GT ``body_pose`` (N, J, 3) of a synthetic set's shards."""
    ids, poses = [], []
    for shard in sorted(folder.glob("shard-*.jsonl")):
        for line in shard.read_text().splitlines():
            d = json.loads(line)
            ids.append(d["id"])
            poses.append(np.asarray(d["gt"]["params"]["body_pose"], np.float32))
    if not ids:
        raise SystemExit(f"{folder}: no shard-*.jsonl with GT body poses")
    return ids, torch.from_numpy(np.stack(poses))


def nearest_pose_deg(test: torch.Tensor, aux: torch.Tensor, chunk: int = 100) -> np.ndarray:
    """(N,) for each test pose, the smallest mean per-joint rotation angle (degrees) to any aux pose."""
    r_aux = roma.rotvec_to_rotmat(aux)
    out = []
    for i in range(0, len(test), chunk):
        r_test = roma.rotvec_to_rotmat(test[i : i + chunk])
        trace = torch.einsum("njab,mjab->nmj", r_test, r_aux)  # trace(R_test^T R_aux)
        angle = torch.rad2deg(torch.arccos(((trace - 1) / 2).clamp(-1, 1))).mean(-1)
        out.append(angle.min(1).values)
    return torch.cat(out).numpy()


def per_sample(path: Path, key: str = "mpvpe_mm") -> dict[str, float]:
    with open(path, newline="") as f:
        return {row["id"]: float(row[key]) for row in csv.DictReader(f) if row.get(key)}


def tertiles(ids: list[str], dist: np.ndarray, method: dict, baseline: dict, names: tuple[str, str]):
    rows = []
    for k, idx in enumerate(np.array_split(np.argsort(dist), 3)):
        keep = [i for i in idx if ids[i] in method and ids[i] in baseline]
        a = float(np.mean([method[ids[i]] for i in keep]))
        b = float(np.mean([baseline[ids[i]] for i in keep]))
        span = [float(dist[idx].min()), float(dist[idx].max())]
        rows.append({"tertile": k, "n": len(keep), "nearest_deg": span, names[0]: a, names[1]: b,
                     "ratio": a / b})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the synthetic test set (GT poses)")
    ap.add_argument("--aux", type=Path, required=True, help="the auxiliary 3D set the method trained with")
    ap.add_argument("--method", nargs=2, required=True, metavar=("NAME", "CSV"))
    ap.add_argument("--baseline", nargs=2, required=True, metavar=("NAME", "CSV"))
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    ids, test = body_poses(args.data)
    _, aux = body_poses(args.aux)
    dist = nearest_pose_deg(test, aux)
    names = (args.method[0], args.baseline[0])
    rows = tertiles(ids, dist, per_sample(Path(args.method[1])), per_sample(Path(args.baseline[1])), names)
    print(f"nearest auxiliary pose (mean angle over {test.shape[1]} joints): median {np.median(dist):.1f}°, "
          f"{dist.min():.1f}–{dist.max():.1f}°")  # fmt: skip
    print(f"{'tertile':>8} {'nearest °':>12} {names[0]:>10} {names[1]:>10} {'ratio':>7}")
    for r in rows:
        (lo, hi), a, b = r["nearest_deg"], r[names[0]], r[names[1]]
        print(f"{r['tertile']:>8} {lo:5.1f}–{hi:5.1f} {a:10.2f} {b:10.2f} {r['ratio']:7.3f}")
    atomic_write_json(args.out, {"data": str(args.data), "aux": str(args.aux), "method": args.method,
                                 "baseline": args.baseline, "nearest_median_deg": float(np.median(dist)),
                                 "tertiles": rows, "machine": machine_info()})  # fmt: skip


if __name__ == "__main__":
    main()
