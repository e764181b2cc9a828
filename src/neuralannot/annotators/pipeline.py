"""High-level jobs: load a dataset, build the annotator for it, train on it, annotate it.

``annotate`` is the paper's one-stage NeuralAnnot: train on the set, then run on the SAME set.
"""

from __future__ import annotations

import logging
from pathlib import Path

from neuralannot.annotators import state
from neuralannot.annotators.aux_mocap import config_aux
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.finish import annotation_stages
from neuralannot.annotators.neural import build_annotator
from neuralannot.annotators.predict import predict
from neuralannot.annotators.training import train
from neuralannot.bodies.parts import MODEL_PART
from neuralannot.data.loading import load_samples

__all__ = ["MODEL_PART", "build_annotator", "load_samples", "run_annotate"]

log = logging.getLogger(__name__)


def run_annotate(
    data: str | Path,
    out: str | Path,
    cfg: AnnotatorConfig,
    work_dir: str | Path,
    skip_bad: bool = False,
    device: str = "cpu",
    limit: int | None = None,
    resume: bool = True,
    progress: bool = True,
    joint_map: str | Path | dict | None = None,
    allow_outside_root: bool = False,
) -> dict:
    """Train on ``data`` and annotate the same samples into ``out``; returns a summary dict.

    ``cfg.aux_spec`` (wild mode; ``aux_data``, by default the embedded synthetic set for bodies and
    hands): a MoCap set with 3D joints trained jointly (one batch of it per step, its 3D joint loss
    times ``cfg.aux_weight_resolved``; :mod:`neuralannot.annotators.aux_mocap`), not annotated.

    ``cfg.part == "wholebody"``: the body, hand and face annotators on their crops, integrated
    (:mod:`neuralannot.annotators.wholebody`)."""
    samples, report = load_samples(data, cfg.part, skip_bad, needs_3d=cfg.mode == "mocap", limit=limit,
                                   images=cfg.uses_image, keep_gt=False, joint_map=joint_map,
                                   allow_outside_root=allow_outside_root)  # fmt: skip
    log.info("%d samples of part %s (%s)", len(samples), cfg.part, report)
    if cfg.part == "wholebody":  # each part's annotator with its own auxiliary set
        return _run_wholebody(samples, report, data, out, cfg, work_dir, device, progress, skip_bad)
    aux = config_aux(cfg, samples, skip_bad, allow_outside_root)
    model = build_annotator(cfg, samples[0].joint_set)
    run_dir = state.run_dir(work_dir, cfg, samples, "" if aux is None else aux.run_tag(cfg.uses_image))
    fit = train(model, samples, run_dir, device=device, resume=resume, progress=progress, aux=aux)
    ann = predict(
        model,
        samples,
        out,
        run_dir,
        batch_size=max(cfg.batch_size, 64),
        device=device,
        progress=progress,
        meta={"data": str(data)},
        resume=resume,
    )
    ann.update(annotation_stages(cfg, samples, out, run_dir, device, progress))
    return {
        "samples": len(samples),
        "skipped": report.as_dict(),
        "train": fit,
        "annotate": ann,
        "config": cfg.to_dict(),
        "work_dir": str(run_dir),
        **({"aux": aux.summary()} if aux else {}),
    }


def _run_wholebody(samples, report, data, out, cfg, work_dir, device, progress, skip_bad) -> dict:
    """``run_annotate`` for whole-body sets, with the same summary keys."""
    import time

    from neuralannot.annotators.wholebody import run_wholebody

    t0 = time.perf_counter()
    meta = {"data": str(data)}
    res = run_wholebody(samples, out, cfg, work_dir, device=device, progress=progress, meta=meta,
                        skip_bad=skip_bad)
    wall = time.perf_counter() - t0
    train_s = sum(r["train"].get("wall_s", 0.0) for r in res["parts"].values())
    n_part = sum(r["samples"] for r in res["parts"].values())
    skipped = report.as_dict()
    if res["skipped_bad_part_box"]:  # --skip-bad: whole-body samples with a bad hand / face box
        counts = skipped.setdefault("skipped", {})
        counts["part_box"] = counts.get("part_box", 0) + res["skipped_bad_part_box"]
    return {
        "samples": len(samples) - res["skipped_bad_part_box"],
        "skipped": skipped,
        "train": {"wall_s": train_s, "samples_per_s": n_part / max(train_s, 1e-9), "parts": res["parts"]},
        "annotate": {"annotated": res["samples"], "samples_per_s": res["samples"] / max(wall, 1e-9),
                     "out": res["out"], "valid": res["valid"]},
        "config": cfg.to_dict(),
        "work_dir": str(work_dir),
    }
