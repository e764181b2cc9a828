"""SMPLify-X's loss terms and weight schedule, in our units (used by :mod:`.optimize`).

- :func:`gmof`: Geman–McClure robustifier ``ρ² r² / (r² + ρ²)`` applied per coordinate, as
  SMPLify-X's ``GMoF`` (ρ = 100 px on 2D joints; ρ = 0.1 m for the 3D variant).
- :class:`Stage` / :func:`parse_schedule`: the multi-stage weights. SMPLify-X squares the data, pose
  and shape weights inside the loss (``w² · term``) while the bending weight is ``3.17 · w_pose``
  and is not squared; we keep that convention so its published numbers apply unchanged.
- :class:`BendingPrior`: SMPLify's elbow/knee prior ``Σ exp(−θ)²`` with θ the flexion angle of
  the hinge measured from a straight limb (negative = hyper-extension, penalised exponentially).
- :func:`shape_prior`: ``|β|²`` for the SMPL family; for Anny ``|(phenotype − 0.5) / 0.289|²``
  (0.289 = standard deviation of U(0, 1)), which puts phenotypes on a β-like unit scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralannot.geometry.rotations import rotation_format, to_rotvec

__all__ = [
    "BENDING_FACTOR",
    "DEFAULT_SCHEDULE",
    "PHENOTYPE_STD",
    "BendingPrior",
    "Stage",
    "gmof",
    "parse_schedule",
    "shape_prior",
]

#: SMPLify-X: ``bending_prior_weight = 3.17 * body_pose_weight``.
BENDING_FACTOR = 3.17
#: Std of a phenotype uniform on [0, 1]: Anny phenotype offsets are divided by it for the shape prior.
PHENOTYPE_STD = 1.0 / math.sqrt(12.0)
#: ``cfg_files/fit_smplx.yaml`` of SMPLify-X (5 stages; data weight 1, rescaled per image by 1000 / H).
DEFAULT_SCHEDULE = {
    "data": [1.0, 1.0, 1.0, 1.0, 1.0],
    "pose": [404.0, 404.0, 57.4, 4.78, 4.78],
    "shape": [100.0, 50.0, 10.0, 5.0, 5.0],
}
_ALIASES = {
    "data": "data", "data_weights": "data",
    "pose": "pose", "body_pose": "pose", "body_pose_prior_weights": "pose", "hand_pose_prior_weights": "pose",
    "shape": "shape", "shape_weights": "shape",
    "bending": "bending", "bending_prior_weights": "bending",
}  # fmt: skip


def gmof(residual: Tensor, rho: float) -> Tensor:
    """Geman–McClure ``ρ² r² / (r² + ρ²)`` per element (bounded by ρ²; ≈ r² for |r| ≪ ρ).

    ``r²`` is capped at 1e30 so absurd finite residuals (1e30 px) give ρ², not inf/inf = NaN.
    """
    r2 = residual.square().clamp(max=1e30)
    return (rho * rho) * r2 / (r2 + rho * rho)


@dataclass(frozen=True)
class Stage:
    """Weights of one optimisation stage (SMPLify-X convention: data/pose/shape enter squared)."""

    data: float = 1.0
    pose: float = 0.0
    shape: float = 0.0
    bending: float | None = None  # None: BENDING_FACTOR * pose

    @property
    def bending_weight(self) -> float:
        return BENDING_FACTOR * self.pose if self.bending is None else self.bending


def _numbers(value, key: str) -> list[float]:
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    if isinstance(value, int | float):
        value = [value]
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"schedule {key!r}: expected a list of numbers, got {value!r}") from None
    bad = [v for v in out if not math.isfinite(v) or v < 0]
    if bad:
        raise ValueError(f"schedule {key!r}: weights must be finite and >= 0, got {bad}")
    return out


def parse_schedule(spec: str | Mapping | Sequence[Stage] | None = None) -> list[Stage]:
    """Stage weights from ``None`` (:data:`DEFAULT_SCHEDULE`), a list of :class:`Stage`, a mapping
    ``{"pose": [...], "shape": [...], "data": [...], "bending": [...]}`` (SMPLify-X's YAML names
    ``body_pose_prior_weights``, ``shape_weights``, ``data_weights`` are accepted; lists may be
    comma strings) or a string ``"pose=404,404,57.4;shape=100,50,10"``. ``pose`` and ``shape`` are
    required; ``data`` defaults to 1 and ``bending`` to 3.17 × pose. Raises ValueError.
    """
    if spec is None:
        spec = DEFAULT_SCHEDULE
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        stages = list(spec)
        if not stages or not all(isinstance(s, Stage) for s in stages):
            raise ValueError("schedule: a sequence must hold at least one Stage")
        return stages
    if isinstance(spec, str):
        items = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"schedule: expected 'key=v1,v2,...' items separated by ';', got {part!r}")
            items[key.strip()] = value
        spec = items
    if not isinstance(spec, Mapping):
        raise ValueError(f"schedule: unsupported type {type(spec).__name__}")
    lists: dict[str, list[float]] = {}
    for key, value in spec.items():
        name = _ALIASES.get(str(key).strip())
        if name is None:
            raise ValueError(f"schedule: unknown key {key!r}; known: {sorted(_ALIASES)}")
        if name in lists:
            raise ValueError(f"schedule: {key!r} given twice")
        lists[name] = _numbers(value, str(key))
    missing = [k for k in ("pose", "shape") if k not in lists]
    if missing:
        raise ValueError(f"schedule: missing {missing} weights")
    n = len(lists["pose"])
    lengths = {k: len(v) for k, v in lists.items()}
    if n == 0 or any(v != n for v in lengths.values()):
        raise ValueError(f"schedule: every weight list needs the same number (>= 1) of stages, got {lengths}")
    data = lists.get("data", [1.0] * n)
    bending = lists.get("bending", [None] * n)
    return [Stage(data[i], lists["pose"][i], lists["shape"][i], bending[i]) for i in range(n)]


# ------------------------------------------------------------------------------------------------
# priors
# ------------------------------------------------------------------------------------------------
#: Anny's zero pose is already bent (``data.synthetic.pose_fit``): a straight knee / elbow has a
#: hinge angle of −8.6° / −42.1°; SMPLify's prior measures flexion from the straight limb.
ANNY_STRAIGHT_DEG = {"knee": -8.6, "elbow": -42.1}
#: SMPL(-X) flexion axes in the joints' local frames, from SMPLify's ``angle_prior_idxs``/``signs``
#: (left elbow −y, right elbow +y, knees +x; flexion = component along the axis).
SMPL_HINGE_AXES = {
    "left_knee": (1.0, 0.0, 0.0),
    "right_knee": (1.0, 0.0, 0.0),
    "left_elbow": (0.0, -1.0, 0.0),
    "right_elbow": (0.0, 1.0, 0.0),
}


class BendingPrior:
    """SMPLify's bending prior on the elbows and knees: ``Σ_k exp(−θ_k)²`` per sample, with
    ``θ_k`` = flexion (axis-angle component along the hinge axis, positive = bending the natural
    way) minus the flexion of a straight limb. Built for a body model with a ``body_pose`` group
    whose joints are ``model.joint_names[1:]`` (Anny body: :data:`~neuralannot.bodies.anny.HINGE_AXES`;
    SMPL / SMPL-X:
    :data:`SMPL_HINGE_AXES`). ``None`` from :meth:`for_model` for models without such joints.
    """

    def __init__(self, indices: list[int], axes: Tensor, straight: Tensor):
        self.indices, self.axes, self.straight = indices, axes, straight

    @classmethod
    def for_model(cls, body) -> BendingPrior | None:
        if "body_pose" not in body.param_specs:
            return None
        names = list(body.joint_names)
        if body.name == "anny":
            from neuralannot.bodies.anny import HINGE_AXES

            axes = HINGE_AXES
            straight = [math.radians(ANNY_STRAIGHT_DEG[n.split("_")[1]]) for n in axes]
        else:
            axes, straight = SMPL_HINGE_AXES, [0.0] * 4
        if not all(n in names for n in axes):
            return None
        idx = [names.index(n) - 1 for n in axes]
        return cls(idx, torch.tensor(list(axes.values())), torch.tensor(straight))

    def __call__(self, pose: Tensor) -> Tensor:
        """``pose``: (B, J, 3) axis-angle or (B, J, 3, 3) matrices of ``body_pose`` → (B,)."""
        rot = pose[:, self.indices]
        rot = to_rotvec(rot, rotation_format(rot, (len(self.indices),)))
        axes = self.axes.to(rot)
        theta = (rot * axes).sum(-1) - self.straight.to(rot)
        return torch.exp(-theta).square().sum(-1)


def shape_prior(values: Tensor, anny: bool) -> Tensor:
    """``|β|²`` (SMPL family) or ``|(phenotype − 0.5) / PHENOTYPE_STD|²`` (Anny), (B, n) → (B,)."""
    if anny:
        values = (values - 0.5) / PHENOTYPE_STD
    return values.square().sum(-1)
