"""Rotations, pinhole cameras and point-set alignment (batched torch, meters, OpenCV frame)."""

from neuralannot.geometry.alignment import apply_similarity, procrustes_align, rigid_align, similarity_align
from neuralannot.geometry.camera import (
    backproject,
    crop_resize_affine,
    crop_resize_intrinsics,
    estimate_translation,
    intrinsics_matrix,
    project,
    ray_rotation,
    transform_points_2d,
)
from neuralannot.geometry.rotations import (
    ROTATION_FORMATS,
    RotationFormat,
    flip_rotvec,
    rot6d_to_rotmat,
    rot6d_to_rotvec,
    rotation_format,
    rotmat_to_rot6d,
    rotmat_to_rotvec,
    rotvec_to_rot6d,
    rotvec_to_rotmat,
    to_rotmat,
    to_rotvec,
)

__all__ = [
    "ROTATION_FORMATS",
    "RotationFormat",
    "apply_similarity",
    "backproject",
    "crop_resize_affine",
    "crop_resize_intrinsics",
    "estimate_translation",
    "flip_rotvec",
    "intrinsics_matrix",
    "procrustes_align",
    "project",
    "ray_rotation",
    "rigid_align",
    "rot6d_to_rotmat",
    "rot6d_to_rotvec",
    "rotmat_to_rot6d",
    "rotmat_to_rotvec",
    "rotvec_to_rot6d",
    "rotation_format",
    "rotvec_to_rotmat",
    "similarity_align",
    "to_rotmat",
    "to_rotvec",
    "transform_points_2d",
]
