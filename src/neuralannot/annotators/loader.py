"""The annotator's DataLoaders: built once per run, persistent workers, pinned memory on CUDA.

Items carry uint8 crops (from the disk crop cache, ``data/crop_cache.py``, when ``crop_cache`` is
not ``off``); the float conversion and normalisation run batched on the training device
(``Backbone.normalize``). The data pipeline has no random augmentation.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def crop_cache_dir(crop_cache: str, work_dir: str | Path | None) -> Path | None:
    """Folder of the crop cache for config value ``crop_cache`` (``auto`` | ``off`` | a folder).

    ``auto``: ``crops/`` beside the run folder ``work_dir``, i.e. ``<--work-dir>/crops``, shared by
    the runs and predictions of every config there; None without a ``work_dir`` (no cache).
    """
    if crop_cache == "off":
        return None
    if crop_cache == "auto":
        return None if work_dir is None else Path(work_dir).parent / "crops"
    return Path(crop_cache).expanduser()


def loader_options(num_workers: int, device: torch.device) -> dict:
    """DataLoader keywords: persistent workers when there are workers, pinned batches for CUDA."""
    return {
        "num_workers": num_workers,
        "persistent_workers": num_workers > 0,
        "pin_memory": torch.device(device).type == "cuda",
    }


class EpochBatches(Sampler[list[int]]):
    """Batch sampler of a DataLoader built once: each pass yields the batches last :meth:`set`.

    The DataLoader iterates its batch sampler in the main process at the start of every pass, so
    persistent workers receive each epoch's (or a resumed epoch's remaining) batches.
    """

    def __init__(self, batches: list[list[int]] | None = None):
        self.batches = list(batches or [])

    def set(self, batches: list[list[int]]) -> EpochBatches:
        self.batches = list(batches)
        return self

    def __iter__(self):
        return iter(list(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


def epoch_loader(dataset: Dataset, num_workers: int, device: torch.device, seed: int) -> DataLoader:
    """The training DataLoader, built once; set each epoch's batches on its ``batch_sampler``.

    Its own seeded generator draws the workers' base seed, so the loader leaves the global RNG alone
    however often it is iterated.
    """
    return DataLoader(
        dataset,
        batch_sampler=EpochBatches(),
        generator=torch.Generator().manual_seed(seed),
        **loader_options(num_workers, device),
    )
