"""3DPW sequence pickles (``sequenceFiles/{train,validation,test}/*.pkl``), read without running code.

Layout (``path`` = the root, ``sequenceFiles/``, a split folder or one ``.pkl``)::

    <root>/sequenceFiles/test/downtown_arguing_00.pkl     latin1 pickle, numpy arrays only
    <root>/imageFiles/downtown_arguing_00/image_00000.jpg

Keys read: ``sequence``, ``img_frame_ids`` (N), ``cam_intrinsics`` (3x3), ``cam_poses`` (N x 4 x 4,
world → camera, m), and per actor ``poses2d`` (N x 3 x 18, OpenPose-18 x / y / confidence),
``jointPositions`` (N x 72, the 24 SMPL joints in world m), ``poses`` (N x 72), ``betas``, ``trans``
(N x 3), ``campose_valid`` (N) and ``genders``. The pickles are loaded with
:func:`~neuralannot.data.adapters.safe_pickle.safe_load` (numpy arrays only).

One ``body`` sample per frame and actor (id ``<sequence>_<frame:05d>_<actor>``) in ``coco17``:
``joints_2d`` = ``poses2d`` reordered from OpenPose-18 (neck dropped), confidence clipped to [0, 1];
no ``joints_3d`` (3DPW's 3D joints are SMPL joints, not COCO keypoints); bbox = 1.2 x the tight box
of the valid 2D joints. ``gt`` holds the SMPL fit in the camera frame: the root rotation
pre-multiplied by the camera rotation and ``transl = R @ J0 + t - (J0 - trans)`` with ``J0`` the
world pelvis (``jointPositions`` joint 0, the pelvis of the same shaped model), plus ``gender``
and ``joints_smpl24`` (the 24 SMPL joints in the camera frame, m). Frames with
``campose_valid == 0`` or without a valid 2D joint are dropped (counted).

Options: ``splits`` (default all), ``stride`` (keep every stride-th frame), ``image_dir`` (the
folder holding one folder per sequence), ``check_images``.
"""

from __future__ import annotations

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
    rotate_root,
)
from neuralannot.data.adapters.folder import DatasetFormatError, SkipReport
from neuralannot.data.adapters.safe_pickle import safe_load
from neuralannot.data.sample import Sample, SampleError
from neuralannot.utils.safe_pickle import UNPICKLE_ERRORS

__all__ = ["load_3dpw", "find_3dpw_files", "OPENPOSE18_TO_COCO17"]

SPLITS = ("train", "validation", "test")
#: ``coco17_joints = openpose18_joints[OPENPOSE18_TO_COCO17]`` (OpenPose-18 = COCO order plus a neck).
OPENPOSE18_TO_COCO17 = [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]
REQUIRED = (
    "sequence",
    "img_frame_ids",
    "cam_intrinsics",
    "cam_poses",
    "poses2d",
    "jointPositions",
    "poses",
    "betas",
    "trans",
    "campose_valid",
)
BOX_SCALE = 1.2
DEFAULTS = dict(splits=None, stride=1, image_dir=None, check_images="exists")


def find_3dpw_files(path: str | Path, splits=None) -> list[Path]:
    """Sequence pickles: the file itself, a folder's ``*.pkl``, or ``[sequenceFiles/]{split}/*.pkl``."""
    p = Path(path)
    if p.is_file():
        return [p]
    if sorted(p.glob("*.pkl")):
        return sorted(p.glob("*.pkl"))
    base = p / "sequenceFiles" if (p / "sequenceFiles").is_dir() else p
    found = [f for s in (splits or SPLITS) for f in sorted((base / s).glob("*.pkl"))]
    if not found:
        raise DatasetFormatError("no 3DPW sequence pickles (*.pkl, sequenceFiles/{split}/*.pkl) found", p)
    return found


def _image_dir(pkl: Path, image_dir: str | Path | None) -> Path:
    if image_dir is not None:
        return Path(image_dir)
    d = pkl.parent.resolve()
    if d.parent.name == "sequenceFiles":
        return d.parent.parent / "imageFiles"
    return (d.parent if d.name == "sequenceFiles" else d) / "imageFiles"


def _load(pkl: Path) -> dict[str, Any]:
    try:
        data = safe_load(pkl)
    except UNPICKLE_ERRORS as exc:
        raise DatasetFormatError(f"cannot load the sequence pickle: {exc}", pkl) from None
    if not isinstance(data, dict):
        raise DatasetFormatError(f"expected a dict, got {type(data).__name__}", pkl)
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise DatasetFormatError(f"missing key(s) {missing}", pkl)
    return data


def _box(j2: np.ndarray) -> np.ndarray | None:
    v = j2[:, 2] > 0
    if not v.any():
        return None
    lo, hi = j2[v, :2].min(0), j2[v, :2].max(0)
    size = np.maximum((hi - lo) * BOX_SCALE, 1.0)
    return np.concatenate([(lo + hi) / 2 - size / 2, size]).astype(np.float32)


def _read_sequence(pkl: Path, opts: dict[str, Any], report: SkipReport) -> Iterator[Sample]:
    data = _load(pkl)
    seq = str(data["sequence"])
    split = pkl.parent.name if pkl.parent.name in SPLITS else None
    frames = np.asarray(data["img_frame_ids"]).reshape(-1).astype(int)
    n_actors = len(data["poses2d"])
    images = _image_dir(pkl, opts["image_dir"])
    K = np.asarray(data["cam_intrinsics"], np.float64)
    if K.shape != (3, 3):
        raise DatasetFormatError(f"cam_intrinsics has shape {K.shape}, expected (3, 3)", pkl)
    genders = list(data.get("genders") or [])

    def records():
        for i in range(0, len(frames), opts["stride"]):
            for a in range(n_actors):
                yield f"{seq}_{frames[i]:05d}_{a}", (i, a)

    def convert(sid: str, raw: tuple[int, int]) -> list[Sample | str]:
        i, a = raw
        if not bool(np.asarray(data["campose_valid"][a]).reshape(-1)[i]):
            return ["campose_valid = 0"]
        op = as_matrix(data["poses2d"][a][i], (3, 18), "poses2d", sid).T[OPENPOSE18_TO_COCO17]
        conf = np.clip(np.nan_to_num(op[:, 2]), 0.0, 1.0)
        j2 = np.concatenate([op[:, :2], conf[:, None]], 1).astype(np.float32)
        bbox = _box(j2)
        if bbox is None:
            return ["no valid 2D joint"]
        cam = as_matrix(data["cam_poses"][i], (4, 4), "cam_poses", sid)
        R, t = cam[:3, :3], cam[:3, 3]
        world = as_matrix(data["jointPositions"][a][i], (72,), "jointPositions", sid).reshape(24, 3)
        trans = as_matrix(data["trans"][a][i], (3,), "trans", sid)
        pelvis = world[0]
        gender = {"m": "male", "f": "female"}.get(str(genders[a]) if a < len(genders) else "", None)
        gt = {
            "model": "smpl",
            "params": {
                "pose": rotate_root(as_matrix(data["poses"][a][i], (72,), "poses", sid), R, sid),
                "betas": np.asarray(data["betas"][a], np.float64).reshape(-1)[:10],
                "transl": R @ pelvis + t - (pelvis - trans),
            },
            "gender": gender,
            "global_orient_frame": "camera",
            "joints_smpl24": world @ R.T + t,
        }
        if gt["params"]["betas"].shape != (10,):
            raise SampleError(
                f"betas has {gt['params']['betas'].size} values, expected >= 10", sid, kind="shape"
            )
        extra = {
            "dataset": "3dpw",
            "split": split,
            "sequence": seq,
            "frame": int(frames[i]),
            "actor": a,
            "camera": {"R": R, "t": t, "formula": "X_cam = R @ X_world + t (m)"},
        }
        s = Sample(
            id=sid,
            image=image_path(images / seq / f"image_{frames[i]:05d}.jpg", sid, opts["check_images"]),
            bbox=bbox,
            part="body",
            joint_set="coco17",
            joints_2d=j2,
            intrinsics={"focal": K[[0, 1], [0, 1]], "princpt": K[:2, 2]},
            gt=gt,
            extra=extra,
        )
        return [s.validate()]

    yield from convert_records(records(), convert, pkl, opts["skip_bad"], report)


def load_3dpw(path, skip_bad: bool = False, report: SkipReport | None = None, **options) -> Iterator[Sample]:
    """Stream 3DPW samples (module docstring); fills ``report`` if given."""
    opts = check_options("3dpw", options, DEFAULTS)
    opts["skip_bad"] = skip_bad
    if opts["splits"] is not None and not set(opts["splits"]) <= set(SPLITS):
        raise ValueError(f"splits must be among {SPLITS}, got {opts['splits']!r}")
    files = find_3dpw_files(path, opts["splits"])
    report = report if report is not None else SkipReport()
    return per_file(files, lambda f: _read_sequence(f, opts, report), skip_bad, report)
