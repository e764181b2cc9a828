"""The compact npz layout: records ↔ column arrays (see the package docstring)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import numpy as np

from neuralannot.io.pseudo_gt.record import PseudoGT, PseudoGTError, _msg


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
