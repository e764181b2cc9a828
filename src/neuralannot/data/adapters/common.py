"""Shared plumbing of the official-dataset adapters: JSON streaming, skip-and-count, images, cameras.

Every adapter turns records of an official annotation file into :class:`~neuralannot.data.Sample`
objects with the same rules as the folder adapter: a bad record raises
:class:`~neuralannot.data.sample.SampleError` naming the file and the sample id, a bad file raises
:class:`~neuralannot.data.adapters.folder.DatasetFormatError` naming the file, and with
``skip_bad=True`` both are counted in a :class:`~neuralannot.data.adapters.folder.SkipReport`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neuralannot.data.adapters.folder import (
    IMAGE_CHECKS,
    DatasetFormatError,
    SkipReport,
    _JsonObjectStream,
    _open_text,
    emit,
)
from neuralannot.data.sample import Sample, SampleError

__all__ = [
    "JsonStream",
    "iter_json",
    "read_json",
    "convert_records",
    "per_file",
    "check_options",
    "image_path",
    "world_to_camera",
    "project",
    "as_matrix",
    "rotate_root",
    "iter_image_annotations",
]

#: Exceptions that mean "this record is malformed" (wrong type, missing key, wrong length...).
RECORD_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError)


class JsonStream(_JsonObjectStream):
    """A top-level JSON object read key by key; the arrays under ``stream_keys`` element by element."""

    arrays_required = False

    def __init__(self, f, path: Path, stream_keys: Iterable[str] = ()):
        super().__init__(f, path)
        self.stream_keys = frozenset(stream_keys)


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise DatasetFormatError("no such file", path)


def iter_json(path: str | os.PathLike, stream_keys: Iterable[str] = ()) -> Iterator[tuple[str, Any]]:
    """Stream the top-level (key, value) pairs of a JSON object file (see :class:`JsonStream`)."""
    path = Path(path)
    _require_file(path)
    with _open_text(path) as f:
        yield from JsonStream(f, path, stream_keys).items()


def read_json(path: str | os.PathLike, expect: type = dict) -> Any:
    """Load a whole (small) JSON file; :class:`DatasetFormatError` naming it if missing/malformed."""
    path = Path(path)
    _require_file(path)
    try:
        with _open_text(path) as f:
            value = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError, RecursionError) as exc:
        raise DatasetFormatError(f"malformed JSON: {exc}", path) from None
    if not isinstance(value, expect):
        raise DatasetFormatError(f"expected a JSON {expect.__name__}, got {type(value).__name__}", path)
    return value


def convert_records(
    records: Iterable[tuple[str, Any]],
    convert: Callable[[str, Any], list[Sample | str]],
    path: str | os.PathLike,
    skip_bad: bool,
    report: SkipReport,
) -> Iterator[Sample]:
    """Run ``convert(sample_id, record)`` on each record; a ``str`` in its output is a dropped item.

    Errors become :class:`SampleError` naming ``path`` and the sample id; skipped when ``skip_bad``.
    """
    for sid, raw in records:
        report.seen += 1
        try:
            out = convert(sid, raw)
        except SampleError as exc:
            err = SampleError(exc.problem, exc.sample_id or sid, str(path), exc.kind)
        except RECORD_ERRORS as exc:
            err = SampleError(f"malformed record: {exc!r}", sid, str(path), "malformed")
        else:
            yield from emit(out, report)
            continue
        if not skip_bad:
            raise err
        report.skip(err.kind, str(err))


def per_file(
    files: Iterable[Path], read: Callable[[Path], Iterator[Sample]], skip_bad: bool, report: SkipReport
) -> Iterator[Sample]:
    """``read`` each file in turn; a :class:`DatasetFormatError` abandons that file when ``skip_bad``."""
    for f in files:
        try:
            yield from read(f)
        except DatasetFormatError as exc:
            if not skip_bad:
                raise
            report.fail_file(exc.path, str(exc))


def check_options(fmt: str, options: dict[str, Any], allowed: dict[str, Any]) -> dict[str, Any]:
    """``allowed`` (name → default) updated with ``options``; ValueError on an unknown option."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"format {fmt!r} has no option(s) {unknown}; it accepts {sorted(allowed)}")
    out = {**allowed, **options}
    if out.get("check_images", None) not in IMAGE_CHECKS:
        raise ValueError(f"check_images must be one of {IMAGE_CHECKS}, got {out['check_images']!r}")
    stride = out.get("stride", 1)
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    return out


def image_path(path: Path, sid: str, check_images: str | None) -> str:
    """``path`` as a string after the requested check (``exists`` / ``verify``)."""
    if check_images == "exists" and not path.is_file():
        raise SampleError(f"image file not found: {path}", sid, kind="image")
    if check_images == "verify":
        from neuralannot.data.transforms import check_image

        check_image(str(path), sid)
    return str(path)


def world_to_camera(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``X_cam = R @ X_world + t`` for (N, 3) points (float64)."""
    return np.asarray(points, np.float64) @ np.asarray(R, np.float64).T + np.asarray(t, np.float64)


def project(points: np.ndarray, focal: np.ndarray, princpt: np.ndarray) -> np.ndarray:
    """Pinhole projection of (N, 3) camera-frame points: ``u = fx*X/Z + cx`` → (N, 2)."""
    p = np.asarray(points, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return p[:, :2] / p[:, 2:3] * np.asarray(focal, np.float64) + np.asarray(princpt, np.float64)


def as_matrix(value: Any, shape: tuple[int, ...], name: str, sid: str) -> np.ndarray:
    """float64 array of exactly ``shape`` or a :class:`SampleError` (kind ``shape``)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise SampleError(f"{name} is not a numeric array", sid, kind="malformed") from None
    if arr.shape != shape:
        raise SampleError(f"{name} has shape {arr.shape}, expected {shape}", sid, kind="shape")
    return arr


def rotate_root(pose: Any, R: np.ndarray, sid: str) -> np.ndarray:
    """Axis-angle pose (72 or 48 values) with its first (root) rotation pre-multiplied by ``R``."""
    import roma
    import torch

    pose = np.asarray(pose, dtype=np.float64).reshape(-1).copy()
    if pose.size < 3 or pose.size % 3:
        raise SampleError(f"pose has {pose.size} values, expected a multiple of 3", sid, kind="shape")
    root = roma.rotvec_to_rotmat(torch.from_numpy(pose[:3]))
    pose[:3] = roma.rotmat_to_rotvec(torch.from_numpy(np.asarray(R, np.float64)) @ root).numpy()
    return pose


def _index_images(items: Iterable[Any], keep: Callable[[dict], bool], path: Path) -> tuple[dict, set]:
    kept, known = {}, set()
    for img in items:
        if not isinstance(img, dict) or "id" not in img:
            raise DatasetFormatError(
                f"an 'images' entry is not an object with an 'id': {str(img)[:80]}", path
            )
        known.add(img["id"])
        if keep(img):
            kept[img["id"]] = img
    return kept, known


def iter_image_annotations(
    path: Path, keep_image: Callable[[dict], bool] = lambda img: True
) -> Iterator[tuple[dict | None, Any, dict]]:
    """COCO-like files: ``(image or None, annotation, top-level metadata read so far)``.

    ``images`` is indexed (only the kept ones are stored), ``annotations`` is streamed; annotations
    of images that ``keep_image`` rejects are not yielded, an unknown ``image_id`` gives ``None``.
    """
    meta: dict[str, Any] = {}
    images, annotations_read = None, False
    for key, value in iter_json(path, ("images", "annotations")):
        if key == "images":
            if not isinstance(value, Iterator):
                raise DatasetFormatError("'images' must be a list", path)
            images = _index_images(value, keep_image, path)
        elif key == "annotations":
            if not isinstance(value, Iterator):
                raise DatasetFormatError("'annotations' must be a list", path)
            if images is None:  # images after annotations: index them first (a second pass)
                images = _images_only(path, keep_image)
            kept, known = images
            for ann in value:
                image_id = ann.get("image_id") if isinstance(ann, dict) else None
                if image_id in kept:
                    yield kept[image_id], ann, meta
                elif image_id not in known:
                    yield None, ann, meta
            annotations_read = True
        else:
            meta[key] = value
    if images is None:
        raise DatasetFormatError("missing top-level key 'images'", path)
    if not annotations_read:
        raise DatasetFormatError("missing top-level key 'annotations'", path)


def _images_only(path: Path, keep: Callable[[dict], bool]) -> tuple[dict, set]:
    for key, value in iter_json(path, ("images", "annotations")):
        if key == "images":
            if not isinstance(value, Iterator):
                raise DatasetFormatError("'images' must be a list", path)
            return _index_images(value, keep, path)
    raise DatasetFormatError("missing top-level key 'images'", path)
