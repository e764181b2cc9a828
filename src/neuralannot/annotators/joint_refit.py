"""Annotation-time joint refit (MoCap mode; hands by default): every rotation, the shape and the
translation of the network's prediction refitted to the given 3D joints by least squares.

The network's output has already been swung half-way toward the joints, shape-solved and
root-aligned (:mod:`~neuralannot.bodies.swing_ik`, :mod:`~neuralannot.bodies.shape_solve`,
:func:`~neuralannot.annotators.root_solve.align_root_3d`); each of those moves one group with the
others held. Here all groups move together from that start (Adam on a local rotation offset per
joint, the shape clamped to its bounds) with no prior term: the network's prediction is the prior,
and a short run from it is the regulariser (early stopping). Kept per sample only where the mean
joint error drops.

Hand tuning set (seed 301, 200 MoCap hands, 2 mm joint noise): MPVPE 3.57 mm → 3.23 at 100 steps,
3.37 at 1,000 (the joints' noise fitted); a proximal term on the rotation offsets (σ 2 mm against τ
3° / 8°) at 1,000 steps gave 3.37 / 3.32, no better than stopping early.
"""

from __future__ import annotations

import roma
import torch
from torch import Tensor

__all__ = ["refit_joints_3d"]

#: Adam's step on the rotation offsets (rad), the shape values and the translation (m)
REFIT_LR = 2e-3


def _mean_error(points: Tensor, target: Tensor, w: Tensor) -> Tensor:
    """(B,) mean Euclidean joint error over the valid joints."""
    return ((points - target).norm(dim=-1) * w).sum(-1) / w.sum(-1).clamp_min(1.0)


def refit_joints_3d(
    model, batch: dict[str, Tensor], pred: dict[str, Tensor], kp: Tensor, steps: int
) -> Tensor:
    """Refit ``pred`` of a MoCap :class:`~neuralannot.annotators.neural.NeuralAnnotator` to the batch's
    3D joints for ``steps`` Adam steps, in place, per sample where the mean joint error drops.

    ``kp``: the model keypoints of ``pred`` without translation (B, J, 3). Returns the keypoints
    (without translation) of the parameters kept.
    """
    gt = batch["joints_3d"]
    target, w = gt[..., :3], (gt[..., 3] > 0).to(kp.dtype)
    if steps <= 0:
        return kp
    specs = model.body.param_specs
    rotations = [k for k in pred if k in specs and specs[k].kind == "rotation"]
    shapes = [k for k in pred if k in specs and specs[k].kind == "shape"]
    with torch.enable_grad():
        offsets = {k: pred[k].new_zeros(*pred[k].shape[:-2], 3, requires_grad=True) for k in rotations}
        free = {k: pred[k].detach().clone().requires_grad_(True) for k in (*shapes, "trans")}
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
                for k in shapes:
                    if specs[k].bounds is not None:
                        free[k].clamp_(*specs[k].bounds)
    with torch.no_grad():
        refit = {k: v.detach() for k, v in current().items()}
        kp_new = model.keypoints(refit)
        better = _mean_error(kp_new + refit["trans"][:, None], target, w) < _mean_error(
            kp + pred["trans"][:, None], target, w
        )
        for k in (*rotations, *shapes, "trans"):
            pred[k] = torch.where(better.view((-1,) + (1,) * (pred[k].dim() - 1)), refit[k], pred[k])
        return torch.where(better[:, None, None], kp_new, kp)
