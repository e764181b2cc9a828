"""Throughput of MeshRenderer on a body-sized mesh (~14k vertices, ~27k triangles) at 256x256.

Every frame gets new vertex positions (a moved, wobbled sphere cluster), as with a new pose per frame;
colour, mask and depth are read back. Usage: ``python bench/render.py [--frames 300] [--samples 0]``.
Writes bench/results/render.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

from neuralannot.render import MeshRenderer

RESULTS = Path(__file__).resolve().parent / "results" / "render.json"


def body_sized_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Icospheres of subdivision 5, 4 and 3 ("torso", "head", "hand"): (13446, 3) verts, (26880, 3) faces."""
    parts = [
        trimesh.creation.icosphere(subdivisions=s, radius=r).apply_translation(t)
        for s, r, t in ((5, 0.35, (0, 0.1, 0)), (4, 0.12, (0, -0.45, 0)), (3, 0.06, (0.4, 0.1, -0.1)))
    ]
    mesh = trimesh.util.concatenate(parts)
    return mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32)


def write_json_atomic(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--samples", type=int, default=0, help="MSAA samples")
    ap.add_argument("--smooth", action="store_true", help="vertex-normal shading instead of flat")
    ap.add_argument("--background", action="store_true", help="composite over a (pre-generated) image")
    args = ap.parse_args()

    verts, faces = body_sized_mesh()
    s = args.size
    K = np.array([[1.2 * s, 0, s / 2], [0, 1.2 * s, s / 2], [0, 0, 1]], np.float64)
    r = MeshRenderer(s, s, samples=args.samples, smooth=args.smooth)
    rng = np.random.default_rng(0)
    bgs = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for _ in range(8)] if args.background else [None]
    phase = verts @ np.array([3.0, 5.0, 7.0], np.float32)

    def frame(i: int) -> np.ndarray:
        t = 0.05 * i
        wobble = (0.01 * np.sin(phase + t))[:, None] * verts
        shift = np.array([0.1 * np.sin(t), 0.05 * np.cos(t), 1.6 + 0.2 * np.sin(0.7 * t)], np.float32)
        return verts + wobble + shift

    for i in range(10):  # warm-up: context, shader compile, buffer allocation
        r.render(frame(i), faces, K, background=bgs[i % len(bgs)])
    frames = [frame(i) for i in range(args.frames)]  # vertex generation is not timed
    times, covered = [], 0
    for i, v in enumerate(frames):
        t0 = time.perf_counter()
        res = r.render(v, faces, K, color=(0.8, 0.6, 0.5), background=bgs[i % len(bgs)])
        times.append(time.perf_counter() - t0)
        covered += int(res.mask.sum())
    times = np.asarray(times)
    out = {
        "img_per_s": round(len(times) / times.sum(), 1),
        "img_per_s_median": round(1 / np.median(times), 1),
        "ms_per_img_median": round(1e3 * np.median(times), 2),
        "ms_per_img_p95": round(1e3 * np.percentile(times, 95), 2),
        "frames": len(times),
        "size": [s, s],
        "samples": args.samples,
        "smooth": args.smooth,
        "background": args.background,
        "vertices": len(verts),
        "faces": len(faces),
        "mean_mask_fraction": round(covered / (len(times) * s * s), 3),
        "gl_renderer": r.gl_renderer,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }
    write_json_atomic(RESULTS, out)
    print(json.dumps(out, indent=2))
    print(f"{out['img_per_s']} img/s -> {RESULTS}")


if __name__ == "__main__":
    main()
