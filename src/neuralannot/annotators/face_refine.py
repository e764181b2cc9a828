"""Face-size refinement to the 2D landmarks (beyond the paper): a last per-sample stage for faces from 2D.

From 2D landmarks a face's size trades with its depth; what tells it is the landmarks' proportions
(Anny's age, gender and proportions change both). Per-sample fits read that (face tuning set, seed
402, 200: 2D SMPLify-X's face radius correlates 0.55 with the GT's, whose spread is 12 %); the
annotator, trained on the reprojection loss in a crop camera where the size is free, predicts a nearly
constant one (correlation 0.21, spread 1 mm), and its rigid surface error, mostly scale, was 16 %
behind SMPLify-X's. Here the expression is kept and only the phenotypes (through a logit, so they stay
in [0, 1]) and the head's rigid placement (a rotation of ``root_pose`` and a translation) move, by Adam
on the mean landmark error in the record's own camera (tuned on seed 402: surface 4.20 → 3.53 mm
against SMPLify-X's 3.62; BENCHMARKS.md, fifteenth session). A refinement is kept per sample only where
the error falls; refined records get ``quality["face_refine"]`` (the error before and after, px).
Samples without a record camera or valid landmarks keep their record.
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
from neuralannot.bodies.joints import get_regressor, posed_keypoints
from neuralannot.io.pseudo_gt import PseudoGT
from neuralannot.io.pseudo_gt.files import to_body_params

log = logging.getLogger(__name__)

#: the parameters the stage moves (the rest of each record is kept)
MOVED = ("phenotype", "root_pose", "trans")


@dataclass
class FaceRefineOptions:
    """Adam ``steps`` at ``lr`` on the phenotype logits, the head's rotation change (axis-angle) and
    its translation change (m)."""

    steps: int = 1000
    lr: float = 0.01
    batch_size: int = 64


def refine_face_size(
    samples: Sequence,
    records: Sequence[PseudoGT],
    body_model="anny",
    options: FaceRefineOptions | None = None,
    progress: bool = False,
    parts_dir: str | Path | None = None,
    device: str = "cpu",
) -> tuple[list[PseudoGT], dict]:
    """``records`` (faces, one per sample, any order) with phenotypes and rigid head refitted to the
    samples' 2D landmarks; returns the records in sample order and a summary (``parts_dir``: resume
    folder, as :func:`~neuralannot.annotators.stages.run_batches`)."""
    opt = options or FaceRefineOptions()
    body = load_body_model(body_model, part="face") if isinstance(body_model, str) else body_model
    body.to(device)
    if any(k not in body.param_specs for k in MOVED):
        raise ValueError(f"face refinement needs {', '.join(MOVED)} parameters, not {body.name}'s")
    regressors = {}

    def batch_fn(batch, recs):
        usable = [j for j, (s, r) in enumerate(zip(batch, recs, strict=True)) if _usable(s, r)]
        if not usable:
            return recs
        js = batch[usable[0]].joint_set
        if any(batch[j].joint_set != js for j in usable):
            raise ValueError(f"face refinement: one batch mixes landmark sets ({batch[usable[0]].id})")
        reg = regressors.setdefault(js, get_regressor(body, js))
        refined = _refine(body, reg, [batch[j] for j in usable], [recs[j] for j in usable], opt)
        out = list(recs)
        for j, r in zip(usable, refined, strict=True):
            out[j] = r
        return out

    out, wall = run_batches(samples, records, batch_fn, opt.batch_size, "face_refine", progress, parts_dir)
    return out, stage_summary("face_refine", out, wall, opt)


def _usable(sample, record: PseudoGT) -> bool:
    j2d = sample.joints_2d
    return record.camera is not None and j2d is not None and bool((np.asarray(j2d)[:, 2] > 0).any())


def _refine(body, reg, samples: list, recs: list[PseudoGT], opt: FaceRefineOptions) -> list[PseudoGT]:
    dev = body.device
    params = {k: v.to(dev) for k, v in to_body_params(recs, body).items() if k in body.param_specs}
    focal = torch.tensor([r.camera["focal"] for r in recs], dtype=torch.float32, device=dev)
    center = torch.tensor([r.camera["princpt"] for r in recs], dtype=torch.float32, device=dev)
    target = torch.as_tensor(np.stack([s.joints_2d for s in samples]), dtype=torch.float32, device=dev)
    valid = (target[..., 2] > 0).float()

    def error(p: dict) -> torch.Tensor:  # (B,) mean landmark error, px
        kp = posed_keypoints(body, reg, p)
        uv = kp[..., :2] / kp[..., 2:3].clamp_min(1e-6) * focal[:, None] + center[:, None]
        return ((uv - target[..., :2]).norm(dim=-1) * valid).sum(1) / valid.sum(1).clamp_min(1.0)

    rot0 = roma.rotvec_to_rotmat(params["root_pose"])
    logit = torch.logit(params["phenotype"].clamp(1e-3, 1 - 1e-3)).clone().requires_grad_(True)
    turn = torch.zeros_like(params["root_pose"], requires_grad=True)
    shift = torch.zeros_like(params["trans"], requires_grad=True)

    def moved() -> dict:
        root = roma.rotmat_to_rotvec(roma.rotvec_to_rotmat(turn) @ rot0)
        trans = params["trans"] + shift
        return {**params, "phenotype": torch.sigmoid(logit), "root_pose": root, "trans": trans}

    adam = torch.optim.Adam([logit, turn, shift], lr=opt.lr)
    with torch.enable_grad():
        for _ in range(opt.steps):
            loss = error(moved()).sum()
            adam.zero_grad()
            loss.backward()
            adam.step()
    with torch.no_grad():
        before, final = error(params).cpu().numpy(), moved()
        after = error(final).cpu().numpy()
        final = {k: final[k].cpu().numpy() for k in MOVED}
    out = []
    for j, r in enumerate(recs):
        if np.isfinite(after[j]) and after[j] < before[j]:
            new = {k: final[k][j].astype(np.float32) for k in MOVED}
            info = {"err0_px": float(before[j]), "err_px": float(after[j])}
            r = replace(r, params={**r.params, **new}, quality={**r.quality, "face_refine": info})
        out.append(r)
    return out
