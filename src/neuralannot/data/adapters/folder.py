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

Errors: file-level problems (malformed JSON, wrong schema_version, missing keys, unknown joint names)
raise :class:`DatasetFormatError` naming the file; bad samples raise
:class:`~neuralannot.data.sample.SampleError` naming the file and the sample id. With
``skip_bad=True`` both are counted in a :class:`SkipReport` instead (a bad JSON file is abandoned
from the point of the error, a bad JSON-lines line is skipped).
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuralannot.bodies.joint_matching import JointMatch
from neuralannot.bodies.joint_names import SET_PARTS, conversion_indices, get_joint_names
from neuralannot.data.adapters.joint_map import JointMap, read_joint_map, resolve_file_joints
from neuralannot.data.sample import Sample, SampleError, to_jsonable

__all__ = [
    "SCHEMA_VERSION",
    "DatasetFormatError",
    "SkipReport",
    "FolderDataset",
    "load_dataset",
    "list_sources",
    "ShardWriter",
]

SCHEMA_VERSION = 1
REQUIRED_META = ("schema_version", "dataset", "joint_names")
REQUIRED_SAMPLE = ("joints_2d", "bbox")
#: Part of hand21 samples per dataset when ``extra.hand_type`` does not say.
DATASET_HAND_PART = {"freihand": "rhand"}
HAND_BOX_SCALE = 1.2
IMAGE_CHECKS = (None, "exists", "verify")


class DatasetFormatError(ValueError):
    """A dataset file or directory cannot be read; the message names the file."""

    def __init__(self, problem: str, path: str | os.PathLike):
        self.problem, self.path = problem, str(path)
        super().__init__(f"{path}: {problem}")


@dataclass
class SkipReport:
    """Counts of what was read, yielded, skipped (bad, by ``SampleError.kind``) and dropped (not bad)."""

    seen: int = 0
    yielded: int = 0
    skipped: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    failed_files: list[tuple[str, str]] = field(default_factory=list)
    max_examples: int = 3

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def skip(self, kind: str, message: str) -> None:
        self.skipped[kind] += 1
        ex = self.examples.setdefault(kind, [])
        if len(ex) < self.max_examples:
            ex.append(message)

    def fail_file(self, path: str, message: str) -> None:
        self.failed_files.append((str(path), message))

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "yielded": self.yielded,
            "skipped": dict(self.skipped),
            "dropped": dict(self.dropped),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "failed_files": [list(f) for f in self.failed_files],
        }

    def __str__(self) -> str:
        lines = [f"read {self.seen} raw samples, yielded {self.yielded}, skipped {self.num_skipped}"]
        lines += [
            f"  skipped {n} x {k}: e.g. {self.examples.get(k, [''])[0]}" for k, n in self.skipped.items()
        ]
        lines += [f"  dropped {n} x {k}" for k, n in self.dropped.items()]
        lines += [f"  failed file {p}: {m}" for p, m in self.failed_files]
        return "\n".join(lines)


# --- incremental JSON ----------------------------------------------------------------------------------
def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


class _JsonObjectStream:
    """Reads a top-level JSON object key by key; the arrays under ``stream_keys`` element by element
    (with ``arrays_required`` such a key must hold an array)."""

    _WS = " \t\n\r"
    stream_keys: frozenset[str] = frozenset({"samples"})
    arrays_required = True

    def __init__(self, f: io.TextIOBase, path: Path, chunk: int = 1 << 20):
        self.f, self.path, self.chunk = f, path, chunk
        self.buf, self.pos, self.eof = "", 0, False
        self.offset, self.line = 0, 1  # absolute char offset / line number of buf[0]
        self.decoder = json.JSONDecoder()

    def _error(self, problem: str, pos: int | None = None) -> DatasetFormatError:
        pos = self.pos if pos is None else pos
        line = self.line + self.buf.count("\n", 0, pos)
        return DatasetFormatError(
            f"malformed JSON: {problem} (line {line}, char {self.offset + pos})", self.path
        )

    def _fill(self, size: int) -> None:
        if self.pos:
            self.line += self.buf.count("\n", 0, self.pos)
            self.offset += self.pos
            self.buf, self.pos = self.buf[self.pos :], 0
        try:
            data = self.f.read(size)
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise DatasetFormatError(f"cannot read file: {exc}", self.path) from None
        if not data:
            self.eof = True
        self.buf += data

    def _peek(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in self._WS:
                self.pos += 1
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos] if self.pos < len(self.buf) else ""
            self._fill(self.chunk)

    def _expect(self, chars: str) -> str:
        c = self._peek()
        if not c or c not in chars:
            raise self._error(f"expected one of {list(chars)}, found {c or 'end of file'!r}")
        self.pos += 1
        return c

    def _value(self) -> Any:
        self._peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except RecursionError:
                raise self._error("nested too deeply") from None
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise self._error(exc.msg, exc.pos) from None
                self._fill(max(self.chunk, len(self.buf) - self.pos))  # grow geometrically
                continue
            if end == len(self.buf) and not self.eof:  # a number may continue in the next chunk
                self._fill(self.chunk)
                continue
            self.pos = end
            return value

    def _array(self) -> Iterator[Any]:
        self._expect("[")
        if self._peek() == "]":
            self.pos += 1
            return
        while True:
            yield self._value()
            if self._expect(",]") == "]":
                return

    def items(self) -> Iterator[tuple[str, Any]]:
        """(key, value) pairs; a streamed key's value is an iterator, drained if the consumer moves on."""
        if self._peek() != "{":
            raise self._error("the file must contain one JSON object")
        self.pos += 1
        if self._peek() == "}":
            self.pos += 1
        else:
            while True:
                key = self._value()
                if not isinstance(key, str):
                    raise self._error("object keys must be strings")
                self._expect(":")
                if key in self.stream_keys and (self.arrays_required or self._peek() == "["):
                    if self._peek() != "[":
                        raise self._error(f"{key!r} must be a list")
                    it = self._array()
                    yield key, it
                    for _ in it:  # drain what the consumer did not read
                        pass
                else:
                    yield key, self._value()
                if self._expect(",}") == "}":
                    break
        if self._peek():
            raise self._error("extra data after the top-level object")


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


# --- conversion ----------------------------------------------------------------------------------------
@dataclass
class _FileContext:
    path: Path  # file named in errors
    base_dir: Path  # images are relative to this
    meta: dict[str, Any]
    joints: JointMatch  # file columns → the joint set
    drop_empty_hands: bool = True
    image_counts: Counter = field(default_factory=Counter)

    @property
    def joint_set(self) -> str:
        return self.joints.joint_set


def _check_meta(meta: dict[str, Any], path: Path, joint_map: JointMap | None = None) -> JointMatch:
    """Validate the top-level metadata; return how its joint columns map to a known joint set."""
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise DatasetFormatError(f"missing top-level key(s) {missing}", path)
    if meta["schema_version"] != SCHEMA_VERSION:
        raise DatasetFormatError(
            f"unsupported schema_version {meta['schema_version']!r} (this reader supports {SCHEMA_VERSION})",
            path,
        )
    names = meta["joint_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DatasetFormatError("joint_names must be a list of strings", path)
    if meta.get("num_joints") is not None and meta["num_joints"] != len(names):
        raise DatasetFormatError(f"num_joints={meta['num_joints']} but {len(names)} joint_names", path)
    try:
        joints = resolve_file_joints(meta, path, joint_map)
    except ValueError as exc:
        raise DatasetFormatError(str(exc), path) from None
    frame = meta.get("joints_3d_frame")
    if frame not in (None, "camera"):
        raise DatasetFormatError(f"joints_3d_frame must be 'camera' or null, got {frame!r}", path)
    return joints


def _sample_id(raw: dict[str, Any], ctx: _FileContext) -> str:
    if raw.get("id") is not None:
        return str(raw["id"])
    dataset = str(ctx.meta["dataset"])
    image = raw.get("image")
    stem = Path(str(image)).stem if image else "noimage"
    if stem.startswith(dataset + "__"):
        stem = stem[len(dataset) + 2 :]
    k = ctx.image_counts[stem]
    ctx.image_counts[stem] += 1
    return f"{dataset}/{stem}/{k}"


def _infer_part(raw: dict[str, Any], ctx: _FileContext) -> str:
    part = raw.get("part") or ctx.meta.get("part")
    if part:
        return str(part)
    set_part = SET_PARTS[ctx.joint_set]
    if set_part == "hand":
        hand_type = str((raw.get("extra") or {}).get("hand_type") or "").lower()
        if hand_type in ("left", "right"):
            return "lhand" if hand_type == "left" else "rhand"
        return DATASET_HAND_PART.get(str(ctx.meta["dataset"]).lower(), "hand")
    return set_part


def _smpl_gt(smpl: dict[str, Any]) -> dict[str, Any]:
    """``smpl`` entry → ``{"model": "smpl", "params": {pose (72,), betas (10,), transl}, ...}``."""
    if not isinstance(smpl, dict):
        raise SampleError(f"smpl must be an object, got {type(smpl).__name__}", kind="malformed")
    params = {"pose": smpl.get("pose"), "betas": smpl.get("betas"), "transl": smpl.get("translation")}
    rest = {k: v for k, v in smpl.items() if k not in ("pose", "betas", "translation", "model")}
    return {"model": "smpl", "params": params, "description": smpl.get("model"), **rest}


def _hand_bbox(j2: np.ndarray) -> np.ndarray | None:
    v = j2[:, 2] > 0
    if not v.any():
        return None
    lo, hi = j2[v, :2].min(0), j2[v, :2].max(0)
    c, size = (lo + hi) / 2, (hi - lo) * HAND_BOX_SCALE
    if size.min() < 1.0:  # degenerate (one joint or collinear): square on the larger side
        size[:] = size.max()
    if size.min() < 1.0:
        return None
    return np.concatenate([c - size / 2, size]).astype(np.float32)


def _convert(raw: Any, ctx: _FileContext, check_images: str | None) -> list[Sample | str]:
    """One raw sample → Samples (two for two-hand sets); a str entry = a dropped empty hand."""
    if not isinstance(raw, dict):
        raise SampleError(f"sample is a {type(raw).__name__}, expected a JSON object", kind="malformed")
    sid = _sample_id(raw, ctx)
    missing = [k for k in REQUIRED_SAMPLE if k not in raw]
    if missing:
        raise SampleError(f"missing key(s) {missing}", sid, kind="missing_key")
    try:
        j2 = np.array(raw["joints_2d"], dtype=np.float32)
        J = len(ctx.meta["joint_names"])
        if j2.shape != (J, 3):
            raise SampleError(f"joints_2d has shape {j2.shape}, expected ({J}, 3)", sid, kind="shape")
        j3 = None
        if raw.get("joints_3d") is not None:
            frame = raw.get("joints_3d_frame", ctx.meta.get("joints_3d_frame"))
            if frame not in (None, "camera"):
                raise SampleError(f"joints_3d_frame must be 'camera', got {frame!r}", sid, kind="frame")
            xyz = np.array(raw["joints_3d"], dtype=np.float32)
            valid = raw.get("joints_3d_valid")
            valid = np.ones(len(xyz), np.float32) if valid is None else np.array(valid, dtype=np.float32)
            if xyz.shape != (J, 3) or valid.shape != (J,):
                raise SampleError(
                    f"joints_3d {xyz.shape} / joints_3d_valid {valid.shape} do not match ({J}, 3) / ({J},)",
                    sid,
                    kind="shape",
                )
            j3 = ctx.joints.take(np.concatenate([xyz, valid[:, None]], axis=1))
        j2 = ctx.joints.take(j2)
        intrinsics, extra = None, dict(raw.get("extra") or {})
        cam = raw.get("camera")
        if cam is not None:
            if not isinstance(cam, dict) or "focal" not in cam or "princpt" not in cam:
                raise SampleError("camera must have 'focal' and 'princpt'", sid, kind="intrinsics")
            intrinsics = {"focal": cam["focal"], "princpt": cam["princpt"]}
            rest = {k: v for k, v in cam.items() if k not in ("focal", "princpt")}
            if rest:
                extra["camera"] = rest
        gt = raw.get("gt")
        if gt is None and raw.get("smpl") is not None:
            gt = _smpl_gt(raw["smpl"])
        for key in ("dataset", "bbox_source", "license"):
            if raw.get(key) is not None:
                extra.setdefault(key, raw[key])
        extra.setdefault("dataset", ctx.meta["dataset"])
        if ctx.meta.get("split") is not None:
            extra.setdefault("split", ctx.meta["split"])
        image = raw.get("image")
        if image is not None:
            image = str(image) if os.path.isabs(str(image)) else str(ctx.base_dir / str(image))
            if check_images == "exists" and not os.path.isfile(image):
                raise SampleError(f"image file not found: {image}", sid, kind="image")
            if check_images == "verify":
                from neuralannot.data.transforms import check_image

                size = check_image(image, sid)
                if raw.get("image_size") is not None and list(size) != list(raw["image_size"]):
                    raise SampleError(
                        f"image {image} is {size[0]}x{size[1]}, image_size says {raw['image_size']}",
                        sid,
                        kind="image",
                    )
        common = dict(image=image, intrinsics=intrinsics, image_size=raw.get("image_size"), gt=gt)
        part = _infer_part(raw, ctx)
        if part != "hands":
            s = Sample(id=sid, bbox=raw["bbox"], part=part, joint_set=ctx.joint_set, joints_2d=j2,
                       joints_3d=j3, extra=extra, **common)  # fmt: skip
            return [s.validate()]
        out: list[Sample | str] = []
        for side, tag, dst in (("right", "r", "rhand21"), ("left", "l", "lhand21")):
            idx, found = conversion_indices(ctx.joint_set, dst)
            if not all(found):
                raise SampleError(
                    f"joint set {ctx.joint_set} lacks {side}-hand joints", sid, kind="joint_set"
                )
            hj2, hj3 = j2[idx], (None if j3 is None else j3[idx])
            bbox = _hand_bbox(hj2)
            if bbox is None:
                if ctx.drop_empty_hands:
                    out.append(f"{side} hand without valid joints")
                    continue
                bbox = raw["bbox"]
            hextra = dict(extra, side=side, pair_bbox=raw["bbox"], pair_id=sid)
            s = Sample(id=f"{sid}_{tag}", bbox=bbox, part=f"{tag}hand", joint_set="hand21", joints_2d=hj2,
                       joints_3d=hj3, extra=hextra, **common)  # fmt: skip
            out.append(s.validate())
        return out
    except SampleError as exc:
        raise SampleError(exc.problem, exc.sample_id or sid, str(ctx.path), exc.kind) from None
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise SampleError(f"malformed sample: {exc}", sid, str(ctx.path), "malformed") from None


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


def _check_count(meta: dict[str, Any], n: int, path: Path) -> None:
    declared = meta.get("num_samples")
    if isinstance(declared, int) and declared != n:
        raise DatasetFormatError(f"num_samples={declared} but {n} samples were read (truncated file?)", path)


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


def _iter_source(src: Path, opts: dict[str, Any], report: SkipReport) -> Iterator[Sample]:
    skip_bad = opts["skip_bad"]
    if src.is_dir():
        raws = _raw_from_shards(src, opts["drop_empty_hands"], report, skip_bad, opts["joint_map"])
    else:
        raws = _raw_from_json(src, opts["drop_empty_hands"], opts["joint_map"])
    for ctx, raw in raws:
        report.seen += 1
        try:
            converted = _convert(raw, ctx, opts["check_images"])
        except SampleError as exc:
            if not skip_bad:
                raise
            report.skip(exc.kind, str(exc))
            continue
        yield from emit(converted, report)


def emit(converted: Iterable[Sample | str], report: SkipReport) -> Iterator[Sample]:
    """Yield a converted record's samples; a string is a dropped sample's reason (counted)."""
    for s in converted:
        if isinstance(s, str):
            report.dropped[s] += 1
        else:
            report.yielded += 1
            yield s


def _iter_dataset(path: str | os.PathLike, opts: dict[str, Any], report: SkipReport) -> Iterator[Sample]:
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
    ):
        if check_images not in IMAGE_CHECKS:
            raise ValueError(f"check_images must be one of {IMAGE_CHECKS}, got {check_images!r}")
        self.path = Path(path)
        self.sources = list_sources(self.path)
        self.opts = dict(skip_bad=skip_bad, check_images=check_images, drop_empty_hands=drop_empty_hands,
                         joint_map=read_joint_map(joint_map))  # fmt: skip
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
) -> Iterator[Sample]:
    """Stream :class:`Sample` s from ``path`` (see the module docstring); fills ``report`` if given.

    ``joint_map``: dataset joint name → keypoint name (a JSON file or dict; see
    :func:`~neuralannot.data.adapters.joint_map.read_joint_map`).
    """
    if check_images not in IMAGE_CHECKS:
        raise ValueError(f"check_images must be one of {IMAGE_CHECKS}, got {check_images!r}")
    opts = dict(skip_bad=skip_bad, check_images=check_images, drop_empty_hands=drop_empty_hands,
                joint_map=read_joint_map(joint_map))  # fmt: skip
    list_sources(path)  # fail early on a missing path
    return _iter_dataset(path, opts, report if report is not None else SkipReport())


# --- writing -------------------------------------------------------------------------------------------
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
