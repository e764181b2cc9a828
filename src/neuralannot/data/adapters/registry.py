"""One entry point for every on-disk layout: :func:`load_any` (and :func:`detect_format`).

Formats: ``folder`` (the project's folder format), ``h36m``, ``mpi_inf_3dhp``, ``3dpw``, ``coco``,
``coco_wholebody``, ``freihand``, ``interhand2.6m`` (see each adapter module and docs/datasets.md).
Detection looks at file names first (``Human36M_subject1_data.json``, ``annot.mat``, ``*.pkl``,
``person_keypoints_*.json``, ``coco_wholebody_*.json``, ``training_xyz.json``,
``InterHand2.6M_*_data.json``), in a folder also in ``annotations/`` and the usual sub-folders; a
JSON file with another name is classified by its keys (COCO-like ``images``/``annotations`` with
``keypoints`` or ``foot_kpts``); anything else is the folder format.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from neuralannot.data.adapters.coco import FILE_PATTERNS as COCO_PATTERNS
from neuralannot.data.adapters.coco import find_coco_files, load_coco
from neuralannot.data.adapters.common import iter_json
from neuralannot.data.adapters.folder import DatasetFormatError, SkipReport, load_dataset
from neuralannot.data.adapters.freihand import FILE_RE as FREIHAND_RE
from neuralannot.data.adapters.freihand import freihand_root, load_freihand
from neuralannot.data.adapters.h36m import DATA_FILE_RE as H36M_RE
from neuralannot.data.adapters.h36m import find_h36m_files, load_h36m
from neuralannot.data.adapters.interhand import DATA_FILE_RE as INTERHAND_RE
from neuralannot.data.adapters.interhand import find_interhand_files, load_interhand
from neuralannot.data.adapters.joint_map import read_joint_map
from neuralannot.data.adapters.mpi_inf_3dhp import find_3dhp_files, load_mpi_inf_3dhp
from neuralannot.data.adapters.pw3d import find_3dpw_files, load_3dpw
from neuralannot.data.sample import Sample

__all__ = ["FORMATS", "detect_format", "load_any"]


@dataclass(frozen=True)
class FormatEntry:
    """One format: its loader ``(path, skip_bad, report, **options) -> Iterator[Sample]`` and its folder
    probe, which raises DatasetFormatError when the layout is absent (none for ``folder``, the fallback)."""

    load: Callable[..., Iterator[Sample]]
    probe: Callable[[Path], object] | None = None


#: Format name → loader and folder probe; detection tries the probes in this order.
REGISTRY: dict[str, FormatEntry] = {
    "folder": FormatEntry(load_dataset),
    "h36m": FormatEntry(load_h36m, find_h36m_files),
    "mpi_inf_3dhp": FormatEntry(load_mpi_inf_3dhp, find_3dhp_files),
    "3dpw": FormatEntry(load_3dpw, find_3dpw_files),
    "coco": FormatEntry(partial(load_coco, fmt="coco"), partial(find_coco_files, fmt="coco")),
    "coco_wholebody": FormatEntry(
        partial(load_coco, fmt="coco_wholebody"), partial(find_coco_files, fmt="coco_wholebody")
    ),
    "freihand": FormatEntry(load_freihand, freihand_root),
    "interhand2.6m": FormatEntry(load_interhand, find_interhand_files),
}
FORMATS = tuple(REGISTRY)


def _format_of_file(p: Path) -> str:
    name = p.name
    if H36M_RE.match(name):
        return "h36m"
    if name in ("annot.mat", "annot_data.mat"):
        return "mpi_inf_3dhp"
    if name.endswith(".pkl"):
        return "3dpw"
    for fmt, pattern in COCO_PATTERNS.items():
        if pattern.match(name):
            return fmt
    if FREIHAND_RE.match(name):
        return "freihand"
    if INTERHAND_RE.match(name):
        return "interhand2.6m"
    return _format_by_keys(p) if name.endswith(".json") else "folder"


def _format_by_keys(p: Path) -> str:
    """COCO / COCO-WholeBody from the first annotation's keys; else the folder format."""
    try:
        for key, value in iter_json(p, ("annotations", "samples")):
            if key in ("schema_version", "samples"):
                return "folder"
            if key == "annotations":
                first = next(iter(value), None) if isinstance(value, Iterator) else None
                if isinstance(first, dict) and "foot_kpts" in first:
                    return "coco_wholebody"
                if isinstance(first, dict) and "keypoints" in first:
                    return "coco"
                return "folder"
    except DatasetFormatError:
        pass  # let the folder reader report the problem
    return "folder"


def detect_format(path: str | os.PathLike) -> str:
    """The format name (one of :data:`FORMATS`) of a file or folder; ``folder`` when nothing else fits.

    Raises :class:`DatasetFormatError` for a missing path or a folder holding several official layouts.
    """
    p = Path(path)
    if not p.exists():
        raise DatasetFormatError("no such file or directory", p)
    if p.is_file():
        return _format_of_file(p)
    found = []
    for fmt, entry in REGISTRY.items():
        if entry.probe is None:
            continue
        try:
            entry.probe(p)
        except DatasetFormatError:
            continue
        found.append(fmt)
    if len(found) > 1:
        raise DatasetFormatError(
            f"several dataset layouts found ({', '.join(found)}); pass one annotation file or format=", p
        )
    return found[0] if found else "folder"


def load_any(
    path: str | os.PathLike,
    format: str = "auto",
    skip_bad: bool = False,
    report: SkipReport | None = None,
    joint_map: str | os.PathLike | dict | None = None,
    **options,
) -> Iterator[Sample]:
    """Stream :class:`Sample` s from any supported layout (``format="auto"``: :func:`detect_format`).

    ``options`` go to the format's adapter (e.g. ``subjects=[1, 5], stride=5`` for ``h36m``);
    ``report`` (a :class:`SkipReport`) counts skipped and dropped records. ``joint_map`` (folder
    format only): dataset joint name → keypoint name, a JSON file or dict (see
    :mod:`neuralannot.data.adapters.joint_map`).
    """
    joint_map = read_joint_map(joint_map)
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in REGISTRY:
        raise ValueError(f"unknown dataset format {fmt!r}; known: auto, {', '.join(FORMATS)}")
    if joint_map is not None:
        if fmt != "folder":
            raise ValueError(f"{path}: a joint map applies to the folder format; {fmt} has a fixed joint set")
        options["joint_map"] = joint_map
    return REGISTRY[fmt].load(path, skip_bad=skip_bad, report=report, **options)
