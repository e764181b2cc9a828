"""Fit Anny body poses to 3D joint positions (CMU mocap → Anny pose library).

Model: Anny's 22 body joints (pelvis + :data:`~neuralannot.bodies.anny.BODY_SLOTS`) posed by an
SMPL-style forward kinematics on the joints of Anny's zero pose ``q`` (exact for Anny's
``local-ref`` parameterisation: the accumulated rotation of a joint is ``G_c = G_p D_c`` and its
position ``x_c = x_p + G_p (q_c - q_p)``, all in Anny's native axes: Z up, face toward −Y, left = +X).
The canonical output (Y up, facing +Z, as :class:`~neuralannot.bodies.anny.AnnyBody`) is
``s * R_root F x + t`` with ``F = ANNY_TO_CANONICAL``.

Each target point ``k`` is an Anny joint ``c`` plus a marker offset ``o_k`` rigidly attached to the
parent segment: ``x_c + G_p o_k`` (mocap joint centres are defined differently from Anny's bone
heads: CMU's ankle is ~4 cm below Anny's, its head ~2 cm lower, ...). Offsets, a shared phenotype and
a global scale are calibrated once (:meth:`PoseFitter.calibrate`); then every frame is fitted alone
(:meth:`PoseFitter.fit`: batched Adam on a 6D root rotation, a translation, 12 free body slots as
axis-angle and one hinge angle per knee and elbow; restarts for badly fitted frames). Wrists, toes
and the head bone do not move any target joint and stay at rest (0).

Constraints (from ``shared/notes/anny.md`` §8): knees and elbows are hinges (rotation = angle · axis,
axis from Anny's zero pose, positive = flexion); knees at most 1.4° hyperextended, elbows not past
straight (:data:`HINGE_RANGE_DEG`); per-slot maximum rotation angles (:data:`MAX_ANGLE_DEG`, e.g.
ankle ≤ 57°) as soft penalties; a weak L2 prior on all free slots resolves what joint positions
cannot see (ankle twist) and keeps the spine, neck and collars from absorbing the residuals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch
from torch import Tensor

from neuralannot.bodies.anny import ANNY_TO_CANONICAL, BODY_PARENTS, BODY_SLOTS, HINGE_AXES
from neuralannot.geometry import rigid_align, rot6d_to_rotmat, rotmat_to_rot6d

SLOT_NAMES = [n for n, _ in BODY_SLOTS]
JOINT_NAMES = ["pelvis", *SLOT_NAMES]
#: Hinge angle range in degrees. Anny's zero pose bends knees by 8.6° and elbows by 42.1°: a straight
#: leg is −8.6° (−10° allows 1.4° of hyperextension), a straight arm −42.1° (elbows never go past).
HINGE_RANGE_DEG = {"knee": (-10.0, 155.0), "elbow": (-42.1, 150.0)}
#: Largest rotation angle (degrees) of the other slots; slots absent here (shoulders) are unlimited.
MAX_ANGLE_DEG = {
    "spine1": 45.0, "spine2": 45.0, "spine3": 45.0, "neck": 60.0, "head": 60.0,
    "left_ankle": 57.0, "right_ankle": 57.0, "left_foot": 40.0, "right_foot": 40.0,
    "left_collar": 35.0, "right_collar": 35.0, "left_wrist": 90.0, "right_wrist": 90.0,
    "left_hip": 150.0, "right_hip": 150.0,
}  # fmt: skip
#: Slots that move no target joint: kept at rest by the fit.
FIXED_SLOTS = ["head", "left_wrist", "right_wrist", "left_foot", "right_foot"]
HINGE_SLOTS = list(HINGE_AXES)
FREE_SLOTS = [n for n in SLOT_NAMES if n not in FIXED_SLOTS and n not in HINGE_SLOTS]
#: L2 prior weight per free slot (m² per rad²; 1e-4 ≈ 1 cm² for 1 rad).
PRIOR_WEIGHT = {n: 1e-3 if n.startswith(("spine", "neck", "left_c", "right_c", "left_a", "right_a")) else 1e-4
                for n in FREE_SLOTS}  # fmt: skip

#: CMU joint → Anny joint, weight. The first 17 are the evaluated correspondences (notes §8);
#: spine and clavicles guide the spine/collar split with a low weight.
CMU_TO_ANNY: list[tuple[str, str, float]] = [
    ("Hip", "pelvis", 1.0),
    *[(f"{s}_{c}", f"{side}_{a}", 1.0) for s, side in (("L", "left"), ("R", "right"))
      for c, a in (("Thigh", "hip"), ("Calf", "knee"), ("Foot", "ankle"), ("ToeBase", "foot"),
                   ("Upperarm", "shoulder"), ("Forearm", "elbow"), ("Hand", "wrist"))],
    ("NeckTwist01", "neck", 1.0),
    ("Head", "head", 1.0),
    ("Waist", "spine1", 0.3),
    ("Spine01", "spine2", 0.3),
    ("Spine02", "spine3", 0.3),
    ("L_Clavicle", "left_collar", 0.3),
    ("R_Clavicle", "right_collar", 0.3),
]  # fmt: skip
CMU_EVAL = 17  # the first 17 targets are scored (MPJPE)
INIT_JOINTS = ("pelvis", "left_hip", "right_hip", "left_shoulder", "right_shoulder", "neck")
#: Alternative starts for badly fitted frames: (root pre-rotation in the body frame as an axis-angle
#: in degrees, initial hinge angle of knees and elbows in degrees).
RESTARTS = [((0.0, 0.0, 0.0), 60.0), ((0.0, 90.0, 0.0), 60.0), ((0.0, -90.0, 0.0), 60.0),
            ((0.0, 0.0, 90.0), 60.0), ((0.0, 0.0, -90.0), 60.0), ((0.0, 180.0, 0.0), 60.0),
            ((0.0, 0.0, 180.0), 60.0), ((90.0, 0.0, 0.0), 60.0)]  # fmt: skip


def cmu_targets(positions: Tensor, joint_names: list[str]) -> Tensor:
    """CMU positions (N, 24, 3) (meters, Y up) → fit targets (N, len(CMU_TO_ANNY), 3)."""
    idx = [list(joint_names).index(c) for c, _, _ in CMU_TO_ANNY]
    return torch.as_tensor(positions, dtype=torch.float32)[:, idx]


def hinge_angles(body_pose: Tensor) -> Tensor:
    """Signed hinge angles (..., 4) in radians (left/right knee, left/right elbow; + = flexion)
    of body poses (..., 21, 3): the rotation's component along the hinge axis."""
    axes = body_pose.new_tensor(list(HINGE_AXES.values()))
    idx = [SLOT_NAMES.index(n) for n in HINGE_SLOTS]
    return (body_pose[..., idx, :] * axes).sum(-1)


def limit_violations(body_pose: Tensor, tol_deg: float = 3.0) -> Tensor:
    """Boolean (..., 21): slots outside the joint limits by more than ``tol_deg``.

    Hinges: off-axis component > tol or angle outside :data:`HINGE_RANGE_DEG`; other slots: angle
    above :data:`MAX_ANGLE_DEG`.
    """
    tol = math.radians(tol_deg)
    ang = body_pose.norm(dim=-1)
    out = torch.zeros_like(ang, dtype=torch.bool)
    for n, lim in MAX_ANGLE_DEG.items():
        out[..., SLOT_NAMES.index(n)] = ang[..., SLOT_NAMES.index(n)] > math.radians(lim) + tol
    theta = hinge_angles(body_pose)
    axes = body_pose.new_tensor(list(HINGE_AXES.values()))
    for i, n in enumerate(HINGE_SLOTS):
        j = SLOT_NAMES.index(n)
        lo, hi = (math.radians(v) for v in HINGE_RANGE_DEG[n.split("_")[1]])
        off = (body_pose[..., j, :] - theta[..., i, None] * axes[i]).norm(dim=-1)
        out[..., j] = (off > tol) | (theta[..., i] < lo - tol) | (theta[..., i] > hi + tol)
    return out


def forward_kinematics(rotmats: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """Anny native-axes FK. rotmats (B, 21, 3, 3) local-ref slot rotations, q (B|1, 22, 3) zero-pose
    joints → joint positions x (B, 22, 3) and accumulated rotations G (B, 22, 3, 3); root at q[:, 0]."""
    B = rotmats.shape[0]
    G = [torch.eye(3, dtype=rotmats.dtype, device=rotmats.device).expand(B, 3, 3)]
    x = [q[:, 0].expand(B, 3)]
    for j in range(1, 22):
        p = BODY_PARENTS[j]
        x.append(x[p] + (G[p] @ (q[:, j] - q[:, p])[..., None])[..., 0])
        G.append(G[p] @ rotmats[:, j - 1])
    return torch.stack(x, 1), torch.stack(G, 1)


@dataclass
class FitShape:
    """Shared body calibration: ``phenotype`` (6) in [0, 1], ``scale`` (), marker ``offsets`` (K, 3)
    in meters, native axes, in the frame of each target joint's parent segment."""

    phenotype: Tensor
    scale: Tensor
    offsets: Tensor


@dataclass
class FitResult:
    """Per frame: ``body_pose`` (N, 21, 3) local-ref axis-angle (native axes), ``root_pose`` (N, 3)
    axis-angle and ``trans`` (N, 3) in the canonical frame, ``joint_err`` (N, K) per-target error and
    ``mpjpe`` (N,) mean error over the evaluated targets (meters)."""

    body_pose: Tensor
    root_pose: Tensor
    trans: Tensor
    joint_err: Tensor
    mpjpe: Tensor


class PoseFitter:
    """Fits Anny body poses to target joint positions (canonical frame: Y up).

    Args:
        body: an :class:`~neuralannot.bodies.anny.AnnyBody` (built if None).
        target_joints: Anny joint name of each target (``JOINT_NAMES``); default: CMU mapping.
        weights: per-target weight (K,); default: CMU mapping weights.
        n_eval: the first ``n_eval`` targets enter the MPJPE (default: all).
    """

    def __init__(self, body=None, target_joints: list[str] | None = None, weights=None, n_eval=None):
        if body is None:
            from neuralannot.bodies.anny import AnnyBody

            body = AnnyBody()
        self.body = body
        if target_joints is None:
            target_joints = [a for _, a, _ in CMU_TO_ANNY]
            weights = [w for _, _, w in CMU_TO_ANNY] if weights is None else weights
            n_eval = CMU_EVAL if n_eval is None else n_eval
        self.target_ids = torch.tensor([JOINT_NAMES.index(n) for n in target_joints])
        self.parent_ids = torch.tensor([max(BODY_PARENTS[i], 0) for i in self.target_ids.tolist()])
        self.weights = torch.as_tensor(weights if weights is not None else [1.0] * len(target_joints))
        self.n_eval = n_eval or len(target_joints)
        self.F = ANNY_TO_CANONICAL.clone()
        self.free_idx = torch.tensor([SLOT_NAMES.index(n) for n in FREE_SLOTS])
        self.hinge_idx = torch.tensor([SLOT_NAMES.index(n) for n in HINGE_SLOTS])
        self.hinge_axes = torch.tensor(list(HINGE_AXES.values()))
        self.init_ids = [i for i, n in enumerate(target_joints) if n in INIT_JOINTS]
        lims = [HINGE_RANGE_DEG[n.split("_")[1]] for n in HINGE_SLOTS]
        self.hinge_lo = torch.tensor([math.radians(a) for a, _ in lims])
        self.hinge_hi = torch.tensor([math.radians(b) for _, b in lims])
        self.free_max = torch.tensor([math.radians(MAX_ANGLE_DEG.get(n, math.inf)) for n in FREE_SLOTS])
        self.prior = torch.tensor([PRIOR_WEIGHT[n] for n in FREE_SLOTS])
        self.limit_weight = 10.0
        self.offset_weight = 1e-2

    def default_shape(self) -> FitShape:
        """Default body (phenotypes 0.5), scale 1, no offsets."""
        K = len(self.target_ids)
        return FitShape(torch.full((6,), 0.5), torch.tensor(1.0), torch.zeros(K, 3))

    def zero_pose_joints(self, phenotype: Tensor) -> Tensor:
        """Anny zero-pose joints (1, 22, 3), native axes, root at the origin; differentiable."""
        B = 1
        p = {
            "phenotype": phenotype.reshape(1, 6),
            "root_pose": torch.zeros(B, 3),
            "trans": torch.zeros(B, 3),
            "body_pose": torch.zeros(B, 21, 3),
        }
        return self.body(p, return_vertices=False).joints @ self.F

    # -- model -----------------------------------------------------------------------------
    def body_pose(self, free: Tensor, hinge: Tensor) -> Tensor:
        """Free-slot axis-angles (B, 13, 3) and hinge angles (B, 4) → body_pose (B, 21, 3)."""
        bp = free.new_zeros(free.shape[0], 21, 3)
        bp = bp.index_copy(1, self.free_idx, free)
        return bp.index_copy(1, self.hinge_idx, hinge[..., None] * self.hinge_axes)

    def points(self, body_pose: Tensor, R: Tensor, t: Tensor, q: Tensor, shape: FitShape) -> Tensor:
        """Target points (B, K, 3) in the canonical frame for poses (B, 21, 3), root rotations R
        (B, 3, 3), translations t (B, 3) and zero-pose joints q (1, 22, 3)."""
        x, G = forward_kinematics(roma.rotvec_to_rotmat(body_pose), q)
        pts = x[:, self.target_ids] + (G[:, self.parent_ids] @ shape.offsets[..., None])[..., 0]
        return shape.scale * pts @ (R @ self.F).transpose(-1, -2) + t[:, None]

    def init_root(self, targets: Tensor, q: Tensor, shape: FitShape) -> tuple[Tensor, Tensor]:
        """Procrustes of the zero pose's pelvis/hips/shoulders/neck onto the targets → R (B,3,3), t (B,3)."""
        B = targets.shape[0]
        eye = torch.eye(3).expand(B, 3, 3)
        src = self.points(torch.zeros(B, 21, 3), eye, torch.zeros(B, 3), q, shape)[:, self.init_ids]
        return rigid_align(src, targets[:, self.init_ids])

    def _penalties(self, free: Tensor, hinge: Tensor) -> Tensor:
        """Per-frame prior + joint-limit penalty (B,)."""
        ang = (free.square().sum(-1) + 1e-12).sqrt()
        prior = (self.prior * free.square().sum(-1)).sum(-1)
        limit = (ang - self.free_max).clamp(min=0).square().sum(-1)
        limit = limit + (self.hinge_lo - hinge).clamp(min=0).square().sum(-1)
        limit = limit + (hinge - self.hinge_hi).clamp(min=0).square().sum(-1)
        return prior + self.limit_weight * limit

    def _optimise(self, targets, q, shape, iters, lr, init, shared=()):
        B = targets.shape[0]
        if init is None:
            R0, t0 = self.init_root(targets, q, shape)
            free0, hinge0 = torch.zeros(B, len(FREE_SLOTS), 3), torch.zeros(B, 4)
        else:
            R0, t0 = roma.rotvec_to_rotmat(init["root_pose"]), init["trans"]
            free0 = init["body_pose"][:, self.free_idx]
            hinge0 = hinge_angles(init["body_pose"])
        root6d = rotmat_to_rot6d(R0).clone().requires_grad_()
        trans = t0.clone().requires_grad_()
        free = free0.clone().requires_grad_()
        hinge = hinge0.clone().requires_grad_()
        groups = [{"params": [root6d, free, hinge], "lr": lr}, {"params": [trans], "lr": lr * 0.2}]
        groups += [{"params": list(shared), "lr": lr * 0.2}] if shared else []
        opt = torch.optim.Adam(groups)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters, eta_min=lr * 0.02)
        w = self.weights
        for _ in range(iters):
            opt.zero_grad(set_to_none=True)
            cur = shape() if callable(shape) else shape
            qq = self.zero_pose_joints(cur.phenotype) if callable(shape) else q
            pts = self.points(self.body_pose(free, hinge), rot6d_to_rotmat(root6d), trans, qq, cur)
            loss = (w * (pts - targets).square().sum(-1)).sum(-1) + self._penalties(free, hinge)
            loss = loss.sum()
            if callable(shape):
                loss = loss + B * self.offset_weight * cur.offsets.square().sum()
            loss.backward()
            opt.step()
            sched.step()
        return root6d.detach(), trans.detach(), free.detach(), hinge.detach()

    # -- public ----------------------------------------------------------------------------
    def calibrate(self, targets: Tensor, iters: int = 1500, lr: float = 0.03) -> FitShape:
        """Fit the shared phenotype, scale and marker offsets (with per-frame poses) on a subset
        of frames ``targets`` (M, K, 3); returns the calibrated :class:`FitShape`."""
        base = self.default_shape()
        q0 = self.zero_pose_joints(base.phenotype).detach()
        # poses first, on the default body, then everything jointly
        root6d, trans, free, hinge = self._optimise(targets, q0, base, iters // 2, lr, None)
        logit = torch.zeros(6, requires_grad=True)
        log_s = torch.zeros((), requires_grad=True)
        offs = torch.zeros_like(base.offsets, requires_grad=True)

        def shape():
            return FitShape(torch.sigmoid(logit), log_s.exp(), offs)

        init = {
            "root_pose": roma.rotmat_to_rotvec(rot6d_to_rotmat(root6d)),
            "trans": trans,
            "body_pose": self.body_pose(free, hinge),
        }
        self._optimise(targets, None, shape, iters, lr, init, shared=(logit, log_s, offs))
        s = shape()
        return FitShape(s.phenotype.detach(), s.scale.detach(), s.offsets.detach())

    @torch.no_grad()
    def evaluate(self, targets: Tensor, body_pose, root_pose, trans, shape: FitShape, q=None) -> Tensor:
        """Per-target errors (N, K) in meters of given poses."""
        q = self.zero_pose_joints(shape.phenotype) if q is None else q
        pts = self.points(body_pose, roma.rotvec_to_rotmat(root_pose), trans, q, shape)
        return (pts - targets).norm(dim=-1)

    def _fit_batches(self, targets, shape, q, iters, lr, batch_size, init, progress=None):
        outs = []
        for a in range(0, targets.shape[0], batch_size):
            sl = slice(a, a + batch_size)
            ini = None if init is None else {k: v[sl] for k, v in init.items()}
            root6d, trans, free, hinge = self._optimise(targets[sl], q, shape, iters, lr, ini)
            free = roma.rotmat_to_rotvec(roma.rotvec_to_rotmat(free))  # angles in [0, pi]
            bp, rp = self.body_pose(free, hinge), roma.rotmat_to_rotvec(rot6d_to_rotmat(root6d))
            outs.append((bp, rp, trans, self.evaluate(targets[sl], bp, rp, trans, shape, q)))
            if progress is not None:
                progress(min(a + batch_size, targets.shape[0]))
        return [torch.cat(v) for v in zip(*outs, strict=True)]

    def fit(
        self,
        targets: Tensor,
        shape: FitShape | None = None,
        iters: int = 2000,
        lr: float = 0.1,
        batch_size: int = 512,
        init: dict[str, Tensor] | None = None,
        retry_above: float | None = 0.010,
        progress=None,
    ) -> FitResult:
        """Fit every frame of ``targets`` (N, K, 3), ``batch_size`` frames per Adam run (each frame
        is independent; ~10 ms per iteration for 512 frames on one CPU thread).

        ``init`` (optional): ``body_pose`` (N, 21, 3), ``root_pose`` (N, 3), ``trans`` (N, 3) to start
        from instead of the Procrustes root + zero pose. Frames whose MPJPE stays above
        ``retry_above`` (m; None = never) are refit from the :data:`RESTARTS` (bent knees/elbows,
        turned roots; escapes e.g. straight-leg and cartwheel minima) and keep their best fit.
        ``progress``: callable(n_done) or None.
        """
        shape = shape or self.default_shape()
        with torch.no_grad():
            q = self.zero_pose_joints(shape.phenotype)
        bp, rp, tr, err = self._fit_batches(targets, shape, q, iters, lr, batch_size, init, progress)
        mpjpe = err[:, : self.n_eval].mean(-1)
        bad = (mpjpe > retry_above).nonzero().flatten() if retry_above is not None else []
        if len(bad):
            R0, t0 = self.init_root(targets[bad], q, shape)
            for pre, hinge_deg in RESTARTS:
                R = R0 @ roma.rotvec_to_rotmat(torch.tensor(pre).deg2rad())
                hinge = torch.full((len(bad), 4), math.radians(hinge_deg))
                free = torch.zeros(len(bad), len(FREE_SLOTS), 3)
                ini = {"body_pose": self.body_pose(free, hinge), "root_pose": roma.rotmat_to_rotvec(R)}
                ini["trans"] = t0
                new = self._fit_batches(targets[bad], shape, q, iters, lr, batch_size, ini)
                better = new[3][:, : self.n_eval].mean(-1) < mpjpe[bad]
                for old, val in zip((bp, rp, tr, err), new, strict=True):
                    old[bad[better]] = val[better]
                mpjpe = err[:, : self.n_eval].mean(-1)
        return FitResult(bp, rp, tr, err, mpjpe)
