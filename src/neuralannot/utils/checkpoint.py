"""Read torch files (checkpoints, state dicts) without running code from them, with one-line errors.

Every torch file the project reads goes through :func:`read_checkpoint`: ``torch.load`` with
``weights_only=True`` (torch's restricted unpickler: tensors, containers, numbers, strings), and
any failure, a refused global included, becomes a :class:`CheckpointError` (a ``ValueError``, so
the CLI reports it in one line with exit code 2) naming the file.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

__all__ = ["CheckpointError", "read_checkpoint"]


class CheckpointError(ValueError):
    """A torch file is missing, unreadable, or holds objects the weights-only loader refuses."""


def _reason(err: BaseException) -> str:
    """The informative line of torch's (many-line) weights-only error, else the first line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    lines = [ln.strip() for ln in re.split(r"[\n\t]", text) if ln.strip()]
    pick = next((ln for ln in lines if "GLOBAL" in ln or "Unsupported" in ln), lines[0] if lines else "")
    pick = pick.replace("WeightsUnpickler error:", "").split(" Please use")[0].strip()
    return f"{type(err).__name__}: {' '.join(pick.split())}" if pick else type(err).__name__


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)``; errors are one-line :class:`CheckpointError`."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path}: no such file")
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol warnings on non-checkpoint files
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is reported the same way
        refused = "weights only load failed" in str(err).lower()
        hint = " (refused: holds objects other than tensors and plain data)" if refused else ""
        raise CheckpointError(f"cannot read {what} {path}{hint}: {_reason(err)}") from None
