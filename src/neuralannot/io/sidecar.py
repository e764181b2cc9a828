"""The ``<file>.meta.json`` sidecar of a pseudo-GT file, tied to the file's bytes.

Two files cannot be replaced in one atomic step, so a run killed between writing a pseudo-GT file
and its sidecar would leave a new file next to the old metadata. The sidecar therefore records the
SHA-256 of the file it describes (``data_sha256``); on reading, a sidecar whose digest does not match
(an interrupted write, or a file edited or replaced since) is ignored with a warning, so the
metadata returned never disagrees with the records. Sidecars without a digest (older files) are
read as they are.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neuralannot.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)
DIGEST_KEY = "data_sha256"


def sidecar_path(path: str | Path) -> Path:
    """``<file>.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_sidecar(path: str | Path, meta: Mapping[str, Any]) -> Path:
    """Write ``meta`` plus the digest of ``path`` (already written) atomically as its sidecar."""
    out = sidecar_path(path)
    atomic_write_json(out, {**meta, DIGEST_KEY: file_sha256(path)})
    return out


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar metadata of ``path``: ``{}`` when absent or when it belongs to other bytes.
    Raises :class:`json.JSONDecodeError` for a malformed sidecar."""
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    meta = json.loads(side.read_text(encoding="utf-8"))
    want = meta.get(DIGEST_KEY) if isinstance(meta, dict) else None
    if want is not None and want != file_sha256(path):
        log.warning("ignoring %s: it describes other contents than %s (interrupted write or file "
                    "changed since)", side, path)  # fmt: skip
        return {}
    return meta
