"""The pseudo-GT record (:class:`PseudoGT`), its schema tables and validation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from neuralannot.bodies.parts import HAND_PARTS, MODEL_NAMES, MODEL_PARTS
from neuralannot.bodies.specs import FILE_SIZE, model_variants

MODELS = MODEL_NAMES
SIDES = ("right", "left")
FORMAT = "neuralannot-pseudo-gt"
FORMAT_VERSION = 1

_VARIANTS = {m: [{s.name: s for s in specs} for specs in v] for m, v in model_variants().items()}
#: Per-sample shape of every parameter group per model (the union over its parts and options, from
#: the body models' ParamSpecs); ``None`` = 1-D of any length (the size comes from the model file).
PARAM_SHAPES: dict[str, dict[str, tuple[int, ...] | None]] = {
    m: {n: None if FILE_SIZE in s.shape else s.shape for specs in v for n, s in specs.items()}
    for m, v in _VARIANTS.items()
}
#: The groups every record of a model has: those required in each of its parts.
_REQUIRED = {
    m: tuple(n for n in PARAM_SHAPES[m] if all(n in specs and not specs[n].optional for specs in v))
    for m, v in _VARIANTS.items()
}
_PARTS = MODEL_PARTS
_HAND_PARTS = HAND_PARTS
_ANNY_KIND_PARTS = {"body_pose": ("body", "wholebody"), "hand_pose": _HAND_PARTS, "head_pose": ("face",)}
_EYES = ("left_eye", "right_eye")


class PseudoGTError(ValueError):
    """A bad pseudo-GT record or file; the message names the file and the sample id."""


# ------------------------------------------------------------------------------------------------
# the record
# ------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class PseudoGT:
    """Pseudo-GT of one sample.

    ``params`` use our body-model names (:data:`PARAM_SHAPES`), stored as float32 arrays; ``camera``
    is ``{"focal": [fx, fy], "princpt": [cx, cy]}`` in the original image's pixels (a single focal is
    used for both axes) or ``None``;
    ``quality`` is a JSON-able dict (e.g. ``joint_err_mm``/``joint_err_px``, ``confidence`` in
    [0, 1], ``method``, ``flags``); ``side`` (``right``/``left``) only for hand parts.
    Construction validates everything and raises :class:`PseudoGTError` naming the sample.
    """

    sample_id: str
    model: str
    part: str
    params: dict[str, np.ndarray]
    camera: dict[str, list[float]] | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    side: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.sample_id, str) or not self.sample_id:
            raise PseudoGTError(f"sample id must be a non-empty string, got {self.sample_id!r}")
        where = f"sample {self.sample_id!r}"
        if self.model not in MODELS:
            raise PseudoGTError(f"{where}: unknown model {self.model!r}; expected one of {MODELS}")
        if self.part not in _PARTS[self.model]:
            raise PseudoGTError(f"{where}: model {self.model} has no part {self.part!r}")
        self.params = _check_params(self.params, self.model, self.part, where)
        self.side = _check_side(self.side, self.part, where)
        self.camera = _check_camera(self.camera, where)
        self.quality = _check_quality(self.quality, where)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PseudoGT):
            return NotImplemented
        return (
            (self.sample_id, self.model, self.part, self.side, self.camera, self.quality)
            == (other.sample_id, other.model, other.part, other.side, other.camera, other.quality)
            and self.params.keys() == other.params.keys()
            and all(np.array_equal(v, other.params[k]) for k, v in self.params.items())
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (nested lists keep the shapes); the line format of part files."""
        return {
            "sample_id": self.sample_id, "model": self.model, "part": self.part, "side": self.side,
            "params": {k: _floats(v) for k, v in self.params.items()},
            "camera": self.camera, "quality": self.quality,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PseudoGT:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, Mapping) or not isinstance(d.get("params"), Mapping):
            raise PseudoGTError(f"not a pseudo-GT record: {str(d)[:80]!r}")
        sid = d.get("sample_id")
        try:
            params = {k: np.asarray(v, dtype=np.float32) for k, v in d["params"].items()}
        except (TypeError, ValueError) as e:
            raise PseudoGTError(f"sample {sid!r}: bad parameter values ({e})") from None
        return cls(sid, d.get("model"), d.get("part"), params, d.get("camera"), d.get("quality") or {},
                   d.get("side"))


def _check_params(params: Any, model: str, part: str, where: str) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping):
        raise PseudoGTError(f"{where}: params must be a dict, got {type(params).__name__}")
    shapes = PARAM_SHAPES[model]
    out = {}
    for name, value in params.items():
        if name not in shapes:
            raise PseudoGTError(f"{where}: {model} has no parameter {name!r}; expected {list(shapes)}")
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        try:
            arr = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            raise PseudoGTError(f"{where}: parameter {name!r} is not numeric") from None
        want = shapes[name]
        if (want is None and arr.ndim != 1) or (want is not None and arr.shape != want):
            raise PseudoGTError(
                f"{where}: {model} parameter {name!r} has shape {arr.shape}, expected {want or '(n,)'}"
            )
        if not np.isfinite(arr).all():
            raise PseudoGTError(f"{where}: parameter {name!r} has NaN/inf values")
        out[name] = arr
    missing = [n for n in _REQUIRED[model] if n not in out]
    if missing:
        raise PseudoGTError(f"{where}: {model} parameters missing {missing}")
    if model == "anny":
        kinds = [k for k in _ANNY_KIND_PARTS if k in out]
        if len(kinds) != 1 or part not in _ANNY_KIND_PARTS[kinds[0]]:
            raise PseudoGTError(
                f"{where}: anny {part} needs exactly one of body_pose/hand_pose/head_pose matching the part,"
                f" got {kinds}"
            )
    return out


def _check_side(side: Any, part: str, where: str) -> str | None:
    implied = {"lhand": "left", "rhand": "right"}.get(part)
    if side is None:
        return implied
    if side not in SIDES or part not in _HAND_PARTS or (implied and side != implied):
        raise PseudoGTError(f"{where}: side {side!r} does not fit part {part!r}")
    return side


def _check_camera(camera: Any, where: str) -> dict[str, list[float]] | None:
    if camera is None:
        return None
    try:
        out = {}
        for key in ("focal", "princpt"):
            v = np.asarray(camera[key], dtype=np.float64).reshape(-1)
            v = np.repeat(v, 2) if key == "focal" and v.size == 1 else v
            if v.shape != (2,) or not np.isfinite(v).all():
                raise ValueError(f"{key} = {camera[key]!r}")
            out[key] = [float(x) for x in v]
    except (KeyError, TypeError, ValueError) as e:
        raise PseudoGTError(f"{where}: camera must be {{focal: [fx, fy], princpt: [cx, cy]}} ({e})") from None
    if min(out["focal"]) <= 0:
        raise PseudoGTError(f"{where}: camera focal must be positive, got {out['focal']}")
    return out


def _check_quality(quality: Any, where: str) -> dict[str, Any]:
    if not isinstance(quality, Mapping) or not all(isinstance(k, str) for k in quality):
        raise PseudoGTError(f"{where}: quality must be a dict with string keys")

    def clean(v: Any, key: str) -> Any:
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            raise PseudoGTError(f"{where}: quality {key!r} is {v} (use None for unknown)")
        if isinstance(v, list | tuple):
            return [clean(x, key) for x in v]
        if isinstance(v, Mapping):
            return {str(k): clean(x, key) for k, x in v.items()}
        if v is not None and not isinstance(v, str | int | float | bool):
            raise PseudoGTError(f"{where}: quality {key!r} is not JSON-able ({type(v).__name__})")
        return v

    out = {k: clean(v, k) for k, v in quality.items()}
    conf = out.get("confidence")
    if conf is not None and not (isinstance(conf, int | float) and 0.0 <= conf <= 1.0):
        raise PseudoGTError(f"{where}: quality confidence must be in [0, 1], got {conf!r}")
    flags = out.get("flags")
    if flags is not None and not (isinstance(flags, list) and all(isinstance(f, str) for f in flags)):
        raise PseudoGTError(f"{where}: quality flags must be a list of strings, got {flags!r}")
    return out


def _floats(arr: np.ndarray) -> Any:
    """float32 array → nested lists of the shortest decimals that read back to the same float32."""
    return np.asarray(arr, dtype=np.float32).astype(str).astype(np.float64).tolist()


def _msg(e: Exception) -> str:
    return f"missing key {e}" if isinstance(e, KeyError) else str(e)
