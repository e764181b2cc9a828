"""Whole-body samples (``coco_wholebody133``) → the part samples the body, hand and face annotators
fit: the body (``coco23``: body 17 + feet 6), each hand (``hand21``, part ``lhand`` / ``rhand``) and
the face (``face68``), with ids ``<id>/body``, ``<id>/lhand``, ``<id>/rhand``, ``<id>/face``.

Part boxes: the dataset's own (COCO-WholeBody ``lefthand_box`` / ``righthand_box`` / ``face_box`` in
``extra``) when given, else the box of the part's valid keypoints scaled by :data:`BOX_SCALE` about its
centre (the rule of the synthetic hand and face sets); the body keeps the whole-body box. A hand or
the face with fewer than :data:`MIN_JOINTS` valid
keypoints, or flagged invalid by the dataset (``lefthand_valid`` ... false), is left out (``None``):
it is marked invalid in the whole-body record and the rest is still annotated. A part box of zero
size or entirely outside the image is an error (:class:`~neuralannot.data.sample.SampleError`) naming
the sample.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neuralannot.data.sample import Sample, SampleError

__all__ = ["BOX_SCALE", "MIN_JOINTS", "PART_SLICES", "WholeBodyParts", "split_samples", "split_wholebody"]

log = logging.getLogger(__name__)

#: Keypoint rows of each part in ``coco_wholebody133`` and the joint set of its part sample.
PART_SLICES: dict[str, tuple[slice, str]] = {
    "body": (slice(0, 23), "coco23"),
    "face": (slice(23, 91), "face68"),
    "lhand": (slice(91, 112), "hand21"),
    "rhand": (slice(112, 133), "hand21"),
}
#: Fewest valid keypoints for a part to be annotated.
MIN_JOINTS = {"lhand": 6, "rhand": 6, "face": 10}
#: Scale of a keypoint box about its centre (= the synthetic sets' ``BOX_SCALE``).
BOX_SCALE = 1.2
#: COCO-WholeBody's own box and valid-flag keys of each part.
_DATASET_KEYS = {"lhand": ("lefthand_box", "lefthand_valid"), "rhand": ("righthand_box", "righthand_valid"),
                 "face": ("face_box", "face_valid")}  # fmt: skip
PARTS = ("body", "lhand", "rhand", "face")


@dataclass
class WholeBodyParts:
    """The part samples of one whole-body sample (``None`` = part missing, marked invalid)."""

    sample: Sample
    body: Sample | None
    lhand: Sample | None
    rhand: Sample | None
    face: Sample | None

    def get(self, part: str) -> Sample | None:
        return getattr(self, part)


def _keypoint_box(j2d: np.ndarray, sid: str, part: str) -> np.ndarray:
    uv = j2d[j2d[:, 2] > 0, :2]
    lo, hi = uv.min(0), uv.max(0)
    if (hi - lo).min() <= 0:
        size = (hi - lo).tolist()
        problem = f"{part} box from its {len(uv)} keypoints has zero size ({size} px)"
        raise SampleError(problem, sid, kind="bbox")
    c, half = (lo + hi) / 2, (hi - lo) * BOX_SCALE / 2
    return np.concatenate([c - half, 2 * half]).astype(np.float32)


def _check_box(box, s: Sample, part: str) -> np.ndarray:
    try:
        b = np.asarray(box, dtype=np.float32).reshape(4)
    except (TypeError, ValueError):
        raise SampleError(f"{part} box {box!r} is not [x, y, w, h]", s.id, kind="bbox") from None
    if not np.isfinite(b).all() or b[2] <= 0 or b[3] <= 0:
        raise SampleError(f"{part} box {b.tolist()} has zero size", s.id, kind="bbox")
    if s.image_size is not None:
        W, H = s.image_size
        if b[0] >= W or b[1] >= H or b[0] + b[2] <= 0 or b[1] + b[3] <= 0:
            raise SampleError(f"{part} box {b.tolist()} lies outside the {W}x{H} image", s.id, kind="bbox")
    return b


def _part_sample(s: Sample, part: str) -> Sample | None:
    rows, joint_set = PART_SLICES[part]
    j2d = s.joints_2d[rows].copy()
    box_key, valid_key = _DATASET_KEYS.get(part, (None, None))
    if valid_key is not None and s.extra.get(valid_key) is False:
        return None
    if int((j2d[:, 2] > 0).sum()) < MIN_JOINTS.get(part, 1):
        return None
    given = s.extra.get(box_key) if box_key else None
    if part == "body":
        box = s.bbox
    elif given is not None and np.asarray(given, dtype=np.float64).size == 4 and np.any(given):
        box = given
    else:
        box = _keypoint_box(j2d, s.id, part)
    j3d = None if s.joints_3d is None else s.joints_3d[rows].copy()
    extra = {"wholebody_id": s.id, "wholebody_part": part}
    if part in ("lhand", "rhand"):
        extra["hand_type"] = "left" if part == "lhand" else "right"
    return Sample(
        id=f"{s.id}/{part}", image=s.image, bbox=_check_box(box, s, part), part=part, joint_set=joint_set,
        joints_2d=j2d, joints_3d=j3d, intrinsics=s.intrinsics, image_size=s.image_size, extra=extra,
    ).validate()  # fmt: skip


def split_wholebody(s: Sample) -> WholeBodyParts:
    """The body, hand and face samples of one ``coco_wholebody133`` sample (see the module doc)."""
    if s.joint_set != "coco_wholebody133":
        raise SampleError(f"whole-body split needs coco_wholebody133 joints, got {s.joint_set!r}", s.id)
    return WholeBodyParts(s, *(_part_sample(s, p) for p in PARTS))


def split_samples(
    samples: Sequence[Sample], skip_bad: bool = False
) -> tuple[list[WholeBodyParts], dict[str, list[Sample]]]:
    """Split every whole-body sample; returns the per-sample splits and, per part, the valid part
    samples in input order. ``skip_bad``: a sample with a bad part box is left out (logged) instead of
    raising; ``WholeBodyParts.sample`` tells which were kept."""
    splits = []
    for s in samples:
        try:
            splits.append(split_wholebody(s))
        except SampleError as err:
            if not skip_bad:
                raise
            log.warning("skipped: %s", err)
    by_part = {p: [x for sp in splits if (x := sp.get(p)) is not None] for p in PARTS}
    return splits, by_part
