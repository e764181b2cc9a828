"""Build the Anny body-pose library from CMU mocap joint positions (real human poses).

Run (rebuilds ``src/neuralannot/assets/anny_pose_library.safetensors`` and
``bench/results/pose_library.json``; 457 s measured on 1 CPU thread)::

    ANNY_CACHE_DIR=~/.cache/neuralannot/anny .venv/bin/python scripts/build_pose_library.py

Options: ``--data PATH`` (default ``../shared/data/poses/cmu_body_positions.npz`` next to the repo),
``--frames N`` (fit an evenly spread subset; default: all 13,219), ``--threads``, ``--iters``.

Steps (:mod:`neuralannot.data.synthetic.pose_fit`):

1. calibrate a shared phenotype, scale and per-joint marker offsets on 512 evenly spread frames;
2. fit every frame (batches of 512, Adam, hinge knees/elbows, joint-limit penalties, Procrustes root init),
   then refit frames above 10 mm from 8 restarts (bent knees/elbows, turned roots) keeping the best;
3. refit frames still above 10 mm from their clip neighbours' solutions, twice;
4. drop frames with MPJPE > 30 mm or a joint-limit violation (``limit_violations``, 3° tolerance).

The library stores ``body_pose`` (N, 21, 3) float32: Anny local-ref axis-angle in Anny's native
axes, ``BODY_SLOTS`` order, root orientation removed (the generator picks the global orientation).
Extras: ``root_tilt`` (N, 3) the captured root orientation with its yaw removed (canonical frame,
optional use; metadata ``upright_pitch_deg``: its median forward pitch over near-upright frames,
~6°), ``activity`` (N,) int16 index into the ``activities`` metadata list, ``source_frame``
(N,) int32 row in the CMU file, ``fit_mpjpe_mm`` (N,) float32.
Data: CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu), funded by NSF EIA-0196217.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
ASSET = ROOT / "src" / "neuralannot" / "assets" / "anny_pose_library.safetensors"
STATS = ROOT / "bench" / "results" / "pose_library.json"
DATA = ROOT.parent / "shared" / "data" / "poses" / "cmu_body_positions.npz"


def remove_yaw(R: torch.Tensor) -> torch.Tensor:
    """Root rotations (N, 3, 3) in the canonical frame (Y up) → the tilt ``R_y(-yaw) R`` (N, 3, 3),
    yaw being the heading of the body's forward axis (+Z) about the vertical."""
    yaw = torch.atan2(R[:, 0, 2], R[:, 2, 2])
    c, s, z, o = yaw.cos(), yaw.sin(), torch.zeros_like(yaw), torch.ones_like(yaw)
    Ry = torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(-1, 3, 3)
    return Ry.transpose(-1, -2) @ R


def refine(fitter, targets, shape, res, clip, iters, threshold=0.010):
    """Refit frames above ``threshold`` starting from a clip neighbour's better solution; in place."""
    bad = (res.mpjpe > threshold).nonzero().flatten()
    cands = []
    for i in bad.tolist():
        nb = [j for j in (i - 1, i + 1, i - 2, i + 2) if 0 <= j < len(clip) and clip[j] == clip[i]]
        nb = [j for j in nb if res.mpjpe[j] < res.mpjpe[i]]
        if nb:
            cands.append((i, min(nb, key=lambda j: res.mpjpe[j].item())))
    if not cands:
        return 0
    idx, src = (torch.tensor(v) for v in zip(*cands, strict=True))
    init = {"body_pose": res.body_pose[src], "root_pose": res.root_pose[src], "trans": res.trans[src]}
    new = fitter.fit(targets[idx], shape, iters=iters, lr=0.03, init=init, retry_above=None)
    better = new.mpjpe < res.mpjpe[idx]
    for name in ("body_pose", "root_pose", "trans", "joint_err", "mpjpe"):
        getattr(res, name)[idx[better]] = getattr(new, name)[better]
    return int(better.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--frames", type=int, default=0, help="evenly spread subset (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--calib-iters", type=int, default=1500)
    ap.add_argument("--out", type=Path, default=ASSET)
    ap.add_argument("--stats", type=Path, default=STATS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from safetensors.torch import save

    from neuralannot.data.synthetic.pose_fit import (
        CMU_TO_ANNY,
        SLOT_NAMES,
        PoseFitter,
        cmu_targets,
        hinge_angles,
        limit_violations,
    )
    from neuralannot.geometry import rotmat_to_rotvec, rotvec_to_rotmat
    from neuralannot.io.atomic import atomic_write_bytes, atomic_write_json

    t_start = time.time()
    d = np.load(args.data)
    n_all = len(d["positions"])
    rows = np.arange(n_all)
    if args.frames and args.frames < n_all:
        rows = np.linspace(0, n_all - 1, args.frames).round().astype(int)
    targets = cmu_targets(d["positions"][rows], list(d["joint_names"]))
    clip = [str(c) for c in d["clip"][rows]]
    activities = sorted(set(d["activity"].tolist()))
    activity = torch.tensor([activities.index(a) for a in d["activity"][rows]], dtype=torch.int16)

    fitter = PoseFitter()
    t0 = time.time()
    calib_rows = np.linspace(0, len(rows) - 1, min(512, len(rows))).round().astype(int)
    shape = fitter.calibrate(targets[calib_rows], iters=args.calib_iters)
    t_cal = time.time() - t0
    ph = shape.phenotype.numpy().round(3)
    print(f"calibrated in {t_cal:.0f} s: phenotype {ph}, scale {shape.scale:.3f}")

    t0 = time.time()

    def progress(n):
        print(f"  fitted {n}/{len(rows)} frames ({time.time() - t0:.0f} s)", flush=True)

    res = fitter.fit(targets, shape, iters=args.iters, lr=0.1, progress=progress)
    t_fit = time.time() - t0
    first_pass = res.mpjpe.clone()
    t0 = time.time()
    improved = [refine(fitter, targets, shape, res, clip, args.iters // 2) for _ in range(2)]
    t_ref = time.time() - t0
    print(f"refined {improved} frames in {t_ref:.0f} s")

    viol = limit_violations(res.body_pose)
    err_bad = res.mpjpe > 0.030
    keep = ~(err_bad | viol.any(1))
    R = rotvec_to_rotmat(res.root_pose[keep])
    tilt = rotmat_to_rotvec(remove_yaw(R))
    near = tilt.norm(dim=-1) < math.radians(20)  # the captured pelvis pitch of upright frames
    upright_pitch = float(tilt[near, 0].median().rad2deg()) if near.any() else 0.0
    mm = res.mpjpe * 1000
    kept_mm = mm[keep]
    tensors = {
        "body_pose": res.body_pose[keep].float().contiguous(),
        "root_tilt": tilt.float().contiguous(),
        "activity": activity[keep].contiguous(),
        "source_frame": torch.as_tensor(rows, dtype=torch.int32)[keep].contiguous(),
        "fit_mpjpe_mm": kept_mm.float().contiguous(),
    }
    command = "ANNY_CACHE_DIR=~/.cache/neuralannot/anny .venv/bin/python scripts/build_pose_library.py"
    if len(sys.argv) > 1:
        command += " " + shlex.join(sys.argv[1:])
    q = [float(v) for v in torch.quantile(kept_mm, torch.tensor([0.5, 0.9]))]
    meta = {
        "format": "body_pose: Anny local-ref axis-angle (N,21,3), native axes, BODY_SLOTS order, no root",
        "source": "CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu), subjects 1,2,3,5,6,7, "
        "61 clips; via shared/data/poses/cmu_body_positions.npz. The database was created with funding "
        "from NSF EIA-0196217.",
        "source_frames": str(n_all),
        "fitted_frames": str(len(rows)),
        "frame_count": str(int(keep.sum())),
        "fit_mpjpe_median_mm": f"{q[0]:.2f}",
        "fit_mpjpe_p90_mm": f"{q[1]:.2f}",
        "command": command,
        "activities": json.dumps(activities),
        "slots": json.dumps(SLOT_NAMES),
        "upright_pitch_deg": f"{upright_pitch:.2f}",
    }
    blob = save(tensors, metadata=meta)
    atomic_write_bytes(args.out, blob)

    def pct(x, p):
        return round(float(torch.quantile(x, p)), 2)

    ang = hinge_angles(res.body_pose[keep]) * 180 / math.pi
    stats = {
        "command": command,
        "data": "shared/data/poses/cmu_body_positions.npz",
        "threads": args.threads,
        "iters": args.iters,
        "frames_source": n_all,
        "frames_fitted": len(rows),
        "frames_kept": int(keep.sum()),
        "dropped_error_gt_30mm": int(err_bad.sum()),
        "dropped_joint_limits": int((viol.any(1) & ~err_bad).sum()),
        "limit_violations_per_slot": {n: int(v) for n, v in zip(SLOT_NAMES, viol.sum(0), strict=True) if v},
        "mpjpe_mm_first_pass": {"median": pct(first_pass * 1000, 0.5), "p90": pct(first_pass * 1000, 0.9)},
        "mpjpe_mm_all": {"median": pct(mm, 0.5), "p90": pct(mm, 0.9), "p99": pct(mm, 0.99),
                         "max": round(float(mm.max()), 2)},  # fmt: skip
        "mpjpe_mm_kept": {"median": round(q[0], 2), "p90": round(q[1], 2),
                          "max": round(float(kept_mm.max()), 2)},  # fmt: skip
        "upright_pitch_deg": round(upright_pitch, 2),
        "root_tilt_deg_quantiles": [round(float(v), 1) for v in torch.quantile(
            tilt.norm(dim=-1).rad2deg(), torch.tensor([0.1, 0.5, 0.9]))],  # fmt: skip
        "frames_gt_10mm": int((mm > 10).sum()),
        "frames_gt_20mm": int((mm > 20).sum()),
        "refined_frames": improved,
        "per_target_median_mm": {
            f"{c}->{a}": round(float(e), 1)
            for (c, a, _), e in zip(CMU_TO_ANNY, res.joint_err.median(0).values * 1000, strict=True)
        },
        "hinge_deg_range_kept": {
            n: [round(float(ang[:, i].min()), 1), round(float(ang[:, i].max()), 1)]
            for i, n in enumerate(["left_knee", "right_knee", "left_elbow", "right_elbow"])
        },
        "calibration": {
            "phenotype": [round(float(v), 3) for v in shape.phenotype],
            "scale": round(float(shape.scale), 4),
            "offsets_mm": {f"{c}->{a}": [round(float(v) * 1000, 1) for v in o]
                           for (c, a, _), o in zip(CMU_TO_ANNY, shape.offsets, strict=True)},
        },  # fmt: skip
        "activity_counts_kept": {
            a: int((activity[keep] == i).sum()) for i, a in enumerate(activities)
        },
        "library_bytes": len(blob),
        "wall_s": {"calibrate": round(t_cal, 1), "fit": round(t_fit, 1), "refine": round(t_ref, 1),
                   "total": round(time.time() - t_start, 1)},  # fmt: skip
    }
    atomic_write_json(args.stats, stats)
    print(json.dumps({k: stats[k] for k in ("frames_kept", "mpjpe_mm_kept", "mpjpe_mm_all", "wall_s")}))


if __name__ == "__main__":
    main()
