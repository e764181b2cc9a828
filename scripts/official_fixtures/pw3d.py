"""3DPW sequence pickles (Python 2 style, as the original files), built from the real H36M joints."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

from neuralannot.bodies.joint_names import H36M17

from .common import link_image, load_real, rotvec_premul
from .h36m import by_camera, h36m_world

SMPL24_FROM_H36M = [
    ("pelvis", "root"),
    ("left_hip", "left_hip"),
    ("right_hip", "right_hip"),
    ("spine1", "spine"),
    ("left_knee", "left_knee"),
    ("right_knee", "right_knee"),
    ("spine2", "spine"),
    ("left_ankle", "left_foot"),
    ("right_ankle", "right_foot"),
    ("spine3", "thorax"),
    ("left_foot", "left_foot"),
    ("right_foot", "right_foot"),
    ("neck", "thorax"),
    ("left_collar", "thorax"),
    ("right_collar", "thorax"),
    ("head", "neck_base"),
    ("left_shoulder", "left_shoulder"),
    ("right_shoulder", "right_shoulder"),
    ("left_elbow", "left_elbow"),
    ("right_elbow", "right_elbow"),
    ("left_wrist", "left_wrist"),
    ("right_wrist", "right_wrist"),
    ("left_hand", "left_wrist"),
    ("right_hand", "right_wrist"),
]
#: OpenPose-18 joints and their H36M source (None = not annotated: confidence 0).
OPENPOSE18_FROM_H36M = [
    None,
    "thorax",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_foot",
    "left_hip",
    "left_knee",
    "left_foot",
    None,
    None,
    None,
    None,
]


class Py2StylePickler(pickle._Pickler):
    """Protocol-2 pickler writing bytes as Python 2 ``str`` opcodes and ``numpy.core`` global names,
    like the original 3DPW files (written by Python 2 with numpy 1.x)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        self.write(
            pickle.SHORT_BINSTRING + bytes([n]) + obj
            if n < 256
            else pickle.BINSTRING + struct.pack("<i", n) + obj
        )
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def make_3dpw(real: Path, out: Path) -> None:
    """One sequence per H36M camera (one actor; the camera's frames, then a copy of the first frame
    marked campose_valid = 0). SMPL trans is a placeholder: the world pelvis (the real samples have
    no SMPL translation), so the camera-frame translation the adapter derives is the camera pelvis."""
    root = out / "3dpw"
    h36m_names = H36M17
    for cam_id, group in sorted(by_camera(load_real(real, "h36m")["samples"]).items()):
        seq = f"h36m_cam{cam_id}"
        frames = group + group[:1]
        cam_poses, joints, poses2d, poses, trans = [], [], [], [], []
        for s in frames:
            R, t_mm, world_mm = h36m_world(s)
            pose = np.eye(4)
            pose[:3, :3], pose[:3, 3] = R, t_mm / 1000.0
            cam_poses.append(pose)
            world = world_mm / 1000.0
            joints.append(np.stack([world[h36m_names.index(src)] for _, src in SMPL24_FROM_H36M]).reshape(-1))
            uv = np.array(s["joints_2d"], np.float64)
            poses2d.append(
                np.stack(
                    [
                        [0.0, 0.0, 0.0] if src is None else [*uv[h36m_names.index(src), :2], 1.0]
                        for src in OPENPOSE18_FROM_H36M
                    ]
                ).T
            )
            p = list(s["smpl"]["pose"])
            p[:3] = rotvec_premul(R.T, p[:3])
            poses.append(p)
            trans.append(world[0])
        cam = group[0]["camera"]
        (fx, fy), (cx, cy) = cam["focal"], cam["princpt"]
        data = {
            "sequence": seq,
            "img_frame_ids": np.arange(len(frames)),
            "cam_intrinsics": np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]),
            "cam_poses": np.stack(cam_poses),
            "jointPositions": [np.stack(joints)],
            "poses2d": [np.stack(poses2d)],
            "poses": [np.array(poses)],
            "betas": [np.array(group[0]["smpl"]["betas"])],
            "trans": [np.stack(trans)],
            "campose_valid": [np.array([1] * len(group) + [0], np.uint8)],
            "genders": ["m"],
        }
        path = root / "sequenceFiles" / "test" / f"{seq}.pkl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            Py2StylePickler(f, protocol=2).dump(data)
        for k, s in enumerate(frames):
            link_image(real / s["image"], root / "imageFiles" / seq / f"image_{k:05d}.jpg")

