"""The stages that end a config's annotation (:mod:`~neuralannot.annotators.stages`): the joint refit
for MoCap bodies, hands and faces, the wrist stage for MoCap bodies that read the masks, the
face-size stage for faces from 2D."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from torch import distributed as dist

from neuralannot.annotators.face_refine import FaceRefineOptions, refine_face_size
from neuralannot.annotators.joint_refit import JointRefitOptions, refine_joints_3d
from neuralannot.annotators.stages import refine_file, stage_key
from neuralannot.annotators.training import init_distributed
from neuralannot.annotators.wrist_refine import WristRefineOptions, refine_wrists


def config_stages(cfg, masked: bool = True) -> list[tuple[Callable, object]]:
    """``(stage, options)`` of the stages that end annotation of ``cfg``: the joint refit
    (``joint_refit_steps``), the wrist stage (``refines_wrists``; only for records that read the masks,
    ``masked``), the face-size stage (``refines_face``)."""
    steps = cfg.joint_refit_steps
    todo = [(refine_joints_3d, JointRefitOptions(steps=steps))] if steps else []
    todo += [(refine_wrists, WristRefineOptions())] if cfg.refines_wrists and masked else []
    return todo + ([(refine_face_size, FaceRefineOptions())] if cfg.refines_face else [])


def annotation_stages(
    cfg, samples: Sequence, path: str | Path, run_dir: str | Path, device: str = "cpu", progress: bool = False
) -> dict:
    """:func:`config_stages` of ``cfg`` on its pseudo-GT file ``path``; under torchrun the main rank
    runs them while the others wait. Returns ``{stage key: summary}`` (empty where none ran)."""
    todo = config_stages(cfg)
    if not todo:
        return {}
    info = init_distributed(device)
    out = {}
    if info.main:
        for stage, options in todo:
            summary = refine_file(stage, options, samples, path, run_dir, cfg.body_model, progress,
                                  str(info.device))  # fmt: skip
            out[stage_key(summary)] = summary
    if info.world > 1:
        dist.barrier()
    return out
