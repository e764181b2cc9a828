"""Throughput of ``neuralannot synth`` (1 process vs ``--workers 2``) and a contact sheet of samples.

Usage: ``python bench/synth.py [--n 500] [--kinds wild mocap] [--shard-size 125]``. Every run writes a
fresh dataset into a temporary folder and counts everything: model build, Anny forward, rendering,
JPEG/PNG encoding and writing. Reported: end-to-end samples/s (incl. start-up: process spawn, model
build, background pools) and steady samples/s (once every process has finished its first batch), and
whether the files are identical for every worker count.
Writes bench/results/synth.json (atomic) and docs/synth_contact_sheet.png (8x8 thumbnails of 128²:
3 rows wild, 1 mocap, 1 hand, 1 face, 2 wholebody; left joints blue, right joints orange, others
white; the box in green).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path

from neuralannot.bodies.joint_names import flip_permutation
from neuralannot.data.adapters.folder import load_dataset
from neuralannot.data.synthetic import generator
from neuralannot.data.synthetic.generator import generate
from neuralannot.io.atomic import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "synth.json"
SHEET = ROOT / "docs" / "synth_contact_sheet.png"
SHEET_ROWS = [("wild", 3), ("mocap", 1), ("hand", 1), ("face", 1), ("wholebody", 2)]
COLORS = {"left": (40, 140, 255), "right": (255, 140, 0), "center": (255, 255, 255)}


def sides(sample) -> list[str]:
    """left / right / center per joint, subject's side: hand21 joints take the hand's side; mirror
    pairs without a side in their name (face68 jaw, nose, mouth) are right first, as in 300W."""
    perm = flip_permutation(sample.joint_set)
    if sample.part in ("lhand", "rhand"):
        return ["left" if sample.part == "lhand" else "right"] * len(perm)
    out = []
    for i, name in enumerate(sample.joint_names):
        if perm[i] == i:
            out.append("center")
        elif "left" in name or "right" in name:
            out.append("left" if "left" in name else "right")
        else:
            out.append("right" if i < perm[i] else "left")
    return out


def thumbnail(sample, size: int = 128):
    """The sample's image at ``size``² with its valid 2D joints and box drawn."""
    from PIL import Image, ImageDraw

    im = Image.open(sample.image).convert("RGB")
    s = size / im.width
    im = im.resize((size, size), Image.Resampling.BILINEAR)
    d = ImageDraw.Draw(im)
    x, y, w, h = (sample.bbox * s).tolist()
    d.rectangle([x, y, x + w, y + h], outline=(0, 220, 0))
    r = (1.5 if sample.num_joints > 30 else 2.0) * size / 128
    for sd, (u, v, c) in zip(sides(sample), sample.joints_2d, strict=True):
        if c > 0:
            u, v = u * s, v * s
            d.ellipse([u - r, v - r, u + r, v + r], fill=COLORS[sd])
    return im


def digest(d: Path) -> str:
    """sha256 over every file of a dataset folder (relative path and bytes)."""
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(d)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def contact_sheet(tmp: Path, seed: int) -> dict:
    from PIL import Image

    sheet = Image.new("RGB", (8 * 128, 8 * 128))
    row = 0
    for kind, rows in SHEET_ROWS:
        out = tmp / f"sheet_{kind}"
        generate(kind, 8 * rows, out, seed=seed, shard_size=64, progress=False)
        for i, s in enumerate(load_dataset(out)):
            sheet.paste(thumbnail(s), ((i % 8) * 128, (row + i // 8) * 128))
        row += rows
    SHEET.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=SHEET.parent, prefix=".sheet", suffix=".png")
    os.close(fd)
    sheet.save(tmp_path)
    os.replace(tmp_path, SHEET)
    return {"path": str(SHEET.relative_to(ROOT)), "rows": dict(SHEET_ROWS)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--kinds", nargs="+", default=["wild", "mocap"])
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--shard-size", type=int, default=125)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-sheet", action="store_true")
    args = ap.parse_args()
    runs, load_before = [], round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="synth_bench") as tmp:
        for kind in args.kinds:
            for w in args.workers:
                generator._maker.cache_clear()  # every run builds its models (no in-process cache)
                r = generate(kind, args.n, Path(tmp) / f"{kind}_w{w}", seed=args.seed, workers=w,
                             shard_size=args.shard_size, progress=False)  # fmt: skip
                runs.append({k: r[k] for k in ("kind", "workers", "generated", "seconds", "samples_per_s",
                                                "steady_samples_per_s")})  # fmt: skip
                print(json.dumps(runs[-1]))
            same = len({digest(Path(tmp) / f"{kind}_w{w}") for w in args.workers}) == 1
            runs[-1]["identical_files_across_worker_counts"] = same
        sheet = None if args.no_sheet else contact_sheet(Path(tmp), args.seed)
    result = {
        "n": args.n,
        "shard_size": args.shard_size,
        "image_size": 256,
        "runs": runs,
        "contact_sheet": sheet,
        "cpu_count": os.cpu_count(),
        "load_avg_1min_before": load_before,
        "machine": platform.machine(),
    }
    atomic_write_json(RESULTS, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
