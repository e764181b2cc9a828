"""Streaming reader (and shard writer) for the project's "folder format", schema_version 1.

Accepted ``path``:

* a dataset JSON file (``*.json`` or ``*.json.gz``): top-level metadata + ``samples`` list, images
  next to it (see ``data/real/README.md``). It is parsed incrementally: one sample object is
  decoded at a time and released after it is yielded, so huge files do not have to fit in memory.
* a **shard directory**: ``meta.json`` + ``shard-00000.jsonl``, ``shard-00001.jsonl``, ... (or a
  single ``samples.jsonl``; ``.jsonl.gz`` also works).
* any other directory: its ``*.json`` / ``*.json.gz`` files and shard sub-directories, sorted by name.

Shard format (what :class:`ShardWriter` writes)::

    <dir>/meta.json           the dataset JSON's top-level object without "samples": schema_version
                              (1), dataset, joint_names required; split, num_samples (total, checked
                              when given), num_joints, units, license, ... optional. Optional
                              extensions: "joint_set" (a JOINT_SETS name, when joint_names are not
                              enough), "part", "shards" (explicit ordered list of shard file names).
    <dir>/shard-00000.jsonl   one sample object per line, same keys as a "samples" entry (missing
    <dir>/shard-00001.jsonl   keys = null) plus optional "id", "part" and "gt" (evaluation-only
    ...                       ground truth: {"model": ..., "params": {...}}). Images are resolved
                              relative to <dir>. Shards are read in file-name order.

Mapping to :class:`~neuralannot.data.sample.Sample`: ``joints_2d`` vis → confidence;
``joints_3d`` + ``joints_3d_valid`` → (J, 4); ``camera.focal/princpt`` → ``intrinsics`` (other
camera keys → ``extra["camera"]``); ``smpl`` → ``gt = {"model": "smpl", "params": {"pose": 72,
"betas": 10, "transl": 3 or None}, ...}``; the joint set comes from ``joint_names``
matched by name (:mod:`neuralannot.data.adapters.joint_map`: any order, subset or superset of a known
set, aliases, an optional ``joint_map``); every sample's joints are scattered into that set's order,
absent joints invisible. The part is inferred from the joint set
(hand21: ``extra.hand_type`` or the dataset, FreiHAND = right). Two-hand samples (InterHand2.6M,
``interhand42``) are split into a right and a left ``hand21`` sample with ids ``<id>_r`` / ``<id>_l``
and a box = 1.2 x the tight box of the hand's valid joints; a hand without valid joints is dropped
(counted in ``SkipReport.dropped``) unless ``drop_empty_hands=False``.

Sample ids: the sample's ``id`` when present, else ``<dataset>/<image stem>/<k>`` with the
``<dataset>__`` file-name prefix removed from the stem and ``k`` the occurrence of that image in the
file (0 for the first person).

Errors: file-level problems (malformed JSON, wrong schema_version, missing keys, unknown joint names,
a shard directory whose meta.json says ``"complete": false``) raise :class:`DatasetFormatError` naming
the file; bad samples raise
:class:`~neuralannot.data.sample.SampleError` naming the file and the sample id. With
``skip_bad=True`` both are counted in a :class:`SkipReport` instead (a bad JSON file is abandoned
from the point of the error, a bad JSON-lines line is skipped).

Code layout: this module finds the sources and streams them; :mod:`~neuralannot.data.adapters.base`
(errors, skip report), :mod:`~neuralannot.data.adapters.json_stream` (incremental JSON),
:mod:`~neuralannot.data.adapters.folder_convert` (record → Sample) and
:mod:`~neuralannot.data.adapters.shards` (shard reader, :class:`ShardWriter`) hold the rest; their
names used elsewhere are re-exported here.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neuralannot.data.adapters.base import DatasetFormatError, SkipReport, emit
from neuralannot.data.adapters.folder_convert import (
    IMAGE_CHECKS,
    REQUIRED_META,
    SCHEMA_VERSION,
    _check_count,
    _check_meta,
    _convert,
    _FileContext,
)
from neuralannot.data.adapters.joint_map import JointMap, read_joint_map
from neuralannot.data.adapters.json_stream import _JsonObjectStream, _open_text
from neuralannot.data.adapters.shards import ShardWriter, _raw_from_shards
from neuralannot.data.sample import Sample, SampleError

__all__ = [
    "SCHEMA_VERSION",
    "DatasetFormatError",
    "SkipReport",
    "FolderDataset",
    "load_dataset",
    "list_sources",
    "ShardWriter",
]


# --- sources -------------------------------------------------------------------------------------------
def _is_json(p: Path) -> bool:
    return p.name.endswith(".json") or p.name.endswith(".json.gz")


def list_sources(path: str | os.PathLike) -> list[Path]:
    """Dataset JSON files and shard directories under ``path``, in reading order."""
    p = Path(path)
    if not p.exists():
        raise DatasetFormatError("no such file or directory", p)
    if p.is_file():
        return [p]
    if (p / "meta.json").is_file():
        return [p]
    entries = sorted(p.iterdir(), key=lambda e: e.name)
    out = [e for e in entries if e.is_file() and _is_json(e)]
    out += [e for e in entries if e.is_dir() and (e / "meta.json").is_file()]
    if not out:
        raise DatasetFormatError("no *.json dataset files or shard directories (with meta.json) found", p)
    return out


# --- reading -------------------------------------------------------------------------------------------
def _raw_from_json(path: Path, drop_empty_hands: bool, joint_map: JointMap | None = None
                   ) -> Iterator[tuple[_FileContext, Any]]:  # fmt: skip
    meta: dict[str, Any] = {}
    n = None
    with _open_text(path) as f:
        for key, value in _JsonObjectStream(f, path).items():
            if key != "samples":
                meta[key] = value
                continue
            if not all(k in meta for k in REQUIRED_META):  # metadata after "samples": read it first
                meta = _read_meta_only(path)
            joints = _check_meta(meta, path, joint_map)
            ctx = _FileContext(path, path.parent.resolve(), meta, joints, drop_empty_hands)
            n = 0
            for raw in value:
                n += 1
                yield ctx, raw
    if n is None:
        _check_meta(meta, path, joint_map)
        raise DatasetFormatError("missing top-level key 'samples'", path)
    _check_count(meta, n, path)


def _read_meta_only(path: Path) -> dict[str, Any]:
    with _open_text(path) as f:
        return {k: v for k, v in _JsonObjectStream(f, path).items() if k != "samples"}


def _iter_source(src: Path, opts: dict[str, Any], report: SkipReport) -> Iterator[Sample]:
    skip_bad = opts["skip_bad"]
    if src.is_dir():
        raws = _raw_from_shards(src, opts["drop_empty_hands"], report, skip_bad, opts["joint_map"])
    else:
        raws = _raw_from_json(src, opts["drop_empty_hands"], opts["joint_map"])
    for ctx, raw in raws:
        report.seen += 1
        try:
            converted = _convert(raw, ctx, opts["check_images"], opts.get("root"))
        except SampleError as exc:
            if not skip_bad:
                raise
            report.skip(exc.kind, str(exc))
            continue
        yield from emit(converted, report)


def _iter_dataset(path: str | os.PathLike, opts: dict[str, Any], report: SkipReport) -> Iterator[Sample]:
    if not opts.get("allow_outside_root"):  # images must lie in the folder given (a file's own folder)
        opts = dict(opts, root=Path(path).resolve() if Path(path).is_dir() else Path(path).resolve().parent)
    for src in list_sources(path):
        try:
            yield from _iter_source(src, opts, report)
        except DatasetFormatError as exc:
            if not opts["skip_bad"]:
                raise
            report.fail_file(exc.path, str(exc))


class FolderDataset:
    """Iterable over the samples of a folder-format file / shard directory / directory of them.

    Every ``iter()`` streams the files again and resets :attr:`report` (a :class:`SkipReport`).
    ``check_images``: None, ``"exists"`` (default; a stat per sample) or ``"verify"`` (PIL verify,
    also checks ``image_size``; slower). ``joint_map``: a joint-map file or dict
    (:func:`~neuralannot.data.adapters.joint_map.read_joint_map`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        skip_bad: bool = False,
        check_images: str | None = "exists",
        drop_empty_hands: bool = True,
        joint_map: str | os.PathLike | dict | JointMap | None = None,
        allow_outside_root: bool = False,
    ):
        if check_images not in IMAGE_CHECKS:
            raise ValueError(f"check_images must be one of {IMAGE_CHECKS}, got {check_images!r}")
        self.path = Path(path)
        self.sources = list_sources(self.path)
        self.opts = dict(skip_bad=skip_bad, check_images=check_images, drop_empty_hands=drop_empty_hands,
                         joint_map=read_joint_map(joint_map),
                         allow_outside_root=allow_outside_root)  # fmt: skip
        self.report = SkipReport()

    def __iter__(self) -> Iterator[Sample]:
        self.report = SkipReport()
        return _iter_dataset(self.path, self.opts, self.report)

    def summary(self) -> dict[str, Any]:
        """Stream once and count samples per dataset / part / joint set, 3D, cameras, GT and skips."""
        counts: dict[str, Counter] = {k: Counter() for k in ("dataset", "part", "joint_set")}
        n = n3d = ncam = ngt = 0
        for s in self:
            n += 1
            counts["dataset"][s.extra.get("dataset", "?")] += 1
            counts["part"][s.part] += 1
            counts["joint_set"][s.joint_set] += 1
            n3d += s.joints_3d is not None
            ncam += s.intrinsics is not None
            ngt += s.gt is not None
        return {
            "path": str(self.path),
            "sources": [str(p) for p in self.sources],
            "num_samples": n,
            **{f"by_{k}": dict(v) for k, v in counts.items()},
            "with_joints_3d": n3d,
            "with_intrinsics": ncam,
            "with_gt": ngt,
            "report": self.report.as_dict(),
        }


def load_dataset(
    path: str | os.PathLike,
    skip_bad: bool = False,
    report: SkipReport | None = None,
    check_images: str | None = "exists",
    drop_empty_hands: bool = True,
    joint_map: str | os.PathLike | dict | JointMap | None = None,
    allow_outside_root: bool = False,
) -> Iterator[Sample]:
    """Stream :class:`Sample` s from ``path`` (see the module docstring); fills ``report`` if given.

    ``joint_map``: dataset joint name → keypoint name (a JSON file or dict; see
    :func:`~neuralannot.data.adapters.joint_map.read_joint_map`). Images resolving outside ``path``
    (a file: its folder; absolute, ``..``, symlinks) are refused (a :class:`SampleError` of kind
    ``outside_root``) unless ``allow_outside_root``.
    """
    if check_images not in IMAGE_CHECKS:
        raise ValueError(f"check_images must be one of {IMAGE_CHECKS}, got {check_images!r}")
    opts = dict(skip_bad=skip_bad, check_images=check_images, drop_empty_hands=drop_empty_hands,
                joint_map=read_joint_map(joint_map), allow_outside_root=allow_outside_root)  # fmt: skip
    list_sources(path)  # fail early on a missing path
    return _iter_dataset(path, opts, report if report is not None else SkipReport())
