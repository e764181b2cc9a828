"""Read pickles and ``.npy``/``.npz`` object arrays without running code from the file.

A pickle can name any importable callable (``os.system``, ``builtins.eval``...) and have it called
while loading; since protocol 4 a name may also be dotted (``dtype.__class__...``) and walk from an
innocent module to a dangerous one. :class:`RestrictedUnpickler` resolves a global only by an exact
``(module, name)`` lookup in an explicit allow-list (no dotted names, no whole modules, no imports);
anything else raises :class:`UnsafePickleError`. Plain containers, strings and numbers need no
globals.

- :data:`NUMPY_GLOBALS`: what numpy arrays, dtypes and scalars pickle to (numpy 1 and 2 spellings,
  protocols 0-5) plus ``_codecs.encode`` for latin-1 (how protocol 0-2 pickles store bytes).
- :func:`safe_load` / :func:`safe_loads`: unpickle a file / bytes with an allow-list.
- :func:`load_npz`, :func:`load_npy`: ``np.load(allow_pickle=False)``; only object arrays go
  through the restricted unpickler.
"""

from __future__ import annotations

import codecs
import functools
import io
import os
import pickle
import zipfile
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np

__all__ = ["NUMPY_GLOBALS", "UnsafePickleError", "RestrictedUnpickler", "safe_load", "safe_loads",
           "load_npz", "load_npy", "UNPICKLE_ERRORS"]

Globals = Mapping[tuple[str, str], Any]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol 0-2 pickles use it for bytes: latin-1 only."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


@functools.cache
def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    out: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for pkg in ("numpy.core", "numpy._core"):
        out[(f"{pkg}.multiarray", "_reconstruct")] = multiarray._reconstruct
        out[(f"{pkg}.multiarray", "scalar")] = multiarray.scalar
        out[(f"{pkg}.numeric", "_frombuffer")] = numeric._frombuffer
    return out


class _NumpyGlobals(Mapping):
    """Lazy view of :func:`_numpy_globals` (importable at module load without touching numpy)."""

    def __getitem__(self, key):
        return _numpy_globals()[key]

    def __iter__(self):
        return iter(_numpy_globals())

    def __len__(self):
        return len(_numpy_globals())


#: The globals numpy arrays, dtypes and scalars need (exact ``(module, name)`` pairs).
NUMPY_GLOBALS: Globals = _NumpyGlobals()

#: Errors a malformed or refused pickle raises while loading (catch these to report the file).
UNPICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
                   IndexError, KeyError, MemoryError, OverflowError, RecursionError, UnicodeDecodeError)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only returns exact ``(module, name)`` allow-list entries."""

    def __init__(self, file: BinaryIO, allowed: Globals = NUMPY_GLOBALS, encoding: str = "latin1",
                 what: str = "numpy arrays"):
        super().__init__(file, encoding=encoding)
        self.allowed, self.what = allowed, what

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickleError(
                f"refusing to load global {module}.{name}: only {self.what} may be rebuilt from this file"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing a persistent id: not a plain data pickle")


def safe_loads(data: bytes, allowed: Globals = NUMPY_GLOBALS, encoding: str = "latin1",
               what: str = "numpy arrays") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), allowed, encoding, what).load()


def safe_load(path: str | os.PathLike, encoding: str = "latin1", allowed: Globals = NUMPY_GLOBALS,
              what: str = "numpy arrays") -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (``latin1`` reads Python 2 numpy pickles)."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f, allowed, encoding, what).load()


def _read_object_array(f: BinaryIO, allowed: Globals, encoding: str) -> Any:
    """The pickled payload of an object-dtype ``.npy`` stream (after its header), restricted."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        np.lib.format.read_array_header_1_0(f)
    else:
        np.lib.format.read_array_header_2_0(f)
    return RestrictedUnpickler(f, allowed, encoding).load()


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype == object \
        else value


def load_npy(path: str | os.PathLike, allowed: Globals = NUMPY_GLOBALS, encoding: str = "latin1") -> Any:
    """``np.load`` of a ``.npy`` without pickle; an object array is read with the restricted unpickler.

    A 0-d object array (``np.save(dict)``) comes back as its item.
    """
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise
    with open(path, "rb") as f:
        return _plain(_read_object_array(f, allowed, encoding))


def load_npz(path: str | os.PathLike, allowed: Globals = NUMPY_GLOBALS,
             encoding: str = "latin1") -> dict[str, Any]:
    """All members of an ``.npz`` (eagerly); object members go through the restricted unpickler.

    0-d object members (pickled dicts, as HumanData stores them) come back as their item.
    """
    out: dict[str, Any] = {}
    with np.load(path, allow_pickle=False) as z, zipfile.ZipFile(path) as zf:
        for key in z.files:
            try:
                value = z[key]
            except ValueError as e:  # an object array: needs (restricted) unpickling
                if "allow_pickle" not in str(e):
                    raise
                member = f"{key}.npy" if f"{key}.npy" in zf.namelist() else key
                with zf.open(member) as f:
                    value = _read_object_array(f, allowed, encoding)
            out[key] = _plain(value)
    return out
