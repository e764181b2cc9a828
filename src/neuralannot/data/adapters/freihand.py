"""FreiHAND (``training_xyz.json``, ``training_K.json``, optional ``training_mano.json``).

Layout (``path`` = the root or one of its ``{split}_*.json`` files)::

    <root>/training_xyz.json     N x 21 x 3 joints, meters, camera frame (hand21 order)
    <root>/training_K.json       N x 3 x 3 intrinsics
    <root>/training_mano.json    optional, N x [[61]]: pose 48 (axis-angle), shape 10, trans 3
    <root>/training/rgb/00000000.jpg ...   versions x N images; image i uses annotation i % N
    (the same with ``evaluation_*`` and ``evaluation/rgb`` for the evaluation split)

One right-hand sample (``rhand``, ``hand21``) per image, id = the 8-digit image number. 2D = the
projection of the 3D joints with K (FreiHAND has no separate 2D labels); all joints valid;
bbox = 1.2 x the tight box of the projected joints (as the folder adapter's hand boxes). MANO
parameters, when present, go to ``gt = {"model": "mano", "side": "right", "params": {pose, betas,
transl}}`` as stored in the file.

Options: ``split`` (``training`` / ``evaluation``; default: the one present, training first),
``versions`` (images per annotation; default: counted from ``{split}/rgb``), ``check_images``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neuralannot.data.adapters.common import (
    as_matrix,
    check_options,
    convert_records,
    image_path,
    per_file,
    project,
    read_json,
)
from neuralannot.data.adapters.folder import DatasetFormatError, SkipReport
from neuralannot.data.adapters.folder_convert import hand_bbox
from neuralannot.data.sample import Sample, SampleError

__all__ = ["load_freihand", "freihand_root"]

SPLITS = ("training", "evaluation")
FILE_RE = re.compile(r"^(training|evaluation)_(xyz|K|mano|verts|scale)\.json$")
IMAGE_RE = re.compile(r"^\d{8}\.(jpg|png)$")
DEFAULTS = dict(split=None, versions=None, check_images="exists")


def freihand_root(path: str | Path) -> tuple[Path, str | None]:
    """(root folder, split named by the file or None) for a FreiHAND root or annotation file."""
    p = Path(path)
    if p.is_file():
        m = FILE_RE.match(p.name)
        if not m:
            raise DatasetFormatError("not a FreiHAND {training,evaluation}_*.json file", p)
        return p.parent, m.group(1)
    if any((p / f"{s}_xyz.json").is_file() for s in SPLITS):
        return p, None
    raise DatasetFormatError("no training_xyz.json or evaluation_xyz.json found", p)


def _count_versions(rgb: Path, n: int) -> int:
    if not rgb.is_dir():
        raise DatasetFormatError("image folder not found (pass versions= to read without it)", rgb)
    count = sum(1 for e in rgb.iterdir() if IMAGE_RE.match(e.name))
    if count == 0 or count % n:
        raise DatasetFormatError(f"{count} images is not a positive multiple of the {n} annotations", rgb)
    return count // n


def _read_split(root: Path, split: str, opts: dict[str, Any], report: SkipReport) -> Iterator[Sample]:
    xyz_file = root / f"{split}_xyz.json"
    xyz = read_json(xyz_file, list)
    Ks = read_json(root / f"{split}_K.json", list)
    if len(Ks) != len(xyz):
        raise DatasetFormatError(f"{len(Ks)} K matrices for {len(xyz)} xyz entries", root / f"{split}_K.json")
    mano_file = root / f"{split}_mano.json"
    mano = read_json(mano_file, list) if mano_file.is_file() else None
    if mano is not None and len(mano) != len(xyz):
        raise DatasetFormatError(f"{len(mano)} MANO entries for {len(xyz)} xyz entries", mano_file)
    n = len(xyz)
    rgb = root / split / "rgb"
    versions = opts["versions"] or _count_versions(rgb, n)
    ext = (
        next((e.suffix for e in rgb.iterdir() if IMAGE_RE.match(e.name)), ".jpg") if rgb.is_dir() else ".jpg"
    )

    def convert(sid: str, i: int) -> list[Sample]:
        j = i % n
        K = as_matrix(Ks[j], (3, 3), "K", sid)
        pts = as_matrix(xyz[j], (21, 3), "xyz", sid)
        if (pts[:, 2] <= 0).any():
            raise SampleError("xyz has joints at or behind the camera (z <= 0)", sid, kind="invalid")
        uv = project(pts, K[[0, 1], [0, 1]], K[:2, 2])
        ones = np.ones((21, 1), np.float32)
        j2 = np.concatenate([uv, ones], 1).astype(np.float32)
        gt = None
        if mano is not None:
            theta = as_matrix(mano[j], (1, 61), "mano", sid)[0]
            gt = {
                "model": "mano",
                "side": "right",
                "part": "hand",
                "params": {"pose": theta[:48], "betas": theta[48:58], "transl": theta[58:61]},
            }
        s = Sample(
            id=sid,
            image=image_path(rgb / f"{sid}{ext}", sid, opts["check_images"]),
            bbox=hand_bbox(j2),
            part="rhand",
            joint_set="hand21",
            joints_2d=j2,
            joints_3d=np.concatenate([pts, ones], 1),
            intrinsics={"focal": K[[0, 1], [0, 1]], "princpt": K[:2, 2]},
            gt=gt,
            extra={"dataset": "freihand", "split": split, "annotation_index": j, "version": i // n},
        )
        return [s.validate()]

    records = ((f"{i:08d}", i) for i in range(n * versions))
    yield from convert_records(records, convert, xyz_file, opts["skip_bad"], report)


def load_freihand(
    path, skip_bad: bool = False, report: SkipReport | None = None, **options
) -> Iterator[Sample]:
    """Stream FreiHAND samples (module docstring); fills ``report`` if given."""
    opts = check_options("freihand", options, DEFAULTS)
    opts["skip_bad"] = skip_bad
    root, named = freihand_root(path)
    split = opts["split"] or named or next(s for s in SPLITS if (root / f"{s}_xyz.json").is_file())
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    report = report if report is not None else SkipReport()
    return per_file([root], lambda r: _read_split(r, split, opts, report), skip_bad, report)
