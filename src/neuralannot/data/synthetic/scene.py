"""Synthetic-benchmark kinds, cameras, framing and the annotation noise models (numpy).

A :class:`KindSpec` fixes, for one ``neuralannot synth --kind``, the body-model part, the joint set,
the appearance style, the camera and framing distributions and the noise model that turns the exact
(GT) joints into the annotations the annotators see:

- **3D kinds** (``mocap``, ``wild3d``, ``hand``, ``face3d``): 3D joints = GT + isotropic Gaussian noise
  (σ = ``noise_3d_m``), a fraction ``missing`` of joints dropped (confidence 0 in 3D and 2D); 2D =
  the projection of the noisy 3D joints, confidence 0 outside the image.
- **2D kinds** (``wild``, ``face``, ``wholebody``): 2D only; GT projections + Gaussian noise with
  σ = U(``noise_2d_box``) x the geometric-mean side of the joint group's GT box (body / face / each
  hand separately); joints outside the image or behind an occluder (by more than a per-joint
  tolerance: interior joints lie inside the body) are invisible — self-occluded joints keep their
  label, as COCO annotators do; with
  probability ``swap`` one left/right body pair is swapped.

Boxes: the tight box of the valid 2D annotations enlarged 1.2x about its centre (the mask's box
when fewer than two joints are valid), clipped to the image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from neuralannot.bodies.joint_names import FACE68, flip_permutation, get_joint_names

__all__ = ["KINDS", "KindSpec", "annotate", "camera_rotation", "frame_subject", "sample_camera"]

BOX_SCALE = 1.2


@dataclass(frozen=True)
class KindSpec:
    """Everything that distinguishes one synthetic kind (see the module docstring)."""

    name: str
    model_part: str  # load_body_model part
    joint_set: str
    style: str  # appearance: "studio" (monotonous) or "wild"
    with_3d: bool  # annotations carry 3D joints
    fov_deg: tuple[float, float]  # horizontal field of view range
    scale: tuple[float, float]  # subject's larger box side / image side
    roll_deg: float  # camera roll σ
    elevation_deg: tuple[float, float]  # camera above (+) / below (-) the subject
    truncation: float = 0.0  # probability of a framing that cuts the subject
    occluders: float = 0.0  # probability of 1-2 occluding boxes/spheres
    noise_3d_m: float = 0.0
    missing: float = 0.0
    noise_2d_box: tuple[float, float] = (0.0, 0.0)
    swap: float = 0.0
    left_hands: float = 0.0  # hand kind: fraction rendered with the left hand model
    smooth: bool = False  # smooth shading (vertex normals; ~2x the render time of flat faces)

    def describe(self) -> dict:
        """JSON-friendly parameters (stored in meta.json)."""
        return asdict(self)


KINDS: dict[str, KindSpec] = {
    "mocap": KindSpec("mocap", "body", "h36m17", "studio", True, (40, 55), (0.55, 0.85), 1.5, (-5, 20),
                      noise_3d_m=0.005, missing=0.05),
    "wild": KindSpec("wild", "body", "coco23", "wild", False, (30, 75), (0.4, 0.95), 8.0, (-20, 40),
                     truncation=0.15, occluders=0.35, noise_2d_box=(0.01, 0.03), swap=0.02),
    "hand": KindSpec("hand", "hand", "hand21", "wild", True, (25, 60), (0.5, 0.85), 0.0, (0, 0),
                     occluders=0.2, noise_3d_m=0.002, missing=0.03, left_hands=0.3, smooth=True),
    "face": KindSpec("face", "face", "face68", "wild", False, (25, 55), (0.45, 0.8), 10.0, (-10, 20),
                     occluders=0.15, noise_2d_box=(0.01, 0.02), smooth=True),
    "wholebody": KindSpec("wholebody", "wholebody", "coco_wholebody133", "wild", False, (30, 70),
                          (0.5, 0.95), 6.0, (-15, 35), truncation=0.1, occluders=0.25,
                          noise_2d_box=(0.01, 0.03), swap=0.02),
    # MoCap face (a face-capture rig's 3D landmarks, as the face kind's subjects): 1 mm 3D noise
    "face3d": KindSpec("face3d", "face", "face68", "studio", True, (25, 55), (0.45, 0.8), 10.0, (-10, 20),
                       noise_3d_m=0.001, missing=0.03, smooth=True),
    # wild images (cameras, framing, occluders) with 3D joints, as 3DPW: an auxiliary 3D set for
    # wild-mode training (annotate --aux-data)
    "wild3d": KindSpec("wild3d", "body", "coco23", "wild", True, (30, 75), (0.4, 0.95), 8.0, (-20, 40),
                       truncation=0.15, occluders=0.35, noise_3d_m=0.005),
}  # fmt: skip


# --- camera ----------------------------------------------------------------------------------------
def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def camera_rotation(elevation: float, roll: float) -> np.ndarray:
    """(3, 3) rotation from a Y-up, +Z-facing model frame to the OpenCV camera frame: the camera looks
    at the model's front from ``elevation`` radians above, rolled by ``roll``."""
    return _rz(roll) @ _rx(elevation + np.pi)


def sample_camera(spec: KindSpec, rng: np.random.Generator, size: int) -> dict:
    """Random intrinsics (focal from the FOV range, principal point within ±2% of the centre),
    elevation and roll (radians). Focal and principal point are rounded to 1e-3 px."""
    fov = np.deg2rad(rng.uniform(*spec.fov_deg))
    f = round(size / 2 / np.tan(fov / 2), 3)
    pp = np.round(size / 2 - 0.5 + rng.uniform(-0.02, 0.02, 2) * size, 3)
    return {
        "focal": np.array([f, f]),
        "princpt": pp,
        "elevation": np.deg2rad(rng.uniform(*spec.elevation_deg)),
        "roll": np.deg2rad(rng.normal(0, spec.roll_deg)) if spec.roll_deg else rng.uniform(-np.pi, np.pi),
    }


def _box(uv: np.ndarray) -> np.ndarray:
    return np.concatenate([uv.min(-2), uv.max(-2)], -1)


def _project(x: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    return x[..., :2] / np.maximum(x[..., 2:3], 1e-6) * f + c


def frame_subject(
    verts: np.ndarray,
    focal: np.ndarray,
    princpt: np.ndarray,
    target_size: np.ndarray,
    target_centre: np.ndarray,
    near_frac: float = 0.6,
    iters: int = 3,
) -> np.ndarray:
    """Translations that put each subject's projected vertex box at a target size and centre.

    Args:
        verts: (B, V, 3) camera-oriented vertices with the subject's root at the origin (a subset of
            the vertices is enough).
        focal, princpt: (B, 2) intrinsics; target_size: (B,) larger box side in pixels;
        target_centre: (B, 2) box centre in pixels.
        near_frac: the nearest vertex stays at least this fraction of the subject's largest 3D extent
            (and 5 cm) from the camera, which bounds the perspective distortion of subjects seen
            end-on (they come out smaller than the target instead).
    Returns:
        (B, 3) translations (the root's camera-frame position).
    """
    ext = np.maximum(np.ptp(verts[..., 0], 1), np.ptp(verts[..., 1], 1))
    near = np.maximum(near_frac * np.ptp(verts, 1).max(1), 0.05) - verts[..., 2].min(1)  # min root depth
    t = np.zeros((len(verts), 3))
    t[:, 2] = np.maximum(focal[:, 0] * ext / target_size, near)
    for _ in range(iters):
        box = _box(_project(verts + t[:, None], focal[:, None], princpt[:, None]))
        side = np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
        t *= np.maximum(side / target_size, near / t[:, 2])[:, None]  # scaling t keeps the root's pixel
        box = _box(_project(verts + t[:, None], focal[:, None], princpt[:, None]))
        t[:, :2] += (target_centre - (box[:, :2] + box[:, 2:]) / 2) * t[:, 2:] / focal
    return t


def sample_framing(spec: KindSpec, rng: np.random.Generator, size: int) -> tuple[float, np.ndarray, bool]:
    """(target box side px, target centre (2,) px, truncated?) for one subject."""
    s = rng.uniform(*spec.scale) * size
    if rng.random() < spec.truncation:
        s *= rng.uniform(1.0, 1.6)
        a = rng.uniform(0, 2 * np.pi)
        return s, size / 2 + np.array([np.cos(a), np.sin(a)]) * s * rng.uniform(0.2, 0.45), True
    return s, size / 2 + rng.uniform(-1, 1, 2) * max(size - s, 0) / 2 * 0.9, False


# --- annotations -----------------------------------------------------------------------------------
def joint_groups(joint_set: str) -> tuple[np.ndarray, np.ndarray]:
    """(group id (J,), occlusion tolerance in m (J,)): groups body 0 / face 1 / left hand 2 /
    right hand 3; tolerances: face landmarks 1.5 cm, hand joints 3 cm, nose/eyes/ears 4 cm,
    toes/heels 5 cm, elbows/wrists/knees/ankles 7 cm, other (torso) body joints 17 cm (measured: the
    depth of each keypoint behind its own visible surface over 8 views of the rest body, + 1-3 cm)."""
    face = set(FACE68)
    group, tol = [], []
    for n in get_joint_names(joint_set):
        if n in face:
            g, t = 1, 0.015
        elif n.startswith("left_hand_") or n.startswith("right_hand_") or joint_set == "hand21":
            g, t = (2 if n.startswith("left") else 3), 0.03
        elif n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"):
            g, t = 0, 0.04
        elif any(w in n for w in ("toe", "heel")):
            g, t = 0, 0.05
        else:
            g, t = 0, (0.07 if any(w in n for w in ("elbow", "wrist", "knee", "ankle")) else 0.17)
        group.append(g)
        tol.append(t)
    return np.array(group), np.array(tol)


def _in_image(uv: np.ndarray, size: int) -> np.ndarray:
    return ((uv >= -0.5) & (uv <= size - 0.5)).all(-1)


def _bbox(uv: np.ndarray, valid: np.ndarray, mask: np.ndarray | None, size: int) -> np.ndarray:
    """[x, y, w, h] (see the module docstring)."""
    lo = hi = None
    if valid.sum() >= 2:
        lo, hi = uv[valid].min(0), uv[valid].max(0)
        if (hi - lo).max() < 2:
            lo = None
    if lo is None and mask is not None and mask.any():
        ys, xs = np.nonzero(mask)
        lo, hi = np.array([xs.min(), ys.min()], float), np.array([xs.max(), ys.max()], float)
    if lo is None:
        return np.array([0.0, 0.0, size, size])
    c, half = (lo + hi) / 2, np.maximum((hi - lo) * BOX_SCALE / 2, 1.0)
    x0, y0 = np.clip(c - half, 0, size - 1)
    x1, y1 = np.clip(c + half, x0 + 1, size)
    return np.round(np.array([x0, y0, x1 - x0, y1 - y0]), 2)


def annotate(spec: KindSpec, rng: np.random.Generator, j3: np.ndarray, focal: np.ndarray,
             princpt: np.ndarray, depth: np.ndarray, mask: np.ndarray | None) -> dict:  # fmt: skip
    """Noisy annotations of one sample from its GT camera-frame joints ``j3`` (J, 3).

    Returns ``joints_2d`` (J, 3), ``joints_3d`` (J, 4) or None, ``bbox`` (4,) and ``info`` (what the
    noise model did: σ in px, swapped pair, counts), all rounded for storage."""
    size = depth.shape[0]
    J = len(j3)
    uv_gt = _project(j3, focal, princpt)
    info: dict = {}
    j3_out = None
    if spec.with_3d:
        noisy = np.round(
            j3 + rng.normal(0, spec.noise_3d_m, j3.shape), 5
        )  # stored precision, projected as stored
        valid = rng.random(J) >= spec.missing
        uv = _project(noisy, focal, princpt)
        j3_out = np.concatenate([np.where(valid[:, None], noisy, 0), valid[:, None]], 1)
        vis = valid & _in_image(uv, size)
    else:
        group, tol = joint_groups(spec.joint_set)
        frac = rng.uniform(*spec.noise_2d_box)
        sigma = np.zeros(J)
        for g in np.unique(group):
            lo, hi = uv_gt[group == g].min(0), uv_gt[group == g].max(0)
            sigma[group == g] = frac * np.sqrt(max((hi - lo).prod(), 1.0))
        uv = uv_gt + rng.normal(0, 1, (J, 2)) * sigma[:, None]
        inside = _in_image(uv_gt, size)
        px = np.clip(np.round(uv_gt).astype(int), 0, size - 1)
        d = depth[px[:, 1], px[:, 0]]
        # Like COCO's "labelled but not visible", joints hidden by the body itself keep their label;
        # only joints behind an occluder (a pixel that is not the subject's) are unlabelled.
        by_occluder = ~mask[px[:, 1], px[:, 0]] if mask is not None else np.zeros(J, bool)
        hidden = inside & (d > 0) & (d < j3[:, 2] - tol) & by_occluder
        vis = inside & ~hidden
        info["num_outside"], info["num_occluded"] = int((~inside).sum()), int(hidden.sum())
        info["sigma_px"] = round(float(frac * np.sqrt(max(np.prod(np.ptp(uv_gt, 0)), 1.0))), 3)
        if rng.random() < spec.swap:
            perm = np.array(flip_permutation(spec.joint_set))
            pairs = [i for i in range(J) if perm[i] > i and group[i] == 0 and vis[i] and vis[perm[i]]]
            if pairs:
                i = pairs[int(rng.integers(len(pairs)))]
                uv[[i, perm[i]]] = uv[[perm[i], i]]
                info["swapped"] = [int(i), int(perm[i])]
        vis &= _in_image(uv, size)
    j2 = np.concatenate([np.where(vis[:, None], uv, 0), vis[:, None]], 1)
    info["num_visible"] = int(vis.sum())
    return {
        "joints_2d": np.round(j2, 3),
        "joints_3d": None if j3_out is None else np.round(j3_out, 5),
        "bbox": _bbox(uv, vis, mask, size),
        "info": info,
    }
