"""Dataset-level guards of the readers: images inside the dataset root, unfinished synthetic folders
and duplicate sample ids. Each raises an error whose one-line message names the file or the samples.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from neuralannot.data.adapters.base import DatasetFormatError
from neuralannot.data.sample import SampleError

__all__ = ["check_complete", "check_unique_ids", "image_in_root", "synth_command"]


def image_in_root(
    image: str, root: str | os.PathLike | None, sample_id: str, allow_outside_root: bool
) -> str:
    """``image`` unchanged when it resolves (``..`` and symlinks followed) inside ``root``.

    Otherwise a :class:`SampleError` (kind ``outside_root``) naming the sample, unless
    ``allow_outside_root``: a dataset file must not make the tools read (and copy into reports)
    arbitrary files of the machine.
    """
    if allow_outside_root:
        return image
    real, top = os.path.realpath(image), os.path.realpath(root)
    if os.path.commonpath([real, top]) != top:
        shown = image if real == os.path.abspath(image) else f"{image} (resolves to {real})"
        raise SampleError(
            f"image {shown} is outside the dataset folder {top}; pass --allow-outside-root to read it",
            sample_id,
            kind="outside_root",
        )
    return image


def synth_command(generator: Mapping[str, Any], out: str | os.PathLike) -> str:
    """The ``neuralannot synth`` command line that wrote (and resumes) a synthetic folder."""
    g = dict(generator)
    args = ["neuralannot", "synth", "--kind", str(g.get("kind", "?")), "--n", str(g.get("n", "?")),
            "--out", str(out), "--seed", str(g.get("seed", 0))]  # fmt: skip
    if g.get("shard_size") is not None:
        args += ["--shard-size", str(g["shard_size"])]
    if g.get("masks") is False:
        args.append("--no-masks")
    cmd = shlex.join(args)
    if g.get("image_size") not in (None, 256):
        cmd += f" (with image_size={g['image_size']}: generate(..., image_size={g['image_size']}))"
    return cmd


def check_complete(meta: Mapping[str, Any], directory: str | os.PathLike) -> None:
    """Refuse a synthetic folder whose ``meta.json`` says ``"complete": false`` (a killed ``synth``)."""
    if meta.get("complete") is False:
        raise DatasetFormatError(
            'unfinished synthetic dataset (meta.json says "complete": false); re-run the same synth '
            f"command to finish it: {synth_command(meta.get('generator') or {}, directory)}",
            Path(directory) / "meta.json",
        )


def check_unique_ids(ids: Iterable[str], where: str | os.PathLike) -> None:
    """Refuse a dataset in which a sample id appears more than once, naming the ids."""
    counts = Counter(ids)
    dups = [(i, n) for i, n in counts.items() if n > 1]
    if dups:
        shown = ", ".join(f"{i!r} ({n}x)" for i, n in dups[:5])
        more = f" and {len(dups) - 5} more" if len(dups) > 5 else ""
        raise DatasetFormatError(
            f"duplicate sample ids: {shown}{more}; every sample needs its own id (set 'id' in the file)",
            where,
        )
