"""Kept import path: the atomic writers live in :mod:`neuralannot.utils.atomic`."""

from neuralannot.utils.atomic import (
    atomic_folder,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)

__all__ = ["atomic_folder", "atomic_write", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]
