"""High-level jobs: load a dataset, build the annotator for it, train on it, annotate it.

``annotate`` is the paper's one-stage NeuralAnnot: train on the set, then run on the SAME set.
"""

from __future__ import annotations

import logging
from pathlib import Path

from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.neural import NeuralAnnotator
from neuralannot.annotators.predict import predict
from neuralannot.annotators.training import train
from neuralannot.bodies import load_body_model
from neuralannot.data.adapters.folder import SkipReport
from neuralannot.data.adapters.registry import load_any
from neuralannot.data.sample import Sample, SampleError

log = logging.getLogger(__name__)
#: Sample part → body-model part (hands are annotated with the right-hand model, left ones flipped).
MODEL_PART = {
    "body": "body",
    "wholebody": "wholebody",
    "face": "face",
    "hand": "hand",
    "lhand": "hand",
    "rhand": "hand",
}


def load_samples(
    data: str | Path,
    part: str | None = None,
    skip_bad: bool = False,
    needs_3d: bool = False,
    limit: int | None = None,
    images: bool = False,
    keep_gt: bool = True,
    joint_map: str | Path | dict | None = None,
) -> tuple[list[Sample], SkipReport]:
    """Read a dataset into memory (joints and boxes only; images stay on disk).

    ``part`` keeps the samples of that part (``hand`` keeps both hands). Samples unusable for the
    job (no valid joint; no 3D joints in MoCap mode) raise :class:`SampleError`, or are skipped and
    counted with ``skip_bad``; with ``images`` and ``skip_bad`` so are samples whose image cannot be
    decoded. ``keep_gt=False`` drops the evaluation-only GT (``gt``) to save memory on big sets.
    ``joint_map``: dataset joint name → keypoint name (folder format; ``--joint-map``).
    """
    report = SkipReport()
    samples: list[Sample] = []
    for s in load_any(data, skip_bad=skip_bad, report=report, joint_map=joint_map):
        if part is not None and MODEL_PART.get(s.part) != MODEL_PART.get(part, part):
            continue
        problem = None
        if not (s.joints_2d[:, 2] > 0).any() and (s.joints_3d is None or not (s.joints_3d[:, 3] > 0).any()):
            problem, kind = "no valid joint", "no_joints"
        elif needs_3d and (s.joints_3d is None or not (s.joints_3d[:, 3] > 0).any()):
            problem, kind = "MoCap mode needs GT 3D joints, the sample has none", "no_3d"
        if problem:
            if not skip_bad:
                raise SampleError(problem, s.id, str(data), kind=kind)
            report.skip(kind, f"{s.id}: {problem}")
            continue
        if not keep_gt:
            s.gt = None
        samples.append(s)
        if limit is not None and len(samples) >= limit:
            break
    if skip_bad and images:
        from neuralannot.data.crops import drop_unreadable_images

        samples = drop_unreadable_images(samples, report)
    if not samples:
        raise SampleError(f"no usable samples of part {part or 'any'!r} in {data} ({report})")
    sets = {s.joint_set for s in samples}
    if len(sets) > 1:
        raise SampleError(f"{data}: samples use several joint sets {sorted(sets)}; annotate them separately")
    return samples, report


def build_annotator(cfg: AnnotatorConfig, joint_set: str) -> NeuralAnnotator:
    body = load_body_model(cfg.body_model, part=MODEL_PART.get(cfg.part, cfg.part))
    return NeuralAnnotator(cfg, body, joint_set)


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
) -> dict:
    """Train on ``data`` and annotate the same samples into ``out``; returns a summary dict."""
    samples, report = load_samples(data, cfg.part, skip_bad, needs_3d=cfg.mode == "mocap", limit=limit,
                                   images=cfg.uses_image, keep_gt=False, joint_map=joint_map)  # fmt: skip
    log.info("%d samples of part %s (%s)", len(samples), cfg.part, report)
    model = build_annotator(cfg, samples[0].joint_set)
    run_dir = Path(work_dir) / cfg.digest()
    fit = train(model, samples, run_dir, device=device, resume=resume, progress=progress)
    ann = predict(
        model,
        samples,
        out,
        run_dir,
        batch_size=max(cfg.batch_size, 64),
        device=device,
        progress=progress,
        meta={"data": str(data)},
    )
    return {
        "samples": len(samples),
        "skipped": report.as_dict(),
        "train": fit,
        "annotate": ann,
        "config": cfg.to_dict(),
        "work_dir": str(run_dir),
    }
