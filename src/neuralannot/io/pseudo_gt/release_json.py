"""The NeuralAnnot release JSON layout: records ↔ ``{sample_id: entry}`` (see the package docstring)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from neuralannot.io.pseudo_gt.record import (
    _EYES,
    MODELS,
    PARAM_SHAPES,
    SIDES,
    PseudoGT,
    PseudoGTError,
    _floats,
    _msg,
)


# ------------------------------------------------------------------------------------------------
# names used by the Anny layout
# ------------------------------------------------------------------------------------------------
@functools.cache
def _anny_names() -> dict[str, list[str]]:
    from neuralannot.bodies.anny import BODY_SLOTS, FINGER_NAMES
    from neuralannot.bodies.specs import ANNY_FACIAL_ACTIONS, PHENOTYPES

    try:
        from anny.models.facial_actions import FACIAL_ACTION_LABELS
    except ImportError:  # pragma: no cover - anny is a dependency
        FACIAL_ACTION_LABELS = [f"action{i:02d}" for i in range(ANNY_FACIAL_ACTIONS)]
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
    whole = r.part == "wholebody"  # the SMPL-X release layout: every group, with *_valid flags
    for k in ("lhand_pose", "rhand_pose"):
        if k in p or whole:
            out[k] = _named(p.get(k, np.zeros((15, 3), np.float32)), names["finger"])
        if whole:
            out[f"{k[:5]}_valid"] = k in p
    if "eye_pose" in p:
        out["eye_pose"] = _named(p["eye_pose"], list(_EYES))
    if "expression" in p or whole:
        out["expression"] = _named(p.get("expression", np.zeros(len(names["expression"]), np.float32)),
                                   names["expression"])  # fmt: skip
    if whole:
        out["face_valid"] = "expression" in p
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
                 "eye_pose", "expression", "local_changes", "lhand_valid", "rhand_valid", "face_valid"},
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
            part = "wholebody"
            if b.get(f"{k[:5]}_valid", True):
                params[k] = _unnamed(b[k], names["finger"], k)
    if "eye_pose" in b:
        params["eye_pose"] = _unnamed(b["eye_pose"], list(_EYES), "eye_pose")
    if "expression" in b:
        part = "wholebody" if part == "body" else part
        if b.get("face_valid", True):
            params["expression"] = _unnamed(b["expression"], names["expression"], "expression")
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


# ------------------------------------------------------------------------------------------------
# npz
# ------------------------------------------------------------------------------------------------
