"""Refuse outputs that would overwrite what a command reads: checked before any compute.

An output file must not resolve (symlinks followed) to one of the command's input files, nor lie inside
a dataset given as a folder (a new file there becomes part of the dataset, or hides it); ``force``
lifts these two rules. An output *folder* that is replaced as a whole (``report``) must never contain
an input, ``force`` or not.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["OutputError", "check_output"]


class OutputError(ValueError):
    """An output path that would clobber an input; the message names both."""


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(
    out: str | os.PathLike,
    inputs: Iterable[str | os.PathLike | None] = (),
    datasets: Iterable[str | os.PathLike | None] = (),
    force: bool = False,
    replaces_folder: bool = False,
    option: str = "--out",
) -> None:
    """Raise :class:`OutputError` when writing ``out`` would overwrite an input.

    ``inputs``: files (or folders) the command reads; ``datasets``: its ``--data`` paths (a folder
    dataset protects everything under it); ``None`` entries are ignored. ``replaces_folder``: ``out``
    is a folder the command replaces as a whole, so no input may lie inside it (not lifted by
    ``force``).
    """
    target = Path(out).resolve()
    datasets = [Path(d) for d in datasets if d is not None]
    paths = [Path(p).resolve() for p in [*inputs, *datasets] if p is not None]
    if replaces_folder:
        for p in paths:
            if _inside(p, target):
                raise OutputError(
                    f"{option} {out} would replace a folder holding the input {p}; use another folder"
                )
    if force:
        return
    for p in paths:
        if target == p:
            raise OutputError(
                f"{option} {out} is an input of this command ({p}); pass --force to overwrite it"
            )
    for d in datasets:
        if d.is_dir() and _inside(target, d.resolve()):
            raise OutputError(
                f"{option} {out} lies inside the dataset folder {d}; write elsewhere or pass --force"
            )
