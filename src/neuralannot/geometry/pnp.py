"""Rigid pose from 2D points (PnP) by damped Gauss-Newton, batched: the rotation and translation of a
known 3D point set that best project onto given pixels.

Used by wild-mode annotation (``AnnotatorConfig.root_solve``): the network's articulation and shape
are kept, and its global rotation and translation are refined to fit the 2D joints, as a per-sample
fit would, from the network's estimate (a local solve: it stays in the start's basin, so the facing
or palm side picked among the root hypotheses is kept).
"""

from __future__ import annotations

import roma
import torch
from torch import Tensor

from neuralannot.geometry.camera import project

__all__ = ["rigid_pnp"]


def _skew(v: Tensor) -> Tensor:
    """(..., 3) → (..., 3, 3) cross-product matrices ``[v]×``."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(*v.shape, 3)


def rigid_pnp(
    points: Tensor,
    uv: Tensor,
    weights: Tensor,
    K: Tensor,
    iterations: int = 10,
    damping: float = 1e-3,
) -> tuple[Tensor, Tensor, Tensor]:
    """Rotation ``Q`` (B, 3, 3) about the points' weighted centroid and new translation so that
    ``project(Q (points − c) + c + t)`` fits ``uv``.

    Args:
        points: (B, J, 3) camera-frame points at their current pose (their depth must be positive).
        uv: (B, J, 2) target pixels. weights: (B, J) >= 0 (0: ignored, its target may be NaN; fewer
            than 3 weighted points: unchanged).
        K: (B, 3, 3) intrinsics.
        iterations: Levenberg-Marquardt steps; ``damping``: λ relative to the normal matrix's diagonal.

    Returns:
        ``Q`` (B, 3, 3), ``shift`` (B, 3) and the moved points (B, J, 3), with
        ``moved = (points − c) Qᵀ + c + shift`` (``c`` the weighted centroid).
    """
    dtype = points.dtype
    X, w, K = points.double(), weights.double().clamp(min=0), K.double()
    x = torch.where(w[..., None] > 0, uv.double(), 0.0)  # ignored targets may be NaN
    B = X.shape[0]
    wsum = w.sum(-1, keepdim=True)
    c = (w[..., None] * X).sum(1) / wsum.clamp(min=1e-12)
    Xc = X - c[:, None]
    omega, t = X.new_zeros(B, 3), X.new_zeros(B, 3)
    lam = X.new_full((B,), damping)
    fx, fy = K[:, 0, 0], K[:, 1, 1]

    def residual(om: Tensor, tt: Tensor) -> tuple[Tensor, Tensor]:
        P = Xc @ roma.rotvec_to_rotmat(om).transpose(-1, -2) + (c + tt)[:, None]
        r = project(P, K) - x
        return P, r

    P, r = residual(omega, t)
    cost = (w[..., None] * r.square()).sum((1, 2))
    for _ in range(iterations):
        z = P[..., 2].clamp(min=1e-6)
        du = torch.zeros(B, X.shape[1], 2, 3, dtype=X.dtype, device=X.device)
        du[..., 0, 0] = fx[:, None] / z
        du[..., 0, 2] = -fx[:, None] * P[..., 0] / z.square()
        du[..., 1, 1] = fy[:, None] / z
        du[..., 1, 2] = -fy[:, None] * P[..., 1] / z.square()
        # left increment exp(δ) R: d(exp(δ) Y)/dδ = −[Y]×, Y the rotated centred points
        Y = P - (c + t)[:, None]
        J = torch.cat([du @ -_skew(Y), du], -1)  # (B, J, 2, 6)
        JtJ = torch.einsum("bj,bjki,bjkl->bil", w, J, J)
        Jtr = torch.einsum("bj,bjki,bjk->bi", w, J, r)
        diag = torch.diagonal(JtJ, dim1=-2, dim2=-1)
        A = JtJ + torch.diag_embed(lam[:, None] * diag + 1e-12)
        delta = -torch.linalg.solve(A, Jtr[..., None])[..., 0]
        om_new = roma.rotmat_to_rotvec(roma.rotvec_to_rotmat(delta[:, :3]) @ roma.rotvec_to_rotmat(omega))
        t_new = t + delta[:, 3:]
        P_new, r_new = residual(om_new, t_new)
        cost_new = (w[..., None] * r_new.square()).sum((1, 2))
        better = (cost_new < cost) & torch.isfinite(cost_new)
        omega = torch.where(better[:, None], om_new, omega)
        t = torch.where(better[:, None], t_new, t)
        P = torch.where(better[:, None, None], P_new, P)
        r = torch.where(better[:, None, None], r_new, r)
        cost = torch.where(better, cost_new, cost)
        lam = torch.where(better, lam * 0.3, lam * 10.0).clamp(1e-9, 1e9)
    few = (w > 0).sum(-1) < 3
    Q = roma.rotvec_to_rotmat(torch.where(few[:, None], 0.0, omega))
    t = torch.where(few[:, None], 0.0, t)
    moved = Xc @ Q.transpose(-1, -2) + (c + t)[:, None]
    return Q.to(dtype), t.to(dtype), moved.to(dtype)
