"""Kept import path: the restricted unpickler lives in :mod:`neuralannot.utils.safe_pickle`."""

from neuralannot.utils.safe_pickle import (
    NUMPY_GLOBALS,
    UNPICKLE_ERRORS,
    RestrictedUnpickler,
    UnsafePickleError,
    load_npy,
    load_npz,
    safe_load,
    safe_loads,
)

__all__ = ["NUMPY_GLOBALS", "UnsafePickleError", "RestrictedUnpickler", "safe_load", "safe_loads",
           "load_npz", "load_npy", "UNPICKLE_ERRORS"]
