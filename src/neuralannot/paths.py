"""Where neuralannot keeps caches and looks for user-supplied model files (one place, documented order).

- ``NEURALANNOT_CACHE`` (default ``~/.cache/neuralannot``): our caches.
- ``ANNY_CACHE_DIR`` (default ``$NEURALANNOT_CACHE/anny``): Anny's ~0.8 GB build cache. It lives outside
  any clone so later runs and CI reuse it.
- ``NEURALANNOT_MODELS``: folder with ``smpl/``, ``smplx/``, ``mano/``, ``flame/`` for license-gated models.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("NEURALANNOT_CACHE", Path.home() / ".cache" / "neuralannot")).expanduser()


def anny_cache_dir() -> Path:
    return Path(os.environ.get("ANNY_CACHE_DIR", cache_dir() / "anny")).expanduser()


def models_dir() -> Path | None:
    value = os.environ.get("NEURALANNOT_MODELS")
    return Path(value).expanduser() if value else None
