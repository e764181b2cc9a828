"""SMPLify-X's 2D and 3D fits on batches of tensors (:func:`smplifyx_2d`, :func:`smplifyx_3d`): the
algorithm is described in :mod:`neuralannot.annotators.optimize`, which runs them over datasets."""

from __future__ import annotations

import math
from typing import Any

import roma
import torch
from torch import Tensor

from neuralannot.annotators.optimize_losses import gmof, parse_schedule
from neuralannot.annotators.optimize_problem import (
    INIT_JOINTS,
    NEUTRAL_TURN,
    ORIENTATIONS,
    RHO_3D,
    SIDE_PAIR,
    FitOptions,
    FitResult,
    _guard,
    _inputs,
    _joint_names,
    _names_mask,
    _Problem,
    resolve_embedding,
)
from neuralannot.annotators.optimize_solvers import minimize
from neuralannot.bodies.base import BodyModel
from neuralannot.bodies.parts import PART_EXTENT  # the camera fallback when no two joints are visible
from neuralannot.data.silhouette import silhouette_residual
from neuralannot.geometry import backproject, project, rigid_align

__all__ = ["smplifyx_2d", "smplifyx_3d"]


def _solve(fn, x, opt: FitOptions, iterations: int, active: Tensor | None = None):
    return minimize(_guard(fn), x, opt.optimizer, iterations, active, opt.lr, opt.history)


def _run_stages(prob: _Problem, data_term, x: Tensor, src: Tensor, opt: FitOptions, frozen: Tensor):
    """SMPLify-X's stages on rows ``x`` (R, D) of samples ``src`` (R,); ``data_term(params, idx)``
    returns the unweighted data loss (R',) of sample indices ``idx``."""
    loss, diverged, evals = x.new_full((x.shape[0],), float("nan")), frozen.clone(), 0
    free = prob.free_indices(opt.keep_shape).to(x.device)
    base = x.clone()  # the held coordinates (``keep_shape``) keep these values
    for stage in parse_schedule(opt.schedule):

        def fn(xc, rows, stage=stage):
            params, prior = prob.priors(base[rows].index_copy(1, free, xc), stage)
            return stage.data**2 * data_term(params, src[rows]) + prior

        res = _solve(fn, x[:, free], opt, opt.iterations, ~diverged)
        x, loss, evals = base.index_copy(1, free, res.x), res.loss, evals + res.evals
        diverged |= res.diverged
    return x, loss, diverged, evals


def _mean_error(pred: Tensor, gt: Tensor, valid: Tensor) -> Tensor:
    """Mean distance over the valid joints (float64: absurd targets give a huge, finite error)."""
    d = (pred.double() - gt.double()).norm(dim=-1)
    return ((d * valid).sum(1) / valid.sum(1)).to(pred.dtype)


def _pick_best(src: Tensor, loss: Tensor, B: int) -> Tensor:
    """Per sample, the row (of those with ``src == b``) with the lowest loss (NaN = worst)."""
    key = loss.nan_to_num(float("inf"), float("inf"), float("inf"))
    best = torch.full((B,), -1, dtype=torch.long)
    for r, (b, v) in enumerate(zip(src.tolist(), key.tolist(), strict=True)):
        if best[b] < 0 or v < key[best[b]]:
            best[b] = r
    return best.to(src.device)


def _refine(
    prob: _Problem,
    data_term,
    x: Tensor,
    opt: FitOptions,
    error_fn,
    K: Tensor | None = None,
    turn: Tensor | None = None,
):
    """The stages from given start vectors ``x`` (B, D); ``info`` gets the per-sample data term and
    pose prior before (of the given start) and after (what :mod:`.hybrid` compares).

    ``turn`` (B,) bool: those samples also start from their root turned 180° about the model's own +Y
    (the body's up axis, the hand's wrist → fingers axis), as SMPLify-X's two facings, and with
    :attr:`FitOptions.neutral_turn` a third time, turned with the neutral articulation; the start
    with the lower final loss is kept."""
    B = x.shape[0]
    src = torch.arange(B, device=x.device)
    frozen = ~torch.isfinite(x).all(1)
    x = torch.where(frozen[:, None], 0.0, x)
    data0, prior0 = prob.terms(x, data_term, src)
    if turn is not None and bool(turn.any()):
        extra = turn.nonzero().flatten()
        xt = x[extra].clone()
        half = roma.rotvec_to_rotmat(x.new_tensor([0.0, math.pi, 0.0]))
        root = prob.sl["root"]
        xt[:, root] = roma.rotmat_to_rotvec(roma.rotvec_to_rotmat(xt[:, root]) @ half)
        starts = [xt]
        if NEUTRAL_TURN[prob.part] if opt.neutral_turn is None else opt.neutral_turn:
            starts.append(xt.clone())
            starts[-1][:, prob.sl["pose"]] = 0.0
        x = torch.cat([x, *starts])
        src = torch.cat([src, *(extra for _ in starts)])
        frozen = torch.cat([frozen, *(frozen[extra] for _ in starts)])
    x, loss, diverged, evals = _run_stages(prob, data_term, x, src, opt, frozen)
    if x.shape[0] > B:
        best = _pick_best(src, loss, B)
        x, loss, diverged = x[best], loss[best], diverged[best]
        src = torch.arange(B, device=x.device)
    data, prior = prob.terms(x, data_term, src)
    with torch.no_grad():
        kp = prob.keypoints(prob.unpack(x)[0])
    info = {"data0": data0, "prior0": prior0, "data": data, "prior": prior}
    return FitResult(prob.axis_angle(x), kp.detach(), loss, error_fn(kp), diverged, K, evals, info)


# ------------------------------------------------------------------------------------------------
# 2D
# ------------------------------------------------------------------------------------------------
def _translation_init(kp: Tensor, uv: Tensor, w: Tensor, K: Tensor, fallback_depth: Tensor) -> Tensor:
    """Similar triangles: centroid depth = f · mean 3D / mean 2D pairwise distance of the weighted
    joints, x/y so the 3D centroid projects onto the 2D one (all in float64)."""
    kp, uv, w, Kd = kp.double(), uv.double(), w.double(), K.double()
    pw = w[:, :, None] * w[:, None, :]
    L3 = (torch.cdist(kp, kp) * pw).sum((1, 2))
    L2 = (torch.cdist(uv, uv) * pw).sum((1, 2))
    f = 0.5 * (Kd[:, 0, 0] + Kd[:, 1, 1])
    depth = torch.where(L2 > 1e-6 * pw.sum((1, 2)), f * L3 / L2.clamp(min=1e-300), fallback_depth.double())
    n = w.sum(1, keepdim=True).clamp(min=1e-12)
    c3, c2 = (kp * w[..., None]).sum(1) / n, (uv * w[..., None]).sum(1) / n
    c2 = torch.where((w.sum(1) > 0)[:, None], c2, Kd[:, :2, 2])
    t = backproject(c2[:, None], depth[:, None], Kd)[:, 0] - c3
    default = torch.cat([torch.zeros_like(t[:, :2]), fallback_depth.double()[:, None]], 1)
    return torch.where(torch.isfinite(t).all(1, keepdim=True), t, default).to(K.dtype)


def smplifyx_2d(
    body: BodyModel,
    joint_set: str,
    joints_2d: Tensor,
    K: Tensor,
    image_height: Tensor | None = None,
    embedding: Any = "default",
    options: FitOptions | None = None,
    init: dict[str, Tensor] | None = None,
    retranslate: Tensor | None = None,
) -> FitResult:
    """Fit ``body`` to 2D joints ``joints_2d`` (B, J, 3) = pixels + confidence of ``joint_set`` seen
    by cameras ``K`` (B, 3, 3); ``image_height`` (B,) px sets SMPLify-X's data weight 1000 / H
    (default 1000, weight 1). See the module docstring for the algorithm.

    ``init``: axis-angle params (B, ...) in the camera frame of ``K`` to start from (e.g. a neural
    pseudo-GT) instead of SMPLify-X's camera initialisation; then ``info`` also holds the data term
    and pose prior before (``data0``, ``prior0``) and after (``data``, ``prior``) the stages.
    ``retranslate`` (B,) bool: those starts get their translation re-fitted to the 2D joints in ``K``
    (similar triangles, as SMPLify-X's initialisation), e.g. a start moved to another camera."""
    emb = resolve_embedding(body, embedding)
    prob = _Problem(body, joint_set, emb)
    opt = (options or FitOptions()).for_part(prob.part)
    gt, conf = _inputs(joints_2d, 2, body)
    B, dev, dt = gt.shape[0], gt.device, gt.dtype
    K = torch.as_tensor(K, dtype=dt, device=dev).expand(B, 3, 3)
    H = torch.full((B,), 1000.0, dtype=dt, device=dev) if image_height is None else torch.as_tensor(
        image_height, dtype=dt, device=dev).expand(B)  # fmt: skip
    dw2 = (opt.data_scale_px / H).square()
    valid = conf > 0

    def data_term(params, idx):
        uv = project(prob.keypoints(params), K[idx])
        r = gmof(uv - gt[idx], opt.rho_px).sum(-1)
        return dw2[idx] * (conf[idx].square() * r).sum(1)

    names = _joint_names(body, joint_set)
    # which facings go on: both for side views (SMPLify-X), else the better camera fit (refinement:
    # both or the given one)
    a, b = (_names_mask(names, [n], dev).nonzero().flatten() for n in SIDE_PAIR[prob.part])
    if a.numel() and b.numel():
        seen = valid[:, a[0]] & valid[:, b[0]]
        side = ~seen | ((gt[:, a[0]] - gt[:, b[0]]).norm(dim=-1) < opt.side_view_px)
    else:
        side = torch.ones(B, dtype=torch.bool, device=dev)
    mode = ORIENTATIONS[prob.part] if opt.orientations == "auto" else opt.orientations
    both = {"side": side, "always": torch.ones_like(side), "never": torch.zeros_like(side)}[mode]
    torso = _names_mask(names, INIT_JOINTS[prob.part], dev)[None] & valid
    torso = torch.where((torso.sum(1) >= 2)[:, None], torso, valid).to(dt)
    if init is not None:
        x = prob.pack(init)
        if retranslate is not None and bool(retranslate.any()):
            rows = retranslate.nonzero().flatten()
            x0 = x[rows].clone()
            x0[:, prob.sl["trans"]] = 0.0
            with torch.no_grad():
                kp0 = prob.keypoints(prob.unpack(x0)[0])
            depth0 = K[rows, 0, 0] * PART_EXTENT[prob.part] / (0.5 * H[rows])
            x[rows, prob.sl["trans"]] = _translation_init(kp0, gt[rows], torso[rows], K[rows], depth0)
        err_fn = lambda kp: _mean_error(project(kp, K), gt, valid)  # noqa: E731
        return _refine(prob, data_term, x, opt, err_fn, K, turn=both)
    init = torso

    # two facings: upright towards the camera (180° about X), and turned 180° about the body's up axis
    up = roma.rotvec_to_rotmat(torch.tensor([math.pi, 0.0, 0.0], dtype=dt, device=dev))
    turned = up @ roma.rotvec_to_rotmat(torch.tensor([0.0, math.pi, 0.0], dtype=dt, device=dev))
    src = torch.arange(B, device=dev).repeat(2)
    x = prob.zeros(2 * B)
    x[:, prob.sl["root"]] = torch.cat([roma.rotmat_to_rotvec(R).expand(B, 3) for R in (up, turned)])
    with torch.no_grad():
        kp0 = prob.keypoints(prob.unpack(x)[0])
    depth0 = K[src, 0, 0] * PART_EXTENT[prob.part] / (0.5 * H[src])
    x[:, prob.sl["trans"]] = _translation_init(kp0, gt[src], init[src], K[src], depth0)
    tz0 = x[:, prob.sl["trans"]][:, 2].clone()

    cam = torch.cat([torch.arange(0, 3), torch.arange(prob.sl["trans"].start, prob.dim)]).to(dev)
    base = x.clone()

    def camera_fn(xc, rows):
        xx = base[rows].index_copy(1, cam, xc)
        uv = project(prob.keypoints(prob.unpack(xx)[0]), K[src[rows]])
        data = ((uv - gt[src[rows]]).square().sum(-1) * init[src[rows]]).sum(1) * dw2[src[rows]]
        return data + opt.depth_weight**2 * (xc[:, -1] - tz0[rows]).square()

    bad0 = ~torch.isfinite(x).all(1)  # e.g. a NaN camera: frozen at a finite placeholder
    x = torch.where(bad0[:, None], 0.0, x)
    res = _solve(camera_fn, x[:, cam], opt, opt.camera_iterations or opt.iterations, ~bad0)
    x[:, cam] = res.x
    res.diverged |= bad0
    evals = res.evals
    cam_loss = res.loss.nan_to_num(float("inf"), float("inf"), float("inf"))

    first = cam_loss[:B] <= cam_loss[B:]
    keep = torch.cat([both | first, both | ~first])
    x, src, frozen = x[keep], src[keep], res.diverged[keep]
    x, loss, diverged, n = _run_stages(prob, data_term, x, src, opt, frozen)
    best = _pick_best(src, loss, B)
    x, loss, diverged = x[best], loss[best], diverged[best]
    with torch.no_grad():
        kp = prob.keypoints(prob.unpack(x)[0])
        err = _mean_error(project(kp, K), gt, valid)
    info = {"rows": int(keep.sum()), "both_orientations": int(both.sum())}
    return FitResult(prob.axis_angle(x), kp.detach(), loss, err, diverged, K, evals + n, info)


# ------------------------------------------------------------------------------------------------
# 3D
# ------------------------------------------------------------------------------------------------
def smplifyx_3d(
    body: BodyModel,
    joint_set: str,
    joints_3d: Tensor,
    options: FitOptions | None = None,
    init: dict[str, Tensor] | None = None,
    embedding=None,
    silhouette: dict[str, Tensor] | None = None,
) -> FitResult:
    """Fit ``body`` to camera-frame 3D joints ``joints_3d`` (B, J, 4) = meters + confidence of
    ``joint_set`` (the paper's 3D SMPLify-X; see the module docstring). ``init``: as
    :func:`smplifyx_2d` (camera-frame axis-angle params replacing the SVD initialisation).
    ``embedding`` (used with ``options.prior_3d`` ``"embedding"``: the pose is optimised in its latent
    space with SMPLify-X's ``|z|²`` prior; ``"vae"``: axis-angle scored by its ``pose_prior``) replaces
    the paper's axis-angle ``|θ|²``. ``silhouette``: per-sample mask targets (:func:`silhouette_batch`)
    adding ``options.w_silhouette`` × the squared silhouette loss to the data term."""
    opt = options or FitOptions()
    prob = _Problem(body, joint_set, embedding if opt.prior_3d == "embedding" else None,
                    embedding if opt.prior_3d == "vae" else None)  # fmt: skip
    opt = opt.for_part(prob.part)
    gt, conf = _inputs(joints_3d, 3, body)
    B, dev = gt.shape[0], gt.device
    valid = conf > 0
    rho = RHO_3D[prob.part] if opt.rho_m is None else opt.rho_m

    def data_term(params, idx):
        r = gmof(prob.keypoints(params) - gt[idx], rho).sum(-1)
        out = (conf[idx].square() * r).sum(1)
        if silhouette is not None:
            out = out + opt.w_silhouette * silhouette_residual(body, params, silhouette, idx)
        return opt.data_weight_3d * out

    if init is not None:
        return _refine(prob, data_term, prob.pack(init), opt, lambda kp: _mean_error(kp, gt, valid))
    init = _names_mask(_joint_names(body, joint_set), INIT_JOINTS[prob.part], dev)[None] & valid
    init = torch.where((init.sum(1) >= 3)[:, None], init, valid).to(gt.dtype)

    x = prob.zeros(B)
    with torch.no_grad():
        R, _ = rigid_align(prob.keypoints(prob.unpack(x)[0]), gt, init)
        x[:, prob.sl["root"]] = roma.rotmat_to_rotvec(R)
        kp = prob.keypoints(prob.unpack(x)[0])  # rotated about the model's own root: refit t
        t = ((gt - kp) * init[..., None]).sum(1) / init.sum(1, keepdim=True).clamp(min=1e-12)
        x[:, prob.sl["trans"]] = t

    src = torch.arange(B, device=dev)
    frozen = ~torch.isfinite(x).all(1)
    x = torch.where(frozen[:, None], 0.0, x)
    x, loss, diverged, evals = _run_stages(prob, data_term, x, src, opt, frozen)
    with torch.no_grad():
        kp = prob.keypoints(prob.unpack(x)[0])
        err = _mean_error(kp, gt, valid)
    return FitResult(prob.axis_angle(x), kp.detach(), loss, err, diverged, None, evals)
