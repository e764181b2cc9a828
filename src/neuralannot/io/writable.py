"""Check output paths before any compute: a run must not fail on its last write after hours of work.

:func:`check_output_file` / :func:`check_output_dir` raise :class:`OutputPathError` (a ``ValueError``:
the CLI prints it in one line with exit code 2) when the path cannot be written: a file where a
folder is expected or the reverse, a parent that is a file, or a folder the user cannot write to
(probed by creating and removing a temporary file in the nearest existing folder).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["OutputPathError", "check_output_file", "check_output_dir"]


class OutputPathError(ValueError):
    """An output path that cannot be written."""


def _nearest_existing(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe(path: Path, folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise OutputPathError(f"{path}: {what}: {folder} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".neuralannot-write-test-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise OutputPathError(f"{path}: {what}: cannot write in {folder} ({e.strerror or e})") from None


def check_output_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """Fail early unless ``path`` can be written as a file (its folders are created later)."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path}: {what} is an existing folder, expected a file name")
    _probe(path, _nearest_existing(path.parent), what)
    return path


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Fail early unless ``path`` is (or can be created as) a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path}: {what} is an existing file, expected a folder")
    _probe(path, _nearest_existing(path), what)
    return path
