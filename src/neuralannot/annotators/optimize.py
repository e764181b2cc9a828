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

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from neuralannot.annotators.optimize_fits import smplifyx_2d, smplifyx_3d
from neuralannot.annotators.optimize_losses import parse_schedule
from neuralannot.annotators.optimize_problem import (
    METHODS,
    FitOptions,
    FitResult,
    _model_joint_set,
    resolve_embedding,
)
from neuralannot.annotators.stages import resumable_batches, stage_digest
from neuralannot.bodies.base import BodyModel
from neuralannot.bodies.fast_keypoints import AnnyKeypoints
from neuralannot.data.silhouette import mask_path, silhouette_batch
from neuralannot.geometry import ray_rotation
from neuralannot.io.records import in_sample_camera

log = logging.getLogger(__name__)

__all__ = ["AnnyKeypoints", "FitOptions", "FitResult", "METHODS", "fit_dataset", "fit_digest",
           "model_stamp", "resolve_embedding", "smplifyx_2d", "smplifyx_3d"]  # fmt: skip


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


def _moves(record, sample, opt: FitOptions) -> bool:
    """Whether a 2D refinement moves this start from its record's camera to the sample's intrinsics."""
    if opt.init_camera != "sample" or record.camera is None or sample.intrinsics is None:
        return False
    return not in_sample_camera(record, sample)


def _onto_ray(start: dict[str, Tensor], init: Sequence, cams: list, flips: list[bool], moved: np.ndarray):
    """Move the starts of ``moved`` rows from their record's camera (optical axis through the crop
    centre, the record's principal point) to the sample's camera ``cams[b][0]``: the root is turned by
    the rotation taking the optical axis onto the real ray through that centre (in place; the
    translation is re-fitted by :func:`smplifyx_2d`)."""
    import roma

    for b in np.flatnonzero(moved):
        K = cams[b][0]
        c = np.asarray(init[b].camera["princpt"], np.float64)
        if flips[b]:  # the start is the mirrored right hand: mirror the crop centre too
            c[0] = 2.0 * K[0, 2] - c[0]
        R = ray_rotation(torch.as_tensor(K, dtype=torch.float64), torch.from_numpy(c))
        root = roma.rotvec_to_rotmat(start["root_pose"][b])
        start["root_pose"][b] = roma.rotmat_to_rotvec(R.to(root) @ root)


def _records(batch, res: FitResult, body: BodyModel, method: str, flips: list[bool], opt: FitOptions,
             masked=None):  # fmt: skip
    """``masked``: per sample, whether its fit read a person mask (``quality["silhouette"]``)."""
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
        if masked is not None and bool(masked[b]):
            quality["silhouette"] = True
        unmeasured = None
        if n_valid == 0 or not math.isfinite(e):
            unmeasured = "no_valid_joints" if n_valid == 0 else "nonfinite_error"
        # fitted as a mirrored right hand: mirrored back to the left hand
        out.append(build_record(s, body, {k: v[b] for k, v in params.items()}, flip=flips[b], err=e,
                                three_d=method == "3d", camera=cam, quality=quality, unmeasured=unmeasured,
                                part="face" if body.part == "face" else "body"))  # fmt: skip
    return out


def model_stamp(body_model: str | BodyModel) -> str:
    """The body model as a resume key: a model file or folder with its size and modification time, a
    built-in name as is, a model object by its name."""
    if not isinstance(body_model, str):
        return str(getattr(body_model, "name", type(body_model).__name__))
    path = Path(body_model)
    if not path.exists():
        return body_model
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def _file_stamp(path: Path | None) -> str:
    if path is None:
        return "-"
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def fit_digest(
    samples: Sequence, method: str, options: FitOptions | None = None, init: Sequence | None = None, **args
) -> str:
    """Short hash (16 hex) naming a :func:`fit_dataset` resume folder: the samples' content (their mask
    files' size and modification time too where the fit reads masks), the method, the options, any
    other arguments that change the fits (``args``; pass the body model through :func:`model_stamp`)
    and the start records."""
    from neuralannot.annotators.state import samples_digest

    options = options or FitOptions()
    key = f"{method}|{options!r}|{sorted(args.items())!r}|{samples_digest(samples, False)}"
    h = hashlib.sha1(key.encode())
    if options.w_silhouette > 0:
        for s in samples:
            h.update(f"{s.id}:{_file_stamp(mask_path(s))}".encode())
    if init is not None:
        h.update(stage_digest(init, options).encode())
    return h.hexdigest()[:16]


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
    parts_dir: str | Path | None = None,
) -> tuple[list, dict]:
    """Fit every sample with SMPLify-X (``method`` ``2d``/``wild`` or ``3d``/``mocap``), in batches.

    ``iterations`` / ``optimizer`` override ``options``. ``init``: one :class:`PseudoGT` per sample
    (same order) to start from instead of SMPLify-X's initialisation (2D: in its camera); the
    records then carry ``quality["refine"]`` (data term and pose prior before and after).
    ``parts_dir``: resume folder; every finished batch is saved there, and a batch whose samples are
    all saved is read back instead of fitted again (the folder must belong to this call's samples and
    arguments: :func:`fit_digest` names one).

    Returns the :class:`PseudoGT` records (input order) and a summary (wall time, samples/s,
    diverged count, mean joint error). Raises
    :class:`~neuralannot.data.sample.SampleError` for an invalid sample (e.g. NaN coordinates of a
    joint marked valid, or no 3D joints for the 3D variant) before any fitting.
    """
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
    if init is not None and len(init) != len(samples):
        raise ValueError(f"init: {len(init)} pseudo-GTs for {len(samples)} samples")

    def fit_batch(ids: list[int]) -> list:
        batch = [samples[i] for i in ids]
        js = _model_joint_set(body, batch[0].joint_set)
        flips, sil = [s.part == "lhand" for s in batch], None
        start = None if init is None else _init_params(batch, [init[i] for i in ids], flips, body)
        if method == "3d":
            j3d = np.stack([s.joints_3d for s in batch]).astype(np.float32)
            j3d[flips, :, 0] *= -1.0
            sil = silhouette_batch(body, batch) if opt.w_silhouette > 0 and part == "body" else None
            res = smplifyx_3d(body, js, torch.from_numpy(j3d).to(device), opt, start, emb, sil)
        else:
            cams = [_camera_2d(s, opt.focal) for s in batch]
            moved = np.zeros(len(batch), bool)
            if init is not None:  # the sample's intrinsics (start moved onto them) or the start's camera
                moved = np.array([_moves(init[i], s, opt) for i, s in zip(ids, batch, strict=True)])
                cams = [(c[0] if m or not init[i].camera else _record_K(init[i]), c[1])
                        for i, c, m in zip(ids, cams, moved, strict=True)]  # fmt: skip
            K = torch.tensor(np.stack([c[0] for c in cams]), dtype=body.dtype)
            j2d = np.stack([s.joints_2d for s in batch]).astype(np.float64)
            for b in np.flatnonzero(flips):  # mirror about the principal point: same camera
                j2d[b, :, 0] = 2.0 * cams[b][0][0, 2] - j2d[b, :, 0]
            if moved.any():
                _onto_ray(start, [init[i] for i in ids], cams, flips, moved)
            H = torch.tensor([c[1] for c in cams], dtype=body.dtype)
            j2d = torch.from_numpy(j2d).to(device=device, dtype=body.dtype)
            res = smplifyx_2d(body, js, j2d, K.to(device), H.to(device), emb, opt, start,
                              torch.from_numpy(moved).to(device))  # fmt: skip
        used = None if sil is None else sil["sil_valid"]
        return _records(batch, res, body, method, flips, opt, used)

    # resumed: samples read back; the wall time and speed count the others only
    records, resumed, wall = resumable_batches(samples, batches, fit_batch, f"smplifyx-{method}", progress,
                                               parts_dir)  # fmt: skip
    masked = sum(bool(r.quality.get("silhouette")) for r in records)  # samples whose fit read a mask
    key = "joint_err_mm" if method == "3d" else "joint_err_px"
    errs = [r.quality[key] for r in records if key in r.quality]
    name = f"smplifyx-{method}" + (f"-{opt.prior_3d}" if method == "3d" and opt.prior_3d != "l2" else "")
    name += "-silhouette" if masked else ""
    summary = {
        "method": name, "optimizer": opt.optimizer, "iterations": opt.iterations,
        "stages": len(parse_schedule(opt.schedule)), "samples": len(samples), "batch_size": batch_size,
        "device": str(device), "wall_s": wall, "samples_per_s": (len(samples) - resumed) / max(wall, 1e-9),
        "diverged": sum("diverged" in r.quality.get("flags", []) for r in records), "masked": masked,
        "resumed": resumed,
        f"mean_{key}": float(np.mean(errs)) if errs else None,
    }  # fmt: skip
    log.info("%s: %d samples in %.1f s (%.2f samples/s)", summary["method"], len(samples), wall,
             summary["samples_per_s"])  # fmt: skip
    return records, summary
