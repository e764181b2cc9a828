"""Per-sample stages after annotation (beyond the paper): the shared batch loop, resume folders and the
in-place file rewrite.

A stage takes one record per sample and returns them refined in batches of a fixed partition; with a
``parts_dir`` each finished batch is saved as a part file (:class:`~neuralannot.io.pseudo_gt.PartWriter`)
and a rerun reuses it, so an interrupted stage resumes to the same records. The stages:
:mod:`~neuralannot.annotators.wrist_refine` (MoCap bodies: the wrists to the person masks) and
:mod:`~neuralannot.annotators.face_refine` (faces from 2D: size and rigid head to the landmarks),
:mod:`~neuralannot.annotators.joint_refit` (MoCap bodies, hands and faces: every group to the 3D joints);
:mod:`~neuralannot.annotators.finish` picks those that end a config's annotation.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from tqdm import tqdm

from neuralannot.io.pseudo_gt import PartWriter, PseudoGT, read_parts, read_pseudo_gt, write_pseudo_gt

log = logging.getLogger(__name__)

#: the quality / summary names of the stages a config can end with (:mod:`~neuralannot.annotators.finish`)
STAGE_KEYS = ("wrist_refine", "face_refine", "joint_refine")


def resumable_batches(
    samples: Sequence,
    batches: Sequence[Sequence[int]],
    compute: Callable[[list[int]], list[PseudoGT]],
    name: str,
    progress: bool = False,
    parts_dir: str | Path | None = None,
) -> tuple[list[PseudoGT | None], int, float]:
    """``compute(ids)`` (one record per index of ``samples``, in order) over ``batches`` of indices.

    With ``parts_dir`` each computed batch is saved as a part file and a batch whose samples are all
    saved there is read back instead (the folder must belong to this call's inputs). Returns the
    records in sample order (None where no batch covers a sample), how many were read back, and the
    wall time."""
    done = read_parts(parts_dir) if parts_dir is not None else {}
    if done:
        log.info("%s: resuming, %d samples already done in %s", name, len(done), parts_dir)
    out: list[PseudoGT | None] = [None] * len(samples)
    resumed, t0 = 0, time.perf_counter()
    chunk = max(map(len, batches), default=1)
    writer = PartWriter(parts_dir, chunk_size=chunk) if parts_dir is not None else None
    with writer if writer is not None else nullcontext():
        for ids in tqdm(batches, desc=name, disable=not progress, leave=False):
            ids = list(ids)
            if all(samples[i].id in done for i in ids):
                for i in ids:
                    out[i] = done[samples[i].id]
                resumed += len(ids)
                continue
            recs = compute(ids)
            for i, r in zip(ids, recs, strict=True):
                out[i] = r
                if writer is not None:
                    writer.write(r)
            if writer is not None:
                writer.flush()
    return out, resumed, time.perf_counter() - t0


def run_batches(
    samples: Sequence,
    records: Sequence[PseudoGT],
    refine_batch: Callable[[list, list[PseudoGT]], list[PseudoGT]],
    batch_size: int,
    name: str,
    progress: bool = False,
    parts_dir: str | Path | None = None,
) -> tuple[list[PseudoGT], float]:
    """``refine_batch(samples, records)`` over fixed batches of ``samples`` (resumable as
    :func:`resumable_batches`); returns the records in sample order and the wall time. Every sample
    needs a record (ValueError naming them otherwise)."""
    by_id = {r.sample_id: r for r in records}
    missing = [s.id for s in samples if s.id not in by_id]
    if missing:
        raise ValueError(f"{name}: {len(missing)} samples have no pseudo-GT, e.g. {missing[:3]}")
    batches = [range(i, min(i + batch_size, len(samples))) for i in range(0, len(samples), batch_size)]

    def compute(ids: list[int]) -> list[PseudoGT]:
        batch = [samples[i] for i in ids]
        return refine_batch(batch, [by_id[s.id] for s in batch])

    out, _, wall = resumable_batches(samples, batches, compute, name, progress, parts_dir)
    return out, wall


def stage_summary(name: str, out: list[PseudoGT], wall: float, options) -> dict:
    """A stage's summary: samples, ``refined`` (records carrying ``quality[name]``), speed, options."""
    refined = sum(name in r.quality for r in out)
    log.info("%s: %d / %d samples refined, %.1f s", name, refined, len(out), wall)
    return {"method": name.replace("_", "-"), "samples": len(out), "refined": refined, "wall_s": wall,
            "samples_per_s": len(out) / max(wall, 1e-9), **vars(options)}  # fmt: skip


def stage_digest(records: Sequence[PseudoGT], options) -> str:
    """Short hash of the input records' parameters and the options: names a stage's resume folder."""
    digest = hashlib.sha1((type(options).__name__ + repr(sorted(vars(options).items()))).encode())
    for r in sorted(records, key=lambda r: r.sample_id):
        digest.update(r.sample_id.encode())
        for k in sorted(r.params):
            digest.update(k.encode() + np.ascontiguousarray(r.params[k], dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def run_stage(
    stage: Callable,
    options,
    samples: Sequence,
    records: Sequence[PseudoGT],
    work_dir: str | Path,
    body_model="anny",
    progress: bool = False,
    device: str = "cpu",
) -> tuple[list[PseudoGT], dict]:
    """``stage`` (``refine_wrists`` or ``refine_face_size``) over ``records`` with its finished batches in
    ``work_dir/<stage>/<digest of the input records and options>``, so an interrupted stage resumes and
    another input never reuses them. Returns the stage's records and summary."""
    parts = Path(work_dir) / stage.__name__ / stage_digest(records, options)
    return stage(samples, records, body_model, options, progress, parts, device)


def stage_key(summary: dict) -> str:
    """The name a stage's summary and its records' quality entry go by (``wrist_refine``, ...)."""
    return summary["method"].replace("-", "_")


def refine_file(stage: Callable, options, samples: Sequence, path: str | Path, work_dir: str | Path,
                body_model="anny", progress: bool = False, device: str = "cpu") -> dict:  # fmt: skip
    """:func:`run_stage` on the pseudo-GT file ``path`` in place (atomically; its metadata gains the
    summary under :func:`stage_key`)."""
    records, meta = read_pseudo_gt(path)
    refined, summary = run_stage(stage, options, samples, records, work_dir, body_model, progress, device)
    write_pseudo_gt(path, refined, {**meta, stage_key(summary): summary})
    return summary
