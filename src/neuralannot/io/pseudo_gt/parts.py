"""Streaming: complete ``part-*.jsonl`` chunks written atomically, resumed, merged into the final file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from neuralannot.io.pseudo_gt.files import write_pseudo_gt
from neuralannot.io.pseudo_gt.record import PseudoGT, PseudoGTError
from neuralannot.utils.atomic import atomic_write_json, atomic_write_text

_PART_RE = re.compile(r"^part-(\d{5,})\.jsonl$")


def _part_files(directory: Path) -> list[Path]:
    """Complete chunk files ``part-NNNNN.jsonl`` in index order (temp files of a crash are ignored)."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _PART_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def _read_part(path: Path) -> Iterable[PseudoGT]:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise PseudoGTError(f"{path}:{lineno}: malformed JSON ({e})") from None
            try:
                yield PseudoGT.from_dict(d)
            except PseudoGTError as e:
                raise PseudoGTError(f"{path}:{lineno}: {e}") from None


class PartWriter:
    """Append records to ``directory`` as complete, atomically written ``part-NNNNN.jsonl`` chunks.

    Records are buffered and flushed every ``chunk_size`` records, on :meth:`flush` and on leaving the
    ``with`` block; a crash loses only the unflushed buffer (a stray temp file is ignored by readers).
    Reopening a directory continues the numbering and removes such temp files; ``meta`` is saved to
    ``directory/meta.json`` for :func:`merge_parts`. Use :func:`done_ids` (or :attr:`done`) to skip
    finished samples.
    """

    def __init__(self, directory: str | Path, chunk_size: int = 256, meta: Mapping[str, Any] | None = None):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        for tmp in self.directory.glob(".part-*.jsonl.*.tmp"):  # a chunk a killed run was writing
            tmp.unlink(missing_ok=True)
        self.chunk_size = chunk_size
        parts = _part_files(self.directory)
        self._next = int(_PART_RE.match(parts[-1].name).group(1)) + 1 if parts else 0
        self._buffer: list[PseudoGT] = []
        self.done: set[str] = done_ids(self.directory)
        if meta is not None:
            atomic_write_json(self.directory / "meta.json", dict(meta))

    def write(self, record: PseudoGT) -> None:
        """Buffer one record (flushing a full chunk)."""
        if not isinstance(record, PseudoGT):
            raise PseudoGTError(f"PartWriter.write expects a PseudoGT, got {type(record).__name__}")
        self._buffer.append(record)
        if len(self._buffer) >= self.chunk_size:
            self.flush()

    def flush(self) -> Path | None:
        """Write the buffered records as the next chunk file; returns its path (None if empty)."""
        if not self._buffer:
            return None
        path = self.directory / f"part-{self._next:05d}.jsonl"
        lines = [json.dumps(r.to_dict(), separators=(",", ":"), allow_nan=False) for r in self._buffer]
        atomic_write_text(path, "\n".join(lines) + "\n")
        self.done.update(r.sample_id for r in self._buffer)
        self._next += 1
        self._buffer = []
        return path

    close = flush

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.flush()


def done_ids(directory: str | Path) -> set[str]:
    """Ids of the samples already in complete chunk files of ``directory`` (empty if none)."""
    return {r.sample_id for p in _part_files(Path(directory)) for r in _read_part(p)}


def read_parts(directory: str | Path) -> dict[str, PseudoGT]:
    """``{id: record}`` of the complete chunk files of ``directory`` (a later chunk's copy wins)."""
    return {r.sample_id: r for p in _part_files(Path(directory)) for r in _read_part(p)}


def merge_parts(directory: str | Path, out_path: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Merge the chunk files of ``directory`` into ``out_path`` (.json/.npz) with every sample once.

    A sample found in several chunks is kept once if the copies are identical; differing copies raise
    :class:`PseudoGTError` naming the id and both files. ``meta`` defaults to ``directory/meta.json``.
    """
    directory = Path(directory)
    parts = _part_files(directory)
    if not parts:
        raise PseudoGTError(f"{directory}: no part-NNNNN.jsonl files to merge")
    merged: dict[str, PseudoGT] = {}
    source: dict[str, Path] = {}
    for p in parts:
        for r in _read_part(p):
            old = merged.get(r.sample_id)
            if old is None:
                merged[r.sample_id], source[r.sample_id] = r, p
            elif old != r:
                raise PseudoGTError(
                    f"sample {r.sample_id!r} differs between {source[r.sample_id]} and {p}; cannot merge"
                )
    if meta is None and (directory / "meta.json").is_file():
        try:
            meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise PseudoGTError(f"{directory / 'meta.json'}: malformed JSON ({e})") from None
    return write_pseudo_gt(out_path, list(merged.values()), meta)
