"""Annotation-time root solves: the network's global rotation and translation refitted to the given
joints, its articulation and shape kept.

Wild mode (:func:`solve_root`, :func:`solve_root_in_sample_camera`): toward the GT 2D joints.
MoCap mode (:func:`align_root_3d`, on for hands): a rigid fit to all the 3D joints.

In wild mode the root rotation and translation get ``cfg.root_steps`` Levenberg-Marquardt steps of
:func:`~neuralannot.geometry.pnp.rigid_pnp` (a local solve from the network's estimate, so the root
hypothesis it picked, facing or palm side, stays). Every solve is kept per sample only where the
joint error drops.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import roma
import torch
from torch import Tensor

from neuralannot.geometry import project, rigid_align
from neuralannot.geometry.alignment import translation_fit
from neuralannot.geometry.pnp import rigid_pnp
from neuralannot.io.records import error_quality, in_sample_camera

__all__ = ["align_root_3d", "moved_params", "root_matrix", "solve_root", "solve_root_in_sample_camera"]


def solve_root(model, batch: dict[str, Tensor], pred: dict[str, Tensor], kp: Tensor) -> tuple[Tensor, Tensor]:
    """Refine ``pred["root_pose"]`` / ``pred["trans"]`` of a wild :class:`NeuralAnnotator` in place.

    ``kp``: the model keypoints (B, J, 3) without translation (as from ``pick_root_hypothesis``).
    Returns the keypoints at the kept pose (without translation) and the per-joint L1 error in crop
    units (B, J).
    """
    gt = batch["joints_2d"]
    valid = (gt[..., 2] > 0).to(kp.dtype)
    K = batch["K"]
    size = model.cfg.input_size

    def error(points: Tensor) -> Tensor:
        return (project(points, K) - gt[..., :2]).abs().sum(-1) / size

    def mean(e: Tensor) -> Tensor:
        return (e * valid).sum(-1) / valid.sum(-1).clamp_min(1.0)

    start = kp + pred["trans"][:, None]
    err0 = error(start)
    Q, _, moved = rigid_pnp(start, gt[..., :2], valid, K, model.cfg.root_steps)
    solved = dict(pred)
    solved["root_pose"] = Q @ pred["root_pose"]
    kp_new = model.keypoints(solved)
    # the root rotation moves every keypoint rigidly about a fixed point: one translation matches them
    solved["trans"] = (moved - kp_new).mean(1)
    err1 = error(kp_new + solved["trans"][:, None])
    better = (mean(err1) < mean(err0)) & torch.isfinite(err1).all(-1)
    for k in ("root_pose", "trans"):
        pred[k] = torch.where(better.view((-1,) + (1,) * (pred[k].dim() - 1)), solved[k], pred[k])
    return torch.where(better[:, None, None], kp_new, kp), torch.where(better[:, None], err1, err0)


def solve_root_in_sample_camera(records: list, points: np.ndarray, samples: list, steps: int) -> list:
    """Records already moved onto their samples' intrinsics (``to_sample_camera``): root rotation and
    translation refined toward the sample's 2D joints in its real, perspective camera (the crop
    camera the network fitted in is nearly orthographic, so the moved overlay is off by the perspective
    it lacked). ``points`` (B, J, 3): each record's model keypoints in its new camera frame. Kept per
    record where the mean L1 joint error in image pixels drops. Every record measured gets its
    ``joint_err_px`` / confidence from the pose it keeps; records without intrinsics or 2D joints are
    returned unchanged.
    """
    idx = [
        b for b, (r, s) in enumerate(zip(records, samples, strict=True))
        if s.intrinsics is not None and s.joints_2d is not None and in_sample_camera(r, s)
    ]  # fmt: skip
    if not idx or steps <= 0:
        return records
    X = torch.as_tensor(points[idx], dtype=torch.float64)
    j2d = torch.as_tensor(np.stack([samples[b].joints_2d for b in idx]), dtype=torch.float64)
    K = torch.as_tensor(np.stack([samples[b].K for b in idx]), dtype=torch.float64)
    valid = (j2d[..., 2] > 0).double()
    Q, shift, moved = rigid_pnp(X, j2d[..., :2], valid, K, steps)

    def error(P: Tensor) -> Tensor:
        e = (project(P, K) - j2d[..., :2]).abs().sum(-1)
        return (e * valid).sum(-1) / valid.sum(-1).clamp_min(1.0)

    better = error(moved) < error(X)
    kept = torch.where(better[:, None, None], moved, X)
    # the written record's overlay error (image px, as the crop-camera one it replaces)
    err_px = ((project(kept, K) - j2d[..., :2]).norm(dim=-1) * valid).sum(-1) / valid.sum(-1).clamp_min(1.0)
    wsum = valid.sum(-1, keepdim=True).clamp_min(1e-12)
    centre = ((valid[..., None] * X).sum(1) / wsum).numpy()
    out = list(records)
    for k, b in enumerate(idx):
        r = records[b]
        if "joint_err_px" in r.quality:
            quality = {**r.quality, **error_quality(float(err_px[k]), False, samples[b].bbox)}
            r = out[b] = replace(r, quality=quality)
        if not bool(better[k]):
            continue
        params = moved_params(r.params, Q[k].numpy(), centre[k], centre[k] + shift[k].numpy())
        out[b] = replace(r, params=params)
    return out


def root_matrix(params: dict) -> np.ndarray:
    """A record's global rotation (``root_pose``, axis-angle) as a float64 matrix (3, 3)."""
    return roma.rotvec_to_rotmat(torch.as_tensor(np.asarray(params["root_pose"], np.float64))).numpy()


def moved_params(params: dict, R: np.ndarray, pivot: np.ndarray, target: np.ndarray) -> dict:
    """``params`` of a model moved rigidly: turned by ``R`` (3, 3) about ``pivot`` (3,) (a point in
    the record's camera frame), which then lands on ``target``. The global rotation becomes
    ``R · root``, the translation ``R (t − pivot) + target``."""
    t = np.asarray(params["trans"], np.float64)
    root = roma.rotmat_to_rotvec(torch.from_numpy(R @ root_matrix(params))).numpy().astype(np.float32)
    trans = (R @ (t - np.asarray(pivot, np.float64)) + target).astype(np.float32)
    return {**params, "root_pose": root, "trans": trans}


def align_root_3d(model, batch: dict[str, Tensor], pred: dict[str, Tensor], kp: Tensor) -> Tensor:
    """MoCap mode (hands by default: their swing solve turns the root toward the wrist and knuckles
    only): the global rotation turned by the rigid
    (Kabsch) fit of the model keypoints to the given 3D joints, the translation refitted; per sample
    only where the joint error drops. Updates ``pred`` (``root_pose``, ``trans``); returns the keypoints
    (without translation) of the pose kept."""
    gt = batch["joints_3d"]
    target, valid = gt[..., :3], gt[..., 3] > 0
    w = valid.to(kp.dtype)

    def error(points: Tensor, t: Tensor) -> Tensor:
        e = (points + t[:, None] - target).norm(dim=-1)
        return (e * w).sum(-1) / w.sum(-1).clamp_min(1.0)

    R, _ = rigid_align(kp, target, w)
    turned = {**pred, "root_pose": R @ pred["root_pose"]}
    kp_new = model.keypoints(turned)
    t_new = translation_fit(kp_new, target, valid)
    better = (error(kp_new, t_new) < error(kp, pred["trans"])) & (valid.sum(-1) >= 3)
    pred["root_pose"] = torch.where(better[:, None, None], turned["root_pose"], pred["root_pose"])
    pred["trans"] = torch.where(better[:, None], t_new, pred["trans"])
    return torch.where(better[:, None, None], kp_new, kp)
