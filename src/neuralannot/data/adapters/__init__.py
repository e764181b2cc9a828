"""Dataset adapters: turn on-disk annotation formats into streams of :class:`~neuralannot.data.Sample`."""

from neuralannot.data.adapters.folder import (
    DatasetFormatError,
    FolderDataset,
    ShardWriter,
    SkipReport,
    list_sources,
    load_dataset,
)

__all__ = ["DatasetFormatError", "FolderDataset", "ShardWriter", "SkipReport", "list_sources", "load_dataset"]
