"""Wrist refinement to the person masks (beyond the paper): a last per-sample stage for any body pseudo-GT.

No body joint set (H36M-17, COCO-17) carries the wrist rotations, and on the synthetic MoCap test set
they are the largest single source of mesh error for every method (BENCHMARKS.md, fourteenth session:
GT wrists alone take the annotator's MPVPE from 31.2 to 23.6 mm, SMPLify-X's from 32.1 to 25.0). The
mask sees the hands, but in a fit of the whole body, or in the annotator's loss, their few outline
points are drowned by the rest. Here every other parameter is kept and only the two wrist rotations
move, by Adam on the silhouette loss (data/silhouette.py) with a small L2 pull toward the start: with
everything else GT this recovers 12° of their 32° error, from the annotator's records 7° (tuned on
validation seed 103, 48 samples). On the test set (seed 777, 2,000) it takes the annotator's MPVPE
from 31.2 to 27.8 mm and the masked SMPLify-X's from 32.1 to 29.1 (BENCHMARKS.md).

It ends ``annotate`` wherever the annotator reads the masks (``AnnotatorConfig.wrist_stage``, unset:
MoCap bodies; resumable: :mod:`~neuralannot.annotators.stages`), and in the comparison every row that reads
the masks gets it too (like for like). Samples without a usable mask (or camera) keep their record; a
refinement is kept only where it lowers the silhouette loss. Records must be in the sample's camera
frame (MoCap records, wild body records); it runs on ``device`` (annotation's). Every refined record
gets ``quality["wrist_refine"]`` (the loss before and after).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import roma
import torch

from neuralannot.annotators.stages import run_batches, stage_summary
from neuralannot.bodies import load_body_model
from neuralannot.data.silhouette import FIT_CROP, batch_silhouette_loss, silhouette_batch
from neuralannot.io.pseudo_gt import PseudoGT
from neuralannot.io.pseudo_gt.files import to_body_params

log = logging.getLogger(__name__)

#: ``body_pose`` slots of the wrists in SMPL order (Anny's body slots, SMPL, SMPL-X): left, right.
WRIST_SLOTS = (19, 20)


@dataclass
class WristRefineOptions:
    """Adam ``steps`` at ``lr`` on the axis-angle change of each wrist; ``prior``: weight of its |Δ|²
    against the silhouette loss (crop units); ``vertices``: silhouette vertices (farthest-point)."""

    steps: int = 150
    lr: float = 0.02
    prior: float = 1e-4
    vertices: int = 4096
    batch_size: int = 64


def refine_wrists(
    samples: Sequence,
    records: Sequence[PseudoGT],
    body_model="anny",
    options: WristRefineOptions | None = None,
    progress: bool = False,
    parts_dir: str | Path | None = None,
    device: str = "cpu",
) -> tuple[list[PseudoGT], dict]:
    """``records`` (one per sample, any order) with the wrists refined to the samples' masks; returns
    the records in sample order and a summary. With ``parts_dir`` each finished batch is saved there
    and a rerun reuses it (the batches are a fixed partition: a resumed run gives the same records)."""
    opt = options or WristRefineOptions()
    body = load_body_model(body_model, part="body") if isinstance(body_model, str) else body_model
    body.to(device)
    if "body_pose" not in body.param_specs or body.param_specs["body_pose"].shape[0] <= max(WRIST_SLOTS):
        raise ValueError(f"wrist refinement needs a body model with SMPL-ordered body_pose, not {body.name}")

    def batch_fn(batch, recs):
        return _refine_records(body, batch, recs, opt)

    out, wall = run_batches(samples, records, batch_fn, opt.batch_size, "wrist_refine", progress, parts_dir)
    return out, stage_summary("wrist_refine", out, wall, opt)


def _refine_records(body, batch: list, recs: list[PseudoGT], opt: WristRefineOptions) -> list[PseudoGT]:
    """One batch's records, each with its wrists refined where its mask loss falls."""
    sil = silhouette_batch(body, batch, FIT_CROP, opt.vertices)
    if sil is None:
        return recs
    params = {k: v.to(body.device) for k, v in to_body_params(recs, body).items() if k in body.param_specs}
    before, after, wrists = _refine_batch(body, params, sil, opt)
    out = []
    for j, r in enumerate(recs):
        if bool(sil["sil_valid"][j].item()) and after[j] < before[j]:
            pose = np.array(r.params["body_pose"], dtype=np.float32).reshape(-1, 3).copy()
            pose[list(WRIST_SLOTS)] = wrists[j]
            info = {"loss0": float(before[j]), "loss": float(after[j])}
            quality = {**r.quality, "wrist_refine": info}
            r = replace(r, params={**r.params, "body_pose": pose}, quality=quality)
        out.append(r)
    return out


def _refine_batch(body, params: dict, sil: dict, opt: WristRefineOptions):
    """(loss before (B,), loss after (B,), refined wrist axis-angles (B, 2, 3)) of one batch."""
    slots = list(WRIST_SLOTS)
    rows = torch.arange(len(params["body_pose"]), device=body.device)

    def loss_of(p: dict) -> torch.Tensor:
        return batch_silhouette_loss(body, p, sil, rows)

    start = roma.rotvec_to_rotmat(params["body_pose"][:, slots])
    delta = torch.zeros(len(start), len(slots), 3, dtype=start.dtype, device=start.device, requires_grad=True)
    adam = torch.optim.Adam([delta], lr=opt.lr)

    def posed(d: torch.Tensor) -> dict:
        pose = params["body_pose"].clone()
        pose[:, slots] = roma.rotmat_to_rotvec(start @ roma.rotvec_to_rotmat(d))
        return {**params, "body_pose": pose}

    with torch.enable_grad():
        for _ in range(opt.steps):
            loss = loss_of(posed(delta)).sum() + opt.prior * delta.square().sum()
            adam.zero_grad()
            loss.backward()
            adam.step()
    with torch.no_grad():
        before, final = loss_of(params), posed(delta.detach())
        after = loss_of(final)
    return before.cpu().numpy(), after.cpu().numpy(), final["body_pose"][:, slots].cpu().numpy()
