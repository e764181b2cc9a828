"""Pose pseudo-GT records for the report: keypoints of every sample, meshes of the shown ones, and
per-joint errors (3D root-aligned against the annotated 3D joints, 2D against the GT 2D joints)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from neuralannot.bodies.joint_names import get_joint_names, root_indices
from neuralannot.bodies.parts import record_model_part as _model_part  # the same rule as evaluation
from neuralannot.data.sample import Sample
from neuralannot.evaluation import ModelCache
from neuralannot.io.pseudo_gt import PseudoGT, to_body_params
from neuralannot.report.overlays import project_points


@dataclass
class Posed:
    """Camera-frame keypoints (J, 3) of every posed sample; vertices (V, 3) and faces (F, 3) of ``keep``."""

    keypoints: dict[str, np.ndarray] = field(default_factory=dict)
    vertices: dict[str, np.ndarray] = field(default_factory=dict)
    faces: dict[str, np.ndarray] = field(default_factory=dict)


@torch.no_grad()
def pose_records(
    records: Mapping[str, PseudoGT],
    samples: Sequence[Sample],
    cache: ModelCache,
    keep: set[str],
    batch: int = 64,
) -> Posed:
    """Pose the record of every sample that has one (keypoints of the sample's joint set)."""
    groups: dict[tuple[str, str, str], list[Sample]] = defaultdict(list)
    for s in samples:
        r = records.get(s.id)
        if r is not None:
            groups[(r.model, _model_part(r.part, r.side), s.joint_set)].append(s)
    posed = Posed()
    for (name, part, joint_set), group in groups.items():
        model = cache.get(name, part)
        faces = model.faces.cpu().numpy().astype(np.int32)
        for i in range(0, len(group), batch):
            chunk = group[i : i + batch]
            out = model(to_body_params([records[s.id] for s in chunk], model))
            kps = model.keypoints(out, joint_set).float().cpu().numpy()
            for b, s in enumerate(chunk):
                posed.keypoints[s.id] = kps[b]
                if s.id in keep:
                    posed.vertices[s.id] = out.vertices[b].float().cpu().numpy()
                    posed.faces[s.id] = faces
    return posed


def camera_matrix(camera: Mapping[str, Sequence[float]] | None) -> np.ndarray | None:
    """(3, 3) intrinsics of a pseudo-GT camera ``{focal, princpt}``, or None."""
    if camera is None:
        return None
    (fx, fy), (cx, cy) = camera["focal"], camera["princpt"]
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def per_joint_errors(
    samples: Sequence[Sample], records: Mapping[str, PseudoGT], posed: Posed
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(joint names, 3D errors (N, J) mm, 2D errors (N, J) px) over the posed samples of the first
    joint set; NaN where a joint is unannotated, the root is missing or the record has no camera."""
    posed_samples = [s for s in samples if s.id in posed.keypoints]
    if not posed_samples:
        return [], np.zeros((0, 0)), np.zeros((0, 0))
    joint_set = posed_samples[0].joint_set
    chosen = [s for s in posed_samples if s.joint_set == joint_set]
    names = list(get_joint_names(joint_set))
    root = root_indices(joint_set)
    e3 = np.full((len(chosen), len(names)), np.nan)
    e2 = np.full((len(chosen), len(names)), np.nan)
    for i, s in enumerate(chosen):
        kp = posed.keypoints[s.id].astype(np.float64)
        if s.joints_3d is not None and (s.joints_3d[root, 3] > 0).all():
            gt, ok = s.joints_3d[:, :3].astype(np.float64), s.joints_3d[:, 3] > 0
            d = (kp - kp[root].mean(0)) - (gt - gt[root].mean(0))
            e3[i, ok] = 1000.0 * np.linalg.norm(d[ok], axis=1)
        K = camera_matrix(records[s.id].camera)
        vis = s.joints_2d[:, 2] > 0
        if K is not None and vis.any():
            uv = project_points(kp, K)
            e2[i, vis] = np.linalg.norm(uv[vis] - s.joints_2d[vis, :2], axis=1)
    return names, e3, e2
