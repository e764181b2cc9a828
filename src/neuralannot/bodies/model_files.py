"""Read SMPL / SMPL-X / MANO / FLAME model files without running code from them.

Official ``.pkl`` model files are Python 2 pickles of a dict of numpy arrays, ``scipy.sparse``
matrices (SMPL's and MANO's ``J_regressor``) and ``chumpy`` arrays (``shapedirs``...). They are read
with :class:`~neuralannot.utils.safe_pickle.RestrictedUnpickler` and the exact allow-list
:data:`MODEL_GLOBALS`: numpy's array builders, *shims* standing in for ``chumpy.ch.Ch`` and the
``csc``/``csr``/``coo`` sparse matrix classes (they only store the pickled state; neither chumpy nor
scipy is imported), ``copyreg._reconstructor`` limited to those shims, and ``set``/``frozenset``/
``object``. Any other global, e.g. ``os.system``, raises
:class:`~neuralannot.utils.safe_pickle.UnsafePickleError`. After loading, a chumpy array becomes its
value ``x`` and a sparse matrix a dense numpy array, so chumpy is never needed. Any other
``chumpy.*`` class (an expression node, whose value only chumpy can compute) becomes an inert shim
too -- the name is compared, never imported or looked up -- and a key holding one is dropped (an
error says so if the model needs it).

``.npz`` files load with ``allow_pickle=False``; object members (e.g. SMPL-X's ``joint2num``) go
through the same restricted reader. FLAME's landmark embeddings (``flame_static_embedding.pkl``,
``flame_dynamic_embedding.npy``, DECA's ``landmark_embedding.npy``) too.

smplx's own loaders unpickle whatever file they are given, so :func:`write_clean_npz` stages the
cleaned arrays as a plain ``.npz`` (no object arrays) for the layers that read files themselves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neuralannot.utils.safe_pickle import NUMPY_GLOBALS, UnsafePickleError, load_npy, load_npz, safe_load

__all__ = ["MODEL_GLOBALS", "read_model_file", "write_clean_npz"]

log = logging.getLogger(__name__)
WHAT = "numpy arrays, scipy sparse matrices and chumpy arrays"


class _Shim:
    """Stand-in for a pickled class: keeps its state dict, runs nothing."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict state, slot state)
        if not isinstance(state, dict):
            raise UnsafePickleError(f"{type(self).__name__}: unexpected pickled state {type(state).__name__}")
        self.state = state


class _Chumpy(_Shim):
    """``chumpy.ch.Ch``: its value is the ``x`` of its state."""


class _ChumpyExpression(_Shim):
    """Any other chumpy class (an expression node): kept inert; a top-level key holding one is dropped."""


class _Sparse(_Shim):
    """A scipy sparse matrix; ``fmt`` is set per subclass."""

    fmt = ""


class _Csc(_Sparse):
    fmt = "csc"


class _Csr(_Sparse):
    fmt = "csr"


class _Coo(_Sparse):
    fmt = "coo"


_SHIMS = (_Chumpy, _ChumpyExpression, _Csc, _Csr, _Coo)
_DROP = object()  # a value that cannot be computed without chumpy


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` (protocol 0/1 pickles of objects), for the shims only."""
    if cls not in _SHIMS or base is not object or state is not None:
        raise UnsafePickleError(f"refusing copyreg._reconstructor({cls!r}, {base!r}, ...)")
    return cls.__new__(cls)


def _model_globals() -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = dict(NUMPY_GLOBALS.items())
    out[("chumpy.ch", "Ch")] = _Chumpy
    for fmt, shim in (("csc", _Csc), ("csr", _Csr), ("coo", _Coo)):
        for module in (f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}"):
            out[(module, f"{fmt}_matrix")] = shim
    for builtins in ("__builtin__", "builtins"):
        out.update({(builtins, "set"): set, (builtins, "frozenset"): frozenset, (builtins, "object"): object})
    for module in ("copy_reg", "copyreg"):
        out[(module, "_reconstructor")] = _reconstructor
    return out


class _ModelGlobals(Mapping):
    """The exact allow-list, plus: any ``chumpy.*`` class maps to an inert shim (nothing is imported or
    looked up: the names are only compared), so an unused chumpy expression does not block a file."""

    def __getitem__(self, key):
        found = _model_globals().get(key)
        if found is not None:
            return found
        module = key[0] if isinstance(key, tuple) and key and isinstance(key[0], str) else ""
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyExpression
        raise KeyError(key)

    def __iter__(self):
        return iter(_model_globals())

    def __len__(self):
        return len(_model_globals())


#: Exact ``(module, name)`` globals a model file may name (numpy + chumpy/scipy-sparse shims).
MODEL_GLOBALS: Mapping[tuple[str, str], Any] = _ModelGlobals()


def _dense(m: _Sparse) -> np.ndarray:
    s = m.state
    shape = tuple(int(d) for d in s.get("_shape", s.get("shape")))
    data = np.asarray(s["data"])
    out = np.zeros(shape, dtype=data.dtype)
    if m.fmt == "coo":
        np.add.at(out, (np.asarray(s["row"]), np.asarray(s["col"])), data)
        return out
    indptr, indices = np.asarray(s["indptr"]), np.asarray(s["indices"])
    major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    np.add.at(out, (indices, major) if m.fmt == "csc" else (major, indices), data)
    return out


def _clean(value: Any, depth: int = 0) -> Any:
    """Shims → numpy arrays, recursively through dicts, lists and tuples."""
    if depth > 50:
        raise ValueError("model file nests too deeply")
    if isinstance(value, _Chumpy | _ChumpyExpression):
        if "x" not in value.state:
            return _DROP
        x = _clean(value.state["x"], depth + 1)
        return _DROP if x is _DROP else np.asarray(x)
    if isinstance(value, _Sparse):
        return _dense(value)
    if isinstance(value, dict):
        out = {k: _clean(v, depth + 1) for k, v in value.items()}
        dropped = sorted(str(k) for k, v in out.items() if v is _DROP)
        if dropped:
            log.info("model file: dropped %s (chumpy expressions; only needed if reported missing)", dropped)
        return {k: v for k, v in out.items() if v is not _DROP}
    if isinstance(value, list | tuple):
        items = [_clean(v, depth + 1) for v in value]
        return _DROP if any(v is _DROP for v in items) else type(value)(items)
    if isinstance(value, np.ndarray) and value.dtype == object and value.size:
        items = [_clean(v, depth + 1) for v in value.ravel()]
        if any(v is _DROP for v in items):
            return _DROP
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out.reshape(value.shape)
    return value


def read_model_file(path: str | os.PathLike) -> Any:
    """A ``.pkl``/``.npz``/``.npy`` model or embedding file as plain Python/numpy data (restricted)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        data: Any = load_npz(path, MODEL_GLOBALS)
    elif suffix == ".npy":
        data = load_npy(path, MODEL_GLOBALS)
    else:
        data = safe_load(path, allowed=MODEL_GLOBALS, what=WHAT)
    data = _clean(data)
    if data is _DROP:
        raise ValueError("the file holds only chumpy expressions, which cannot be read without chumpy")
    return data


def write_clean_npz(data: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Save the numeric arrays of ``data`` as a plain ``.npz`` (no object arrays: loads without pickle)."""
    arrays = {}
    for key, value in data.items():
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            continue
        if arr.dtype != object:
            arrays[str(key)] = arr
    np.savez(path, **arrays)
    return Path(path)
