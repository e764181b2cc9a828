"""Folder format → :class:`~neuralannot.data.sample.Sample`: the schema constants, the top-level
metadata check (joint columns matched by name to a known set) and the per-record conversion (see the
mapping in :mod:`neuralannot.data.adapters.folder`)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuralannot.bodies.joint_matching import JointMatch
from neuralannot.bodies.joint_names import SET_PARTS, conversion_indices
from neuralannot.data.adapters.base import DatasetFormatError
from neuralannot.data.adapters.checks import image_in_root
from neuralannot.data.adapters.joint_map import JointMap, resolve_file_joints
from neuralannot.data.sample import Sample, SampleError

SCHEMA_VERSION = 1
REQUIRED_META = ("schema_version", "dataset", "joint_names")
REQUIRED_SAMPLE = ("joints_2d", "bbox")
#: Part of hand21 samples per dataset when ``extra.hand_type`` does not say.
DATASET_HAND_PART = {"freihand": "rhand"}
HAND_BOX_SCALE = 1.2
IMAGE_CHECKS = (None, "exists", "verify")


@dataclass
class _FileContext:
    path: Path  # file named in errors
    base_dir: Path  # images are relative to this
    meta: dict[str, Any]
    joints: JointMatch  # file columns → the joint set
    drop_empty_hands: bool = True
    image_counts: Counter = field(default_factory=Counter)

    @property
    def joint_set(self) -> str:
        return self.joints.joint_set


def _check_meta(meta: dict[str, Any], path: Path, joint_map: JointMap | None = None) -> JointMatch:
    """Validate the top-level metadata; return how its joint columns map to a known joint set."""
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise DatasetFormatError(f"missing top-level key(s) {missing}", path)
    if meta["schema_version"] != SCHEMA_VERSION:
        raise DatasetFormatError(
            f"unsupported schema_version {meta['schema_version']!r} (this reader supports {SCHEMA_VERSION})",
            path,
        )
    names = meta["joint_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DatasetFormatError("joint_names must be a list of strings", path)
    if meta.get("num_joints") is not None and meta["num_joints"] != len(names):
        raise DatasetFormatError(f"num_joints={meta['num_joints']} but {len(names)} joint_names", path)
    try:
        joints = resolve_file_joints(meta, path, joint_map)
    except ValueError as exc:
        raise DatasetFormatError(str(exc), path) from None
    frame = meta.get("joints_3d_frame")
    if frame not in (None, "camera"):
        raise DatasetFormatError(f"joints_3d_frame must be 'camera' or null, got {frame!r}", path)
    return joints


def _sample_id(raw: dict[str, Any], ctx: _FileContext) -> str:
    if raw.get("id") is not None:
        return str(raw["id"])
    dataset = str(ctx.meta["dataset"])
    image = raw.get("image")
    stem = Path(str(image)).stem if image else "noimage"
    if stem.startswith(dataset + "__"):
        stem = stem[len(dataset) + 2 :]
    k = ctx.image_counts[stem]
    ctx.image_counts[stem] += 1
    return f"{dataset}/{stem}/{k}"


def _infer_part(raw: dict[str, Any], ctx: _FileContext) -> str:
    part = raw.get("part") or ctx.meta.get("part")
    if part:
        return str(part)
    set_part = SET_PARTS[ctx.joint_set]
    if set_part == "hand":
        hand_type = str((raw.get("extra") or {}).get("hand_type") or "").lower()
        if hand_type in ("left", "right"):
            return "lhand" if hand_type == "left" else "rhand"
        return DATASET_HAND_PART.get(str(ctx.meta["dataset"]).lower(), "hand")
    return set_part


def _smpl_gt(smpl: dict[str, Any]) -> dict[str, Any]:
    """``smpl`` entry → ``{"model": "smpl", "params": {pose (72,), betas (10,), transl}, ...}``."""
    if not isinstance(smpl, dict):
        raise SampleError(f"smpl must be an object, got {type(smpl).__name__}", kind="malformed")
    params = {"pose": smpl.get("pose"), "betas": smpl.get("betas"), "transl": smpl.get("translation")}
    rest = {k: v for k, v in smpl.items() if k not in ("pose", "betas", "translation", "model")}
    return {"model": "smpl", "params": params, "description": smpl.get("model"), **rest}


def hand_bbox(j2: np.ndarray) -> np.ndarray | None:
    v = j2[:, 2] > 0
    if not v.any():
        return None
    lo, hi = j2[v, :2].min(0), j2[v, :2].max(0)
    c, size = (lo + hi) / 2, (hi - lo) * HAND_BOX_SCALE
    if size.min() < 1.0:  # degenerate (one joint or collinear): square on the larger side
        size[:] = size.max()
    if size.min() < 1.0:
        return None
    return np.concatenate([c - size / 2, size]).astype(np.float32)


def _convert(
    raw: Any, ctx: _FileContext, check_images: str | None, root: Path | None = None
) -> list[Sample | str]:
    """One raw sample → Samples (two for two-hand sets); a str entry = a dropped empty hand.
    Images must resolve inside ``root`` when given."""
    if not isinstance(raw, dict):
        raise SampleError(f"sample is a {type(raw).__name__}, expected a JSON object", kind="malformed")
    sid = _sample_id(raw, ctx)
    missing = [k for k in REQUIRED_SAMPLE if k not in raw]
    if missing:
        raise SampleError(f"missing key(s) {missing}", sid, kind="missing_key")
    try:
        j2 = np.array(raw["joints_2d"], dtype=np.float32)
        J = len(ctx.meta["joint_names"])
        if j2.shape != (J, 3):
            raise SampleError(f"joints_2d has shape {j2.shape}, expected ({J}, 3)", sid, kind="shape")
        j3 = None
        if raw.get("joints_3d") is not None:
            frame = raw.get("joints_3d_frame", ctx.meta.get("joints_3d_frame"))
            if frame not in (None, "camera"):
                raise SampleError(f"joints_3d_frame must be 'camera', got {frame!r}", sid, kind="frame")
            xyz = np.array(raw["joints_3d"], dtype=np.float32)
            valid = raw.get("joints_3d_valid")
            valid = np.ones(len(xyz), np.float32) if valid is None else np.array(valid, dtype=np.float32)
            if xyz.shape != (J, 3) or valid.shape != (J,):
                raise SampleError(
                    f"joints_3d {xyz.shape} / joints_3d_valid {valid.shape} do not match ({J}, 3) / ({J},)",
                    sid,
                    kind="shape",
                )
            j3 = ctx.joints.take(np.concatenate([xyz, valid[:, None]], axis=1))
        j2 = ctx.joints.take(j2)
        intrinsics, extra = None, dict(raw.get("extra") or {})
        cam = raw.get("camera")
        if cam is not None:
            if not isinstance(cam, dict) or "focal" not in cam or "princpt" not in cam:
                raise SampleError("camera must have 'focal' and 'princpt'", sid, kind="intrinsics")
            intrinsics = {"focal": cam["focal"], "princpt": cam["princpt"]}
            rest = {k: v for k, v in cam.items() if k not in ("focal", "princpt")}
            if rest:
                extra["camera"] = rest
        gt = raw.get("gt")
        if gt is None and raw.get("smpl") is not None:
            gt = _smpl_gt(raw["smpl"])
        for key in ("dataset", "bbox_source", "license"):
            if raw.get(key) is not None:
                extra.setdefault(key, raw[key])
        extra.setdefault("dataset", ctx.meta["dataset"])
        if ctx.meta.get("split") is not None:
            extra.setdefault("split", ctx.meta["split"])
        image = raw.get("image")
        if image is not None:
            image = str(image) if os.path.isabs(str(image)) else str(ctx.base_dir / str(image))
            image = image_in_root(image, root, sid, root is None)
            if check_images == "exists" and not os.path.isfile(image):
                raise SampleError(f"image file not found: {image}", sid, kind="image")
            if check_images == "verify":
                from neuralannot.data.transforms import check_image

                size = check_image(image, sid)
                if raw.get("image_size") is not None and list(size) != list(raw["image_size"]):
                    raise SampleError(
                        f"image {image} is {size[0]}x{size[1]}, image_size says {raw['image_size']}",
                        sid,
                        kind="image",
                    )
        common = dict(image=image, intrinsics=intrinsics, image_size=raw.get("image_size"), gt=gt)
        part = _infer_part(raw, ctx)
        if part != "hands":
            s = Sample(id=sid, bbox=raw["bbox"], part=part, joint_set=ctx.joint_set, joints_2d=j2,
                       joints_3d=j3, extra=extra, **common)  # fmt: skip
            return [s.validate()]
        out: list[Sample | str] = []
        for side, tag, dst in (("right", "r", "rhand21"), ("left", "l", "lhand21")):
            idx, found = conversion_indices(ctx.joint_set, dst)
            if not all(found):
                raise SampleError(
                    f"joint set {ctx.joint_set} lacks {side}-hand joints", sid, kind="joint_set"
                )
            hj2, hj3 = j2[idx], (None if j3 is None else j3[idx])
            bbox = hand_bbox(hj2)
            if bbox is None:
                if ctx.drop_empty_hands:
                    out.append(f"{side} hand without valid joints")
                    continue
                bbox = raw["bbox"]
            hextra = dict(extra, side=side, pair_bbox=raw["bbox"], pair_id=sid)
            s = Sample(id=f"{sid}_{tag}", bbox=bbox, part=f"{tag}hand", joint_set="hand21", joints_2d=hj2,
                       joints_3d=hj3, extra=hextra, **common)  # fmt: skip
            out.append(s.validate())
        return out
    except SampleError as exc:
        raise SampleError(exc.problem, exc.sample_id or sid, str(ctx.path), exc.kind) from None
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise SampleError(f"malformed sample: {exc}", sid, str(ctx.path), "malformed") from None


def _check_count(meta: dict[str, Any], n: int, path: Path) -> None:
    declared = meta.get("num_samples")
    if isinstance(declared, int) and declared != n:
        raise DatasetFormatError(f"num_samples={declared} but {n} samples were read (truncated file?)", path)
