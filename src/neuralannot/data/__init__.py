"""Samples, dataset adapters and image/keypoint transforms.

``Sample`` is the one record every adapter yields; ``load_dataset`` streams the folder format.
"""

from neuralannot.data.adapters.folder import (
    DatasetFormatError,
    FolderDataset,
    ShardWriter,
    SkipReport,
    load_dataset,
)
from neuralannot.data.sample import PARTS, Sample, SampleError

__all__ = [
    "PARTS",
    "Sample",
    "SampleError",
    "DatasetFormatError",
    "FolderDataset",
    "ShardWriter",
    "SkipReport",
    "load_dataset",
]
