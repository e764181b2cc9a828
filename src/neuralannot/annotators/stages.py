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


def run_batches(
    samples: Sequence,
    records: Sequence[PseudoGT],
    refine_batch: Callable[[list, list[PseudoGT]], list[PseudoGT]],
    batch_size: int,
    name: str,
    progress: bool = False,
    parts_dir: str | Path | None = None,
) -> tuple[list[PseudoGT], float]:
    """``refine_batch(samples, records)`` over fixed batches of ``samples``; returns the records in
    sample order and the wall time. Every sample needs a record (ValueError naming them otherwise)."""
    by_id = {r.sample_id: r for r in records}
    missing = [s.id for s in samples if s.id not in by_id]
    if missing:
        raise ValueError(f"{name}: {len(missing)} samples have no pseudo-GT, e.g. {missing[:3]}")
    done = read_parts(parts_dir) if parts_dir is not None else {}
    if done:
        log.info("%s: resuming, %d samples already done in %s", name, len(done), parts_dir)
    out, t0 = [], time.perf_counter()
    writer = PartWriter(parts_dir, chunk_size=batch_size) if parts_dir is not None else nullcontext()
    with writer:
        for i in tqdm(range(0, len(samples), batch_size), desc=name, disable=not progress, leave=False):
            batch = list(samples[i : i + batch_size])
            if all(s.id in done for s in batch):
                out += [done[s.id] for s in batch]
                continue
            recs = refine_batch(batch, [by_id[s.id] for s in batch])
            out += recs
            if parts_dir is not None:
                for r in recs:
                    writer.write(r)
                writer.flush()
    return out, time.perf_counter() - t0


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
