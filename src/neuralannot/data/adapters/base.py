"""What every dataset adapter shares: the file-level :class:`DatasetFormatError`, the :class:`SkipReport`
of what was read, skipped and dropped, and :func:`emit` (one converted record's samples, counted)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from neuralannot.data.sample import Sample

__all__ = ["DatasetFormatError", "SkipReport", "emit"]


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


def emit(converted: Iterable[Sample | str], report: SkipReport) -> Iterator[Sample]:
    """Yield a converted record's samples; a string is a dropped sample's reason (counted)."""
    for s in converted:
        if isinstance(s, str):
            report.dropped[s] += 1
        else:
            report.yielded += 1
            yield s
