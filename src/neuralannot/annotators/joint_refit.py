"""The joint-refit stage (beyond the paper; MoCap bodies, hands and faces by default): every rotation,
the shape (a face's expression too) and the translation of a pseudo-GT refitted to the sample's 3D
joints by least squares.

The annotator's records have been swung half-way toward the joints, shape-solved and root-aligned
(:mod:`~neuralannot.bodies.swing_ik`, :mod:`~neuralannot.bodies.shape_solve`,
:func:`~neuralannot.annotators.root_solve.align_root_3d`); each of those moves one group with the
others held. Here all groups move together from the record (Adam on a local rotation offset per
joint, the shape clamped to its bounds) with no prior term: the start is the prior, and a short run
from it is the regulariser (early stopping). Kept per sample only where the mean joint error drops;
refined records get ``quality["joint_refine"]`` (the error before and after, mm). Like the other
stages (:mod:`~neuralannot.annotators.stages`) it ends annotation where the config asks for it
(``joint_refit``) and, in the comparison, every row of the same setting (SMPLify-X's too).

Hand tuning set (seed 301, 200 MoCap hands, 2 mm joint noise): MPVPE 3.57 mm → 3.23 at 100 steps,
3.37 at 1,000 (the joints' noise fitted); a proximal term on the rotation offsets (σ 2 mm against τ
3° / 8°) at 1,000 steps gave 3.37 / 3.32, no better than stopping early. Body validation set (seed
103, 400, after the wrist stage): 26.07 → 24.38 mm (MPJPE 11.9 → 9.6). Joints carry no end-bone
rotation (a wrist slot moves no H36M joint), so those get no gradient and keep the record's. Faces
(68 landmarks with 1 mm noise per axis for 52 facial actions, 6 phenotypes and two rotations) keep
gaining with more steps: face tuning set (seed 401, 200) surface error 0.520 mm → 0.466 at 100 steps,
0.400 at 1,000 (their default), 0.376 at 3,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import roma
import torch
from torch import Tensor

from neuralannot.annotators.stages import run_batches, stage_summary
from neuralannot.bodies import load_body_model
from neuralannot.bodies.joints import get_regressor, untranslated_keypoints
from neuralannot.bodies.parts import record_model_part
from neuralannot.io.pseudo_gt import PseudoGT
from neuralannot.io.pseudo_gt.files import to_body_params

__all__ = ["JointRefitOptions", "PosedModel", "refine_joints_3d", "refit_joints_3d"]

#: Adam's step on the rotation offsets (rad), the shape and expression values and the translation (m)
REFIT_LR = 2e-3
#: parameter kinds refitted as values, clamped to their bounds: the shape, and a face's expression
VALUE_KINDS = ("shape", "expression")


def _mean_error(points: Tensor, target: Tensor, w: Tensor) -> Tensor:
    """(B,) mean Euclidean joint error over the valid joints."""
    return ((points - target).norm(dim=-1) * w).sum(-1) / w.sum(-1).clamp_min(1.0)


def refit_joints_3d(model, joints: Tensor, pred: dict[str, Tensor], kp: Tensor, steps: int) -> Tensor:
    """Refit ``pred`` (rotations as matrices) to the 3D ``joints`` (B, J, 4: position, validity) for
    ``steps`` Adam steps, in place, per sample where the mean joint error drops.

    ``model``: what poses ``pred``, with ``body`` and ``keypoints(pred)`` (a :class:`PosedModel`, or
    a MoCap :class:`~neuralannot.annotators.neural.NeuralAnnotator`); ``kp``: its keypoints of
    ``pred`` without translation (B, J, 3). Returns the keypoints (without translation) of the
    parameters kept.
    """
    target, w = joints[..., :3], (joints[..., 3] > 0).to(kp.dtype)
    if steps <= 0:
        return kp
    specs = model.body.param_specs
    rotations = [k for k in pred if k in specs and specs[k].kind == "rotation"]
    values = [k for k in pred if k in specs and specs[k].kind in VALUE_KINDS]
    with torch.enable_grad():
        offsets = {k: pred[k].new_zeros(*pred[k].shape[:-2], 3, requires_grad=True) for k in rotations}
        free = {k: pred[k].detach().clone().requires_grad_(True) for k in (*values, "trans")}
        opt = torch.optim.Adam([*offsets.values(), *free.values()], lr=REFIT_LR)

        def current() -> dict[str, Tensor]:
            moved = {k: pred[k].detach() @ roma.rotvec_to_rotmat(d) for k, d in offsets.items()}
            return {**pred, **moved, **free}

        for _ in range(steps):
            points = model.keypoints(current()) + free["trans"][:, None]
            # squared error in cm² per valid joint: the scale only sets Adam's first steps apart
            loss = ((points - target).square().sum(-1) * w).sum(-1) / w.sum(-1).clamp_min(1.0)
            opt.zero_grad()
            (1e4 * loss.sum()).backward()
            opt.step()
            with torch.no_grad():
                for k in values:
                    if specs[k].bounds is not None:
                        free[k].clamp_(*specs[k].bounds)
    with torch.no_grad():
        refit = {k: v.detach() for k, v in current().items()}
        kp_new = model.keypoints(refit)
        better = _mean_error(kp_new + refit["trans"][:, None], target, w) < _mean_error(
            kp + pred["trans"][:, None], target, w
        )
        for k in (*rotations, *values, "trans"):
            pred[k] = torch.where(better.view((-1,) + (1,) * (pred[k].dim() - 1)), refit[k], pred[k])
        return torch.where(better[:, None, None], kp_new, kp)


@dataclass
class JointRefitOptions:
    """Adam ``steps`` per record (:data:`~neuralannot.annotators.config.JOINT_REFIT_STEPS` by default)."""

    steps: int = 100
    batch_size: int = 64


class PosedModel:
    """A body model and a joint set's regressor, read as :func:`refit_joints_3d` reads an annotator:
    ``body`` and ``keypoints(params)`` (without the translation)."""

    def __init__(self, body, joint_set: str):
        self.body, self.regressor = body, get_regressor(body, joint_set)

    def keypoints(self, pred: dict[str, Tensor]) -> Tensor:
        return untranslated_keypoints(self.body, self.regressor, pred)


def refine_joints_3d(
    samples: Sequence,
    records: Sequence[PseudoGT],
    body_model="anny",
    options: JointRefitOptions | None = None,
    progress: bool = False,
    parts_dir: str | Path | None = None,
    device: str = "cpu",
) -> tuple[list[PseudoGT], dict]:
    """``records`` (one per sample, any order) refitted to the samples' 3D joints; returns the records
    in sample order and a summary (``parts_dir``: resume folder, as
    :func:`~neuralannot.annotators.stages.run_batches`). Samples without 3D joints keep their record."""
    opt = options or JointRefitOptions()
    models: dict[tuple[str, str], PosedModel] = {}

    def posed(part: str, joint_set: str) -> PosedModel:
        if (part, joint_set) not in models:
            given = not isinstance(body_model, (str, Path))
            body = body_model if given else load_body_model(body_model, part=part).to(device).eval()
            models[(part, joint_set)] = PosedModel(body, joint_set)
        return models[(part, joint_set)]

    def batch_fn(batch, recs):
        out = list(recs)
        groups: dict[tuple[str, str], list[int]] = {}
        for j, (s, r) in enumerate(zip(batch, recs, strict=True)):
            if s.joints_3d is not None and (np.asarray(s.joints_3d)[:, 3] > 0).sum() >= 3:
                groups.setdefault((record_model_part(r.part, r.side), s.joint_set), []).append(j)
        for (part, joint_set), idx in groups.items():
            refined = _refine(posed(part, joint_set), [batch[j] for j in idx], [recs[j] for j in idx], opt)
            for j, r in zip(idx, refined, strict=True):
                out[j] = r
        return out

    out, wall = run_batches(samples, records, batch_fn, opt.batch_size, "joint_refine", progress, parts_dir)
    return out, stage_summary("joint_refine", out, wall, opt)


def _refine(model: PosedModel, samples: list, recs: list[PseudoGT], opt: JointRefitOptions) -> list[PseudoGT]:
    body = model.body
    dev = body.device
    params = {k: v.to(dev) for k, v in to_body_params(recs, body).items() if k in body.param_specs}
    specs = body.param_specs
    pred = {k: roma.rotvec_to_rotmat(v) if specs[k].kind == "rotation" else v for k, v in params.items()}
    joints = torch.as_tensor(np.stack([s.joints_3d for s in samples]), dtype=torch.float32, device=dev)
    target, w = joints[..., :3], (joints[..., 3] > 0).float()
    kp = model.keypoints(pred)
    before = 1000 * _mean_error(kp + pred["trans"][:, None], target, w)
    kp = refit_joints_3d(model, joints, pred, kp, opt.steps)
    after = 1000 * _mean_error(kp + pred["trans"][:, None], target, w)
    moved = [k for k in pred if specs[k].kind in ("rotation", *VALUE_KINDS) or k == "trans"]
    out = []
    for j, r in enumerate(recs):
        if float(after[j]) < float(before[j]):
            stored = {
                k: roma.rotmat_to_rotvec(pred[k][j]) if specs[k].kind == "rotation" else pred[k][j]
                for k in moved
            }
            new = {k: v.cpu().numpy().astype(np.float32) for k, v in stored.items()}
            info = {"err0_mm": float(before[j]), "err_mm": float(after[j])}
            r = replace(r, params={**r.params, **new}, quality={**r.quality, "joint_refine": info})
        out.append(r)
    return out
