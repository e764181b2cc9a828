"""Atomic file writes: write to a temp file in the same folder, fsync, then ``os.replace``.

A reader never sees a half-written file, and a crash leaves the previous version intact.
:func:`atomic_folder` does the same for a folder built as a whole (a report).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO[Any]]:
    """Context manager yielding a temp file that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    give_default_mode(tmp)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Context manager yielding an empty temp folder next to ``path`` that replaces ``path`` as a whole
    only if the block succeeds; on failure it is removed and ``path`` is left as it was.

    An existing ``path`` is renamed aside, the new folder renamed in, and the old one removed: a kill
    between the two renames leaves the old folder as ``.<name>.*.tmp.old`` next to it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = tmp.with_name(tmp.name + ".old")
    try:
        yield tmp
        give_default_mode(tmp)  # mkdtemp creates 0700
        if path.exists():
            os.rename(path, old)
        os.rename(tmp, path)
    except BaseException:
        if old.exists() and not path.exists():
            os.rename(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def give_default_mode(path: str | os.PathLike) -> None:
    """Give ``path`` the permissions a plain ``open`` / ``mkdir`` would (0666 / 0777 less the umask):
    ``tempfile.mkstemp`` / ``mkdtemp`` create 0600 / 0700."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~mask)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")
