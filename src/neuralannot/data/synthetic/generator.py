"""Synthetic benchmark datasets rendered from Anny with known ground truth (``neuralannot synth``).

``generate(kind, n, out, seed)`` writes a shard directory readable by
:func:`neuralannot.data.adapters.folder.load_dataset`::

    out/meta.json                  schema_version 1, dataset "synth_<kind>", joint_set/joint_names,
                                   "generator" (version, kind, seed, n, shard_size, image_size, masks),
                                   "noise" (the KindSpec), "complete"; num_samples + shards once complete
    out/shard-00000.jsonl          one sample per line (folder format; written atomically)
    out/shard-00000.done           {"shard", "count", "lines"}: written last, atomically
    out/images/00000/0000000.jpg   256x256 RGB, JPEG quality 90
    out/masks/00000/0000000.png    visible pixels of the subject (1-bit PNG, occluders excluded;
                                   ``masks=False`` skips them)

Per sample: ``joints_2d`` (+ ``joints_3d`` for the 3D kinds) after the kind's noise model
(:mod:`~neuralannot.data.synthetic.scene`), ``bbox``, ``camera`` (focal, princpt), ``part``, and an
evaluation-only ``gt`` block ``{"model": "anny", "part", "params": {root_pose, body_pose | hand_pose |
head_pose, ..., phenotype, trans}, "camera", "joint_set", "joints_3d"}`` (noise-free camera-frame
joints) from which ``load_body_model("anny", part=gt["part"])`` recomputes the exact rendered
vertices (parameters are rounded to 1e-6 *before* the forward, so the stored values are exact).
``extra`` holds the mask path and what the scene / noise model did: ``truncated``, ``occluders``
(count), ``num_visible``; 2D kinds also ``sigma_px`` (noise σ at the whole subject's scale),
``num_outside``, ``num_occluded`` and ``swapped`` (the swapped left/right joint pair, when any);
hand samples ``hand_type``.

Determinism and resuming: shard ``s`` is a pure function of (seed, kind, s) — its numpy and torch
random streams are seeded from them, background pools from the seed alone, Anny runs with one
thread — so the output does not depend on ``workers`` or on interruptions. A shard counts as done
only when its marker exists with the expected count; anything else is regenerated from scratch.
One shard is written by :class:`~neuralannot.data.synthetic.shard_maker.ShardMaker`; this module
schedules shards over processes and keeps the folder consistent.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from neuralannot.bodies.joint_names import get_joint_names
from neuralannot.data.synthetic.scene import (
    KINDS,
    KindSpec,
)
from neuralannot.data.synthetic.shard_maker import ShardMaker
from neuralannot.utils.atomic import atomic_write_json

__all__ = ["GENERATOR_VERSION", "KINDS", "SynthError", "generate"]

GENERATOR_VERSION = 1


class SynthError(ValueError):
    """Bad arguments, or an output folder that holds a different synthetic dataset."""


def _shard_done(out: Path, shard: int, count: int) -> bool:
    """Whether shard ``shard`` is complete: its marker says ``count`` and its file exists."""
    name = f"shard-{shard:05d}"
    try:
        marker = json.loads((out / f"{name}.done").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker.get("count") == count and marker.get("lines") == count and (out / f"{name}.jsonl").is_file()


def _base_meta(spec: KindSpec, config: dict) -> dict:
    """meta.json of an unfinished dataset (``generate`` adds num_samples and shards at the end)."""
    names = get_joint_names(spec.joint_set)
    meta = {
        "schema_version": 1,
        "dataset": f"synth_{spec.name}",
        "joint_set": spec.joint_set,
        "num_joints": len(names),
        "joint_names": names,
        "units": "m",
        "joints_3d_frame": "camera",
        "license": "CC0-1.0 (generated from the Anny body model, CC0 data)",
        "generator": config,
        "noise": spec.describe(),
        "complete": False,
    }
    if spec.model_part != "hand":
        meta["part"] = spec.model_part
    return meta


def _check_existing(out: Path, config: dict) -> None:
    """Refuse an ``out`` that is not empty and not a synthetic dataset of the same settings (writing a
    meta.json into a folder of datasets would hide them: the folder would read as one shard folder)."""
    if out.exists() and not out.is_dir():
        raise SynthError(f"--out {out} is a file; use a new or empty folder")
    path = out / "meta.json"
    if not path.is_file():
        if out.is_dir() and any(out.iterdir()):
            raise SynthError(f"{out} is not empty and is not a synth folder (no meta.json); "
                             "use a new or empty folder")  # fmt: skip
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SynthError(f"{path} is not valid JSON ({exc}); delete it or use another folder") from None
    old = stored.get("generator") if isinstance(stored, dict) else None
    if not isinstance(old, dict) or old.get("name") != config["name"]:
        raise SynthError(f"{out} holds a dataset that synth did not write; use a new or empty folder")
    diff = {k: (old.get(k), v) for k, v in config.items() if old.get(k) != v}
    if diff:
        raise SynthError(f"{out} holds a different synthetic dataset (stored vs requested: {diff}); "
                         "use another --out or delete the folder")  # fmt: skip


def generate(
    kind: str,
    n: int,
    out: str | os.PathLike,
    seed: int = 0,
    workers: int = 1,
    shard_size: int = 500,
    image_size: int = 256,
    masks: bool = True,
    progress: bool = True,
) -> dict:
    """Write (or finish) a synthetic dataset; see the module docstring for the format.

    Args:
        kind: ``mocap | wild | wild3d | hand | face | face3d | wholebody``
            (:data:`~neuralannot.data.synthetic.scene.KINDS`).
        n: number of samples; out: output folder (created; re-running resumes it).
        seed: dataset seed; workers: processes (this one + ``workers - 1`` spawned ones, each with its
            own models and renderer, sharing the shards);
        shard_size: samples per shard file; image_size: square image side; masks: also write masks.
        progress: show a tqdm progress bar.
    Returns:
        Summary dict: kind, out, num_samples, generated (this run), shards, shards_skipped, seconds,
        samples_per_s (this run, incl. start-up), steady_samples_per_s (once every process has
        finished its first batch), workers.
    Raises:
        SynthError: bad arguments or ``out`` holding a dataset made with other settings.
    """
    if kind not in KINDS:
        raise SynthError(f"unknown kind {kind!r}; expected one of {list(KINDS)}")
    if n < 1 or shard_size < 1 or workers < 1 or image_size < 16:
        raise SynthError(f"need n, shard_size, workers >= 1 and image_size >= 16 (got {n}, {shard_size}, "
                         f"{workers}, {image_size})")  # fmt: skip
    spec, out = KINDS[kind], Path(out)
    config = {
        "name": "neuralannot.synth",
        "version": GENERATOR_VERSION,
        "kind": kind,
        "seed": int(seed),
        "n": int(n),
        "shard_size": int(shard_size),
        "image_size": int(image_size),
        "masks": bool(masks),
    }
    _check_existing(out, config)
    out.mkdir(parents=True, exist_ok=True)
    meta = _base_meta(spec, config)
    atomic_write_json(out / "meta.json", meta, indent=1)
    shards = [
        (s, min(shard_size, n - s * shard_size), s * shard_size) for s in range(math.ceil(n / shard_size))
    ]
    todo = [t for t in shards if not _shard_done(out, t[0], t[1])]
    for s, _, _ in todo:  # incomplete shards restart from scratch
        for suffix in (".done", ".jsonl"):
            (out / f"shard-{s:05d}{suffix}").unlink(missing_ok=True)
    total = sum(t[1] for t in todo)
    t0 = time.perf_counter()
    bar = _progress_bar(total, f"synth {kind}", progress)
    events: list[tuple[float, int, int]] = []  # (time, samples, process) per finished batch

    def update(k: int, pid: int = 0, now: float | None = None) -> None:
        events.append((time.monotonic() if now is None else now, k, pid))  # workers stamp their own
        bar.update(k)

    try:
        if not todo:  # a complete set: no model or GL context needed (a host without a renderer reads it)
            pass
        elif workers == 1 or len(todo) <= 1:
            _run_here(config, out, todo, update, itertools.count().__next__)
        else:
            _run_parallel(config, out, todo, workers, update)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    steady = _steady_rate(events)
    names = [f"shard-{s:05d}.jsonl" for s, _, _ in shards]
    atomic_write_json(
        out / "meta.json", {**meta, "num_samples": n, "shards": names, "complete": True}, indent=1
    )
    return {
        "kind": kind,
        "out": str(out),
        "num_samples": n,
        "generated": total,
        "shards": len(shards),
        "shards_skipped": len(shards) - len(todo),
        "seconds": round(seconds, 2),
        "samples_per_s": round(total / seconds, 1) if total else None,
        "steady_samples_per_s": steady,
        "workers": workers,
    }


def _steady_rate(events: list[tuple[float, int, int]]) -> float | None:
    """Samples/s once every process has finished its first batch (start-up excluded): the samples of
    the batches that end after that moment over the time to the last batch."""
    if not events:
        return None
    start = max(min(t for t, _, p in events if p == pid) for pid in {p for _, _, p in events})
    end = max(t for t, _, _ in events)
    n = sum(k for t, k, _ in events if t > start)
    return round(n / (end - start), 1) if n and end > start else None


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="sample", disable=not enabled, smoothing=0.1)


def _run_here(
    config: dict, out: Path, todo: list, update: Callable[[int], None], claim: Callable[[], int]
) -> None:
    """Run the shards ``todo[claim()]`` in this process until ``claim`` runs past the list; torch
    limited to one thread (determinism) and restored afterwards."""
    threads, maker = torch.get_num_threads(), None
    torch.set_num_threads(1)
    try:
        maker = _maker(config["kind"], config["seed"], config["image_size"], config["masks"])
        while (i := claim()) < len(todo):
            maker.make_shard(out, *todo[i], progress=update)
    finally:
        torch.set_num_threads(threads)
        if maker is not None:  # no GL context outlives the call (a later fork stays safe)
            maker.renderer.release()


@functools.lru_cache(maxsize=1)
def _maker(kind: str, seed: int, image_size: int, masks: bool) -> ShardMaker:
    """The last in-process :class:`ShardMaker`, kept for repeated calls (tests, resumes); its renderer
    re-creates its GL context on the next use."""
    return ShardMaker(kind, seed, image_size, masks)


def _claim(counter: Any) -> int:
    """Next task index from a shared counter."""
    with counter.get_lock():
        counter.value += 1
        return counter.value - 1


def _worker(config: dict, out: str, todo: list, counter: Any, events: Any) -> None:
    """Spawned worker: one llvmpipe and one torch thread; claims shards until none are left and
    reports ("batch", samples, pid, time) per batch or ("error", traceback)."""
    os.environ["LP_NUM_THREADS"] = "1"
    pid = os.getpid()
    try:
        torch.set_num_threads(1)
        maker = ShardMaker(config["kind"], config["seed"], config["image_size"], config["masks"])
        while (i := _claim(counter)) < len(todo):
            maker.make_shard(
                Path(out), *todo[i], progress=lambda k: events.put(("batch", k, pid, time.monotonic()))
            )
    except BaseException:
        import traceback

        events.put(("error", traceback.format_exc()))


def _run_parallel(config: dict, out: Path, todo: list, workers: int, update: Callable[..., None]) -> None:
    """This process plus ``workers - 1`` spawned ones share the shards through a counter: the main
    process starts at once (its model may be cached) and the others join when they are up."""
    ctx = mp.get_context("spawn")
    counter, events = ctx.Value("i", 0), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(config, str(out), todo, counter, events), daemon=True)
             for _ in range(min(workers, len(todo)) - 1)]  # fmt: skip

    def pump() -> None:
        while True:
            try:
                msg = events.get_nowait()
            except queue.Empty:
                return
            if msg[0] == "error":
                raise RuntimeError(f"synth worker failed:\n{msg[1]}")
            update(*msg[1:])

    def here(k: int) -> None:
        update(k)
        pump()

    try:
        for p in procs:
            p.start()
        _run_here(config, out, todo, here, lambda: _claim(counter))
        while any(p.is_alive() for p in procs):
            pump()
            time.sleep(0.05)
        pump()
        dead = [p.exitcode for p in procs if p.exitcode]
        if dead:
            raise RuntimeError(f"synth worker(s) exited with code(s) {dead}; rerun to resume")
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
