"""Per-sample report images: the mesh over the image crop, a side view, and GT vs model joints.

All three are ``size`` x ``size`` RGB uint8 tiles. The crop is the sample's box enlarged by
:data:`CROP_SCALE` (padded grey outside the image); vertices and keypoints are in the OpenCV camera
frame of the image, so the crop camera is the image camera followed by the crop affine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neuralannot.data.transforms import apply_affine_2d, crop_to_bbox, update_intrinsics_for_affine

CROP_SCALE = 1.25
MESH_COLOR = (0.55, 0.75, 1.0)
GT_COLOR = (40, 200, 60)
MODEL_COLOR = (230, 40, 40)
LINK_COLOR = (250, 220, 40)
BACKGROUND = 235


@dataclass
class SampleTiles:
    """The three tiles of one sample; ``overlay`` and ``joints`` lack the mesh when no camera is known."""

    overlay: np.ndarray
    side: np.ndarray
    joints: np.ndarray


def project_points(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points → (N, 2) pixels; points at or behind the camera give NaN."""
    z = points[:, 2:3]
    uv = (points[:, :2] / np.where(z > 1e-6, z, np.nan)) * np.diag(K)[:2] + K[:2, 2]
    return uv


def side_camera(vertices: np.ndarray, size: int, angle_deg: float = 90.0) -> tuple[np.ndarray, np.ndarray]:
    """Vertices turned by ``angle_deg`` about the vertical (camera y) axis through their centre and
    moved in front of a camera that frames them; returns (vertices (V, 3), K (3, 3))."""
    center = 0.5 * (vertices.min(0) + vertices.max(0))
    a = math.radians(angle_deg)
    R = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    v = (vertices - center) @ R.T
    extent = float(max(np.ptp(v[:, 0]), np.ptp(v[:, 1]), 1e-3))
    depth = 3.0 * extent
    v = v + np.array([0.0, 0.0, depth])
    f = 0.85 * size * depth / extent
    K = np.array([[f, 0.0, (size - 1) / 2], [0.0, f, (size - 1) / 2], [0.0, 0.0, 1.0]])
    return v.astype(np.float32), K


def draw_joints(image: np.ndarray, gt_uv: np.ndarray, gt_visible: np.ndarray, model_uv: np.ndarray | None
                ) -> np.ndarray:  # fmt: skip
    """GT joints (green, visible only), model joints (red) and a yellow line between each pair."""
    from PIL import Image, ImageDraw

    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    r = max(2, image.shape[0] // 100)

    def dot(p, color):
        draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=color, outline=(0, 0, 0))

    ok_model = None if model_uv is None else np.isfinite(model_uv).all(1)
    if model_uv is not None:
        for j in np.flatnonzero(gt_visible & ok_model):
            draw.line([tuple(gt_uv[j]), tuple(model_uv[j])], fill=LINK_COLOR, width=max(1, r // 2))
    for j in np.flatnonzero(gt_visible):
        dot(gt_uv[j], GT_COLOR)
    if model_uv is not None:
        for j in np.flatnonzero(ok_model):
            dot(model_uv[j], MODEL_COLOR)
    return np.asarray(pil)


def render_tiles(
    renderer,
    image: np.ndarray,
    bbox: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    keypoints: np.ndarray,
    K: np.ndarray | None,
    joints_2d: np.ndarray,
    size: int,
) -> SampleTiles:
    """Tiles of one sample. ``image`` (H, W, 3) uint8; ``bbox`` [x, y, w, h]; ``vertices`` (V, 3) and
    ``keypoints`` (J, 3) in the camera frame; ``K`` (3, 3) image intrinsics or None; ``joints_2d``
    (J, 3) GT pixels + confidence; ``renderer`` a :class:`~neuralannot.render.MeshRenderer`."""
    crop, A = crop_to_bbox(image, bbox, (size, size), scale=CROP_SCALE, pad_value=BACKGROUND)
    gt_uv = apply_affine_2d(joints_2d[:, :2], A)
    visible = joints_2d[:, 2] > 0
    side_v, side_K = side_camera(vertices, size)
    bg = np.full((size, size, 3), BACKGROUND, np.uint8)
    side = renderer.render(side_v, faces, side_K, MESH_COLOR, background=bg).image
    if K is None:
        return SampleTiles(crop.copy(), side, draw_joints(crop, gt_uv, visible, None))
    K_crop = update_intrinsics_for_affine(K, A)
    overlay = renderer.overlay(crop, vertices, faces, K_crop, MESH_COLOR, alpha=0.6)
    joints = draw_joints(crop, gt_uv, visible, project_points(keypoints, K_crop))
    return SampleTiles(overlay, side, joints)
