"""Rebuild the shipped pose embeddings (:mod:`neuralannot.bodies.embedding`).

Writes
- ``src/neuralannot/assets/anny_body_vae.safetensors`` — :class:`BodyVAE` (latent 32) trained on the
  Anny pose library ``src/neuralannot/assets/anny_pose_library.safetensors`` (key ``body_pose``,
  CMU mocap frames fitted to Anny), with left/right mirror augmentation;
- ``src/neuralannot/assets/anny_hand_pca.safetensors`` — :class:`HandPCA` (whitened) fitted on
  procedural hand poses from :class:`~neuralannot.data.synthetic.poses.HandPoseSampler` (no real
  hand mocap is available here);
- ``bench/results/pose_embedding.json`` — validation reconstruction errors (deg), KL, prior-sample
  plausibility, the hand PCA's explained variance, wall time (atomic write).

Provenance (data source, counts, epochs, seed, validation errors, this command) is stored in each
file's safetensors metadata (``load_embedding(...).info``).

Run (CPU, one thread, ~5 min; 100 epochs, val error flat after ~60):
    ANNY_CACHE_DIR=~/.cache/neuralannot/anny .venv/bin/python scripts/build_pose_embeddings.py
Options: ``--epochs``, ``--seed``, ``--hand-samples``, ``--hand-components``, ``--only body|hand``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "src" / "neuralannot" / "assets"
LIBRARY = ASSETS / "anny_pose_library.safetensors"
RESULTS = ROOT / "bench" / "results" / "pose_embedding.json"


def load_library(path: Path) -> tuple[torch.Tensor, dict]:
    """Pose library → body poses (N, 21, 3) float32 and its safetensors metadata."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor("body_pose").float(), dict(f.metadata() or {})


def build_body(args, command: str) -> dict:
    from neuralannot.bodies.embedding import save_embedding
    from neuralannot.data.synthetic.poses import mirror_body_pose
    from neuralannot.training.embedding_vae import train_body_vae

    poses, lib_meta = load_library(Path(args.library))
    flip_name = "neuralannot.data.synthetic.poses.mirror_body_pose"
    print(f"body VAE: {len(poses)} library poses, mirror = {flip_name}", flush=True)
    model, stats = train_body_vae(
        poses, epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed, mirror=mirror_body_pose,
        val_frac=args.val_frac, log=lambda s: print("  " + s, flush=True),
    )  # fmt: skip
    val = stats["val"]
    info = {
        "data": f"{Path(args.library).name} (body_pose of CMU mocap frames fitted to Anny)",
        "data_metadata": {k: v[:500] for k, v in lib_meta.items()},
        "n_poses": stats["n_poses"], "n_train": stats["n_train"], "n_val": stats["n_val"],
        "mirror": flip_name, "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "seed": args.seed,
        "kl_weight": stats["kl_weight"], "val_rec_deg_mean": round(val["mean_deg"], 3),
        "val_rec_deg_median": round(val["median_deg"], 3), "val_kl": round(stats["val_kl"], 3),
        "val_rec_deg_mean_moving_joints": round(val["mean_deg_moving_joints"], 3),
        "command": command, "torch": torch.__version__,
    }  # fmt: skip
    out = save_embedding(model, Path(args.out_dir) / "anny_body_vae.safetensors", info)
    stats["file"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    stats["file_bytes"] = out.stat().st_size
    stats["mirror_fn"] = flip_name
    print(f"  val rec error mean {val['mean_deg']:.2f} deg, median {val['median_deg']:.2f}; "
          f"{stats['file_bytes'] / 1e6:.2f} MB", flush=True)  # fmt: skip
    return stats


def build_hand(args, command: str) -> dict:
    from neuralannot.bodies.embedding import HandPCA, geodesic_angle, save_embedding
    from neuralannot.data.synthetic.poses import HandPoseSampler
    from neuralannot.geometry.rotations import rotvec_to_rotmat

    gen = torch.Generator().manual_seed(args.seed)
    sampler = HandPoseSampler()
    fit_poses = sampler.sample(args.hand_samples, gen).float()
    test_poses = sampler.sample(max(1000, args.hand_samples // 10), gen).float()
    full = HandPCA.fit(fit_poses, 45, whiten=False)
    cum = full.explained_variance_ratio.double().cumsum(0)
    pca = HandPCA.fit(fit_poses, args.hand_components, whiten=True)
    err = geodesic_angle(pca.decode(pca.encode(test_poses)), rotvec_to_rotmat(test_poses)).rad2deg()
    per_k = {}
    for k in (3, 6, 9, 12, 15, 20, 24):  # held-out error as a function of K
        p = HandPCA.fit(fit_poses, k)
        e = geodesic_angle(p.decode(p.encode(test_poses)), rotvec_to_rotmat(test_poses)).rad2deg()
        per_k[k] = round(e.mean().item(), 3)
    stats = {
        "data": "HandPoseSampler() procedural hand poses (no real hand mocap available)",
        "n_fit": len(fit_poses), "n_test": len(test_poses), "n_components": args.hand_components,
        "whitened": True, "seed": args.seed,
        "explained_variance": round(cum[args.hand_components - 1].item(), 5),
        "cumulative_explained_variance": [round(v, 5) for v in cum.tolist()],
        "test_rec_deg_mean": err.mean().item(), "test_rec_deg_median": err.mean(1).median().item(),
        "test_rec_deg_p90": err.mean(1).quantile(0.9).item(), "test_rec_deg_mean_by_k": per_k,
    }  # fmt: skip
    info = {k: v for k, v in stats.items() if k != "cumulative_explained_variance"} | {"command": command}
    out = save_embedding(pca, Path(args.out_dir) / "anny_hand_pca.safetensors", info)
    stats["file"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    stats["file_bytes"] = out.stat().st_size
    print(f"hand PCA: K={args.hand_components} explains {stats['explained_variance']:.4f}; held-out error "
          f"{stats['test_rec_deg_mean']:.2f} deg; by K {per_k}", flush=True)  # fmt: skip
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", default=str(LIBRARY))
    ap.add_argument("--out-dir", default=str(ASSETS))
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--val-frac", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hand-samples", type=int, default=50000)
    ap.add_argument("--hand-components", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=["body", "hand"], default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python scripts/build_pose_embeddings.py", *argv])
    t0 = time.perf_counter()
    results_path = Path(args.results)
    results = json.loads(results_path.read_text()) if args.only and results_path.is_file() else {}
    if args.only in (None, "body"):
        results["body_vae"] = build_body(args, command)
    if args.only in (None, "hand"):
        results["hand_pca"] = build_hand(args, command)
    results["wall_seconds"] = round(time.perf_counter() - t0, 1)
    results["machine"] = {"cpu_threads": torch.get_num_threads(), "platform": platform.machine(),
                          "torch": torch.__version__}  # fmt: skip
    results["command"] = command
    from neuralannot.io.atomic import atomic_write_json

    atomic_write_json(results_path, _finite(results))
    print(f"wrote {results_path} ({results['wall_seconds']} s)")
    return 0


def _finite(x):
    """JSON-safe copy: NaN/inf → None."""
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


if __name__ == "__main__":
    raise SystemExit(main())
