"""Evaluate pseudo-GT files against a dataset's ground truth (direct annotation error, paper Fig. 2a).

Per sample, where measurable:
- ``mpjpe_mm`` / ``pa_mpjpe_mm``: the pseudo-GT model's keypoints of the dataset's joint set against
  the GT 3D joints — the GT mesh's keypoints when the sample has GT model parameters (synthetic
  sets: noise-free), else the sample's annotated 3D joints; root-aligned (joint-set root) and
  Procrustes-aligned.
- ``reproj_px``: keypoints projected with the pseudo-GT camera against the GT 2D joints (visible).
- ``mpvpe_mm`` / ``pa_mpvpe_mm``: vertices against the GT mesh (same model and topology only),
  root-aligned at the model's root joint, and Procrustes-aligned.
- ``surface_mm`` / ``pa_surface_mm`` (face models): mean distance from the pseudo-GT's vertices to the
  GT mesh surface after a rigid / similarity alignment on the shared vertices (the paper's face
  3D surface error; :func:`~neuralannot.surface.surface_error`).
- with ``decompose=True`` and GT parameters of the same model, where the mesh error lives:
  ``mpvpe_pose_only_mm`` (the pseudo-GT's rotations on the GT shape), ``mpvpe_shape_only_mm`` (the GT
  rotations on the pseudo-GT's shape) and ``shape_mae`` (mean absolute error of the shape
  parameters, e.g. Anny's phenotypes); the summary adds the per-dimension error and that of the
  best constant guess (the GT median), the baseline a shape reader must beat; ``root_err_deg``
  (geodesic error of the global root rotation in the camera frame: facing) with, in the summary,
  its median and ``root_flip_pct`` (the share of samples off by more than 90°); on body and
  whole-body models also ``mpvpe_pose_only_<region>_mm``, the pose-only error of each region's
  vertices (head, hands, arms, torso, legs, feet: :mod:`~neuralannot.bodies.regions`).
- hand parts, in the summary only: ``auc_j`` / ``pa_auc_j`` (FreiHAND's AUC of the PCK curve over
  0–50 mm, 100 thresholds, of the 3D joints pooled over the samples, root- / Procrustes-aligned as
  MPJPE) and ``auc_v`` / ``pa_auc_v`` (the same for the vertices, aligned as MPVPE).
- Anny whole-body records: ``mpvpe_lhand_mm`` / ``mpvpe_rhand_mm`` / ``mpvpe_face_mm``, the mesh error
  of each part's vertices (:func:`~neuralannot.bodies.integrate.anny_part_vertex_ids`) with the part
  aligned at its own centroid (translation only), so a hand is scored apart from the arm holding it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import roma
import torch

from neuralannot import metrics
from neuralannot.bodies import get_body_model, load_body_model
from neuralannot.bodies.joint_names import root_indices
from neuralannot.bodies.parts import HAND_PARTS, record_model_part
from neuralannot.bodies.regions import REGIONS, vertex_regions
from neuralannot.data.sample import Sample
from neuralannot.geometry import intrinsics_matrix, project
from neuralannot.io.pseudo_gt import PseudoGT, to_body_params
from neuralannot.surface import surface_error

KEYS = ("mpjpe_mm", "pa_mpjpe_mm", "reproj_px", "mpvpe_mm", "pa_mpvpe_mm")
SURFACE = ("surface_mm", "pa_surface_mm")
DECOMPOSED = ("mpvpe_pose_only_mm", "mpvpe_shape_only_mm", "shape_mae", "root_err_deg")
#: per-region pose-only MPVPE (bodies/regions.py), with ``--decompose`` on body and whole-body models
POSE_ONLY_REGIONS = tuple(f"mpvpe_pose_only_{r}_mm" for r in REGIONS)
#: whole-body per-part mesh errors (Anny whole-body records against GT meshes of the same model)
PART_MPVPE = ("mpvpe_lhand_mm", "mpvpe_rhand_mm", "mpvpe_face_mm")
#: summary-only AUCs of hand parts (FreiHAND protocol): errors pooled over the samples
HAND_AUC = ("auc_j", "pa_auc_j", "auc_v", "pa_auc_v")


class ModelCache:
    """The models of the records: the shared :func:`~neuralannot.bodies.get_body_model`, or for a model
    name in ``files`` (e.g. ``{"flame": "models/generic_model.pkl"}``) that user file, built once."""

    def __init__(self, files: Mapping[str, str | Path] | None = None):
        self.files = dict(files or {})
        self._built: dict[tuple[str, str], object] = {}

    def get(self, name: str, part: str):
        if name not in self.files:
            return get_body_model(name, part)
        if (name, part) not in self._built:
            self._built[(name, part)] = load_body_model(self.files[name], part=part).eval()
        return self._built[(name, part)]


_model_part = record_model_part  # the record → model-part rule, shared with the report


def gt_params(gt: Mapping, model) -> dict[str, np.ndarray]:
    """A sample's GT parameters in ``model``'s names: the folder format's SMPL ``pose`` (72),
    ``betas``, ``transl`` become ``root_pose``/``body_pose``/``shape``/``trans``; shape coefficients
    are zero-padded or cut to the model's count; missing (None) values are left to the defaults."""
    p = {k: v for k, v in gt["params"].items() if v is not None}
    if "pose" in p and "root_pose" not in p:
        pose = np.asarray(p.pop("pose"), np.float32).reshape(-1, 3)
        p["root_pose"], p["body_pose"] = pose[0], pose[1:]
    for src, dst in (("betas", "shape"), ("transl", "trans")):
        if src in p and dst not in p:
            p[dst] = p.pop(src)
    out = {}
    for k, v in p.items():
        spec = model.param_specs.get(k)
        if spec is None:
            continue
        v = np.asarray(v, np.float32)
        if spec.kind == "shape" and v.shape != tuple(spec.shape):
            v = np.pad(v.ravel(), (0, max(spec.numel - v.size, 0)))[: spec.numel].reshape(spec.shape)
        out[k] = v.reshape(spec.shape)
    return out


@torch.no_grad()
def _pose(model, params: dict[str, torch.Tensor], joint_set: str, batch: int = 64):
    """Vertices (N, V, 3), root joints (N, 3) and keypoints of ``joint_set`` (N, K, 3)."""
    verts, roots, kps = [], [], []
    n = next(iter(params.values())).shape[0]
    for i in range(0, n, batch):
        p = {k: v[i : i + batch] for k, v in params.items()}
        out = model(p)
        verts.append(out.vertices)
        roots.append(out.joints[:, 0])
        kps.append(model.keypoints(out, joint_set))
    return torch.cat(verts), torch.cat(roots), torch.cat(kps)


def _swapped(model, pred: dict, gt: dict, keep: str) -> dict[str, torch.Tensor]:
    """``pred``'s rotations with ``gt``'s shape (``keep="pose"``) or the reverse (``keep="shape"``)."""
    out = {}
    for k, spec in model.param_specs.items():
        src = pred if (spec.kind == "shape") == (keep == "shape") else gt
        if k in src:
            out[k] = src[k]
    return out


def _decompose(
    model, pred: dict, gt: dict, gt_v, gt_root, joint_set: str, batch: int
) -> dict[str, np.ndarray]:
    """Per-sample pose-only / shape-only MPVPE (mm) and shape MAE (see the module docstring)."""
    out = {}
    regions = vertex_regions(model) if model.part in ("body", "wholebody") else {}
    for keep in ("pose", "shape"):
        v, r, _ = _pose(model, _swapped(model, pred, gt, keep), joint_set, batch)
        err = 1000 * metrics.joint_errors(v - r[:, None], gt_v - gt_root[:, None])  # (N, V), root-aligned
        out[f"mpvpe_{keep}_only_mm"] = np.nanmean(err, -1)
        for region, ids in regions.items() if keep == "pose" else ():  # where the pose error lives
            out[f"mpvpe_pose_only_{region}_mm"] = np.nanmean(err[:, ids.numpy()], -1)
    shape_keys = [k for k, s in model.param_specs.items() if s.kind == "shape" and k in pred and k in gt]
    if shape_keys:
        diff = torch.cat([(pred[k] - gt[k]).abs().flatten(1) for k in shape_keys], 1)
        out["shape_abs"] = diff.numpy()
        out["shape_gt"] = torch.cat([gt[k].flatten(1) for k in shape_keys], 1).numpy()
        out["shape_mae"] = out["shape_abs"].mean(1)
    if "root_pose" in pred and "root_pose" in gt:  # axis-angle (B, 3), camera frame
        p, g = (x["root_pose"].reshape(-1, 3).double() for x in (pred, gt))
        out["root_err_deg"] = np.degrees(roma.rotvec_geodesic_distance(p, g).numpy())
    return out


def evaluate(
    records: Mapping[str, PseudoGT],
    samples: list[Sample],
    cache: ModelCache | None = None,
    batch: int = 64,
    decompose: bool = False,
) -> tuple[list[dict], dict]:
    """Per-sample metrics and their summary (means over the samples where each is measurable).

    Samples without a pseudo-GT record are counted as ``missing`` in the summary.
    """
    cache = cache or ModelCache()
    rows: list[dict] = []
    groups: dict[tuple[str, str, str], list[Sample]] = defaultdict(list)
    missing = 0
    shape_abs, shape_gt = [], []
    auc_errors: dict[str, list[np.ndarray]] = {k: [] for k in HAND_AUC}  # per-point errors (m)
    for s in samples:
        r = records.get(s.id)
        if r is None:
            missing += 1
            continue
        groups[(r.model, _model_part(r.part, r.side), s.joint_set)].append(s)
    for (name, part, joint_set), group in groups.items():
        model = cache.get(name, part)
        recs = [records[s.id] for s in group]
        pred_params = to_body_params(recs, model)
        pv, proot, pkp = _pose(model, pred_params, joint_set, batch)
        gt_v = gt_root = gt_kp = None
        parts = {}
        with_gt = [s.gt is not None and s.gt.get("model") == name for s in group]
        if all(with_gt):
            gt_model = cache.get(name, _model_part(group[0].gt.get("part", part)))
            per_sample = [gt_params(s.gt, gt_model) for s in group]
            common = set.intersection(*(set(p) for p in per_sample))
            stacked = {k: torch.as_tensor(np.stack([p[k] for p in per_sample])) for k in sorted(common)}
            gt_v, gt_root, gt_kp = _pose(gt_model, stacked, joint_set, batch)
            if decompose and gt_model is model:
                parts = _decompose(model, pred_params, stacked, gt_v, gt_root, joint_set, batch)
                if "shape_abs" in parts:
                    shape_abs.append(parts["shape_abs"])
                    shape_gt.append(parts["shape_gt"])
        root = root_indices(joint_set)
        regions = _part_regions(model) if gt_v is not None and gt_v.shape[1] == pv.shape[1] else {}
        for i, s in enumerate(group):
            row = {"id": s.id, **dict.fromkeys(KEYS + SURFACE, math.nan)}
            for region, ids in regions.items():
                row[f"mpvpe_{region}_mm"] = _centred_error_mm(pv[i, ids], gt_v[i, ids])
            for k in DECOMPOSED if decompose else ():
                row[k] = float(parts[k][i]) if k in parts else math.nan
            for k in POSE_ONLY_REGIONS:
                if k in parts:
                    row[k] = float(parts[k][i])
            if gt_kp is not None:
                g, valid = gt_kp[i : i + 1], None
            elif s.joints_3d is not None and (s.joints_3d[:, 3] > 0).any():
                g, valid = (
                    torch.from_numpy(s.joints_3d[None, :, :3]),
                    torch.from_numpy(s.joints_3d[None, :, 3] > 0),
                )
            else:
                g = None
            if g is not None:
                row["mpjpe_mm"] = 1000 * _mean(
                    metrics.mpjpe(pkp[i : i + 1], g, "root", valid, root_index=root)
                )
                row["pa_mpjpe_mm"] = 1000 * _mean(metrics.mpjpe(pkp[i : i + 1], g, "procrustes", valid))
                if part in HAND_PARTS:
                    for k, align in (("auc_j", "root"), ("pa_auc_j", "procrustes")):
                        auc_errors[k].append(metrics.joint_errors(pkp[i : i + 1], g, align, valid, root))
            cam = recs[i].camera
            vis = s.joints_2d[:, 2] > 0
            if cam is not None and vis.any():
                K = intrinsics_matrix(
                    torch.tensor(cam["focal"], dtype=pkp.dtype), torch.tensor(cam["princpt"], dtype=pkp.dtype)
                )
                uv = project(pkp[i], K)  # keypoints already include the pseudo-GT translation
                row["reproj_px"] = float(
                    metrics.reprojection_error(uv[None], s.joints_2d[None, :, :2], vis[None])
                )
            if gt_v is not None and gt_v.shape[1] == pv.shape[1]:
                row["mpvpe_mm"] = 1000 * _mean(
                    metrics.mpvpe(
                        pv[i : i + 1],
                        gt_v[i : i + 1],
                        "root",
                        pred_root=proot[i : i + 1],
                        gt_root=gt_root[i : i + 1],
                    )
                )
                row["pa_mpvpe_mm"] = 1000 * _mean(metrics.mpvpe(pv[i : i + 1], gt_v[i : i + 1], "procrustes"))
                if part in HAND_PARTS:
                    pr = pv[i : i + 1] - proot[i : i + 1, None]
                    gr = gt_v[i : i + 1] - gt_root[i : i + 1, None]
                    auc_errors["auc_v"].append(metrics.joint_errors(pr, gr))
                    pa = metrics.joint_errors(pv[i : i + 1], gt_v[i : i + 1], "procrustes")
                    auc_errors["pa_auc_v"].append(pa)
                if part == "face":
                    for key, align in zip(SURFACE, ("rigid", "procrustes"), strict=True):
                        row[key] = 1000 * surface_error(pv[i], gt_v[i], gt_model.faces, align)
            rows.append(row)
    summary = {"n": len(rows), "missing": missing}
    if shape_abs:
        err, gt = np.concatenate(shape_abs), np.concatenate(shape_gt)
        summary["shape_mae_per_dim"] = err.mean(0).round(4).tolist()
        summary["shape_mae_constant_guess"] = float(np.abs(gt - np.median(gt, 0)).mean())
    present = tuple(k for k in PART_MPVPE + POSE_ONLY_REGIONS if any(k in r for r in rows))
    for k in KEYS + SURFACE + (DECOMPOSED if decompose else ()) + present:
        vals = [r[k] for r in rows if not math.isnan(r.get(k, math.nan))]
        summary[k] = float(np.mean(vals)) if vals else None
        summary[f"n_{k}"] = len(vals)
    for k, errs in auc_errors.items():
        if errs:
            pooled = np.concatenate([e.ravel() for e in errs])
            summary[k] = metrics.auc_from_errors(pooled, **metrics.FREIHAND_AUC)
    roots = [r["root_err_deg"] for r in rows if not math.isnan(r.get("root_err_deg", math.nan))]
    if roots:
        summary["root_err_median_deg"] = float(np.median(roots))
        summary["root_flip_pct"] = 100.0 * float(np.mean(np.asarray(roots) > 90.0))
    return rows, summary


def _part_regions(model) -> dict[str, torch.Tensor]:
    """Vertex ids of each part of an Anny whole-body model (empty for any other model)."""
    if model.name != "anny" or model.part != "wholebody":
        return {}
    from neuralannot.bodies.integrate import anny_part_vertex_ids

    return anny_part_vertex_ids(model)


def _centred_error_mm(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean vertex error (mm) of two (V, 3) point sets after aligning their centroids."""
    return 1000 * float((pred - pred.mean(0) - (gt - gt.mean(0))).norm(dim=-1).mean())


def _mean(x) -> float:
    return float(np.nanmean(x)) if np.size(x) else math.nan
