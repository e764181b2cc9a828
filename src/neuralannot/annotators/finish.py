"""The stages that end a config's annotation (:mod:`~neuralannot.annotators.stages`): the wrist stage
for MoCap bodies that read the masks, the face-size stage for faces from 2D."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import distributed as dist

from neuralannot.annotators.face_refine import FaceRefineOptions, refine_face_size
from neuralannot.annotators.stages import refine_file
from neuralannot.annotators.training import init_distributed
from neuralannot.annotators.wrist_refine import WristRefineOptions, refine_wrists


def annotation_stages(
    cfg, samples: Sequence, path: str | Path, run_dir: str | Path, device: str = "cpu", progress: bool = False
) -> dict:
    """The stages that end annotation of ``cfg`` on its pseudo-GT file ``path`` (``refines_wrists``:
    the wrist stage; ``refines_face``: the face-size stage); under torchrun the main rank runs them
    while the others wait. Returns ``{stage name: summary}`` (empty where none ran)."""
    todo = [(refine_wrists, WristRefineOptions(), "wrist_refine")] if cfg.refines_wrists else []
    todo += [(refine_face_size, FaceRefineOptions(), "face_refine")] if cfg.refines_face else []
    if not todo:
        return {}
    info = init_distributed(device)
    out = {}
    if info.main:
        for stage, options, key in todo:
            out[key] = refine_file(stage, options, samples, path, run_dir, cfg.body_model, progress,
                                   str(info.device))  # fmt: skip
    if info.world > 1:
        dist.barrier()
    return out
