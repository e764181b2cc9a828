"""Pseudo-GT files: per-sample body-model parameters in the NeuralAnnot release layout (JSON) or compact npz.

One :class:`PseudoGT` per sample holds its parameters in OUR body-model names (axis-angle, float32),
the camera in the ORIGINAL image's pixels, a quality block and, for hands, the side.

**JSON** (``*.json``) is exactly ``{sample_id: entry}`` (no top-level extras) so existing NeuralAnnot
loaders read it unchanged; rotations are flattened lists. Entries per model:

- smpl:  ``{"smpl_param": {"pose": [72] = root_pose + body_pose, "shape": [n], "trans": [3]}, ...}``
- smplx: ``{"smplx_param": {"root_pose": [3], "body_pose": [63], "lhand_pose": [45], "rhand_pose": [45],
  "jaw_pose": [3], "shape": [n], "expr": [m], "trans": [3], "lhand_valid", "rhand_valid", "face_valid"
  (+ "leye_pose", "reye_pose" [3] if present)}, ...}``. A group is *valid* iff it is in ``params``;
  missing groups are written as zeros with ``*_valid: false`` and dropped again on read (the face
  group is ``jaw_pose`` + ``expr`` (+ eyes); if one of them is present the others are written as zeros).
- flame: ``{"flame_param": {"root_pose", "jaw_pose", "expr", "shape", "trans" (+ "neck_pose" [3],
  "eye_pose" [6] = left, right)}, ...}``
- anny:  ``{"anny_param": {"root_pose": [3], "trans": [3], "phenotype": {name: v}, ...}, ...}`` with, for
  the body, ``"pose": {slot: [3]}`` (:data:`~neuralannot.bodies.anny.BODY_SLOTS` names) and optional
  ``"lhand_pose"``/``"rhand_pose": {finger: [3]}``, ``"expression": {facial action: v}``,
  ``"local_changes": [k]``; for the hand ``"pose": {finger: [3]}`` (``thumb1`` … ``pinky3``); for the
  head ``"head_pose": [3]``, ``"eye_pose": {"left_eye": [3], "right_eye": [3]}``, ``"expression"``.
- every non-MANO entry also has ``"cam_param": {"focal": [fx, fy], "princpt": [cx, cy]}`` (when known),
  ``"quality": {...}`` (ours), ``"part"`` and, for hands, ``"side"``.
- mano:  ``{key: {"right": side | null, "left": side | null}}`` with
  ``side = {"pose": [48] = root_pose + hand_pose, "shape": [n], "trans": [3], "cam_param", "quality",
  "part", "id"}``. **Id mapping:** a sample ``<base>_r`` with side right (``<base>_l``, left) goes under
  key ``<base>``, so the two hands of one image share an entry; any other id is its own key. ``"id"``
  keeps the sample id, so reading splits entries back exactly; files without it (the original release)
  read as ``<key>_r`` / ``<key>_l``.

Metadata (model, part, method, version, created, config hash, ...) goes to the sidecar
``<file>.meta.json`` (e.g. ``train.json.meta.json``), for npz files too; it records the file's SHA-256
and is ignored on reading when that does not match (:mod:`neuralannot.io.sidecar`).

**npz** (``*.npz``): ``ids`` (N,) str; ``models``, ``parts``, ``sides`` (N,) str (``""`` = no side);
``param.<name>`` (N, *shape) float32 and ``valid.<name>`` (N,) bool when some samples lack the group
(their rows are zeros); ``cam_focal``, ``cam_princpt`` (N, 2) float64 and ``cam_valid`` (N,) bool;
``quality.<key>`` (N,) float64 for numeric quality values (NaN = absent) and ``quality_json`` (N,) str
with the other quality values as JSON. Written atomically, read without pickle.

**Streaming:** :class:`PartWriter` writes complete ``part-00000.jsonl`` chunks atomically (one
:meth:`PseudoGT.to_dict` per line), :func:`done_ids` lists finished samples for resuming and
:func:`merge_parts` writes the final file with each sample once.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import math
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralannot.bodies.parts import HAND_PARTS, MODEL_NAMES, MODEL_PARTS
from neuralannot.io.sidecar import read_sidecar, sidecar_path, write_sidecar
from neuralannot.utils.atomic import atomic_write, atomic_write_json, atomic_write_text

__all__ = [
    "PseudoGT",
    "PseudoGTError",
    "PartWriter",
    "config_hash",
    "done_ids",
    "merge_parts",
    "meta_path",
    "read_pseudo_gt",
    "to_body_params",
    "write_pseudo_gt",
]

MODELS = MODEL_NAMES
SIDES = ("right", "left")
FORMAT = "neuralannot-pseudo-gt"
FORMAT_VERSION = 1

#: Per-sample shape of every parameter group per model; ``None`` = 1-D of any length.
PARAM_SHAPES: dict[str, dict[str, tuple[int, ...] | None]] = {
    "smpl": {"root_pose": (3,), "body_pose": (23, 3), "shape": None, "trans": (3,)},
    "smplx": {
        "root_pose": (3,), "body_pose": (21, 3), "lhand_pose": (15, 3), "rhand_pose": (15, 3),
        "jaw_pose": (3,), "leye_pose": (3,), "reye_pose": (3,), "shape": None, "expr": None, "trans": (3,),
    },
    "mano": {"root_pose": (3,), "hand_pose": (15, 3), "shape": None, "trans": (3,)},
    "flame": {
        "root_pose": (3,), "neck_pose": (3,), "jaw_pose": (3,), "eye_pose": (2, 3), "shape": None,
        "expr": None, "trans": (3,),
    },
    "anny": {
        "root_pose": (3,), "body_pose": (21, 3), "lhand_pose": (15, 3), "rhand_pose": (15, 3),
        "hand_pose": (15, 3), "head_pose": (3,), "eye_pose": (2, 3), "expression": (52,),
        "phenotype": (6,), "local_changes": None, "trans": (3,),
    },
}
_REQUIRED = {
    "smpl": ("root_pose", "body_pose", "shape", "trans"),
    "smplx": ("root_pose", "body_pose", "shape", "trans"),
    "mano": ("root_pose", "hand_pose", "shape", "trans"),
    "flame": ("root_pose", "jaw_pose", "shape", "expr", "trans"),
    "anny": ("root_pose", "phenotype", "trans"),
}
_PARTS = MODEL_PARTS
_HAND_PARTS = HAND_PARTS
_ANNY_KIND_PARTS = {"body_pose": ("body", "wholebody"), "hand_pose": _HAND_PARTS, "head_pose": ("face",)}
_EYES = ("left_eye", "right_eye")
_PART_RE = re.compile(r"^part-(\d{5,})\.jsonl$")


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


# ------------------------------------------------------------------------------------------------
# names used by the Anny layout
# ------------------------------------------------------------------------------------------------
@functools.cache
def _anny_names() -> dict[str, list[str]]:
    from neuralannot.bodies.anny import BODY_SLOTS, FINGER_NAMES, PHENOTYPES

    try:
        from anny.models.facial_actions import FACIAL_ACTION_LABELS
    except ImportError:  # pragma: no cover - anny is a dependency
        FACIAL_ACTION_LABELS = [f"action{i:02d}" for i in range(52)]
    return {
        "body": [n for n, _ in BODY_SLOTS],
        "finger": [f"{f}{k}" for f in FINGER_NAMES for k in (1, 2, 3)],
        "phenotype": list(PHENOTYPES),
        "expression": list(FACIAL_ACTION_LABELS),
    }


def _named(arr: np.ndarray, names: list[str]) -> dict[str, Any]:
    return dict(zip(names, _floats(arr), strict=True))


def _unnamed(d: Any, names: list[str], what: str) -> np.ndarray:
    if not isinstance(d, Mapping) or set(d) != set(names):
        got = sorted(d) if isinstance(d, Mapping) else type(d).__name__
        raise ValueError(f"{what} must map exactly the names {names}; got {got}")
    return np.asarray([d[n] for n in names], dtype=np.float32)


# ------------------------------------------------------------------------------------------------
# release JSON: record ↔ entry
# ------------------------------------------------------------------------------------------------
def _arr(v: Any, what: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a flat list of numbers")
    return a


def _rot(v: Any, what: str, n: int | None = None) -> np.ndarray:
    a = _arr(v, what)
    if a.size % 3 or (n is not None and a.size != 3 * n):
        raise ValueError(f"{what} has {a.size} values, expected {3 * n if n else 'a multiple of 3'}")
    return a.reshape(-1, 3)


def _param_block(r: PseudoGT) -> dict[str, Any]:
    """The ``<model>_param`` block of a record (MANO: the per-side dict without extras)."""
    p, flat = r.params, {k: _floats(v.reshape(-1)) for k, v in r.params.items()}
    if r.model in ("smpl", "mano"):
        rest = "body_pose" if r.model == "smpl" else "hand_pose"
        pose = _floats(np.concatenate([p["root_pose"], p[rest].reshape(-1)]))
        return {"pose": pose, "shape": flat["shape"], "trans": flat["trans"]}
    if r.model == "flame":
        return flat
    if r.model == "smplx":
        out = {k: flat[k] for k in ("root_pose", "body_pose", "shape", "trans")}
        face = [k for k in ("jaw_pose", "expr", "leye_pose", "reye_pose") if k in p]
        for side in ("lhand", "rhand"):
            out[f"{side}_pose"] = flat.get(f"{side}_pose", [0.0] * 45)
            out[f"{side}_valid"] = f"{side}_pose" in p
        out["jaw_pose"] = flat.get("jaw_pose", [0.0] * 3)
        out["expr"] = flat.get("expr", [0.0] * 10)
        out.update({k: flat[k] for k in ("leye_pose", "reye_pose") if k in p})
        out["face_valid"] = bool(face)
        return out
    names = _anny_names()
    out = {"root_pose": flat["root_pose"], "trans": flat["trans"],
           "phenotype": _named(p["phenotype"], names["phenotype"])}
    if "body_pose" in p:
        out["pose"] = _named(p["body_pose"], names["body"])
    if "hand_pose" in p:
        out["pose"] = _named(p["hand_pose"], names["finger"])
    if "head_pose" in p:
        out["head_pose"] = flat["head_pose"]
    for k in ("lhand_pose", "rhand_pose"):
        if k in p:
            out[k] = _named(p[k], names["finger"])
    if "eye_pose" in p:
        out["eye_pose"] = _named(p["eye_pose"], list(_EYES))
    if "expression" in p:
        out["expression"] = _named(p["expression"], names["expression"])
    if "local_changes" in p:
        out["local_changes"] = flat["local_changes"]
    return out


def _extras(r: PseudoGT) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.camera is not None:
        out["cam_param"] = r.camera
    out["quality"] = r.quality
    out["part"] = r.part
    return out


def _parse_block(model: str, b: Any) -> tuple[dict[str, np.ndarray], str]:
    """``<model>_param`` block → (params, default part). Raises ValueError/KeyError/TypeError."""
    if not isinstance(b, Mapping):
        raise ValueError(f"{model}_param must be an object")
    known = {
        "smpl": {"pose", "shape", "trans"}, "mano": {"pose", "shape", "trans"},
        "smplx": set(PARAM_SHAPES["smplx"]) | {"lhand_valid", "rhand_valid", "face_valid"},
        "flame": set(PARAM_SHAPES["flame"]),
        "anny": {"root_pose", "trans", "phenotype", "pose", "head_pose", "lhand_pose", "rhand_pose",
                 "eye_pose", "expression", "local_changes"},
    }[model]
    unknown = set(b) - known
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)} in {model}_param")
    if model in ("smpl", "mano"):
        pose = _rot(b["pose"], f"{model} pose", 24 if model == "smpl" else 16)
        rest = "body_pose" if model == "smpl" else "hand_pose"
        params = {"root_pose": pose[0], rest: pose[1:], "shape": _arr(b["shape"], "shape"),
                  "trans": _arr(b["trans"], "trans")}
        return params, "body" if model == "smpl" else "hand"
    if model == "flame":
        params = {k: (_rot(v, k) if k == "eye_pose" else _arr(v, k)) for k, v in b.items()}
        return params, "face"
    if model == "smplx":
        groups = {"lhand_pose": "lhand_valid", "rhand_pose": "rhand_valid", "jaw_pose": "face_valid",
                  "expr": "face_valid", "leye_pose": "face_valid", "reye_pose": "face_valid"}
        params = {}
        for k, v in b.items():
            if k.endswith("_valid") or (k in groups and not b.get(groups[k], True)):
                continue
            params[k] = _rot(v, k) if k in ("body_pose", "lhand_pose", "rhand_pose") else _arr(v, k)
        return params, "wholebody"
    names = _anny_names()
    params = {"root_pose": _arr(b["root_pose"], "root_pose"), "trans": _arr(b["trans"], "trans"),
              "phenotype": _unnamed(b["phenotype"], names["phenotype"], "phenotype")}
    part = "face"
    if "pose" in b:
        is_body = isinstance(b["pose"], Mapping) and bool(set(b["pose"]) & set(names["body"]))
        key, part = ("body_pose", "body") if is_body else ("hand_pose", "hand")
        params[key] = _unnamed(b["pose"], names["body" if is_body else "finger"], "pose")
    if "head_pose" in b:
        params["head_pose"] = _arr(b["head_pose"], "head_pose")
    for k in ("lhand_pose", "rhand_pose"):
        if k in b:
            params[k], part = _unnamed(b[k], names["finger"], k), "wholebody"
    if "eye_pose" in b:
        params["eye_pose"] = _unnamed(b["eye_pose"], list(_EYES), "eye_pose")
    if "expression" in b:
        params["expression"] = _unnamed(b["expression"], names["expression"], "expression")
        part = "wholebody" if part == "body" else part
    if "local_changes" in b:
        params["local_changes"] = _arr(b["local_changes"], "local_changes")
    return params, part


def _mano_key(r: PseudoGT) -> tuple[str, str]:
    """(entry key, side) of a MANO record: ``<base>_r``/``<base>_l`` → ``<base>``, other ids as is."""
    side = r.side or {"_r": "right", "_l": "left"}.get(r.sample_id[-2:])
    if side is None:
        raise PseudoGTError(f"sample {r.sample_id!r}: a MANO record needs a side (right/left)")
    suffix = "_r" if side == "right" else "_l"
    has = r.sample_id.endswith(suffix) and len(r.sample_id) > 2
    return (r.sample_id[:-2] if has else r.sample_id), side


def _records_to_json(records: list[PseudoGT]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in records:
        if r.model == "mano":
            key, side = _mano_key(r)
            entry = out.setdefault(key, {"right": None, "left": None})
            if set(entry) != set(SIDES):
                raise PseudoGTError(f"MANO sample {r.sample_id!r} collides with sample {key!r}")
            if entry[side] is not None:
                raise PseudoGTError(
                    f"samples {entry[side]['id']!r} and {r.sample_id!r} share MANO entry {key!r} ({side})"
                )
            entry[side] = {**_param_block(r), **_extras(r), "id": r.sample_id}
            continue
        if r.sample_id in out:
            raise PseudoGTError(f"sample {r.sample_id!r} appears twice (or collides with a MANO entry)")
        entry = {f"{r.model}_param": _param_block(r), **_extras(r)}
        if r.side is not None:
            entry["side"] = r.side
        out[r.sample_id] = entry
    return out


def _entry_to_records(key: str, entry: Any) -> list[PseudoGT]:
    """One JSON entry → its records; raises PseudoGTError/ValueError naming the problem."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"entry must be an object, got {type(entry).__name__}")
    if entry and set(entry) <= set(SIDES):
        out = []
        for side, d in entry.items():
            if d is None:
                continue
            if not isinstance(d, Mapping):
                raise ValueError(f"MANO {side} hand must be an object or null")
            sid = d.get("id") or f"{key}_{side[0]}"
            block = {k: d[k] for k in ("pose", "shape", "trans") if k in d}
            try:
                params, _ = _parse_block("mano", block)
            except (KeyError, TypeError, ValueError) as e:
                raise PseudoGTError(f"sample {sid!r}: bad MANO {side} hand ({_msg(e)})") from None
            out.append(PseudoGT(sid, "mano", d.get("part", "hand"), params, d.get("cam_param"),
                                d.get("quality") or {}, side))
        return out
    blocks = [k for k in entry if k.endswith("_param") and k != "cam_param"]
    if len(blocks) != 1:
        raise ValueError(f"expected one '<model>_param' block, found {blocks or 'none'}")
    model = blocks[0][: -len("_param")]
    if model not in MODELS:
        raise ValueError(f"unknown model key {blocks[0]!r}; expected one of {[m + '_param' for m in MODELS]}")
    try:
        params, part = _parse_block(model, entry[blocks[0]])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"bad {blocks[0]} ({_msg(e)})") from None
    return [PseudoGT(key, model, entry.get("part", part), params, entry.get("cam_param"),
                     entry.get("quality") or {}, entry.get("side"))]


def _msg(e: Exception) -> str:
    return f"missing key {e}" if isinstance(e, KeyError) else str(e)


# ------------------------------------------------------------------------------------------------
# npz
# ------------------------------------------------------------------------------------------------
def _records_to_npz(records: list[PseudoGT]) -> dict[str, np.ndarray]:
    n = len(records)
    arrays: dict[str, np.ndarray] = {
        "ids": np.array([r.sample_id for r in records], dtype=str),
        "models": np.array([r.model for r in records], dtype=str),
        "parts": np.array([r.part for r in records], dtype=str),
        "sides": np.array([r.side or "" for r in records], dtype=str),
    }
    names = list(dict.fromkeys(k for r in records for k in r.params))
    for name in names:
        shapes = {r.params[name].shape for r in records if name in r.params}
        if len(shapes) > 1:
            raise PseudoGTError(f"parameter {name!r} has shapes {sorted(shapes)}; cannot stack to npz")
        valid = np.array([name in r.params for r in records])
        stacked = np.zeros((n, *shapes.pop()), dtype=np.float32)
        for i, r in enumerate(records):
            if valid[i]:
                stacked[i] = r.params[name]
        arrays[f"param.{name}"] = stacked
        if not valid.all():
            arrays[f"valid.{name}"] = valid
    cams = [r.camera for r in records]
    arrays["cam_valid"] = np.array([c is not None for c in cams], dtype=bool)
    for key in ("focal", "princpt"):
        arrays[f"cam_{key}"] = np.array([c[key] if c else [0.0, 0.0] for c in cams], dtype=np.float64)
    numeric = [
        k for k in dict.fromkeys(k for r in records for k in r.quality)
        if re.fullmatch(r"\w+", k)
        and all(type(r.quality[k]) in (int, float) for r in records if k in r.quality)
    ]
    for k in numeric:
        arrays[f"quality.{k}"] = np.array([r.quality.get(k, np.nan) for r in records], dtype=np.float64)
    arrays["quality_json"] = np.array(
        [json.dumps({k: v for k, v in r.quality.items() if k not in numeric}) for r in records], dtype=str
    ).reshape(n)
    return arrays


def _npz_to_records(z: Mapping[str, np.ndarray]) -> list[PseudoGT]:
    ids = z["ids"]
    n = len(ids)
    for k, v in z.items():
        if v.ndim == 0 or len(v) != n:
            raise ValueError(f"array {k!r} has {v.shape[:1] or 'no'} rows, expected {n}")
    params = {k[len("param."):]: v for k, v in z.items() if k.startswith("param.")}
    quality = {k[len("quality."):]: v for k, v in z.items() if k.startswith("quality.")}
    out = []
    for i in range(n):
        sid = str(ids[i])
        try:
            p = {k: v[i] for k, v in params.items() if f"valid.{k}" not in z or z[f"valid.{k}"][i]}
            cam = None
            if z["cam_valid"][i]:
                cam = {"focal": z["cam_focal"][i].tolist(), "princpt": z["cam_princpt"][i].tolist()}
            q = json.loads(str(z["quality_json"][i]))
            q.update({k: float(v[i]) for k, v in quality.items() if not np.isnan(v[i])})
        except (KeyError, ValueError, TypeError) as e:
            raise PseudoGTError(f"sample {sid!r}: {_msg(e)}") from None
        side = str(z["sides"][i]) or None
        out.append(PseudoGT(sid, str(z["models"][i]), str(z["parts"][i]), p, cam, q, side))
    return out


# ------------------------------------------------------------------------------------------------
# public read / write
# ------------------------------------------------------------------------------------------------
def meta_path(path: str | Path) -> Path:
    """Sidecar metadata file of a pseudo-GT file: ``<file>.meta.json``."""
    return sidecar_path(path)


def config_hash(config: Any) -> str:
    """Short stable hash (sha256 of canonical JSON, 16 hex digits) of a JSON-able config, for ``meta``."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _common(values: Iterable[str]) -> str | list[str] | None:
    u = sorted(set(values))
    return u[0] if len(u) == 1 else (u or None)


def write_pseudo_gt(
    path: str | Path,
    records: Iterable[PseudoGT] | Mapping[str, PseudoGT],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``records`` atomically as release JSON (``.json``) or npz (``.npz``) plus ``<file>.meta.json``.

    ``meta`` (method, config_hash, ...) is merged over the defaults ``format``, ``format_version``,
    ``model``, ``part`` (a list when mixed), ``num_samples``, ``created`` (UTC ISO) and ``version``
    (neuralannot). Returns the path written.
    """
    from neuralannot import __version__

    path = Path(path)
    records = list(records.values() if isinstance(records, Mapping) else records)
    if not all(isinstance(r, PseudoGT) for r in records):
        raise PseudoGTError(f"{path}: records must be PseudoGT instances")
    ids = [r.sample_id for r in records]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise PseudoGTError(f"{path}: sample {dup!r} appears more than once")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json" and any(r.model == "mano" for r in records):  # sides share entries
            obj = _records_to_json(records)
            atomic_write_text(path, json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
        elif suffix == ".json":  # entry by entry: the same bytes without the whole file in memory
            with atomic_write(path, "w", encoding="utf-8") as f:
                for i, r in enumerate(records):
                    ((key, entry),) = _records_to_json([r]).items()
                    f.write(("," if i else "{") + json.dumps(key) + ":")
                    f.write(json.dumps(entry, separators=(",", ":"), allow_nan=False))
                f.write(("}" if records else "{}") + "\n")
        elif suffix == ".npz":
            arrays = _records_to_npz(records)
            with atomic_write(path, "wb") as f:
                np.savez(f, **arrays)
        else:
            raise PseudoGTError(f"unsupported pseudo-GT suffix {path.suffix!r}; use .json or .npz")
    except PseudoGTError as e:
        raise PseudoGTError(f"{path}: {e}") from None
    full = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model": _common(r.model for r in records), "part": _common(r.part for r in records),
        "num_samples": len(records),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "version": __version__,
        **dict(meta or {}),
    }
    write_sidecar(path, full)
    return path


def read_pseudo_gt(
    path: str | Path, as_dict: bool = False
) -> tuple[list[PseudoGT] | dict[str, PseudoGT], dict[str, Any]]:
    """Read a ``.json`` (ours or an original NeuralAnnot release file) or ``.npz`` pseudo-GT file.

    Returns ``(records, meta)``: a list in file order (or ``{id: record}`` with ``as_dict``) and the
    sidecar metadata (``{}`` when there is none, or when it describes other bytes than the file: an
    interrupted write). Raises :class:`PseudoGTError` naming the file and id.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npz"):
        raise PseudoGTError(f"{path}: unsupported pseudo-GT suffix {path.suffix!r}; use .json or .npz")
    if not path.is_file():
        raise PseudoGTError(f"{path}: no such file")
    records: list[PseudoGT] = []
    if suffix == ".json":
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise PseudoGTError(f"{path}: malformed JSON ({e})") from None
        if not isinstance(obj, dict):
            raise PseudoGTError(f"{path}: expected an object {{sample_id: entry}}, got {type(obj).__name__}")
        for key, entry in obj.items():
            try:
                records.extend(_entry_to_records(key, entry))
            except PseudoGTError as e:
                raise PseudoGTError(f"{path}: {e}") from None
            except ValueError as e:
                raise PseudoGTError(f"{path}: sample {key!r}: {e}") from None
    else:
        try:
            with np.load(path, allow_pickle=False) as f:
                z = {k: f[k] for k in f.files}
            records = _npz_to_records(z)
        except PseudoGTError as e:
            raise PseudoGTError(f"{path}: {e}") from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise PseudoGTError(f"{path}: not a pseudo-GT npz ({_msg(e)})") from None
    ids = [r.sample_id for r in records]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise PseudoGTError(f"{path}: sample {dup!r} appears more than once")
    try:
        meta = read_sidecar(path)
    except (json.JSONDecodeError, RecursionError) as e:
        raise PseudoGTError(f"{meta_path(path)}: malformed JSON ({e})") from None
    return ({r.sample_id: r for r in records} if as_dict else records), meta


def to_body_params(
    records: Iterable[PseudoGT] | Mapping[str, PseudoGT], model: Any = None
) -> dict[str, torch.Tensor]:
    """Stack records into batched tensors ``{name: (B, *shape)}`` ready for ``model(params)``.

    ``model`` is a :class:`~neuralannot.bodies.base.BodyModel` (its dtype/device; groups it lacks are
    an error, optional groups missing from some records get the spec default, shorter shape/expression
    vectors are zero-padded), a model name (``"smplx"``, ...) or ``None`` (float32 CPU; groups missing
    from some records are zero-filled).
    """
    records = list(records.values() if isinstance(records, Mapping) else records)
    if not records:
        raise PseudoGTError("to_body_params: no records")
    specs = getattr(model, "param_specs", None)
    name = getattr(model, "name", model)
    family = name.split("-")[0] if isinstance(name, str) else None
    bad = [r.sample_id for r in records if family is not None and r.model != family]
    if bad:
        raise PseudoGTError(f"to_body_params: samples {bad[:5]} are not {family} records")
    dtype = getattr(model, "dtype", torch.float32) if specs else torch.float32
    device = getattr(model, "device", "cpu") if specs else "cpu"
    groups = list(dict.fromkeys(k for r in records for k in r.params))
    out = {}
    for g in groups:
        if specs is not None and g not in specs:
            raise PseudoGTError(f"to_body_params: model {name} has no parameter {g!r}")
        spec = specs[g] if specs is not None else None
        shape = spec.shape if spec is not None else next(r.params[g].shape for r in records if g in r.params)
        fill = spec.default if spec is not None else 0.0
        batch = np.full((len(records), *shape), fill, dtype=np.float32)
        for i, r in enumerate(records):
            v = r.params.get(g)
            if v is None:
                if spec is not None and not spec.optional:
                    raise PseudoGTError(f"to_body_params: sample {r.sample_id!r} lacks required {g!r}")
            elif v.shape == tuple(shape):
                batch[i] = v
            elif spec is not None and spec.kind in ("shape", "expression") and v.ndim == len(shape) == 1 \
                    and v.shape[0] < shape[0]:
                batch[i] = 0.0
                batch[i, : v.shape[0]] = v
            else:
                raise PseudoGTError(
                    f"to_body_params: sample {r.sample_id!r} {g!r} has shape {v.shape}, want {tuple(shape)}"
                    + ("" if spec is not None else " (shapes differ between records; pass the body model)")
                )
        out[g] = torch.as_tensor(batch).to(device=device, dtype=dtype)
    return out


# ------------------------------------------------------------------------------------------------
# streaming / resumable
# ------------------------------------------------------------------------------------------------
def _part_files(directory: Path) -> list[Path]:
    """Complete chunk files ``part-NNNNN.jsonl`` in index order (temp files of a crash are ignored)."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _PART_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def _read_part(path: Path) -> Iterable[PseudoGT]:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise PseudoGTError(f"{path}:{lineno}: malformed JSON ({e})") from None
            try:
                yield PseudoGT.from_dict(d)
            except PseudoGTError as e:
                raise PseudoGTError(f"{path}:{lineno}: {e}") from None


class PartWriter:
    """Append records to ``directory`` as complete, atomically written ``part-NNNNN.jsonl`` chunks.

    Records are buffered and flushed every ``chunk_size`` records, on :meth:`flush` and on leaving the
    ``with`` block; a crash loses only the unflushed buffer (a stray temp file is ignored by readers).
    Reopening a directory continues the numbering and removes such temp files; ``meta`` is saved to
    ``directory/meta.json`` for :func:`merge_parts`. Use :func:`done_ids` (or :attr:`done`) to skip
    finished samples.
    """

    def __init__(self, directory: str | Path, chunk_size: int = 256, meta: Mapping[str, Any] | None = None):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        for tmp in self.directory.glob(".part-*.jsonl.*.tmp"):  # a chunk a killed run was writing
            tmp.unlink(missing_ok=True)
        self.chunk_size = chunk_size
        parts = _part_files(self.directory)
        self._next = int(_PART_RE.match(parts[-1].name).group(1)) + 1 if parts else 0
        self._buffer: list[PseudoGT] = []
        self.done: set[str] = done_ids(self.directory)
        if meta is not None:
            atomic_write_json(self.directory / "meta.json", dict(meta))

    def write(self, record: PseudoGT) -> None:
        """Buffer one record (flushing a full chunk)."""
        if not isinstance(record, PseudoGT):
            raise PseudoGTError(f"PartWriter.write expects a PseudoGT, got {type(record).__name__}")
        self._buffer.append(record)
        if len(self._buffer) >= self.chunk_size:
            self.flush()

    def flush(self) -> Path | None:
        """Write the buffered records as the next chunk file; returns its path (None if empty)."""
        if not self._buffer:
            return None
        path = self.directory / f"part-{self._next:05d}.jsonl"
        lines = [json.dumps(r.to_dict(), separators=(",", ":"), allow_nan=False) for r in self._buffer]
        atomic_write_text(path, "\n".join(lines) + "\n")
        self.done.update(r.sample_id for r in self._buffer)
        self._next += 1
        self._buffer = []
        return path

    close = flush

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.flush()


def done_ids(directory: str | Path) -> set[str]:
    """Ids of the samples already in complete chunk files of ``directory`` (empty if none)."""
    return {r.sample_id for p in _part_files(Path(directory)) for r in _read_part(p)}


def merge_parts(directory: str | Path, out_path: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Merge the chunk files of ``directory`` into ``out_path`` (.json/.npz) with every sample once.

    A sample found in several chunks is kept once if the copies are identical; differing copies raise
    :class:`PseudoGTError` naming the id and both files. ``meta`` defaults to ``directory/meta.json``.
    """
    directory = Path(directory)
    parts = _part_files(directory)
    if not parts:
        raise PseudoGTError(f"{directory}: no part-NNNNN.jsonl files to merge")
    merged: dict[str, PseudoGT] = {}
    source: dict[str, Path] = {}
    for p in parts:
        for r in _read_part(p):
            old = merged.get(r.sample_id)
            if old is None:
                merged[r.sample_id], source[r.sample_id] = r, p
            elif old != r:
                raise PseudoGTError(
                    f"sample {r.sample_id!r} differs between {source[r.sample_id]} and {p}; cannot merge"
                )
    if meta is None and (directory / "meta.json").is_file():
        try:
            meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise PseudoGTError(f"{directory / 'meta.json'}: malformed JSON ({e})") from None
    return write_pseudo_gt(out_path, list(merged.values()), meta)
