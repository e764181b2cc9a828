"""Convert pseudo-GT files between the NeuralAnnot release JSON, our compact npz and HumanData npz.

:func:`export` reads any of the three (``.json``; ``.npz`` is told apart by its keys) and writes one.
JSON and compact npz are :mod:`neuralannot.io.pseudo_gt`'s formats. **HumanData** is the layout of
mmhuman3d's ``HumanData.dump`` (loadable with ``HumanData.fromfile``); keys (N = number of records):

- ``__key_strict__`` (bool: True when only mmhuman3d's keys are used), ``__data_len__`` (N),
  ``__keypoints_compressed__`` (False), ``config`` (``"neuralannot"``).
- ``smpl``: ``{global_orient (N, 3), body_pose (N, 23, 3), betas (N, n), transl (N, 3)}``;
  ``smplx``: the same with ``body_pose (N, 21, 3)``, ``left_hand_pose``/``right_hand_pose (N, 15, 3)``,
  ``jaw_pose``, ``leye_pose``, ``reye_pose (N, 3)``, ``expression (N, m)`` — mmhuman3d's names.
- **Our extensions**: ``anny`` keyed by Anny's parameter names (``root_pose``, ``body_pose``,
  ``hand_pose``, ``head_pose``, ``lhand_pose``, ``rhand_pose``, ``eye_pose``, ``expression``,
  ``phenotype``, ``local_changes``, ``trans``); ``mano`` ``{global_orient, hand_pose, betas, transl}``;
  ``flame`` ``{global_orient, neck_pose, jaw_pose, eye_pose (N, 2, 3), betas, expression, transl}``.
  Rows of another model, or lacking a group, are zeros (see ``misc["valid"]``).
- ``meta``: ``{"gender": [N] ("neutral" unless the pseudo-GT metadata says otherwise),
  "neuralannot_meta": the pseudo-GT sidecar metadata as JSON}``.
- ``misc`` (ours): ``sample_id``, ``model``, ``part``, ``side`` (N,) str; ``cam_focal``, ``cam_princpt``
  (N, 2) and ``cam_valid`` (N,); ``quality_json`` (N,) str; ``valid`` ``{"<model>.<key>": (N,) bool}``
  for the groups some rows lack.
- With the dataset's samples: ``image_path`` (relative to the dataset folder when inside it),
  ``bbox_xywh`` (N, 5; score 1, 0 without sample), ``keypoints2d`` (N, J, 3), ``keypoints3d``
  (N, J, 4), their ``*_mask`` (J,) and ``*_convention`` (our joint-set name, e.g. ``h36m17``).

Dicts are stored as pickled 0-d object arrays (as mmhuman3d does). Reading never uses numpy's
pickle: plain arrays load with ``allow_pickle=False``, object arrays with
:mod:`neuralannot.utils.safe_pickle`'s restricted unpickler (exact allow-list of numpy's array, dtype
and scalar builders; no dotted names), so a crafted file cannot run code.
HumanData files written by mmhuman3d (no ``misc``) read as ``smplx``
(else ``smpl``) records with ids from ``image_path`` (else the row number).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuralannot.data.fingerprint import other_samples
from neuralannot.io.pseudo_gt import PARAM_SHAPES, PseudoGT, PseudoGTError, read_pseudo_gt, write_pseudo_gt
from neuralannot.utils.atomic import atomic_write
from neuralannot.utils.safe_pickle import UNPICKLE_ERRORS, load_npz

__all__ = ["FORMATS", "HUMANDATA_NAMES", "export", "read_any", "read_humandata", "write_humandata"]

FORMATS = ("json", "npz", "humandata")

_IDENTITY = {k: k for k in PARAM_SHAPES["anny"]}
#: Our parameter name → HumanData key, per model.
HUMANDATA_NAMES: dict[str, dict[str, str]] = {
    "smpl": {"root_pose": "global_orient", "body_pose": "body_pose", "shape": "betas", "trans": "transl"},
    "smplx": {
        "root_pose": "global_orient", "body_pose": "body_pose", "lhand_pose": "left_hand_pose",
        "rhand_pose": "right_hand_pose", "jaw_pose": "jaw_pose", "leye_pose": "leye_pose",
        "reye_pose": "reye_pose", "shape": "betas", "expr": "expression", "trans": "transl",
    },
    "mano": {"root_pose": "global_orient", "hand_pose": "hand_pose", "shape": "betas", "trans": "transl"},
    "flame": {
        "root_pose": "global_orient", "neck_pose": "neck_pose", "jaw_pose": "jaw_pose",
        "eye_pose": "eye_pose", "shape": "betas", "expr": "expression", "trans": "transl",
    },
    "anny": _IDENTITY,
}  # fmt: skip
_DEFAULT_PART = {"smpl": "body", "smplx": "wholebody"}
_MARKERS = ("__data_len__", "__temporal_len__", "__key_strict__", "smpl", "smplx", "anny")


# ------------------------------------------------------------------------------------------------
# write
# ------------------------------------------------------------------------------------------------
def _model_dict(records: list[PseudoGT], model: str, valid: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n = len(records)
    out = {}
    for name, key in HUMANDATA_NAMES[model].items():
        have = np.array([r.model == model and name in r.params for r in records])
        if not have.any():
            continue
        shapes = {r.params[name].shape for r, h in zip(records, have, strict=True) if h}
        if len(shapes) > 1:
            raise PseudoGTError(f"{model} parameter {name!r} has shapes {sorted(shapes)}; cannot stack")
        arr = np.zeros((n, *shapes.pop()), np.float32)
        for i in np.flatnonzero(have):
            arr[i] = records[i].params[name]
        out[key] = arr
        if not have.all():
            valid[f"{model}.{key}"] = have
    return out


def _sample_arrays(records: list[PseudoGT], samples: Mapping[str, Any], root: Path | None) -> dict[str, Any]:
    """image_path, bbox_xywh and keypoints of the samples matching the records (by id)."""
    found = [samples.get(r.sample_id) for r in records]
    sets = {s.joint_set for s in found if s is not None}
    if len(sets) > 1:
        raise PseudoGTError(f"samples use several joint sets {sorted(sets)}; export them separately")
    n = len(records)
    bbox = np.zeros((n, 5), np.float32)
    paths = []
    for i, s in enumerate(found):
        if s is not None:
            bbox[i, :4], bbox[i, 4] = s.bbox, 1.0
        paths.append(_relative(s.image, root) if s is not None and s.image else "")
    out: dict[str, Any] = {"image_path": paths, "bbox_xywh": bbox}
    if not sets:
        return out
    joint_set = sets.pop()
    num = next(len(s.joints_2d) for s in found if s is not None)
    kp2 = np.zeros((n, num, 3), np.float32)
    kp3 = np.zeros((n, num, 4), np.float32)
    for i, s in enumerate(found):
        if s is not None:
            kp2[i] = s.joints_2d
            if s.joints_3d is not None:
                kp3[i] = s.joints_3d
    out.update(keypoints2d=kp2, keypoints2d_mask=np.ones(num, np.uint8), keypoints2d_convention=joint_set)
    if any(s is not None and s.joints_3d is not None for s in found):
        out.update(keypoints3d=kp3, keypoints3d_mask=np.ones(num, np.uint8), keypoints3d_convention=joint_set)
    return out


def _relative(image: str, root: Path | None) -> str:
    if root is None:
        return str(image)
    try:
        return str(Path(image).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(image)


def humandata_arrays(
    records: Sequence[PseudoGT],
    meta: Mapping[str, Any] | None = None,
    samples: Mapping[str, Any] | None = None,
    data_root: str | Path | None = None,
) -> dict[str, Any]:
    """The HumanData dict of ``records`` (see the module docstring); ``samples`` maps id → Sample."""
    records = list(records)
    if not records:
        raise PseudoGTError("no records to export")
    valid: dict[str, np.ndarray] = {}
    models = list(dict.fromkeys(r.model for r in records))
    cams = [r.camera for r in records]
    gender = str((meta or {}).get("gender", "neutral"))
    out: dict[str, Any] = {
        "__key_strict__": all(m in ("smpl", "smplx") for m in models),
        "__data_len__": len(records),
        "__keypoints_compressed__": False,
        "config": "neuralannot",
    }
    for m in models:
        out[m] = _model_dict(records, m, valid)
    out["meta"] = {"gender": [gender] * len(records), "neuralannot_meta": json.dumps(dict(meta or {}))}
    out["misc"] = {
        "sample_id": np.array([r.sample_id for r in records], dtype=str),
        "model": np.array([r.model for r in records], dtype=str),
        "part": np.array([r.part for r in records], dtype=str),
        "side": np.array([r.side or "" for r in records], dtype=str),
        "cam_valid": np.array([c is not None for c in cams]),
        "cam_focal": np.array([c["focal"] if c else [0.0, 0.0] for c in cams], np.float64),
        "cam_princpt": np.array([c["princpt"] if c else [0.0, 0.0] for c in cams], np.float64),
        "quality_json": np.array([json.dumps(r.quality) for r in records], dtype=str),
        "valid": valid,
    }
    if samples is not None:
        out.update(_sample_arrays(records, samples, Path(data_root) if data_root else None))
    return out


def write_humandata(path: str | Path, records: Sequence[PseudoGT], meta: Mapping[str, Any] | None = None,
                    samples: Mapping[str, Any] | None = None, data_root: str | Path | None = None) -> Path:
    """Write ``records`` atomically as a compressed HumanData ``.npz``; returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise PseudoGTError(f"{path}: a HumanData file must end with .npz")
    try:
        arrays = humandata_arrays(records, meta, samples, data_root)
    except PseudoGTError as e:
        raise PseudoGTError(f"{path}: {e}") from None
    with atomic_write(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


# ------------------------------------------------------------------------------------------------
# read
# ------------------------------------------------------------------------------------------------
def load_npz_members(path: Path) -> dict[str, Any]:
    """All members of an npz, read without pickle: 0-d arrays as Python values; object arrays
    (HumanData's dicts) through :mod:`neuralannot.utils.safe_pickle` (exact numpy allow-list)."""
    return {k: v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v
            for k, v in load_npz(path).items()}


def is_humandata(members: Mapping[str, Any]) -> bool:
    """Whether npz members look like a HumanData dump (rather than our compact pseudo-GT npz)."""
    return "ids" not in members and any(k in members for k in _MARKERS)


def _str(v: Any) -> str:
    return str(v.item() if isinstance(v, np.ndarray) else v)


def humandata_to_records(z: Mapping[str, Any]) -> tuple[list[PseudoGT], dict[str, Any]]:
    """HumanData members → (records, sidecar meta). Raises PseudoGTError/ValueError/KeyError."""
    misc = z.get("misc") if isinstance(z.get("misc"), Mapping) else {}
    meta_obj = z.get("meta") if isinstance(z.get("meta"), Mapping) else {}
    if "sample_id" in misc:
        ids = [str(x) for x in misc["sample_id"]]
        models, parts = [str(x) for x in misc["model"]], [str(x) for x in misc["part"]]
        sides = [str(x) or None for x in misc["side"]]
    else:  # a HumanData file from elsewhere: one SMPL-family model
        model = "smplx" if isinstance(z.get("smplx"), Mapping) else "smpl"
        if not isinstance(z.get(model), Mapping):
            raise PseudoGTError("no 'smpl', 'smplx' or 'anny' parameters found")
        n = int(z.get("__data_len__", z.get("__temporal_len__", -1)))
        n = n if n >= 0 else len(z[model]["global_orient"])
        paths = [str(p) for p in z.get("image_path", [])]
        ids = paths if len(paths) == n and len(set(paths)) == n else [f"{i:06d}" for i in range(n)]
        models, parts, sides = [model] * n, [_DEFAULT_PART[model]] * n, [None] * n
    n = len(ids)
    valid = misc.get("valid", {})
    cam_ok = np.asarray(misc.get("cam_valid", np.zeros(n, bool)), bool)
    quality = [json.loads(str(q)) for q in misc.get("quality_json", ["{}"] * n)]
    records = []
    for i, sid in enumerate(ids):
        m = models[i]
        block = z.get(m)
        if not isinstance(block, Mapping):
            raise PseudoGTError(f"sample {sid!r}: no {m!r} parameters in the file")
        params = {}
        for name, key in HUMANDATA_NAMES[m].items():
            if key not in block:
                continue
            arr = np.asarray(block[key], np.float32)
            if len(arr) != n:
                raise ValueError(f"{m}[{key!r}] has {len(arr)} rows, expected {n}")
            mask = valid.get(f"{m}.{key}")
            if mask is None or bool(mask[i]):
                params[name] = arr[i].reshape(PARAM_SHAPES[m][name] or (-1,))
        cam = None
        if cam_ok.size and cam_ok[i]:
            cam = {"focal": [float(x) for x in misc["cam_focal"][i]],
                   "princpt": [float(x) for x in misc["cam_princpt"][i]]}  # fmt: skip
        records.append(PseudoGT(sid, m, parts[i], params, cam, quality[i], sides[i]))
    meta = json.loads(_str(meta_obj["neuralannot_meta"])) if "neuralannot_meta" in meta_obj else {}
    return records, meta


def read_humandata(path: str | Path) -> tuple[list[PseudoGT], dict[str, Any]]:
    """Read a HumanData ``.npz`` into pseudo-GT records and metadata; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise PseudoGTError(f"{path}: no such file")
    try:
        members = load_npz_members(path)
        if not is_humandata(members):
            raise PseudoGTError("not a HumanData npz (no smpl/smplx/anny or __data_len__ keys)")
        return humandata_to_records(members)
    except PseudoGTError as e:
        raise PseudoGTError(f"{path}: {e}") from None
    except (OSError, zipfile.BadZipFile, *UNPICKLE_ERRORS) as e:  # JSONDecodeError is a ValueError
        raise PseudoGTError(f"{path}: not a readable HumanData npz ({type(e).__name__}: {e})") from None


# ------------------------------------------------------------------------------------------------
# any format → any format
# ------------------------------------------------------------------------------------------------
def read_any(path: str | Path) -> tuple[list[PseudoGT], dict[str, Any]]:
    """Read release JSON, our compact npz or a HumanData npz; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise PseudoGTError(f"{path}: no such file")
    if path.suffix.lower() == ".npz":
        try:
            with zipfile.ZipFile(path) as zf:
                ours = "ids.npy" in zf.namelist()
        except (OSError, zipfile.BadZipFile) as e:
            raise PseudoGTError(f"{path}: not an npz file ({e})") from None
        if not ours:
            return read_humandata(path)
    records, meta = read_pseudo_gt(path)
    return list(records), meta


def export(
    pred: str | Path,
    to: str,
    out: str | Path,
    samples: Mapping[str, Any] | None = None,
    data_root: str | Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[Path, int]:
    """Convert ``pred`` to format ``to`` (:data:`FORMATS`) at ``out``; returns (path, records written).

    ``samples`` (id → Sample) adds image paths, boxes and keypoints to HumanData output; ``warn`` gets
    the one-line warning of :func:`~neuralannot.data.fingerprint.other_samples` when ``pred`` was made
    from other samples with the same ids.
    """
    if to not in FORMATS:
        raise PseudoGTError(f"unknown export format {to!r}; expected one of {', '.join(FORMATS)}")
    out = Path(out)
    want = ".json" if to == "json" else ".npz"
    if out.suffix.lower() != want:
        raise PseudoGTError(f"{out}: --to {to} writes a {want} file; change the output name")
    records, meta = read_any(pred)
    if samples is not None and warn is not None:
        warning = other_samples(meta, [r.sample_id for r in records], samples.values())
        if warning:
            warn(warning)
    if to == "humandata":
        write_humandata(out, records, meta, samples, data_root)
    else:
        write_pseudo_gt(out, records, meta)
    return out, len(records)
