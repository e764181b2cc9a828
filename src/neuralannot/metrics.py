"""Evaluation metrics: batched torch tensors or numpy arrays in, python floats out.

Conventions shared by every metric:

* Points are ``(B, J, D)`` (an unbatched ``(J, D)`` is treated as ``B = 1``); errors are in the
  input units (feed meters and multiply by 1000 for the customary mm).
* ``valid`` is an optional ``(B, J)`` (or ``(J,)``) mask; nonzero means valid. Invalid entries
  may hold NaN; a NaN/inf at a *valid* entry raises ``ValueError``.
* ``reduce=True`` returns the mean over all valid joints of the whole batch (pooled, not the mean
  of per-sample means) as a float, ``nan`` if nothing is valid. ``reduce=False`` returns the
  per-sample means as a numpy ``(B,)`` array (``nan`` for samples without valid joints).
* ``align``: ``"none"``; ``"root"`` subtracts the root joint (``root_index``: an int, or a list of
  indices whose mean is the root, e.g. both hips) from pred and gt separately; ``"procrustes"``
  similarity-aligns (Umeyama: rotation, translation, scale) each predicted sample onto its gt
  using the valid joints (PA-MPJPE).
* Computations run in float64 without gradients. :func:`point_to_mesh_distance` is the one
  tensor-out, differentiable helper.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from neuralannot.geometry.alignment import procrustes_align

__all__ = [
    "FREIHAND_AUC",
    "auc",
    "auc_from_errors",
    "face_surface_error",
    "joint_errors",
    "mpjpe",
    "mpvpe",
    "pck",
    "pck_curve",
    "point_to_mesh_distance",
    "point_to_surface_error",
    "reprojection_error",
]

#: FreiHAND's PCK-curve AUC: thresholds ``linspace(0, 0.050 m, 100)`` (``max_threshold``, ``steps``).
FREIHAND_AUC = {"max_threshold": 0.05, "steps": 100}

Align = Literal["none", "root", "procrustes"]
ALIGNS: tuple[str, ...] = ("none", "root", "procrustes")
RootIndex = int | Sequence[int] | None


def _tensor(x, name: str, device: torch.device | None = None) -> Tensor:
    if isinstance(x, Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} is not numeric array-like: {e}") from e
    return t.to(device=device if device is not None else t.device, dtype=torch.float64)


def _points(pred, gt, names: tuple[str, str] = ("pred", "gt")) -> tuple[Tensor, Tensor]:
    p = _tensor(pred, names[0])
    g = _tensor(gt, names[1], p.device)
    if p.shape != g.shape:
        raise ValueError(f"{names[0]} and {names[1]} shapes differ: {tuple(p.shape)} vs {tuple(g.shape)}")
    if p.dim() == 2:
        p, g = p[None], g[None]
    if p.dim() != 3:
        raise ValueError(f"{names[0]}/{names[1]} must be (B, J, D) or (J, D), got {tuple(p.shape)}")
    return p, g


def _mask(valid, shape: torch.Size, device: torch.device, name: str = "valid") -> Tensor:
    if valid is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    v = valid.detach() if isinstance(valid, Tensor) else torch.as_tensor(np.asarray(valid))
    v = v.to(device)
    if v.dim() == len(shape) + 1 and v.shape[-1] == 1:
        v = v[..., 0]
    if v.dim() == len(shape) - 1 and v.shape == shape[1:]:
        v = v[None].expand(shape)  # one mask shared by the batch
    if v.shape != shape:
        raise ValueError(f"{name} must be {tuple(shape)}, got {tuple(v.shape)}")
    return v > 0 if v.dtype != torch.bool else v


def _check_finite(x: Tensor, mask: Tensor, name: str) -> None:
    bad = ~torch.isfinite(x).all(-1) & mask
    if bool(bad.any()):
        b, j = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{name} has NaN/inf at {int(bad.sum())} valid entries (first: sample {b}, index {j})"
        )


def _root_indices(root_index: RootIndex, n: int) -> list[int]:
    try:
        idx = [operator.index(root_index)]
    except TypeError:
        idx = [operator.index(i) for i in root_index]
    if not idx or any(not -n <= i < n for i in idx):
        raise ValueError(f"root_index {root_index!r} out of range for {n} points")
    return idx


def _errors(
    pred,
    gt,
    align: str,
    valid,
    root_index: RootIndex = 0,
    pred_root=None,
    gt_root=None,
) -> tuple[Tensor, Tensor]:
    """Per-point Euclidean errors (B, J) and the validity mask (B, J), after alignment."""
    if align not in ALIGNS:
        raise ValueError(f"unknown align {align!r}; allowed: {', '.join(map(repr, ALIGNS))}")
    p, g = _points(pred, gt)
    mask = _mask(valid, p.shape[:2], p.device)
    _check_finite(g, mask, "gt")
    _check_finite(p, mask, "pred")
    p = torch.where(mask[..., None], p, 0.0)
    g = torch.where(mask[..., None], g, 0.0)
    if align == "root":
        if (pred_root is None) != (gt_root is None):
            raise ValueError("pass both pred_root and gt_root, or neither")
        if pred_root is not None:
            pr, gr = (_tensor(r, n, p.device) for r, n in ((pred_root, "pred_root"), (gt_root, "gt_root")))
            try:
                pr, gr = pr.reshape(-1, 1, p.shape[-1]), gr.reshape(-1, 1, p.shape[-1])
            except RuntimeError as e:
                raise ValueError(f"pred_root/gt_root must be (B, {p.shape[-1]}): {e}") from e
            if pr.shape[0] not in (1, p.shape[0]) or gr.shape[0] not in (1, p.shape[0]):
                raise ValueError(f"pred_root/gt_root batch must be 1 or {p.shape[0]}")
            if not (torch.isfinite(pr).all() and torch.isfinite(gr).all()):
                raise ValueError("pred_root/gt_root contain NaN/inf")
        elif root_index is not None:
            idx = _root_indices(root_index, p.shape[1])
            if not bool(mask[:, idx].all()):
                bad = (~mask[:, idx].all(-1)).nonzero()[:, 0].tolist()
                raise ValueError(f"root joint(s) {idx} invalid in samples {bad[:10]}; cannot root-align")
            pr, gr = p[:, idx].mean(1, keepdim=True), g[:, idx].mean(1, keepdim=True)
        else:  # centroid of the valid points
            m = mask[..., None].to(p.dtype)
            n = m.sum(1, keepdim=True).clamp(min=1.0)
            pr, gr = (p * m).sum(1, keepdim=True) / n, (g * m).sum(1, keepdim=True) / n
        p, g = p - pr, g - gr
    elif align == "procrustes":
        p = procrustes_align(p, g, mask.to(p.dtype))
    return torch.linalg.vector_norm(p - g, dim=-1), mask


def _reduce(err: Tensor, mask: Tensor, reduce: bool) -> float | np.ndarray:
    err = torch.where(mask, err, 0.0)
    if reduce:
        n = int(mask.sum())
        return float(err.sum() / n) if n else float("nan")
    n = mask.sum(-1).to(err.dtype)
    return torch.where(n > 0, err.sum(-1) / n.clamp(min=1.0), float("nan")).cpu().numpy()


def joint_errors(pred, gt, align: Align = "none", valid=None, root_index: RootIndex = 0) -> np.ndarray:
    """Per-joint errors (B, J) as numpy, ``nan`` at invalid joints (for pooling across batches)."""
    err, mask = _errors(pred, gt, align, valid, root_index)
    return torch.where(mask, err, float("nan")).cpu().numpy()


def mpjpe(
    pred, gt, align: Align = "none", valid=None, root_index: RootIndex = 0, reduce: bool = True
) -> float | np.ndarray:
    """Mean per-joint position error of pred/gt (B, J, D), in input units (see module doc)."""
    return _reduce(*_errors(pred, gt, align, valid, root_index), reduce)


def mpvpe(
    pred_verts,
    gt_verts,
    align: Align = "none",
    valid=None,
    root_index: RootIndex = None,
    pred_root=None,
    gt_root=None,
    reduce: bool = True,
) -> float | np.ndarray:
    """Mean per-vertex position error of (B, V, 3) vertices, in input units.

    ``align="root"``: subtract the given root points ``pred_root``/``gt_root`` (B, 3), typically
    the model's pelvis/root *joints*; else the vertices at ``root_index`` if given; else the
    (valid-)vertex mean of each mesh.
    """
    err, mask = _errors(pred_verts, gt_verts, align, valid, root_index, pred_root, gt_root)
    return _reduce(err, mask, reduce)


def pck_curve(errors, thresholds) -> np.ndarray:
    """Fraction of ``errors`` (any shape; NaN entries ignored) ``<= t`` for each threshold (T,)."""
    e = np.asarray(errors.detach().cpu() if isinstance(errors, Tensor) else errors, dtype=np.float64).ravel()
    t = np.asarray(thresholds.detach().cpu() if isinstance(thresholds, Tensor) else thresholds, np.float64)
    e = np.sort(e[~np.isnan(e)])
    if e.size == 0:
        return np.full(t.shape, np.nan)
    return np.searchsorted(e, t, side="right") / e.size


def pck(pred, gt, threshold: float, align: Align = "none", valid=None, root_index: RootIndex = 0) -> float:
    """Percentage of correct keypoints (fraction in [0, 1]) with error ``<= threshold``.

    Inclusive as in FreiHAND's evaluation (so zero error counts at threshold 0); ties are
    measure-zero otherwise. ``nan`` when nothing is valid.
    """
    err, mask = _errors(pred, gt, align, valid, root_index)
    return float(pck_curve(err[mask].cpu().numpy(), [threshold])[0])


def auc_from_errors(errors, max_threshold: float = 0.15, steps: int = 100) -> float:
    """Normalised area in [0, 1] under the PCK curve for ``steps`` thresholds ``linspace(0, max)``.

    Trapezoidal rule divided by ``max_threshold`` (FreiHAND's ``EvalUtil``).
    """
    if max_threshold <= 0 or steps < 2:
        raise ValueError(f"need max_threshold > 0 and steps >= 2, got {max_threshold}, {steps}")
    t = np.linspace(0.0, max_threshold, steps)
    curve = pck_curve(errors, t)
    return float(np.sum((curve[1:] + curve[:-1]) * np.diff(t)) / 2.0 / max_threshold)


def auc(
    pred,
    gt,
    max_threshold: float = 0.15,
    steps: int = 100,
    align: Align = "none",
    valid=None,
    root_index: RootIndex = 0,
) -> float:
    """AUC of the PCK curve over thresholds [0, max_threshold], normalised to [0, 1]; meters in.

    Use 0-0.150 m for bodies (MPI-INF-3DHP range; that benchmark averages 31 thresholds instead of
    integrating, which differs slightly) and 0-0.050 m with 100 steps for hands (FreiHAND).
    """
    err, mask = _errors(pred, gt, align, valid, root_index)
    return auc_from_errors(err[mask].cpu().numpy(), max_threshold, steps)


def reprojection_error(pred_2d, gt_2d, visibility=None, reduce: bool = True) -> float | np.ndarray:
    """Mean pixel distance over visible joints.

    pred_2d (B, J, 2); gt_2d (B, J, 2) with ``visibility`` (B, J), or (B, J, 3) whose last column
    is a confidence (visible where > 0; combined with ``visibility`` if both are given). Invisible
    joints may hold NaN. If no joint is visible the result is ``float('nan')`` (per sample for
    ``reduce=False``); no warning is emitted.
    """
    g = _tensor(gt_2d, "gt_2d")
    if g.shape[-1] == 3:
        conf = g[..., 2]
        g = g[..., :2]
        vis = _mask(visibility, conf.shape, conf.device, "visibility") & (conf > 0)
    else:
        vis = None
    p, g = _points(pred_2d, g, ("pred_2d", "gt_2d"))
    if p.shape[-1] != 2:
        raise ValueError(f"2D points must have 2 (or gt 3) coordinates, got {p.shape[-1]}")
    vis = _mask(visibility, p.shape[:2], p.device, "visibility") if vis is None else vis.reshape(p.shape[:2])
    return _reduce(*_errors(p, g, "none", vis), reduce)


def _triangle_table(vertices: Tensor, faces: Tensor) -> Tensor:
    """Per-face data (B, F, 34): a, b, c, edges ab/bc/ca, inward edge normals, normal, |n|^2, |e|^2."""
    tiny = torch.finfo(vertices.dtype).tiny
    a, b, c = vertices[:, faces].unbind(-2)
    edges = (b - a, c - b, a - c)
    nrm = torch.linalg.cross(edges[0], c - a)
    inward = [torch.linalg.cross(nrm, e) for e in edges]  # (p - start) . inward >= 0 on the inner side
    sq = [(v * v).sum(-1, keepdim=True).clamp(min=tiny) for v in (nrm, *edges)]
    return torch.cat((a, b, c, *edges, *inward, nrm, *sq), dim=-1)


def _triangle_d2(p: Tensor, T: Tensor) -> Tensor:
    """Squared distance from p (..., 3) to triangles T (..., 34), broadcasting; exact."""
    tiny = torch.finfo(T.dtype).tiny
    nn2 = T[..., 30]
    inside = nn2 > tiny * 2  # zero-area faces: edges only
    seg = None
    for k in range(3):
        d = p - T[..., 3 * k : 3 * k + 3]
        e = T[..., 9 + 3 * k : 12 + 3 * k]
        inside = inside & ((d * T[..., 18 + 3 * k : 21 + 3 * k]).sum(-1) >= 0)
        t = ((d * e).sum(-1) / T[..., 31 + k]).clamp(0.0, 1.0)
        r = d - t[..., None] * e
        d2 = (r * r).sum(-1)
        seg = d2 if seg is None else torch.minimum(seg, d2)
    plane = ((p - T[..., 0:3]) * T[..., 27:30]).sum(-1).square() / nn2
    return torch.where(inside, plane, seg)


def point_to_mesh_distance(
    points: Tensor,
    vertices: Tensor,
    faces: Tensor,
    chunk_size: int = 1 << 18,
    squared: bool = False,
    candidates: int = 32,
) -> Tensor:
    """Exact distance (B, N) from points (B, N, 3) to the triangle mesh (vertices (B, V, 3), faces (F, 3)).

    Differentiable, in the input dtype; degenerate triangles act as segments. For each point only
    the ``candidates`` faces with the smallest bounding-sphere lower bound are evaluated exactly;
    the result is certified against the next bound, and chunks with uncertified points fall back to
    all faces, so the answer is always exact. Work is chunked to ~``chunk_size`` point-face pairs.
    """
    if points.dim() != 3 or vertices.dim() != 3 or points.shape[-1] != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"need points (B, N, 3), vertices (B, V, 3); got {points.shape}, {vertices.shape}")
    if points.shape[0] != vertices.shape[0]:
        raise ValueError(f"batch sizes differ: {points.shape[0]} vs {vertices.shape[0]}")
    faces = torch.as_tensor(faces, device=vertices.device)
    if faces.dim() != 2 or faces.shape[-1] != 3 or faces.is_floating_point() or faces.numel() == 0:
        raise ValueError(
            f"faces must be a non-empty integer (F, 3) array, got {faces.dtype} {tuple(faces.shape)}"
        )
    if int(faces.min()) < 0 or int(faces.max()) >= vertices.shape[1]:
        raise ValueError(f"face indices out of range [0, {vertices.shape[1]})")
    points = points.to(vertices.dtype)
    B, N, _ = points.shape
    F = faces.shape[0]
    T = _triangle_table(vertices, faces.long())  # (B, F, 34)

    def brute(p: Tensor) -> Tensor:  # (B, n, 3) -> (B, n)
        nf = max(1, min(F, chunk_size // max(B * p.shape[1], 1)))
        return torch.stack(
            [_triangle_d2(p[:, :, None], T[:, None, j : j + nf]).amin(-1) for j in range(0, F, nf)], -1
        ).amin(-1)

    k = min(candidates, F - 1)
    if k < 1:
        npt = max(1, chunk_size // max(B * F, 1))
        d2 = torch.cat([brute(points[:, i : i + npt]) for i in range(0, N, npt)], 1) if N else points[..., 0]
        return d2 if squared else d2.clamp(min=0).sqrt()

    with torch.no_grad():  # bounding spheres in float64: |p - centre| - radius <= distance
        a, b, c = (T[..., 3 * i : 3 * i + 3].double() for i in range(3))
        centre = (a + b + c) / 3
        radius = torch.stack([(v - centre).norm(dim=-1) for v in (a, b, c)], -1).amax(-1)
        margin = 1e-7 * (1.0 + float(vertices.detach().abs().max()) + float(points.detach().abs().max()))
    npt = max(1, (4 * chunk_size) // max(B * F, 1))  # the bound matrix is cheap: 4x the pair budget
    out = []
    for i in range(0, N, npt):
        p = points[:, i : i + npt]
        n = p.shape[1]
        with torch.no_grad():
            lb = torch.cdist(p.detach().double(), centre) - radius[:, None] - margin  # (B, n, F)
            lbk, idx = lb.topk(k + 1, dim=-1, largest=False)
        Tg = torch.gather(T, 1, idx[..., :k].reshape(B, n * k, 1).expand(-1, -1, T.shape[-1]))
        d2 = _triangle_d2(p[:, :, None], Tg.reshape(B, n, k, -1)).amin(-1)
        certified = d2.detach().double().clamp(min=0).sqrt() <= lbk[..., k]
        if not bool(certified.all()):
            d2 = torch.where(certified, d2, brute(p))
        out.append(d2)
    d2 = torch.cat(out, dim=1) if out else points[..., 0]
    return d2 if squared else d2.clamp(min=0).sqrt()


def point_to_surface_error(
    points, vertices, faces, reduce: bool = True, chunk_size: int = 1 << 18
) -> float | np.ndarray:
    """Mean distance from points (B, N, 3) to the mesh (vertices (B, V, 3), faces (F, 3)), input units."""
    p = _tensor(points, "points")
    v = _tensor(vertices, "vertices", p.device)
    if p.dim() == 2 and v.dim() == 2:
        p, v = p[None], v[None]
    f = faces.detach() if isinstance(faces, Tensor) else torch.as_tensor(np.asarray(faces))
    if p.dim() != 3 or v.dim() != 3 or p.shape[0] != v.shape[0]:
        raise ValueError(
            f"need points (B, N, 3) and vertices (B, V, 3), got {tuple(p.shape)}, {tuple(v.shape)}"
        )
    if not (torch.isfinite(p).all() and torch.isfinite(v).all()):
        raise ValueError("points/vertices contain NaN/inf")
    d = point_to_mesh_distance(p, v, f.to(p.device), chunk_size)
    return _reduce(d, torch.ones_like(d, dtype=torch.bool), reduce)


def face_surface_error(
    pred_verts, gt_verts, faces, align: Align = "procrustes", reduce: bool = True, chunk_size: int = 1 << 18
) -> float | np.ndarray:
    """Mean distance from the predicted vertices to the gt surface (gt_verts + faces) after alignment.

    pred_verts / gt_verts (B, V, 3) share the topology ``faces`` (F, 3). ``align``: ``"procrustes"``
    (similarity fit on all vertices, default), ``"root"`` (vertex means) or ``"none"``. This is the
    mesh-to-surface form of the NoW / Stirling face 3D error.
    """
    if align not in ALIGNS:
        raise ValueError(f"unknown align {align!r}; allowed: {', '.join(map(repr, ALIGNS))}")
    p, g = _points(pred_verts, gt_verts, ("pred_verts", "gt_verts"))
    mask = torch.ones(p.shape[:2], dtype=torch.bool, device=p.device)
    _check_finite(g, mask, "gt_verts")
    _check_finite(p, mask, "pred_verts")
    if align == "root":
        p = p - p.mean(1, keepdim=True) + g.mean(1, keepdim=True)
    elif align == "procrustes":
        p = procrustes_align(p, g)
    return point_to_surface_error(p, g, faces, reduce, chunk_size)
