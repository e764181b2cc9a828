"""Samplers of human-looking Anny parameters: body poses (real CMU poses), global orientations,
phenotypes, hand poses and facial actions.

All rotations are axis-angle. Body poses (n, 21, 3) are Anny ``local-ref`` rotations of
:data:`~neuralannot.bodies.anny.BODY_SLOTS` in Anny's native axes (Z up, face toward −Y, model's
left = +X); global orientations are ``root_pose`` in the canonical frame of
:class:`~neuralannot.bodies.anny.AnnyBody` (Y up, facing +Z, left = +X). Hand poses (n, 15, 3) are
Anny finger-rotation parameters, which are in Anny's native body axes for the hand model as for the
whole body (:data:`WRIST_R_REFERENCE`); their joint limits and flexion axes are defined in the right
hand model's frame (+Y from the wrist toward the fingers, palm toward −X, thumb side +Z).
Every sampler takes an optional ``torch.Generator`` and is deterministic given it.
"""

from __future__ import annotations

import math
from pathlib import Path

import roma
import torch
from torch import Tensor

from neuralannot.data.synthetic.pose_fit import (
    HINGE_AXES,
    HINGE_RANGE_DEG,
    HINGE_SLOTS,
    MAX_ANGLE_DEG,
    SLOT_NAMES,
    hinge_angles,
)
from neuralannot.geometry import flip_rotvec

LIBRARY_PATH = Path(__file__).resolve().parents[2] / "assets" / "anny_pose_library.safetensors"
#: slot index of each slot's mirror counterpart (left ↔ right)
MIRROR_PERM = [
    SLOT_NAMES.index(n.replace("left_", "@").replace("right_", "left_").replace("@", "right_"))
    for n in SLOT_NAMES
]
#: extra noise (degrees) on slots the library leaves at rest (not observable in mocap joints)
UNOBSERVED_DEG = {"head": 10.0, "left_wrist": 20.0, "right_wrist": 20.0, "left_foot": 5.0, "right_foot": 5.0}


def mirror_body_pose(body_pose: Tensor) -> Tensor:
    """Mirror body poses (..., 21, 3) about the sagittal plane: swap left/right slots and map each
    axis-angle (x, y, z) → (x, −y, −z) (X is the left-right axis of Anny's native frame). Involution."""
    return flip_rotvec(body_pose[..., MIRROR_PERM, :])


def load_pose_library(path: str | Path | None = None) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors (``body_pose`` (N, 21, 3), ``root_tilt``, ``activity``, ...) and metadata of the library."""
    from safetensors import safe_open

    with safe_open(str(path or LIBRARY_PATH), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def _clamp_to_limits(body_pose: Tensor) -> Tensor:
    """Put knees/elbows back on their hinge axis within range and cap other slots' angles."""
    out = body_pose.clone()
    theta = hinge_angles(body_pose)
    for i, n in enumerate(HINGE_SLOTS):
        lo, hi = (math.radians(v) for v in HINGE_RANGE_DEG[n.split("_")[1]])
        out[..., SLOT_NAMES.index(n), :] = theta[..., i, None].clamp(lo, hi) * out.new_tensor(HINGE_AXES[n])
    for n, lim in MAX_ANGLE_DEG.items():
        j = SLOT_NAMES.index(n)
        ang = out[..., j, :].norm(dim=-1, keepdim=True)
        out[..., j, :] = out[..., j, :] * (math.radians(lim) / ang.clamp(min=1e-8)).clamp(max=1.0)
    return out


class BodyPoseSampler:
    """Real body poses from the shipped CMU-fitted library, randomly mirrored and jittered.

    Args:
        library_path: safetensors library (default: the shipped ``assets/anny_pose_library.safetensors``).
        mirror_prob: probability of mirroring a sample left ↔ right.
        noise_deg: std of the Gaussian axis-angle noise per slot (degrees; hinges get it along
            their axis only); slots the library leaves at rest get :data:`UNOBSERVED_DEG` on top.
        seed: seed of the internal generator used when ``sample`` gets no generator.
    """

    def __init__(self, library_path=None, mirror_prob: float = 0.5, noise_deg: float = 3.0, seed: int = 0):
        tensors, self.metadata = load_pose_library(library_path)
        self.poses = tensors["body_pose"].float()
        self.root_tilt = tensors.get("root_tilt", torch.zeros(len(self.poses), 3)).float()
        self.activity = tensors.get("activity")
        self.mirror_prob, self.noise_deg = mirror_prob, noise_deg
        self.generator = torch.Generator().manual_seed(seed)
        std = torch.full((21, 1), math.radians(noise_deg))
        for n, deg in UNOBSERVED_DEG.items():
            std[SLOT_NAMES.index(n)] = math.hypot(math.radians(deg), math.radians(noise_deg))
        self._std = std

    def __len__(self) -> int:
        return len(self.poses)

    def sample(self, n: int, generator: torch.Generator | None = None, return_info: bool = False):
        """``n`` body poses (n, 21, 3); with ``return_info`` also a dict with the library ``index``
        (n,), ``mirrored`` (n,) bool and the matching (mirrored) ``root_tilt`` (n, 3)."""
        g = generator or self.generator
        idx = torch.randint(len(self.poses), (n,), generator=g)
        mirrored = torch.rand(n, generator=g) < self.mirror_prob
        pose = torch.where(mirrored[:, None, None], mirror_body_pose(self.poses[idx]), self.poses[idx])
        pose = _clamp_to_limits(pose + torch.randn(n, 21, 3, generator=g) * self._std)
        if not return_info:
            return pose
        tilt = torch.where(mirrored[:, None], flip_rotvec(self.root_tilt[idx]), self.root_tilt[idx])
        return pose, {"index": idx, "mirrored": mirrored, "root_tilt": tilt}


#: Forward pitch (degrees, about +X) of the captured pelvis when the body stands upright: the
#: median ``root_tilt`` pitch of near-upright library frames (metadata ``upright_pitch_deg``). Library
#: poses have their root removed, so an identity root leans them back by about this much.
UPRIGHT_PITCH_DEG = 6.0


def _axis_rot(axis: int, angle: Tensor) -> Tensor:
    v = torch.zeros(*angle.shape, 3, dtype=angle.dtype)
    v[..., axis] = angle
    return roma.rotvec_to_rotmat(v)


def sample_global_orientation(
    n: int,
    generator: torch.Generator | None = None,
    tilt_deg: float = 5.0,
    lying_frac: float = 0.1,
    bending_frac: float = 0.1,
    tilt: Tensor | None = None,
    pitch_deg: float = UPRIGHT_PITCH_DEG,
) -> Tensor:
    """Global orientations ``root_pose`` (n, 3), canonical frame: yaw uniform over 360° about the
    vertical (+Y) after a tilt: upright (pitch ~ N(``pitch_deg``, ``tilt_deg``), roll ~ N(0,
    ``tilt_deg``); or the given ``tilt`` (n, 3) axis-angle, e.g. the library ``root_tilt`` of the
    sampled poses, which keeps each capture's balance), lying (``lying_frac``: on the back, front
    or a side, ±8°) or bending forward (``bending_frac``: pitch 20–80°)."""
    u = torch.rand(n, generator=generator)
    rnd = torch.randn(n, 3, generator=generator)
    std = math.radians(tilt_deg)
    pitch, roll = math.radians(pitch_deg) + rnd[:, 0] * std, rnd[:, 1] * std
    R_tilt = _axis_rot(0, pitch) @ _axis_rot(2, roll)
    if tilt is not None:
        R_tilt = roma.rotvec_to_rotmat(tilt.float())
    # lying: on the back (pitch −90°), front (+90°), left or right side (roll ±90°)
    kind = torch.randint(4, (n,), generator=generator)
    quarter = torch.tensor([-1.0, 1.0, -1.0, 1.0])[kind] * math.pi / 2 + rnd[:, 2] * math.radians(8.0)
    R_lying = torch.where((kind < 2)[:, None, None], _axis_rot(0, quarter), _axis_rot(2, quarter)) @ R_tilt
    bend = math.radians(20.0) + torch.rand(n, generator=generator) * math.radians(60.0)
    R_bend = _axis_rot(0, bend) @ _axis_rot(2, roll)
    lying = u < lying_frac
    bending = (u >= lying_frac) & (u < lying_frac + bending_frac)
    R = torch.where(lying[:, None, None], R_lying, torch.where(bending[:, None, None], R_bend, R_tilt))
    yaw = torch.rand(n, generator=generator) * 2 * math.pi
    return roma.rotmat_to_rotvec(_axis_rot(1, yaw) @ R)


def sample_phenotypes(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Phenotypes (n, 6) in [0, 1], order ``gender, age, muscle, weight, height, proportions``.

    Age (0 baby, 1/3 child, 0.5 teenager, 2/3 young adult, 1 old): 12% children [0, 0.45], 10% teens
    [0.45, 0.62], 60% adults [0.62, 0.9], 18% elderly [0.9, 1]. Gender: 80% U-shaped Beta(0.5, 0.5)
    (mostly clearly male/female), 20% uniform. Muscle, weight, height, proportions: 80% Beta(2, 2),
    20% uniform (all builds, extremes included).
    """
    g = generator

    def mix(a: float, b: float) -> Tensor:
        x = _beta(n, a, b, g)
        return torch.where(torch.rand(n, generator=g) < 0.2, torch.rand(n, generator=g), x)

    gender = mix(0.5, 0.5)
    bins = torch.tensor([[0.0, 0.45], [0.45, 0.62], [0.62, 0.9], [0.9, 1.0]])
    which = torch.multinomial(torch.tensor([0.12, 0.10, 0.60, 0.18]), n, replacement=True, generator=g)
    lo, hi = bins[which].unbind(-1)
    age = lo + (hi - lo) * torch.rand(n, generator=g)
    rest = [mix(2.0, 2.0) for _ in range(4)]
    return torch.stack([gender, age, *rest], -1).clamp(0.0, 1.0)


def _beta(n: int, a: float, b: float, g: torch.Generator | None) -> Tensor:
    """Beta(a, b) samples (n,) from a generator (inverse CDF on a fine grid)."""
    x = torch.linspace(0.0, 1.0, 4097, dtype=torch.float64)
    pdf = (x.clamp(1e-6, 1 - 1e-6) ** (a - 1)) * ((1 - x).clamp(1e-6, 1 - 1e-6) ** (b - 1))
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum((pdf[1:] + pdf[:-1]) / 2, 0)])
    cdf = cdf / cdf[-1]
    u = torch.rand(n, generator=g, dtype=torch.float64)
    i = torch.searchsorted(cdf, u).clamp(1, len(x) - 1)
    w = (u - cdf[i - 1]) / (cdf[i] - cdf[i - 1]).clamp(min=1e-12)
    return (x[i - 1] + w * (x[i] - x[i - 1])).float()


# -- hands -------------------------------------------------------------------------------------
#: Anny right-hand zero-pose joints (mm, default phenotype): wrist, then finger{1..5}-{1..3} heads.
HAND_REST_MM = [
    [0, 0, 0], [-2, 40, 20], [-23, 54, 36], [-40, 82, 51], [3, 104, 16], [-2, 129, 17], [-11, 150, 16],
    [9, 100, -9], [1, 131, -17], [-8, 156, -22], [10, 92, -27], [5, 119, -39], [-3, 140, -47],
    [6, 82, -45], [1, 100, -55], [-6, 112, -62],
]  # fmt: skip
#: Reference orientation ``U`` of ``wrist.R`` in Anny's body rig (native body axes, shape-independent):
#: the right-hand model's frame. Finger rotation parameters (``AnnyHand.hand_pose`` and
#: ``AnnyBody.rhand_pose`` alike) are in native *body* axes: a rotation ``r`` in the hand frame is
#: the parameter ``U r`` (checked numerically against ``AnnyHand``).
WRIST_R_REFERENCE = (
    (-0.820990, -0.313254, 0.477334),
    (-0.033155, -0.808477, -0.587593),
    (0.569980, -0.498234, 0.653365),
)
PALM_NORMAL = (-1.0, 0.0, 0.0)  # right hand: fingers curl toward −X, the thumb sits at −X
#: flexion range [lo, hi] and |abduction| max, degrees, per joint k = 1..3 (thumb row first)
HAND_LIMITS_DEG = {
    "thumb": [(-20.0, 60.0, 30.0), (-10.0, 60.0, 5.0), (-15.0, 80.0, 5.0)],
    "finger": [(-20.0, 90.0, 20.0), (0.0, 110.0, 5.0), (0.0, 80.0, 5.0)],
}
#: abduction direction per finger (+ = toward the thumb side, +Z)
_SPREAD = [0.0, 1.0, 0.15, -0.6, -1.0]
#: families: (max finger spread in [0, 1], flexion as a fraction of each joint's range for
#: thumb, index, middle, ring, pinky × joints 1..3)
HAND_FAMILIES: dict[str, tuple[float, list[list[float]]]] = {
    "open": (1.0, [[0.2, 0.1, 0.1], [0.2, 0.0, 0.0], [0.2, 0.0, 0.0], [0.2, 0.0, 0.0], [0.2, 0.0, 0.0]]),
    "relaxed": (0.5, [[0.4, 0.3, 0.3], [0.35, 0.25, 0.25], [0.4, 0.3, 0.3], [0.45, 0.35, 0.3],
                      [0.5, 0.4, 0.35]]),
    "fist": (0.0, [[0.75, 0.85, 0.6], [0.95, 0.9, 0.75], [0.95, 0.9, 0.75], [0.95, 0.9, 0.75],
                   [0.95, 0.9, 0.75]]),
    "point": (0.3, [[0.7, 0.8, 0.5], [0.2, 0.0, 0.0], [0.95, 0.9, 0.75], [0.95, 0.9, 0.75],
                    [0.95, 0.9, 0.75]]),
    "pinch": (0.3, [[0.65, 0.5, 0.35], [0.55, 0.5, 0.3], [0.4, 0.3, 0.3], [0.45, 0.35, 0.3],
                    [0.5, 0.4, 0.35]]),
    "grasp": (0.2, [[0.55, 0.35, 0.3], [0.55, 0.55, 0.4], [0.6, 0.55, 0.4], [0.6, 0.55, 0.4],
                    [0.6, 0.55, 0.4]]),
}  # fmt: skip


def hand_axes() -> tuple[Tensor, Tensor, Tensor]:
    """Per finger joint (15, thumb first) unit flexion axes ``a``, abduction axes ``b`` and twist
    axes ``c`` (15, 3), right-hand model frame. A positive rotation about ``a`` curls the bone
    toward the palm (fingers: toward ``PALM_NORMAL``; thumb: across the palm, toward the middle
    finger's base in front of the palm); ``b`` ⟂ ``a`` spreads the finger, ``c`` ≈ along the bone."""
    J = torch.tensor(HAND_REST_MM, dtype=torch.float32) / 1000
    n = torch.tensor(PALM_NORMAL)
    a, b = [], []
    for f in range(5):
        ids = [1 + 3 * f + k for k in range(3)]
        for k in range(3):
            d = J[ids[k + 1]] - J[ids[k]] if k < 2 else J[ids[2]] - J[ids[1]]
            d = d / d.norm()
            toward = n if f else (J[7] + 0.03 * n - J[ids[k]])
            ax = torch.linalg.cross(d, toward)
            a.append(ax / ax.norm())
            ab = torch.linalg.cross(a[-1], d)  # ⟂ bone and flexion axis (≈ the palm normal)
            b.append(ab / ab.norm())
    a, b = torch.stack(a), torch.stack(b)
    # orient b so that + moves the fingertip toward the thumb side (+Z)
    y = torch.tensor([0.0, 1.0, 0.0])
    sign = torch.sign((torch.linalg.cross(b, y.expand_as(b)) * torch.tensor([0.0, 0.0, 1.0])).sum(-1))
    b = b * torch.where(sign == 0, 1.0, sign)[:, None]
    return a, b, torch.linalg.cross(a, b)


class HandPoseSampler:
    """Procedural hand poses (n, 15, 3) (finger1..5 × joints 1..3, thumb first) from the families
    :data:`HAND_FAMILIES` (open, relaxed, fist, point, pinch, grasp) with Gaussian noise, clipped to
    :data:`HAND_LIMITS_DEG` (flexion about :func:`hand_axes` ``a``, spread about ``b``, no twist).

    Args:
        families: family names to draw from (uniformly); default all.
        noise_deg: std of the flexion noise (degrees); abduction noise is half of it.
    """

    def __init__(self, families: list[str] | None = None, noise_deg: float = 6.0):
        self.families = list(families or HAND_FAMILIES)
        self.noise_deg = noise_deg
        self.a, self.b, self.c = hand_axes()
        self.U = roma.special_procrustes(torch.tensor(WRIST_R_REFERENCE, dtype=torch.float64)).float()
        lim = [HAND_LIMITS_DEG["thumb" if f == 0 else "finger"][k] for f in range(5) for k in range(3)]
        self.lo, self.hi, self.abd_max = (torch.tensor([math.radians(v[i]) for v in lim]) for i in range(3))
        self.frac = torch.tensor([HAND_FAMILIES[f][1] for f in self.families]).reshape(-1, 15)
        self.spread_max = torch.tensor([HAND_FAMILIES[f][0] for f in self.families])
        self.spread = torch.tensor([_SPREAD[f] if k == 0 else 0.0 for f in range(5) for k in range(3)])

    def flex_abd(self, hand_pose: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Decompose right-hand poses (..., 15, 3) (parameter axes) into flexion, abduction and twist
        angles (..., 15)."""
        r = hand_pose @ self.U  # → hand frame
        return (r * self.a).sum(-1), (r * self.b).sum(-1), (r * self.c).sum(-1)

    def within_limits(self, hand_pose: Tensor, tol_deg: float = 0.5) -> Tensor:
        """(...,) bool: every joint's flexion/abduction within limits and no twist (right-hand frame)."""
        tol = math.radians(tol_deg)
        flex, abd, twist = self.flex_abd(hand_pose)
        ok = (flex >= self.lo - tol) & (flex <= self.hi + tol) & (abd.abs() <= self.abd_max + tol)
        return (ok & (twist.abs() <= tol)).all(-1)

    def compose(self, flex: Tensor, abd: Tensor) -> Tensor:
        """Flexion and abduction angles (..., 15) → right-hand pose (..., 15, 3) (parameter axes)."""
        return (flex[..., None] * self.a + abd[..., None] * self.b) @ self.U.T

    def sample(
        self, n: int, generator: torch.Generator | None = None, side: str = "right", return_family=False
    ):
        """``n`` hand poses (n, 15, 3) of the ``side`` hand, usable as ``AnnyHand(side).hand_pose``
        and as ``AnnyBody(hands=True)``'s ``rhand_pose``/``lhand_pose`` (same axes); the left hand
        is the mirror ``flip_rotvec`` of a right hand. Optionally with the family index (n,) into
        ``self.families``."""
        g = generator
        fam = torch.randint(len(self.families), (n,), generator=g)
        frac = self.frac[fam] + torch.randn(n, 15, generator=g) * 0.03
        flex = self.lo + frac * (self.hi - self.lo)
        flex = flex + torch.randn(n, 15, generator=g) * math.radians(self.noise_deg)
        spread = torch.rand(n, 1, generator=g) * self.spread_max[fam, None]
        abd = spread * self.spread * self.abd_max
        abd = abd + torch.randn(n, 15, generator=g) * math.radians(self.noise_deg / 2)
        flex = torch.maximum(torch.minimum(flex, self.hi), self.lo)
        abd = torch.maximum(torch.minimum(abd, self.abd_max), -self.abd_max)
        pose = self.compose(flex, abd)
        if side == "left":
            pose = flip_rotvec(pose)
        return (pose, fam) if return_family else pose


# -- face --------------------------------------------------------------------------------------
class FaceSampler:
    """Anny facial actions (n, 52) in [0, 1] (ARKit names, ``anny.models.facial_actions``): per
    sample a few (``n_active`` range) random actions at U(0.2, 1), Left/Right pairs set together
    with probability ``symmetric_prob``, plus ``jawOpen`` ~ U(0, 1) with probability ``jaw_open_prob``;
    ``neutral_prob`` of the samples stay neutral (all zero)."""

    def __init__(self, n_active=(1, 4), jaw_open_prob=0.5, symmetric_prob=0.7, neutral_prob=0.1):
        from anny.models.facial_actions import FACIAL_ACTION_LABELS

        self.labels = list(FACIAL_ACTION_LABELS)
        self.n_active, self.jaw_open_prob = n_active, jaw_open_prob
        self.symmetric_prob, self.neutral_prob = symmetric_prob, neutral_prob
        self.jaw = self.labels.index("jawOpen")
        pair = list(range(len(self.labels)))
        for i, name in enumerate(self.labels):
            for a, b in (("Left", "Right"), ("Right", "Left")):
                if name.endswith(a) and name[: -len(a)] + b in self.labels:
                    pair[i] = self.labels.index(name[: -len(a)] + b)
        self.pair = torch.tensor(pair)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Facial action values (n, 52) in [0, 1]."""
        g, K = generator, len(self.labels)
        k = torch.randint(self.n_active[0], self.n_active[1] + 1, (n, 1), generator=g)
        order = torch.rand(n, K, generator=g).argsort(-1)
        active = torch.zeros(n, K, dtype=torch.bool).scatter(1, order, torch.arange(K).expand(n, K) < k)
        vals = torch.where(active, 0.2 + 0.8 * torch.rand(n, K, generator=g), torch.zeros(n, K))
        sym = torch.rand(n, 1, generator=g) < self.symmetric_prob
        vals = torch.where(sym, torch.maximum(vals, vals[:, self.pair]), vals)
        jaw = torch.rand(n, generator=g) < self.jaw_open_prob
        vals[:, self.jaw] = torch.where(jaw, torch.rand(n, generator=g), vals[:, self.jaw])
        neutral = torch.rand(n, 1, generator=g) < self.neutral_prob
        return torch.where(neutral, 0.0, vals).clamp(0.0, 1.0)


def pose_library_stats(library_path=None, n_samples: int = 10000, seed: int = 0) -> dict:
    """Summary of the library: ``count``, fit metadata, mean joint-angle magnitude per slot
    (degrees), hinge ranges, activity counts, and the fraction of mirrored draws and mean angle
    of ``n_samples`` draws of a default :class:`BodyPoseSampler`."""
    tensors, meta = load_pose_library(library_path)
    pose = tensors["body_pose"]
    ang = pose.norm(dim=-1).mean(0).rad2deg()
    hinge = hinge_angles(pose).rad2deg()
    out = {
        "count": len(pose),
        "fit_mpjpe_median_mm": float(meta.get("fit_mpjpe_median_mm", "nan")),
        "fit_mpjpe_p90_mm": float(meta.get("fit_mpjpe_p90_mm", "nan")),
        "mean_angle_deg": {n: round(float(a), 2) for n, a in zip(SLOT_NAMES, ang, strict=True)},
        "hinge_range_deg": {n: [round(float(hinge[:, i].min()), 1), round(float(hinge[:, i].max()), 1)]
                            for i, n in enumerate(HINGE_SLOTS)},
    }  # fmt: skip
    if "activity" in tensors and "activities" in meta:
        import json

        names = json.loads(meta["activities"])
        counts = torch.bincount(tensors["activity"].long(), minlength=len(names))
        out["activity_counts"] = {a: int(c) for a, c in zip(names, counts, strict=True)}
    sampler = BodyPoseSampler(library_path, seed=seed)
    draws, info = sampler.sample(n_samples, return_info=True)
    out["sampled_fraction_mirrored"] = float(info["mirrored"].float().mean())
    out["sampled_mean_angle_deg"] = round(float(draws.norm(dim=-1).mean().rad2deg()), 2)
    return out
