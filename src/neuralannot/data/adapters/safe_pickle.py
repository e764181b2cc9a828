"""Load numpy-only pickles (e.g. the 3DPW sequence files) without running code from the file.

A pickle can name any importable callable (``os.system``...) and have it called while loading.
:class:`RestrictedUnpickler` resolves only the few globals needed to rebuild numpy arrays
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype`` and their
``numpy._core`` spellings); any other global raises :class:`UnsafePickleError`. Plain containers,
strings and numbers need no globals. Python 2 pickles load with ``encoding="latin1"``.
"""

from __future__ import annotations

import functools
import os
import pickle
from typing import Any

import numpy as np

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "safe_load"]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the numpy-array allow-list."""


@functools.cache
def _allowed() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    out: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(module, "_reconstruct")] = multiarray._reconstruct
    return out


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only returns the numpy array builders."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _allowed()[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name}: only numpy arrays "
                f"({', '.join(f'{m}.{n}' for m, n in _allowed())}) may be rebuilt from this file"
            ) from None


def safe_load(path: str | os.PathLike, encoding: str = "latin1") -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (``latin1`` reads Python 2 numpy pickles)."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f, encoding=encoding).load()
