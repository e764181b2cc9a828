"""Load numpy-only pickles (e.g. the 3DPW sequence files) without running code from the file.

The restricted unpickler lives in :mod:`neuralannot.utils.safe_pickle` (exact allow-list of numpy's
array/dtype/scalar builders, no dotted names); this module keeps the adapters' import path.
"""

from neuralannot.utils.safe_pickle import RestrictedUnpickler, UnsafePickleError, safe_load

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "safe_load"]
