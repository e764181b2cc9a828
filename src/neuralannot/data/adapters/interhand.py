"""InterHand2.6M (``InterHand2.6M_{split}_data.json`` + ``_camera.json`` + ``_joint_3d.json``).

Layout (``path`` = the root, ``annotations/``, ``annotations/{split}/`` or one ``*_data.json``)::

    <root>/annotations/{split}/InterHand2.6M_{split}_data.json     COCO-like images + annotations
                                                                   (bbox, joint_valid 42, hand_type)
                               InterHand2.6M_{split}_camera.json   {capture: {campos, camrot, focal,
                                                                   princpt: {camera: ...}}}
                               InterHand2.6M_{split}_joint_3d.json {capture: {frame: {world_coord
                                                                   42 x 3 mm, joint_valid, ...}}}
    <root>/images/{split}/Capture0/<seq>/cam400262/image20631.jpg

Joints 0-20 are the right hand, 21-41 the left (``interhand42``; each tip→knuckle, wrist last).
World → camera: ``X_cam = R @ (X_world - campos)`` with ``R = camrot``, then /1000 → meters;
``joints_2d`` = the pinhole projection (InterHand2.6M has no separate 2D labels); validity = the
annotation's ``joint_valid`` (and the joint file's, when given). Like the folder adapter, each
annotation is split into a right and a left ``hand21`` sample with ids ``<ann_id>_r`` /
``<ann_id>_l`` and a box = 1.2 x the tight box of that hand's valid joints; a hand without valid
joints is dropped (counted in ``SkipReport.dropped``) unless ``drop_empty_hands=False`` (then it
keeps the annotation box). MANO fits (``*_MANO_NeuralAnnot.json``) are not read.

Options: ``splits`` (default: all found), ``image_dir`` (the folder holding ``Capture*``),
``drop_empty_hands``, ``check_images``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neuralannot.bodies.joint_names import conversion_indices
from neuralannot.data.adapters.common import (
    as_matrix,
    check_options,
    convert_records,
    image_path,
    iter_image_annotations,
    iter_json,
    per_file,
    project,
    read_json,
)
from neuralannot.data.adapters.folder import DatasetFormatError, SkipReport
from neuralannot.data.adapters.folder_convert import hand_bbox
from neuralannot.data.sample import Sample, SampleError

__all__ = ["load_interhand", "find_interhand_files", "DATA_FILE_RE"]

DATA_FILE_RE = re.compile(r"^InterHand2\.6M_(\w+?)_data\.json$")
DEFAULTS = dict(splits=None, image_dir=None, drop_empty_hands=True, check_images="exists")
SIDES = (("right", "r", "rhand21"), ("left", "l", "lhand21"))


def find_interhand_files(path: str | Path) -> list[tuple[str, Path]]:
    """(split, data file) pairs: the file itself, or those in the folder / its split sub-folders."""
    p = Path(path)
    if p.is_file():
        m = DATA_FILE_RE.match(p.name)
        if not m:
            raise DatasetFormatError("not an InterHand2.6M_{split}_data.json file", p)
        return [(m.group(1), p)]
    for d in (p / "annotations", p):
        files = list(d.glob("InterHand2.6M_*_data.json")) + list(d.glob("*/InterHand2.6M_*_data.json"))
        found = sorted((m.group(1), f) for f in files if (m := DATA_FILE_RE.match(f.name)))
        if found:
            return found
    raise DatasetFormatError(
        "no InterHand2.6M_{split}_data.json found (in it, annotations/ or a split folder)", p
    )


def _image_dir(data_file: Path, split: str, image_dir: str | Path | None) -> Path:
    if image_dir is not None:
        return Path(image_dir)
    d = data_file.parent.resolve()
    if d.name == split:
        d = d.parent
    root = d.parent if d.name == "annotations" else d
    return root / "images" / split


def _joints_by_frame(path: Path) -> dict[tuple[str, str], dict]:
    out = {}
    for capture, frames in iter_json(path):
        if not isinstance(frames, dict):
            raise DatasetFormatError(f"capture {capture!r} must map frames to objects", path)
        for frame, value in frames.items():
            out[(str(capture), str(frame))] = value
    return out


def _read_split(split: str, data_file: Path, opts: dict[str, Any], report: SkipReport) -> Iterator[Sample]:
    prefix = f"InterHand2.6M_{split}"
    cam_file, joints_file = (
        data_file.with_name(f"{prefix}_camera.json"),
        data_file.with_name(f"{prefix}_joint_3d.json"),
    )
    cameras = read_json(cam_file)
    joints = _joints_by_frame(joints_file)
    images = _image_dir(data_file, split, opts["image_dir"])
    idx = {side: conversion_indices("interhand42", dst)[0] for side, _, dst in SIDES}

    def records():
        for img, ann, _ in iter_image_annotations(data_file):
            yield (str(ann.get("id")) if isinstance(ann, dict) else "?"), (img, ann)

    def camera(img: dict, sid: str) -> tuple[np.ndarray, ...]:
        cap, cam = cameras.get(str(img["capture"])), str(img["camera"])
        try:
            R, pos = cap["camrot"][cam], cap["campos"][cam]
            f, c = cap["focal"][cam], cap["princpt"][cam]
        except (KeyError, TypeError):
            raise SampleError(
                f"capture {img['capture']!r} camera {cam!r} missing in {cam_file.name}",
                sid,
                kind="intrinsics",
            ) from None
        return (
            as_matrix(R, (3, 3), "camrot", sid),
            as_matrix(pos, (3,), "campos", sid),
            as_matrix(f, (2,), "focal", sid),
            as_matrix(c, (2,), "princpt", sid),
        )

    def convert(sid: str, raw: tuple) -> list[Sample | str]:
        img, ann = raw
        if img is None:
            raise SampleError(f"image_id {ann.get('image_id')!r} is not in 'images'", sid, kind="missing_key")
        key = (str(img["capture"]), str(img["frame_idx"]))
        entry = joints.get(key)
        if not isinstance(entry, dict) or "world_coord" not in entry:
            raise SampleError(
                f"no world_coord for capture/frame {'/'.join(key)} in {joints_file.name}",
                sid,
                kind="missing_key",
            )
        R, campos, f, c = camera(img, sid)
        world = as_matrix(entry["world_coord"], (42, 3), "world_coord", sid)
        xyz = (world - campos) @ R.T / 1000.0
        valid = as_matrix(np.reshape(ann["joint_valid"], -1), (42,), "joint_valid", sid) > 0
        if entry.get("joint_valid") is not None:
            valid &= as_matrix(np.reshape(entry["joint_valid"], -1), (42,), "joint_3d joint_valid", sid) > 0
        v = valid.astype(np.float32)[:, None]
        uv = project(xyz, f, c)
        if (xyz[valid, 2] <= 0).any():
            raise SampleError(
                "valid joints at or behind the camera (check campos / camrot)", sid, kind="invalid"
            )
        j2, j3 = np.concatenate([uv, v], 1).astype(np.float32), np.concatenate([xyz, v], 1)
        extra = {
            "dataset": "interhand2.6m",
            "split": split,
            "hand_type": ann.get("hand_type"),
            "hand_type_valid": ann.get("hand_type_valid"),
            "capture": img["capture"],
            "subject": img.get("subject"),
            "seq_name": img.get("seq_name"),
            "frame_idx": img["frame_idx"],
            "image_id": img["id"],
            "file_name": img["file_name"],
            "camera": {
                "camera_id": str(img["camera"]),
                "R": R,
                "campos_m": campos / 1000.0,
                "formula": "X_cam = R @ (X_world - campos)",
            },
        }
        common = dict(
            image=image_path(images / str(img["file_name"]), sid, opts["check_images"]),
            intrinsics={"focal": f, "princpt": c},
            image_size=(img["width"], img["height"]) if "width" in img and "height" in img else None,
        )
        out: list[Sample | str] = []
        for side, tag, _ in SIDES:
            hj2, hj3 = j2[idx[side]], j3[idx[side]]
            bbox = hand_bbox(hj2)
            if bbox is None:
                if opts["drop_empty_hands"]:
                    out.append(f"{side} hand without valid joints")
                    continue
                bbox = ann["bbox"]
            hextra = dict(extra, side=side, pair_bbox=ann["bbox"], pair_id=sid)
            s = Sample(
                id=f"{sid}_{tag}",
                bbox=bbox,
                part=f"{tag}hand",
                joint_set="hand21",
                joints_2d=hj2,
                joints_3d=hj3,
                extra=hextra,
                **common,
            )
            out.append(s.validate())
        return out

    yield from convert_records(records(), convert, data_file, opts["skip_bad"], report)


def load_interhand(
    path, skip_bad: bool = False, report: SkipReport | None = None, **options
) -> Iterator[Sample]:
    """Stream InterHand2.6M hand samples (module docstring); fills ``report`` if given."""
    opts = check_options("interhand2.6m", options, DEFAULTS)
    opts["skip_bad"] = skip_bad
    files = find_interhand_files(path)
    if opts["splits"] is not None:
        files = [(s, f) for s, f in files if s in set(opts["splits"])]
        if not files:
            raise DatasetFormatError(f"none of the splits {list(opts['splits'])} found", path)
    report = report if report is not None else SkipReport()
    split_of = {f: s for s, f in files}
    return per_file(
        [f for _, f in files], lambda f: _read_split(split_of[f], f, opts, report), skip_bad, report
    )
