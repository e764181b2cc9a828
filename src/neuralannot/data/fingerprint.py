"""Which samples a pseudo-GT was made from: a fingerprint of their ids and keypoints.

Sample ids repeat across datasets (every synthetic face set has ``synth_face/0000000`` …), so a
pseudo-GT file matched by id to another set would be evaluated, reported or exported against samples it
was not made from, silently. Writers store :func:`samples_fingerprint` of the samples they annotated in
the file's sidecar (``samples_fingerprint``); readers with a dataset call :func:`other_samples` to
warn. The fingerprint covers the ids and the 2D/3D keypoints (float32), sorted by id, so it does not
depend on the samples' order, their image paths or the folder's place on disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping

import numpy as np

__all__ = ["FINGERPRINT_KEY", "other_samples", "samples_fingerprint"]

#: the sidecar key
FINGERPRINT_KEY = "samples_fingerprint"


def samples_fingerprint(samples: Iterable, ids: Collection[str] | None = None) -> str:
    """16 hex of the ids and keypoints of ``samples`` (only those in ``ids`` when given), by id."""
    h = hashlib.sha256()
    for s in sorted((s for s in samples if ids is None or s.id in ids), key=lambda s: s.id):
        h.update(s.id.encode() + b"\0")
        for a in (s.joints_2d, s.joints_3d):
            h.update(b"-" if a is None else np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def other_samples(meta: Mapping, record_ids: Collection[str], samples: Iterable) -> str | None:
    """A one-line warning when the pseudo-GT whose sidecar is ``meta`` was made from other samples than
    ``samples`` with the same ids; None when they match or cannot be compared (no fingerprint stored,
    or some record ids are not among the samples)."""
    stored = meta.get(FINGERPRINT_KEY)
    samples = list(samples)
    if not stored or not set(record_ids) <= {s.id for s in samples}:
        return None
    now = samples_fingerprint(samples, set(record_ids))
    if now == stored:
        return None
    made = f" (made from {meta['data']})" if meta.get("data") else ""
    return (f"the pseudo-GT was made from other samples than these{made}: the same ids, other keypoints "
            f"(fingerprint {stored} != {now}); its numbers compare it with samples it was not fitted to")
