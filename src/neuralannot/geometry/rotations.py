"""Rotation conversions (thin wrappers over roma) for any leading batch dims ``...``.

6D rotations follow Zhou et al. 2019 with the *column* convention: ``x[..., :3]`` is the first
and ``x[..., 3:]`` the second column of the rotation matrix (what ``roma.special_gramschmidt``
orthonormalises). Note that some code bases (e.g. SPIN's ``x.view(-1, 3, 2)``) interleave rows
instead; their 6D vectors are not interchangeable with these.

Two representations travel through the API under names, not only shapes: ``"axis_angle"``
``(*batch, *count, 3)`` and ``"matrix"`` ``(*batch, *count, 3, 3)``, where ``count`` is the
per-sample number of rotations (``()`` for one, ``(21,)`` for a body pose).
:func:`rotation_format` names the one a tensor holds given ``count`` and the number of batch
dimensions; it raises on anything else, so ``(B, 3, 3)`` is never guessed.
"""

from __future__ import annotations

from typing import Literal

import roma
import torch
from torch import Tensor

RotationFormat = Literal["axis_angle", "matrix"]
ROTATION_FORMATS: tuple[RotationFormat, ...] = ("axis_angle", "matrix")

__all__ = [
    "ROTATION_FORMATS",
    "RotationFormat",
    "flip_rotvec",
    "rot6d_to_rotmat",
    "rot6d_to_rotvec",
    "rotmat_to_rot6d",
    "rotmat_to_rotvec",
    "rotvec_to_rot6d",
    "rotation_format",
    "rotvec_to_rotmat",
    "to_rotmat",
    "to_rotvec",
    "twist_angle",
]


def rot6d_to_rotmat(x: Tensor, eps: float = 1e-8) -> Tensor:
    """(..., 6) two matrix columns -> (..., 3, 3) rotation via Gram-Schmidt.

    ``eps`` clamps the column norms so (near-)zero inputs give finite output instead of NaN.
    """
    if x.shape[-1] != 6:
        raise ValueError(f"rot6d_to_rotmat expects (..., 6), got {tuple(x.shape)}")
    return roma.special_gramschmidt(torch.stack((x[..., :3], x[..., 3:]), dim=-1), epsilon=eps)


def rotmat_to_rot6d(R: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 6): first column followed by second column."""
    return torch.cat((R[..., :, 0], R[..., :, 1]), dim=-1)


def rotvec_to_rotmat(rotvec: Tensor) -> Tensor:
    """Axis-angle (..., 3) -> (..., 3, 3)."""
    return roma.rotvec_to_rotmat(rotvec)


def rotmat_to_rotvec(R: Tensor) -> Tensor:
    """(..., 3, 3) -> axis-angle (..., 3), angle in [0, pi]."""
    return roma.rotmat_to_rotvec(R)


def rot6d_to_rotvec(x: Tensor) -> Tensor:
    """(..., 6) -> axis-angle (..., 3)."""
    return rotmat_to_rotvec(rot6d_to_rotmat(x))


def rotvec_to_rot6d(rotvec: Tensor) -> Tensor:
    """Axis-angle (..., 3) -> (..., 6)."""
    return rotmat_to_rot6d(rotvec_to_rotmat(rotvec))


def flip_rotvec(rotvec: Tensor) -> Tensor:
    """Mirror axis-angle rotations (..., 3) about the x = 0 plane: (x, y, z) -> (x, -y, -z).

    This is ``M R M`` with ``M = diag(-1, 1, 1)``. For a full SMPL-style image flip the caller
    must also swap left/right joints.
    """
    return rotvec * rotvec.new_tensor([1.0, -1.0, -1.0])


def twist_angle(R: Tensor, axis: Tensor) -> Tensor:
    """Twist of rotations ``R`` (..., 3, 3) about unit ``axis`` (..., 3) — the swing-twist
    decomposition's angle in (−π, π]; 0 where ``axis`` is zero."""
    q = roma.rotmat_to_unitquat(R)  # (x, y, z, w)
    psi = 2.0 * torch.atan2((q[..., :3] * axis).sum(-1), q[..., 3])
    return torch.atan2(torch.sin(psi), torch.cos(psi))


def rotation_format(rot: Tensor, count: tuple[int, ...] = (), batch_dims: int = 1) -> RotationFormat:
    """Name the representation of ``rot``: ``"axis_angle"`` when its shape is
    ``(*batch, *count, 3)``, ``"matrix"`` when ``(*batch, *count, 3, 3)``, with ``batch_dims``
    leading batch dimensions. Any other shape raises :class:`ValueError` naming both."""
    tail = tuple(rot.shape[batch_dims:])
    if rot.ndim >= batch_dims:
        if tail == (*count, 3):
            return "axis_angle"
        if tail == (*count, 3, 3):
            return "matrix"
    lead = ", ".join(["B"] * batch_dims + [str(c) for c in count])
    sep = ", " if lead else ""
    raise ValueError(
        f"rotation of shape {tuple(rot.shape)} is neither axis-angle ({lead}{sep}3) "
        f"nor matrices ({lead}{sep}3, 3)"
    )


def to_rotmat(rot: Tensor, fmt: RotationFormat) -> Tensor:
    """Rotations in the named format → matrices ``(..., 3, 3)``."""
    if fmt == "axis_angle":
        return rotvec_to_rotmat(rot)
    if fmt == "matrix":
        return rot
    raise ValueError(f"unknown rotation format {fmt!r}; expected one of {ROTATION_FORMATS}")


def to_rotvec(rot: Tensor, fmt: RotationFormat) -> Tensor:
    """Rotations in the named format → axis-angle ``(..., 3)``."""
    if fmt == "matrix":
        return rotmat_to_rotvec(rot)
    if fmt == "axis_angle":
        return rot
    raise ValueError(f"unknown rotation format {fmt!r}; expected one of {ROTATION_FORMATS}")
