"""Kept import path: the record builder lives in :mod:`neuralannot.io.records`."""

from neuralannot.io.records import (
    CONF_SCALE_BOX,
    CONF_SCALE_MM,
    HAND_SIDE,
    build_record,
    error_quality,
    mark_unmeasured,
    mirror_to_left,
    model_key,
    sample_camera,
)

__all__ = [
    "CONF_SCALE_BOX", "CONF_SCALE_MM", "HAND_SIDE", "build_record", "error_quality", "mark_unmeasured",
    "mirror_to_left", "model_key", "sample_camera",
]
