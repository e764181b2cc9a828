"""SMPLify-X, the per-sample optimisation baseline of the paper, batched (many samples at once).

:func:`smplifyx_2d` (in-the-wild: GT 2D joints) follows SMPLify-X (Pavlakos et al. 2019,
``smplifyx/fit_single_frame.py``) with our body models:

1. Camera: the sample's intrinsics, else a fixed focal of :attr:`FitOptions.focal` = 5000 px
   (SMPLify-X's default) with the principal point at the image centre (the box centre when the
   image size is unknown). The fitted body lives in the camera frame (OpenCV axes); ``root_pose``
   and ``trans`` play SMPLify-X's global orientation and camera translation.
2. Initialisation: neutral pose (zero latent) and shape, the body upright facing the camera;
   translation from the torso joints (hips + shoulders; hands: wrist + the four finger roots) by
   similar triangles (depth = focal × mean 3D / mean 2D pairwise distance, centroid re-projected).
3. Camera stage: ``root_pose`` + ``trans`` fitted to the torso joints (squared pixel error × data
   weight² + 100² × (t_z − t_z,init)² as SMPLify-X), from the front-facing start *and* the one turned
   180° about the body's vertical axis. As in SMPLify-X both orientations are fitted to the end when
   the 2D shoulders are closer than :attr:`FitOptions.side_view_px` = 25 px; otherwise the one with
   the lower camera loss goes on (SMPLify-X starts from a single orientation; we start from both
   because the choice costs only this cheap stage). Hands always go on with both (a palm and a
   back of the hand are near-mirror images in 2D; the camera loss picked the wrong one for 1 of 8
   synthetic hands).
4. Stages (:data:`~.optimize_losses.DEFAULT_SCHEDULE`, SMPLify-X's ``fit_smplx.yaml``): all of
   root, pose, shape and translation with loss ``(w_data · 1000 / H)² Σ_j c_j² Σ_xy GMoF_ρ(û − u)``
   (ρ = 100 px, c = joint confidence, H = image height, else the box's longer side) ``+ w_pose² |z|²
   + 3.17 · w_pose · Σ exp(−θ_bend)² + w_shape² · shape prior``. Weights are SMPLify-X's numbers
   unchanged: the data term is in image pixels rescaled to a 1000 px image exactly as SMPLify-X
   does, our VAE latent is KL-regularised toward N(0, I) like VPoser's (the hand PCA is whitened),
   and the Anny shape prior is on phenotype
   offsets divided by 0.289 (the std of U(0, 1)) so they read like β; phenotypes are optimised
   through a sigmoid and stay in [0, 1]. The best orientation (lowest final loss) is kept.

Pose prior per model: Anny body — the body VAE ``anny-body-vae`` (L2 on the latent, as VPoser); Anny hand
— ``anny-hand-pca`` (L2 on whitened PCA coefficients; MANO: its own PCA, as SMPLify-X); SMPL/SMPL-X — a
VPoser v2 checkpoint when given (``embedding=path``); without one the gap is that the body pose is
optimised as axis-angle with SMPLify-X's ``l2`` prior (not its GMM or VPoser). Anny head (face68): see
:class:`~.optimize_problem._Problem` (L2 priors on head pose and expression). Whole body: not implemented.

:func:`smplifyx_3d` (MoCap: GT 3D joints) is the paper's modified SMPLify-X (supp. B): rigid
initialisation by SVD (Kabsch, :func:`~neuralannot.geometry.rigid_align`) of the neutral model's
hip + shoulder joints (hands: wrist + four finger roots) onto the GT, then the same stages with a 3D
data term ``1e6 · w_data² Σ_j c_j² Σ_xyz GMoF_ρ(X̂ − X)`` in meters (1e6 m⁻² = 1 mm⁻²: a body ~5 m
from SMPLify-X's 5000 px camera has 1 px ≈ 1 mm, so this matches its 2D data weight of 1),
optimising joint rotations (axis-angle) with SMPLify-X's ``l2`` pose prior ``w_pose² |θ|²`` instead
of the embedding. ρ = 0.5 m for bodies, 0.1 m for hands (:data:`RHO_3D`): the px ↔ mm analogue of
SMPLify-X's 100 px, 0.1 m, stalls bodies whose limbs start more than ρ from the target (the
saturated robustifier gives them almost no gradient): on 8 synthetic library poses 4 ended 65-155 mm
off with 0.1 m, none above 11 mm with 0.5 m (30 L-BFGS iterations per stage). Missing joints (confidence
0) are ignored everywhere.

Optimisers and per-sample divergence handling: :mod:`.optimize_solvers`. A sample whose loss turns
non-finite keeps its last finite state and gets ``"diverged"`` in ``quality.flags``. Iterations: per part.

:func:`fit_dataset` runs either variant over :class:`~neuralannot.data.sample.Sample` lists and
returns :class:`~neuralannot.io.pseudo_gt.PseudoGT` records laid out as the neural annotator's
(:mod:`.predict`): axis-angle parameters, camera in original-image pixels (2D; 3D: the sample's
intrinsics), ``quality`` = error against the sample's own joints + ``exp(−err / scale)``. Left hands
are mirrored to right hands for the fit and the parameters mirrored back, as in :mod:`.predict`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import roma
import torch
from torch import Tensor

from neuralannot.annotators.optimize_losses import gmof, parse_schedule
from neuralannot.annotators.optimize_problem import (
    INIT_JOINTS,
    METHODS,
    ORIENTATIONS,
    RHO_3D,
    SIDE_PAIR,
    FitOptions,
    FitResult,
    _guard,
    _inputs,
    _joint_names,
    _model_joint_set,
    _names_mask,
    _Problem,
    resolve_embedding,
)
from neuralannot.annotators.optimize_solvers import minimize
from neuralannot.bodies.base import BodyModel
from neuralannot.bodies.fast_keypoints import AnnyKeypoints
from neuralannot.bodies.parts import PART_EXTENT  # the camera fallback when no two joints are visible
from neuralannot.data.silhouette import silhouette_batch, silhouette_residual
from neuralannot.geometry import backproject, project, rigid_align

log = logging.getLogger(__name__)

__all__ = ["AnnyKeypoints", "FitOptions", "FitResult", "METHODS", "fit_dataset", "resolve_embedding",
           "smplifyx_2d", "smplifyx_3d"]  # fmt: skip

def _solve(fn, x, opt: FitOptions, iterations: int, active: Tensor | None = None):
    return minimize(_guard(fn), x, opt.optimizer, iterations, active, opt.lr, opt.history)


def _run_stages(prob: _Problem, data_term, x: Tensor, src: Tensor, opt: FitOptions, frozen: Tensor):
    """SMPLify-X's stages on rows ``x`` (R, D) of samples ``src`` (R,); ``data_term(params, idx)``
    returns the unweighted data loss (R',) of sample indices ``idx``."""
    loss, diverged, evals = x.new_full((x.shape[0],), float("nan")), frozen.clone(), 0
    for stage in parse_schedule(opt.schedule):

        def fn(xx, rows, stage=stage):
            params, prior = prob.priors(xx, stage)
            return stage.data**2 * data_term(params, src[rows]) + prior

        res = _solve(fn, x, opt, opt.iterations, ~diverged)
        x, loss, evals = res.x, res.loss, evals + res.evals
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


def _refine(prob: _Problem, data_term, x: Tensor, opt: FitOptions, error_fn, K: Tensor | None = None):
    """The stages from given start vectors ``x`` (B, D); ``info`` gets the per-sample data term and
    pose prior before and after (what :mod:`.hybrid` compares)."""
    B = x.shape[0]
    src = torch.arange(B, device=x.device)
    frozen = ~torch.isfinite(x).all(1)
    x = torch.where(frozen[:, None], 0.0, x)
    data0, prior0 = prob.terms(x, data_term, src)
    x, loss, diverged, evals = _run_stages(prob, data_term, x, src, opt, frozen)
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
) -> FitResult:
    """Fit ``body`` to 2D joints ``joints_2d`` (B, J, 3) = pixels + confidence of ``joint_set`` seen
    by cameras ``K`` (B, 3, 3); ``image_height`` (B,) px sets SMPLify-X's data weight 1000 / H
    (default 1000, weight 1). See the module docstring for the algorithm.

    ``init``: axis-angle params (B, ...) in the camera frame of ``K`` to start from (e.g. a neural
    pseudo-GT) instead of SMPLify-X's camera initialisation; then ``info`` also holds the data term
    and pose prior before (``data0``, ``prior0``) and after (``data``, ``prior``) the stages."""
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

    if init is not None:
        err_fn = lambda kp: _mean_error(project(kp, K), gt, valid)  # noqa: E731
        return _refine(prob, data_term, prob.pack(init), opt, err_fn, K)
    names = _joint_names(body, joint_set)
    init = _names_mask(names, INIT_JOINTS[prob.part], dev)[None] & valid
    init = torch.where((init.sum(1) >= 2)[:, None], init, valid).to(dt)

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

    # which facings go on: both for side views (SMPLify-X), else the better camera fit
    a, b = (_names_mask(names, [n], dev).nonzero().flatten() for n in SIDE_PAIR[prob.part])
    if a.numel() and b.numel():
        seen = valid[:, a[0]] & valid[:, b[0]]
        side = ~seen | ((gt[:, a[0]] - gt[:, b[0]]).norm(dim=-1) < opt.side_view_px)
    else:
        side = torch.ones(B, dtype=torch.bool, device=dev)
    mode = ORIENTATIONS[prob.part] if opt.orientations == "auto" else opt.orientations
    both = {"side": side, "always": torch.ones_like(side), "never": torch.zeros_like(side)}[mode]
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


# ------------------------------------------------------------------------------------------------
# datasets → pseudo-GT records
# ------------------------------------------------------------------------------------------------
def _check(s, method: str) -> None:
    from neuralannot.data.sample import SampleError

    s.validate()
    if method == "3d" and not s.valid_3d.any():
        raise SampleError("the 3D variant needs GT 3D joints, the sample has none", s.id, kind="no_3d")


def _record_K(record) -> np.ndarray:
    (fx, fy), (cx, cy) = record.camera["focal"], record.camera["princpt"]
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _camera_2d(s, focal: float) -> tuple[np.ndarray, float]:
    """(K, image height for the data weight): the sample's intrinsics, else ``focal`` at the image
    (else box) centre; the height is the image's, else the box's longer side."""
    x0, y0, w, h = (float(v) for v in s.bbox)
    if s.intrinsics is not None:
        K = s.K
    else:
        c = (s.image_size[0] / 2, s.image_size[1] / 2) if s.image_size else (x0 + w / 2, y0 + h / 2)
        K = np.array([[focal, 0.0, c[0]], [0.0, focal, c[1]], [0.0, 0.0, 1.0]])
    return K, float(s.image_size[1]) if s.image_size else max(w, h)


def _finite(v: Tensor) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _init_params(batch, init: Sequence, flips: list[bool], body: BodyModel) -> dict[str, Tensor]:
    """Stack the initial pseudo-GTs of a batch (left hands mirrored to the right-hand model)."""
    from neuralannot.data.sample import SampleError
    from neuralannot.io.records import mirror_to_left

    rows = []
    for s, r, flip in zip(batch, init, flips, strict=True):
        if r is None or r.sample_id != s.id:
            raise SampleError("no initial pseudo-GT for this sample", s.id, kind="init")
        p = {k: np.asarray(v, np.float32) for k, v in r.params.items() if k in body.param_specs}
        rows.append(mirror_to_left(p, body) if flip else p)  # mirroring is its own inverse
    return {k: torch.from_numpy(np.stack([p[k] for p in rows])).to(body.device, body.dtype) for k in rows[0]}


def _records(batch, res: FitResult, body: BodyModel, method: str, flips: list[bool], opt: FitOptions):
    from neuralannot.io.records import build_record, sample_camera

    params = {k: v.cpu().numpy().astype(np.float32) for k, v in res.params.items()}
    out = []
    for b, s in enumerate(batch):
        n_valid = int(s.valid_3d.sum() if method == "3d" else s.valid_2d.sum())
        e = float(res.joint_err[b]) * (1000.0 if method == "3d" else 1.0)
        if method == "3d":
            cam = sample_camera(s)
        else:
            K = res.K[b].cpu().double()
            cam = {"focal": [float(K[0, 0]), float(K[1, 1])], "princpt": [float(K[0, 2]), float(K[1, 2])]}
            cam = cam if bool(torch.isfinite(K).all()) else None
        loss = float(res.loss[b])
        quality = {"method": f"smplifyx-{method}", "optimizer": opt.optimizer, "num_valid_joints": n_valid,
                   "final_loss": loss if math.isfinite(loss) else None}  # fmt: skip
        if "data0" in res.info:  # refined from an initial pseudo-GT (hybrid): the terms compared
            quality["refine"] = {k: _finite(res.info[k][b]) for k in ("data0", "data", "prior0", "prior")}
        if bool(res.diverged[b]):
            quality["flags"] = ["diverged"]
        unmeasured = None
        if n_valid == 0 or not math.isfinite(e):
            unmeasured = "no_valid_joints" if n_valid == 0 else "nonfinite_error"
        # fitted as a mirrored right hand: mirrored back to the left hand
        out.append(build_record(s, body, {k: v[b] for k, v in params.items()}, flip=flips[b], err=e,
                                three_d=method == "3d", camera=cam, quality=quality, unmeasured=unmeasured,
                                part="face" if body.part == "face" else "body"))  # fmt: skip
    return out


def fit_dataset(
    samples: Sequence,
    method: str = "2d",
    body_model: str | BodyModel = "anny",
    part: str | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    iterations: int | None = None,
    optimizer: str | None = None,
    embedding: Any = "default",
    options: FitOptions | None = None,
    progress: bool = False,
    init: Sequence | None = None,
) -> tuple[list, dict]:
    """Fit every sample with SMPLify-X (``method`` ``2d``/``wild`` or ``3d``/``mocap``), in batches.

    ``iterations`` / ``optimizer`` override ``options``. ``init``: one :class:`PseudoGT` per sample
    (same order) to start from instead of SMPLify-X's initialisation (2D: in its camera); the
    records then carry ``quality["refine"]`` (data term and pose prior before and after).

    Returns the :class:`PseudoGT` records (input order) and a summary (wall time, samples/s,
    diverged count, mean joint error). Raises
    :class:`~neuralannot.data.sample.SampleError` for an invalid sample (e.g. NaN coordinates of a
    joint marked valid, or no 3D joints for the 3D variant) before any fitting.
    """
    from tqdm import tqdm

    from neuralannot.bodies import load_body_model
    from neuralannot.bodies.parts import MODEL_PART
    from neuralannot.data.sample import SampleError

    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    method = METHODS[method]
    samples = list(samples)
    if not samples:
        raise ValueError("fit_dataset: no samples")
    opt = options or FitOptions()
    opt = replace(opt, iterations=opt.iterations if iterations is None else iterations,
                  optimizer=opt.optimizer if optimizer is None else optimizer)  # fmt: skip
    part = MODEL_PART.get(part or samples[0].part, part)
    if part not in ("body", "hand", "face"):
        raise ValueError(f"SMPLify-X fitting is implemented for body, hand and face samples, not {part!r}")
    opt = opt.for_part(part)
    for s in samples:
        if MODEL_PART.get(s.part) != part:
            raise SampleError(f"part {s.part!r} does not match the fitted part {part!r}", s.id, kind="part")
        _check(s, method)
    body = load_body_model(body_model, part=part) if isinstance(body_model, str) else body_model
    body.to(device)
    emb = resolve_embedding(body, embedding) if method == "2d" or opt.prior_3d != "l2" else None
    if method == "3d" and opt.prior_3d != "l2" and emb is None:
        raise ValueError(f"prior_3d={opt.prior_3d!r}: no pose embedding for {body.name} ({part}): pass one")
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(s.joint_set, []).append(i)
    batches = [ids[i : i + batch_size] for ids in groups.values() for i in range(0, len(ids), batch_size)]
    records: list = [None] * len(samples)
    t0 = time.perf_counter()
    if init is not None and len(init) != len(samples):
        raise ValueError(f"init: {len(init)} pseudo-GTs for {len(samples)} samples")
    for ids in tqdm(batches, disable=not progress, desc=f"smplifyx-{method}", leave=False):
        batch = [samples[i] for i in ids]
        js = _model_joint_set(body, batch[0].joint_set)
        flips = [s.part == "lhand" for s in batch]
        start = None if init is None else _init_params(batch, [init[i] for i in ids], flips, body)
        if method == "3d":
            j3d = np.stack([s.joints_3d for s in batch]).astype(np.float32)
            j3d[flips, :, 0] *= -1.0
            sil = silhouette_batch(body, batch) if opt.w_silhouette > 0 and part == "body" else None
            res = smplifyx_3d(body, js, torch.from_numpy(j3d).to(device), opt, start, emb, sil)
        else:
            cams = [_camera_2d(s, opt.focal) for s in batch]
            if init is not None:  # the initial pseudo-GT's camera
                cams = [(_record_K(init[i]) if init[i].camera else c[0], c[1])
                        for i, c in zip(ids, cams, strict=True)]  # fmt: skip
            K = torch.tensor(np.stack([c[0] for c in cams]), dtype=body.dtype)
            j2d = np.stack([s.joints_2d for s in batch]).astype(np.float64)
            for b in np.flatnonzero(flips):  # mirror about the principal point: same camera
                j2d[b, :, 0] = 2.0 * cams[b][0][0, 2] - j2d[b, :, 0]
            H = torch.tensor([c[1] for c in cams], dtype=body.dtype)
            j2d = torch.from_numpy(j2d).to(device=device, dtype=body.dtype)
            res = smplifyx_2d(body, js, j2d, K.to(device), H.to(device), emb, opt, start)
        for i, r in zip(ids, _records(batch, res, body, method, flips, opt), strict=True):
            records[i] = r
    wall = time.perf_counter() - t0
    key = "joint_err_mm" if method == "3d" else "joint_err_px"
    errs = [r.quality[key] for r in records if key in r.quality]
    name = f"smplifyx-{method}" + (f"-{opt.prior_3d}" if method == "3d" and opt.prior_3d != "l2" else "")
    name += "-silhouette" if method == "3d" and opt.w_silhouette > 0 else ""
    summary = {
        "method": name, "optimizer": opt.optimizer, "iterations": opt.iterations,
        "stages": len(parse_schedule(opt.schedule)), "samples": len(samples), "batch_size": batch_size,
        "device": str(device), "wall_s": wall, "samples_per_s": len(samples) / max(wall, 1e-9),
        "diverged": sum("diverged" in r.quality.get("flags", []) for r in records),
        f"mean_{key}": float(np.mean(errs)) if errs else None,
    }  # fmt: skip
    log.info("%s: %d samples in %.1f s (%.2f samples/s)", summary["method"], len(samples), wall,
             summary["samples_per_s"])  # fmt: skip
    return records, summary
