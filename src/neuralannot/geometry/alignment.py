"""Weighted, batched rigid and similarity (Umeyama) point-set alignment.

All functions take any leading batch dims ``...``: ``src``/``dst`` (..., N, D), ``weights`` (..., N)
>= 0. The fit minimises ``sum_i w_i |s R src_i + t - dst_i|^2`` with ``R`` a proper rotation
(det +1: Umeyama's sign correction, so a mirrored target never yields a reflection). Solved by
``roma.special_procrustes`` in float64 (then cast back), differentiable, with damped gradients
when the rotation is ambiguous (e.g. collinear points). Samples whose weights are all zero get the
identity transform.
"""

from __future__ import annotations

import roma
import torch
from torch import Tensor

__all__ = ["apply_similarity", "procrustes_align", "rigid_align", "similarity_align"]


def _fit(src: Tensor, dst: Tensor, weights: Tensor | None, scaling: bool) -> tuple[Tensor, Tensor, Tensor]:
    if src.shape != dst.shape or src.dim() < 2:
        raise ValueError(f"src and dst must both be (..., N, D), got {tuple(src.shape)}, {tuple(dst.shape)}")
    dtype = torch.promote_types(src.dtype, dst.dtype)
    work = torch.float64 if dtype in (torch.float16, torch.bfloat16, torch.float32) else dtype
    x, y = src.to(work), dst.to(work)
    if weights is None:
        w = torch.ones(x.shape[:-1], dtype=work, device=x.device)
    else:
        if weights.shape != x.shape[:-1]:
            raise ValueError(f"weights must be {tuple(x.shape[:-1])}, got {tuple(weights.shape)}")
        w = weights.to(work).clamp(min=0)
    wsum = w.sum(-1, keepdim=True)
    empty = wsum[..., 0] <= 0
    w = w / wsum.clamp(min=torch.finfo(work).tiny)
    xm = torch.einsum("...n,...nd->...d", w, x)
    ym = torch.einsum("...n,...nd->...d", w, y)
    xc, yc = x - xm[..., None, :], y - ym[..., None, :]
    M = torch.einsum("...n,...ni,...nj->...ij", w, yc, xc)
    R = roma.special_procrustes(M)
    if scaling:
        var_x = torch.einsum("...n,...nd->...", w, xc * xc)
        s = (R * M).sum((-2, -1)) / var_x.clamp(min=torch.finfo(work).tiny)
    else:
        s = torch.ones_like(w[..., 0])
    t = ym - s[..., None] * (R @ xm[..., None])[..., 0]
    eye = torch.eye(x.shape[-1], dtype=work, device=x.device)
    R = torch.where(empty[..., None, None], eye, R)
    t = torch.where(empty[..., None], 0.0, t)
    s = torch.where(empty, 1.0, s)
    return R.to(dtype), t.to(dtype), s.to(dtype)


def rigid_align(src: Tensor, dst: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Best rotation R (..., D, D) and translation t (..., D) with ``R src + t ~= dst``."""
    R, t, _ = _fit(src, dst, weights, scaling=False)
    return R, t


def similarity_align(
    src: Tensor, dst: Tensor, weights: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Umeyama fit: R (..., D, D), t (..., D), scale s (...) with ``s R src + t ~= dst``."""
    return _fit(src, dst, weights, scaling=True)


def apply_similarity(points: Tensor, R: Tensor, t: Tensor, s: Tensor | float | None = None) -> Tensor:
    """``s * R @ p + t`` for points (..., N, D); ``s`` (...) or None for a rigid transform."""
    out = points @ R.transpose(-1, -2)
    if s is not None:
        out = torch.as_tensor(s, dtype=out.dtype, device=out.device)[..., None, None] * out
    return out + t[..., None, :]


def procrustes_align(src: Tensor, dst: Tensor, weights: Tensor | None = None) -> Tensor:
    """``src`` (..., N, D) similarity-aligned onto ``dst`` (PA-MPJPE style)."""
    return apply_similarity(src, *similarity_align(src, dst, weights))


def translation_fit(pred: Tensor, gt: Tensor, valid: Tensor) -> Tensor:
    """Translation (B, 3) minimising the squared error of ``pred + t`` (B, J, 3) to the ``valid``
    (B, J) GT joints (zero where none is valid)."""
    w = valid.to(pred.dtype)[..., None]
    return ((gt - pred) * w).sum(1) / w.sum(1).clamp_min(1.0)
