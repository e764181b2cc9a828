"""Writing and reading pseudo-GT files (JSON or npz, with the sidecar meta) and records → model params."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralannot.io.pseudo_gt.npz import _npz_to_records, _records_to_npz
from neuralannot.io.pseudo_gt.record import FORMAT, FORMAT_VERSION, PseudoGT, PseudoGTError, _msg
from neuralannot.io.pseudo_gt.release_json import _entry_to_records, _records_to_json
from neuralannot.io.sidecar import read_sidecar, sidecar_path, write_sidecar
from neuralannot.utils.atomic import atomic_write, atomic_write_text


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


#: the file suffixes a pseudo-GT file may have (release JSON or compact npz)
SUFFIXES = (".json", ".npz")


def check_pseudo_gt_suffix(path: str | Path) -> Path:
    """``path`` if its suffix is one of :data:`SUFFIXES`, else :class:`PseudoGTError` naming it (the CLI
    checks ``--out`` with this before any compute)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise PseudoGTError(f"{path}: unsupported pseudo-GT suffix {path.suffix!r}; use .json or .npz")
    return path


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

    path = check_pseudo_gt_suffix(path)
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
        else:
            arrays = _records_to_npz(records)
            with atomic_write(path, "wb") as f:
                np.savez(f, **arrays)
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
    path = check_pseudo_gt_suffix(path)
    suffix = path.suffix.lower()
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
