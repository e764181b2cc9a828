"""Shard directories of the folder format (``meta.json`` + ``shard-NNNNN.jsonl``; the layout is in
:mod:`neuralannot.data.adapters.folder`): the raw-record reader and :class:`ShardWriter`."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from neuralannot.bodies.joint_names import get_joint_names
from neuralannot.data.adapters.base import DatasetFormatError, SkipReport
from neuralannot.data.adapters.checks import check_complete
from neuralannot.data.adapters.folder_convert import SCHEMA_VERSION, _check_count, _check_meta, _FileContext
from neuralannot.data.adapters.joint_map import JointMap
from neuralannot.data.adapters.json_stream import _open_text
from neuralannot.data.sample import Sample, SampleError, to_jsonable

__all__ = ["ShardWriter"]


def _shard_files(d: Path, meta: dict[str, Any]) -> list[Path]:
    if meta.get("shards") is not None:
        files = [d / name for name in meta["shards"]]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise DatasetFormatError(f"meta.json lists missing shard files {missing[:5]}", d / "meta.json")
        return files
    files = sorted(
        f for f in d.iterdir() if f.name.startswith("shard-") and f.name.endswith((".jsonl", ".jsonl.gz"))
    )
    if not files:
        files = [f for f in (d / "samples.jsonl", d / "samples.jsonl.gz") if f.is_file()]
    if not files:
        raise DatasetFormatError("shard directory has meta.json but no shard-*.jsonl / samples.jsonl", d)
    return files


def _raw_from_shards(d: Path, drop_empty_hands: bool, report: SkipReport, skip_bad: bool,
                     joint_map: JointMap | None = None):  # fmt: skip
    meta_path = d / "meta.json"
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DatasetFormatError(f"malformed JSON: {exc}", meta_path) from None
    if not isinstance(meta, dict):
        raise DatasetFormatError("meta.json must contain one JSON object", meta_path)
    joints = _check_meta(meta, meta_path, joint_map)
    check_complete(meta, d)
    n, image_counts = 0, Counter()  # ids stay unique across shards
    for shard in _shard_files(d, meta):
        ctx = _FileContext(shard, d.resolve(), meta, joints, drop_empty_hands, image_counts)
        with _open_text(shard) as f:
            try:
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    n += 1
                    try:
                        raw = json.loads(line)
                    except (json.JSONDecodeError, RecursionError) as exc:
                        why = getattr(exc, "msg", "nested too deeply")
                        err = DatasetFormatError(f"malformed JSON on line {lineno}: {why}", shard)
                        if not skip_bad:
                            raise err from None
                        report.seen += 1
                        report.skip("malformed_json", str(err))
                        continue
                    yield ctx, raw
            except (UnicodeDecodeError, OSError, EOFError) as exc:
                raise DatasetFormatError(f"cannot read shard: {exc}", shard) from None
    _check_count(meta, n, meta_path)


class ShardWriter:
    """Write samples as a shard directory (module docstring): ``meta.json`` + ``shard-NNNNN.jsonl``.

    Use as a context manager; ``meta`` holds extra top-level keys (``split``, ``license``, ...).
    Samples must share one joint set. Image paths inside ``out_dir`` are stored relative to it.
    """

    def __init__(self, out_dir: str | os.PathLike, dataset: str, joint_set: str, shard_size: int = 10000,
                 meta: dict[str, Any] | None = None):  # fmt: skip
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dataset, self.joint_set, self.shard_size = dataset, joint_set, int(shard_size)
        self.meta = dict(meta or {})
        self.count, self.shards, self._f = 0, [], None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _raw(self, s: Sample) -> dict[str, Any]:
        if s.joint_set != self.joint_set:
            raise SampleError(
                f"joint set {s.joint_set!r} != writer's {self.joint_set!r}", s.id, kind="joint_set"
            )
        image = s.image
        if image is not None:
            try:
                image = str(Path(image).resolve().relative_to(self.dir.resolve()))
            except ValueError:
                pass
        j3 = s.joints_3d
        cam = None
        if s.intrinsics is not None:
            cam = {"focal": s.intrinsics["focal"], "princpt": s.intrinsics["princpt"]}
        return to_jsonable({
            "id": s.id, "image": image, "dataset": self.dataset, "image_size": s.image_size, "bbox": s.bbox,
            "part": s.part, "joints_2d": s.joints_2d, "joints_3d": None if j3 is None else j3[:, :3],
            "joints_3d_valid": None if j3 is None else j3[:, 3],
            "joints_3d_frame": None if j3 is None else "camera", "camera": cam, "smpl": None, "gt": s.gt,
            "extra": s.extra,
        })  # fmt: skip

    def write(self, sample: Sample) -> None:
        sample.validate()
        if self._f is None or self.count % self.shard_size == 0 and self.count:
            if self._f is not None:
                self._f.close()
            name = f"shard-{len(self.shards):05d}.jsonl"
            self.shards.append(name)
            self._f = open(self.dir / name, "w", encoding="utf-8")
        self._f.write(json.dumps(self._raw(sample), separators=(",", ":"), allow_nan=False) + "\n")
        self.count += 1

    def write_all(self, samples: Iterable[Sample]) -> None:
        for s in samples:
            self.write(s)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        meta = {
            "schema_version": SCHEMA_VERSION,
            "dataset": self.dataset,
            **self.meta,
            "num_samples": self.count,
            "num_joints": len(get_joint_names(self.joint_set)),
            "joint_names": get_joint_names(self.joint_set),
            "joint_set": self.joint_set,
            "joints_3d_frame": "camera",
            "shards": list(self.shards),
        }
        with open(self.dir / "meta.json", "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)
