"""One record builder shared by every annotator: fitted parameters of a sample → :class:`PseudoGT`.

The neural annotator, SMPLify-X and the report demo build their records through :func:`build_record`
(left hands mirrored back, confidence from the joint error, model key and side from the body model).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neuralannot.geometry import flip_rotvec
from neuralannot.io.pseudo_gt import PseudoGT

#: Error scale of the confidence: 50 mm (3D) or 5 % of the box size in pixels (2D).
CONF_SCALE_MM = 50.0
CONF_SCALE_BOX = 0.05
HAND_SIDE = {"lhand": "left", "rhand": "right", "hand": "right"}

__all__ = [
    "CONF_SCALE_BOX", "CONF_SCALE_MM", "HAND_SIDE", "build_record", "error_quality", "gt_record",
    "mark_unmeasured", "in_sample_camera", "mirror_to_left", "model_key", "sample_camera",
]


def model_key(body) -> str:
    """Pseudo-GT model name of a body model (``anny-hand`` → ``anny``)."""
    return body.name.split("-")[0]


def mirror_to_left(params: dict[str, np.ndarray], body) -> dict[str, np.ndarray]:
    """Parameters fitted on a mirrored (right) hand → the left hand: rotations mirrored, x negated."""
    out = {k: flip_rotvec(torch.from_numpy(v)).numpy() if body.param_specs[k].kind == "rotation" else v
           for k, v in params.items()}  # fmt: skip
    out["trans"] = out["trans"] * np.array([-1.0, 1.0, 1.0], np.float32)
    return out


def sample_camera(sample) -> dict[str, list[float]] | None:
    """The sample's own intrinsics as a pseudo-GT camera (None when unknown)."""
    if sample.intrinsics is None:
        return None
    return {k: [float(x) for x in sample.intrinsics[k]] for k in ("focal", "princpt")}


def same_camera(a: dict | None, b: dict | None) -> bool:
    """Whether two pseudo-GT cameras (``focal``, ``princpt``) are the same intrinsics; False when
    either is unknown."""
    if a is None or b is None:
        return False
    return bool(np.allclose([*a["focal"], *a["princpt"]], [*b["focal"], *b["princpt"]], rtol=1e-6, atol=1e-6))


def in_sample_camera(record: PseudoGT, sample) -> bool:
    """Whether the record's camera is the sample's own intrinsics (not e.g. a crop's virtual camera);
    False when either is unknown."""
    return same_camera(record.camera, sample_camera(sample))


def error_quality(err: float, three_d: bool, bbox) -> dict:
    """``joint_err_mm`` (3D, err in mm) or ``joint_err_px`` (2D) with ``confidence = exp(-err / scale)``."""
    if three_d:
        return {"joint_err_mm": err, "confidence": math.exp(-err / CONF_SCALE_MM)}
    box = float(max(bbox[2], bbox[3]))
    return {"joint_err_px": err, "confidence": math.exp(-err / (CONF_SCALE_BOX * box))}


def mark_unmeasured(quality: dict, flag: str) -> None:
    """No error could be measured: confidence 0, the error keys dropped, ``flag`` recorded."""
    quality.update(confidence=0.0)
    quality.pop("joint_err_mm", None)
    quality.pop("joint_err_px", None)
    quality["flags"] = [*quality.get("flags", []), flag]


def build_record(
    sample,
    body,
    params: dict[str, np.ndarray],
    *,
    err: float,
    three_d: bool,
    camera: dict[str, list[float]] | None,
    quality: dict,
    flip: bool = False,
    unmeasured: str | None = None,
    part: str | None = None,
) -> PseudoGT:
    """The pseudo-GT of ``sample`` from per-sample ``params`` fitted with ``body``.

    ``flip``: fitted on the mirrored (right) hand, mirrored back to the left hand. The quality block
    is :func:`error_quality` of ``err`` followed by ``quality`` (method, counts, flags ...);
    ``unmeasured`` names why no error could be measured (:func:`mark_unmeasured`). The record's part
    is the sample's for a hand model, else ``part`` (default: the body model's part).
    """
    p = mirror_to_left(params, body) if flip else params
    q = error_quality(err, three_d, sample.bbox)
    q.update(quality)
    if unmeasured:
        mark_unmeasured(q, unmeasured)
    rec_part = sample.part if body.part == "hand" else (part or body.part)
    return PseudoGT(sample.id, model_key(body), rec_part, p, camera, q, HAND_SIDE.get(sample.part))


def gt_record(sample, method: str = "gt") -> PseudoGT:
    """A synthetic sample's Anny GT parameters as a pseudo-GT record (camera: the sample's intrinsics);
    ValueError naming the sample when it has none."""
    if not sample.gt or sample.gt.get("model") != "anny":
        raise ValueError(f"sample {sample.id!r} has no Anny GT parameters (use a synthetic set)")
    params = {k: np.asarray(v, np.float32) for k, v in sample.gt["params"].items()}
    part = sample.part if sample.part in HAND_SIDE else sample.gt["part"]
    return PseudoGT(sample.id, "anny", part, params, sample_camera(sample), {"method": method},
                    HAND_SIDE.get(sample.part))  # fmt: skip
