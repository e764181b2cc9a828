"""Kept import path: the weights-only torch-file reader lives in :mod:`neuralannot.utils.checkpoint`."""

from neuralannot.utils.checkpoint import CheckpointError, read_checkpoint

__all__ = ["CheckpointError", "read_checkpoint"]
