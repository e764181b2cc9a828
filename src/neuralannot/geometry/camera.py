"""Pinhole camera helpers in the OpenCV frame (x right, y down, z forward; meters and pixels).

Intrinsics are ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` of shape ``(..., 3, 3)`` (a last row
other than ``[0, 0, 1]`` is not supported). Pixel coordinates are continuous; an image crop to a
bbox ``(x0, y0, w, h)`` resized to ``(out_w, out_h)`` is the affine map
``u' = (u - x0) * out_w / w``, ``v' = (v - y0) * out_h / h`` (bbox corner to output corner, i.e.
bbox centre to output centre, the same matrix ``cv2.warpAffine`` is given in the NeuralAnnot /
Pose2Pose code). The bbox may extend outside the image and ``w / h`` need not match the output
aspect ratio (anisotropic scaling).
"""

from __future__ import annotations

from collections.abc import Sequence

import roma
import torch
from torch import Tensor

__all__ = [
    "backproject",
    "crop_resize_affine",
    "crop_resize_intrinsics",
    "estimate_translation",
    "intrinsics_matrix",
    "project",
    "ray_rotation",
    "transform_points_2d",
]


def intrinsics_matrix(focal: Tensor | float, princpt: Tensor | Sequence[float]) -> Tensor:
    """Build ``K`` (..., 3, 3) from ``focal`` (..., 2) = (fx, fy) or a float, and ``princpt`` (..., 2)."""
    princpt = torch.as_tensor(princpt)
    if not princpt.is_floating_point():
        princpt = princpt.float()
    focal = torch.as_tensor(focal, dtype=princpt.dtype, device=princpt.device)
    if focal.dim() == 0:
        focal = focal.expand(2)
    focal, princpt = torch.broadcast_tensors(focal, princpt)
    zero, one = torch.zeros_like(focal[..., 0]), torch.ones_like(focal[..., 0])
    rows = (focal[..., 0], zero, princpt[..., 0], zero, focal[..., 1], princpt[..., 1], zero, zero, one)
    return torch.stack(rows, dim=-1).reshape(*focal.shape[:-1], 3, 3)


def _resolve_K(K: Tensor | None, focal, princpt, like: Tensor) -> Tensor:
    if K is None:
        if focal is None or princpt is None:
            raise ValueError("pass either K or both focal and princpt")
        K = intrinsics_matrix(focal, princpt)
    elif focal is not None or princpt is not None:
        raise ValueError("pass either K or focal/princpt, not both")
    K = torch.as_tensor(K, device=like.device)
    if K.shape[-2:] != (3, 3):
        raise ValueError(f"K must be (..., 3, 3), got {tuple(K.shape)}")
    return K.to(like.dtype)


def project(
    points: Tensor,
    K: Tensor | None = None,
    *,
    focal: Tensor | float | None = None,
    princpt: Tensor | None = None,
    eps: float = 1e-6,
) -> Tensor:
    """Perspective projection of camera-frame ``points`` (..., N, 3) to pixels (..., N, 2).

    Give ``K`` (..., 3, 3) or ``focal`` (..., 2) / ``princpt`` (..., 2). Depths are clamped to
    ``z >= eps`` before the division, so points on or behind the camera plane give large but finite
    pixels (not mirrored ones) and no gradient through ``z`` there.
    """
    K = _resolve_K(K, focal, princpt, points)
    z = points[..., 2:3].clamp(min=eps)
    xy1 = torch.cat((points[..., :2] / z, torch.ones_like(z)), dim=-1)
    return xy1 @ K[..., :2, :].transpose(-1, -2)


def _crop_affine3(bbox_xywh, out_size, like: Tensor) -> Tensor:
    """(..., 3, 3) homogeneous crop-and-resize matrix."""
    bbox = torch.as_tensor(bbox_xywh, dtype=like.dtype, device=like.device)
    size = torch.as_tensor(out_size, dtype=like.dtype, device=like.device)
    if bbox.shape[-1] != 4 or size.shape[-1] != 2:
        raise ValueError(f"need bbox_xywh (..., 4) and out_size (w, h), got {tuple(bbox.shape)}, {out_size}")
    if bool((bbox[..., 2:] <= 0).any()):
        raise ValueError("bbox width and height must be positive")
    scale = size / bbox[..., 2:]
    bbox, scale = torch.broadcast_tensors(bbox, torch.cat((scale, scale), -1))
    zero, one = torch.zeros_like(bbox[..., 0]), torch.ones_like(bbox[..., 0])
    sx, sy = scale[..., 0], scale[..., 1]
    rows = (sx, zero, -bbox[..., 0] * sx, zero, sy, -bbox[..., 1] * sy, zero, zero, one)
    return torch.stack(rows, dim=-1).reshape(*bbox.shape[:-1], 3, 3)


def crop_resize_affine(bbox_xywh, out_size, dtype: torch.dtype = torch.float32) -> Tensor:
    """(..., 2, 3) affine for a crop to ``bbox_xywh`` (..., 4) resized to ``out_size`` (w, h).

    Suitable for ``cv2.warpAffine(img, A.numpy(), out_size)``.
    """
    return _crop_affine3(bbox_xywh, out_size, torch.empty((), dtype=dtype))[..., :2, :]


def crop_resize_intrinsics(K: Tensor, bbox_xywh, out_size) -> Tensor:
    """Intrinsics (..., 3, 3) of the image cropped to ``bbox_xywh`` (..., 4) and resized to (w, h).

    ``K' = A @ K`` with ``A`` the crop affine, so ``project(P, K') == transform_points_2d(project(P, K))``.
    """
    return _crop_affine3(bbox_xywh, out_size, K) @ K


def transform_points_2d(points: Tensor, bbox_xywh, out_size) -> Tensor:
    """Apply the crop-and-resize map to pixels ``points`` (..., N, 2); bbox is (..., 4)."""
    A = _crop_affine3(bbox_xywh, out_size, points)
    return points * torch.stack((A[..., 0, 0], A[..., 1, 1]), -1)[..., None, :] + A[..., None, :2, 2]


def backproject(uv: Tensor, depth: Tensor, K: Tensor) -> Tensor:
    """Lift pixels ``uv`` (..., N, 2) at camera depths ``depth`` (..., N) to points (..., N, 3)."""
    K = torch.as_tensor(K, dtype=uv.dtype, device=uv.device)
    if depth.shape == uv.shape[:-1] + (1,):
        depth = depth[..., 0]
    fx, s, cx = K[..., 0, 0, None], K[..., 0, 1, None], K[..., 0, 2, None]  # (..., 1), broadcast over N
    fy, cy = K[..., 1, 1, None], K[..., 1, 2, None]
    y = (uv[..., 1] - cy) / fy
    x = (uv[..., 0] - cx - s * y) / fx
    return torch.stack((x * depth, y * depth, depth.expand_as(x)), dim=-1)


def estimate_translation(
    joints3d: Tensor,
    joints2d: Tensor,
    weights: Tensor | None = None,
    K: Tensor | None = None,
    *,
    focal: Tensor | float | None = None,
    princpt: Tensor | None = None,
    default_depth: float = 5.0,
) -> Tensor:
    """Camera translation t (B, 3) with ``project(joints3d + t, K) ~= joints2d``.

    joints3d (B, J, 3), joints2d (B, J, 2) pixels, weights (B, J) >= 0 (e.g. 2D confidences; a
    joint is valid where weight > 0), K (B | 1, 3, 3) or focal/princpt. Solves the weighted linear
    system of SPIN / SMPLify camera init, one pair of rows per joint
    ``(K[r] - uv_r e_z) . t = -(K[r] - uv_r e_z) . X`` (algebraic, not reprojection, error), in float64.

    Fallback for samples with fewer than 2 valid joints (or a singular system): similar
    triangles, centroid depth ``f * rms3d_xy / rms2d`` over all *finite* joints (weights ignored,
    so low-confidence 2D coordinates must still be meaningful; ``default_depth`` (meters) if the 2D
    spread is under one pixel), with x/y set so the single valid joint (else the centroid) projects
    exactly. Joints with NaN coordinates are allowed where their weight is 0.
    """
    if joints3d.dim() != 3 or joints3d.shape[-1] != 3 or joints2d.shape != joints3d.shape[:-1] + (2,):
        raise ValueError(
            f"need joints3d (B, J, 3), joints2d (B, J, 2), got {joints3d.shape}, {joints2d.shape}"
        )
    B, J, _ = joints3d.shape
    P = joints3d.double()
    uv = joints2d.to(P)
    Kd = _resolve_K(K, focal, princpt, P).expand(B, 3, 3)
    w = torch.ones(B, J, dtype=P.dtype, device=P.device) if weights is None else weights.to(P)
    finite = torch.isfinite(P).all(-1) & torch.isfinite(uv).all(-1)
    w = torch.where(finite & (w > 0), w, 0.0)  # NaN joints are allowed where their weight is 0
    valid = w > 0
    P = torch.where(finite[..., None], P, 0.0)
    uv = torch.where(finite[..., None], uv, 0.0)

    # Linear least squares, rows A_jr = K[r] - uv_jr * e_z  (B, J, 2, 3).
    ez = P.new_tensor([0.0, 0.0, 1.0])
    A = Kd[:, None, :2, :] - uv[..., None] * ez
    b = -(A @ P[..., None])[..., 0]
    AtA = torch.einsum("bj,bjri,bjrk->bik", w, A, A)
    Atb = torch.einsum("bj,bjri,bjr->bi", w, A, b)
    ev = torch.linalg.eigvalsh(AtA)
    ok = (valid.sum(-1) >= 2) & (ev[:, 0] > 1e-12 * ev[:, -1].clamp(min=1e-300))
    eye = torch.eye(3, dtype=P.dtype, device=P.device).expand(B, 3, 3)
    t_ls = torch.linalg.solve(torch.where(ok[:, None, None], AtA, eye), Atb)
    if bool(ok.all()):
        return t_ls.to(joints3d.dtype)

    # Similar-triangles fallback over the finite joints.
    m = finite.to(P.dtype)
    n = m.sum(-1).clamp(min=1.0)
    mean3 = (P * m[..., None]).sum(1) / n[:, None]
    mean2 = (uv * m[..., None]).sum(1) / n[:, None]
    rms3 = (((P[..., :2] - mean3[:, None, :2]).square().sum(-1) * m).sum(-1) / n).sqrt()
    rms2 = (((uv - mean2[:, None]).square().sum(-1) * m).sum(-1) / n).sqrt()
    f = 0.5 * (Kd[:, 0, 0] + Kd[:, 1, 1])
    good = (rms2 >= 1.0) & (rms3 > 0)
    depth_c = torch.where(good, f * rms3 / rms2.clamp(min=1.0), P.new_tensor(default_depth))
    tz = depth_c - mean3[:, 2]
    one = valid.sum(-1) == 1
    idx = valid.to(torch.int64).argmax(-1)
    bidx = torch.arange(B, device=P.device)
    anchor3 = torch.where(one[:, None], P[bidx, idx], mean3)
    anchor2 = torch.where(one[:, None], uv[bidx, idx], mean2)
    lifted = backproject(anchor2[:, None], (anchor3[:, 2] + tz)[:, None], Kd)[:, 0]
    t_fb = torch.cat((lifted[:, :2] - anchor3[:, :2], tz[:, None]), -1)
    return torch.where(ok[:, None], t_ls, t_fb).to(joints3d.dtype)


def ray_rotation(K: Tensor, uv: Tensor) -> Tensor:
    """(..., 3, 3): the rotation taking the optical axis (0, 0, 1) onto the ray of camera ``K`` (..., 3, 3)
    through pixel ``uv`` (..., 2), about their common perpendicular (identity on the axis).

    A crop's virtual camera looks along the ray through the crop centre: a body rotation ``R`` seen
    through it is ``ray_rotation(K, centre) @ R`` in the real camera (CLIFF's full-frame conversion)."""
    K, uv = torch.as_tensor(K), torch.as_tensor(uv)
    dtype = torch.promote_types(K.dtype, uv.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    K, uv = K.to(dtype), uv.to(dtype)
    ray = torch.linalg.solve(K, torch.cat([uv, torch.ones_like(uv[..., :1])], -1)[..., None])[..., 0]
    ray = ray / ray.norm(dim=-1, keepdim=True)
    z = torch.zeros_like(ray)
    z[..., 2] = 1.0
    axis = torch.linalg.cross(z, ray)
    sin = axis.norm(dim=-1, keepdim=True)
    angle = torch.atan2(sin, ray[..., 2:])
    return roma.rotvec_to_rotmat(axis / sin.clamp_min(1e-12) * angle)
