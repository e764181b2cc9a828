"""Decoded crops cached once on disk: a uint8 ``(N, S, S, 3)`` ``.npy`` memory map shared by the workers.

The deterministic part of an item, the image decoded, warped by its crop affine to ``S`` px and
mirrored for left hands (:func:`render_crop`), is written once into ``<folder>/<key>.npy`` with an
index ``<key>.json`` (row checksums). ``key`` digests what determines the pixels: each sample's id,
image path, byte size, mtime, declared size, box and flip, the crop size and rule, and
:data:`CACHE_VERSION`. Later runs (training and prediction) with the same key reuse the file; the
DataLoader workers open it read-only (``mmap_mode='r'``), so they share the page cache.

Building writes ``.<key>.npy.partial``, committing its progress every :data:`COMMIT_ROWS` rows, so a
killed build resumes; the file is fsynced and renamed into place, then the index is written
atomically. A cache whose index, size or row checksums do not match is rebuilt with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from neuralannot.data.sample import Sample, SampleError
from neuralannot.data.transforms import crop_affine, load_image, warp_affine
from neuralannot.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)

#: Bump when :func:`render_crop` changes its pixels (warp, flip, crop rule): old caches are not reused.
CACHE_VERSION = 1
#: The crop rule of every item: the GT box, unscaled, padded to a square; left hands are mirrored.
CROP_SCALE, CROP_ASPECT = 1.0, "keep"
#: Rows written between two durable progress marks of a build.
COMMIT_ROWS = 1024
_RENDER_BATCH = 16


def sample_affine(s: Sample, size: int) -> np.ndarray:
    """The (2, 3) affine from ``s``'s image to its ``size`` px crop."""
    return crop_affine(s.bbox, (size, size), scale=CROP_SCALE, aspect=CROP_ASPECT)


def crop_centre(s: Sample) -> np.ndarray:
    """(2,) float64: the image pixel at the centre of ``s``'s crop (its box centre); for a left hand,
    mirrored about the principal point, as its crop is (the crop's virtual camera looks along the ray
    of this pixel: :func:`~neuralannot.geometry.ray_rotation`)."""
    x0, y0, w, h = (float(v) for v in s.bbox)
    centre = np.array([x0 + w / 2, y0 + h / 2])
    if flips(s):
        centre[0] = 2.0 * float(np.asarray(s.K)[0, 2]) - centre[0]
    return centre


def flips(s: Sample) -> bool:
    """Left hands are mirrored into right hands (the networks see right hands only)."""
    return s.part == "lhand"


def render_crop(s: Sample, size: int) -> np.ndarray:
    """The crop of ``s`` as the network sees it: uint8 ``(size, size, 3)`` (a writable array of its
    own), mirrored for left hands."""
    if s.image is None:
        raise SampleError("image-based input but the sample has no image", s.id, kind="image")
    crop = warp_affine(load_image(s.image, s.id, s.image_size), sample_affine(s, size), (size, size))
    return np.array(crop[:, ::-1] if flips(s) else crop, order="C")


def crop_key(samples: Sequence[Sample], size: int) -> str:
    """Digest (20 hex) of everything that determines the crops of ``samples`` at ``size`` px, in order."""
    h = hashlib.sha256(json.dumps(["crops", CACHE_VERSION, int(size), CROP_SCALE, CROP_ASPECT]).encode())
    for s in samples:
        try:
            st = os.stat(s.image)
            stamp = [st.st_size, st.st_mtime_ns]
        except (OSError, TypeError):
            stamp = None
        bbox = [float(v) for v in s.bbox]
        h.update(json.dumps([s.id, str(s.image), stamp, s.image_size, bbox, flips(s)], default=list).encode())
    return h.hexdigest()[:20]


def row_crc(rows: np.ndarray) -> list[int]:
    """CRC-32 of each row of a uint8 array (the checksums of the index)."""
    return [zlib.crc32(np.ascontiguousarray(r).data) for r in rows]


def open_crops(path: str | os.PathLike) -> np.ndarray:
    """The cached crops, read-only and memory-mapped: ``(N, S, S, 3)`` uint8."""
    return np.load(path, mmap_mode="r")


class _Renders(Dataset):
    """``render_crop`` of samples ``start, start + 1, ...`` (the build runs it in DataLoader workers)."""

    def __init__(self, samples: Sequence[Sample], size: int):
        self.samples, self.size = samples, size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(render_crop(self.samples[i], self.size))


def check_crop_cache(npy: Path, index: Path, key: str, n: int, size: int) -> str | None:
    """Why the cache at ``npy``/``index`` cannot be used (None: it is complete and intact)."""
    try:
        meta = json.loads(index.read_text())
        crcs = meta["crc32"]
        if (meta["key"], meta["version"], meta["n"], meta["size"]) != (key, CACHE_VERSION, n, size):
            return "its index belongs to other crops"
        crops = open_crops(npy)
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"unreadable ({type(err).__name__}: {err})"
    if crops.shape != (n, size, size, 3) or crops.dtype != np.uint8 or len(crcs) != n:
        return f"shape {crops.shape} {crops.dtype}, expected ({n}, {size}, {size}, 3) uint8"
    if npy.stat().st_size != crops.offset + crops.nbytes:
        return f"{npy.stat().st_size} bytes, expected {crops.offset + crops.nbytes}"
    for start in range(0, n, COMMIT_ROWS):
        stop = start + COMMIT_ROWS
        bad = np.flatnonzero(np.asarray(row_crc(crops[start:stop])) != np.asarray(crcs[start:stop]))
        if len(bad):
            return f"row {start + int(bad[0])} does not match its checksum"
    return None


def _resume_point(partial: Path, progress: Path, key: str, shape: tuple) -> tuple[np.ndarray, list[int]]:
    """The partial file opened for writing and the checksums of its committed rows (none: start over)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        mark = json.loads(progress.read_text())
        if mark["key"] == key:
            rows = np.lib.format.open_memmap(partial, mode="r+")
            if rows.shape == shape and rows.dtype == np.uint8:
                return rows, row_crc(rows[: int(mark["done"])])
    progress.unlink(missing_ok=True)
    return np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape), []


def _build(samples: Sequence[Sample], size: int, npy: Path, index: Path, key: str, workers: int,
           progress: bool) -> None:  # fmt: skip
    partial, mark = npy.with_name(f".{npy.name}.partial"), npy.with_name(f".{key}.progress.json")
    rows, crcs = _resume_point(partial, mark, key, (len(samples), size, size, 3))
    done = len(crcs)
    if done:
        log.info("crop cache: resuming the build of %s at %d/%d", npy.name, done, len(samples))
    loader = DataLoader(_Renders(samples[done:], size), batch_size=_RENDER_BATCH, num_workers=workers)
    with tqdm(total=len(samples), initial=done, desc="crop cache", unit="crop", disable=not progress,
              leave=False) as bar:  # fmt: skip
        for batch in loader:
            block = batch.numpy()
            rows[done : done + len(block)] = block
            crcs += row_crc(block)
            done += len(block)
            bar.update(len(block))
            if done % COMMIT_ROWS < len(block) and done < len(samples):
                rows.flush()  # msync: the committed rows are on disk before the mark says so
                atomic_write_json(mark, {"key": key, "done": done}, indent=None)
    rows.flush()
    del rows
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, npy)
    atomic_write_json(index, {"key": key, "version": CACHE_VERSION, "n": len(samples), "size": size,
                              "ids": [s.id for s in samples], "crc32": crcs}, indent=None)  # fmt: skip
    mark.unlink(missing_ok=True)


def ensure_crop_cache(
    samples: Sequence[Sample], size: int, folder: str | os.PathLike, workers: int = 0, progress: bool = True
) -> Path | None:
    """The ``.npy`` crop cache of ``samples`` at ``size`` px in ``folder``, built first when missing.

    A stale, truncated or corrupt cache is rebuilt with a warning. Concurrent callers (DDP ranks, two
    runs) wait on a file lock while one builds. Returns None, with a warning, when the free disk
    space is short, and when a sample has no image (the caller then reads images per item).
    """
    if not samples or any(s.image is None for s in samples):
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = crop_key(samples, size)
    npy, index = folder / f"{key}.npy", folder / f"{key}.json"
    with open(folder / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if npy.exists() or index.exists():
            why = check_crop_cache(npy, index, key, len(samples), size)
            if why is None:
                log.info("crop cache: reusing %s", npy)
                return npy
            log.warning("crop cache %s is stale or corrupt (%s): rebuilding it", npy, why)
            npy.unlink(missing_ok=True)
            index.unlink(missing_ok=True)
        need = len(samples) * size * size * 3
        if shutil.disk_usage(folder).free < need * 1.05 + (64 << 20):
            log.warning("crop cache: %.1f GB needed in %s, not free: crops are decoded per item", need / 1e9,
                        folder)  # fmt: skip
            return None
        _build(samples, size, npy, index, key, workers, progress)
    log.info("crop cache: built %s (%d crops, %.1f MB)", npy, len(samples), need / 1e6)
    return npy
