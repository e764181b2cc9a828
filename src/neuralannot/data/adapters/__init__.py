"""Dataset adapters: turn on-disk annotation formats into streams of :class:`~neuralannot.data.Sample`.

:func:`load_any` reads the folder format and the official layouts of Human3.6M, MPI-INF-3DHP, 3DPW,
COCO, COCO-WholeBody, FreiHAND and InterHand2.6M (:func:`detect_format` picks the format).
"""

from neuralannot.data.adapters.folder import (
    DatasetFormatError,
    FolderDataset,
    ShardWriter,
    SkipReport,
    list_sources,
    load_dataset,
)
from neuralannot.data.adapters.registry import FORMATS, detect_format, load_any

__all__ = [
    "FORMATS",
    "DatasetFormatError",
    "FolderDataset",
    "ShardWriter",
    "SkipReport",
    "detect_format",
    "list_sources",
    "load_any",
    "load_dataset",
]
