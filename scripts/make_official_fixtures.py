"""Write small fixtures in the OFFICIAL annotation layouts from the real samples in tests/data/real.

    python scripts/make_official_fixtures.py [--real tests/data/real] [--out tests/data/official]

Each dataset's real folder-format samples are converted back into that dataset's official files
(see tests/data/official/README.md for what is real and what is derived). Images are not copied:
each official image path is a relative symlink to the real image (a copy where symlinks fail).
The output is deterministic, so re-running it reproduces the committed fixtures.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import roma
import scipy.io
import torch

from neuralannot.bodies.joint_names import H36M17, conversion_indices
from neuralannot.data.adapters.mpi_inf_3dhp import JOINTS28, RELEVANT17

ROOT = Path(__file__).resolve().parents[1]
#: Human3.6M action / camera numbering of the JSON release (Moon et al.).
H36M_ACTIONS = [
    "Directions",
    "Discussion",
    "Eating",
    "Greeting",
    "Phoning",
    "Posing",
    "Purchases",
    "Sitting",
    "SittingDown",
    "Smoking",
    "Photo",
    "Waiting",
    "Walking",
    "WalkDog",
    "WalkTogether",
]
H36M_CAMERAS = {"54138969": 1, "55011271": 2, "58860488": 3, "60457274": 4}
#: FreiHAND fixture camera (documented in the README): K of a 224 px crop, every joint at this depth.
FREIHAND_K = [[500.0, 0.0, 112.0], [0.0, 500.0, 112.0], [0.0, 0.0, 1.0]]
FREIHAND_DEPTH_M = 0.6


def load_real(real: Path, name: str) -> dict:
    with open(real / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, separators=(",", ":"))
        f.write("\n")


def link_image(src: Path, dst: Path) -> None:
    """A relative symlink ``dst`` → ``src`` (a copy if the file system refuses symlinks)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        os.symlink(os.path.relpath(src, dst.parent), dst)
    except OSError:
        shutil.copyfile(src, dst)


def save_mat(path: Path, variables: dict) -> None:
    """``scipy.io.savemat`` with a fixed header text (scipy writes the creation time there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, variables)
    data = bytearray(path.read_bytes())
    data[:116] = b"MATLAB 5.0 MAT-file, written by scripts/make_official_fixtures.py".ljust(116)
    path.write_bytes(bytes(data))


def rotvec_premul(R: np.ndarray, rotvec) -> list[float]:
    """Axis-angle of ``R @ rotmat(rotvec)``."""
    m = torch.from_numpy(np.asarray(R, np.float64)) @ roma.rotvec_to_rotmat(
        torch.tensor(rotvec, dtype=torch.float64)
    )
    return roma.rotmat_to_rotvec(m).tolist()


# --- Human3.6M (Moon et al. JSON release) ------------------------------------------------------------
def h36m_world(s: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R_world→cam, t mm, world joints mm) from the real sample's mmpose extrinsics.

    mmpose stores the camera-to-world rotation and the camera centre: X_world = R_mm @ X_cam + T.
    The world joints solve ``R @ X_world + t = X_cam`` exactly (the 6-decimal R is not exactly
    orthonormal), so the adapter's world → camera step gives back the real camera-frame joints.
    """
    e = s["camera"]["extrinsics_world_to_cam"]
    R_mm, T = np.array(e["R"], np.float64), np.array(e["T_m"], np.float64)
    R = R_mm.T
    t_mm = -R @ T * 1000.0
    cam_mm = np.array(s["joints_3d"], np.float64) * 1000.0
    world_mm = np.linalg.solve(R, (cam_mm - t_mm).T).T
    return R, t_mm, world_mm


def make_h36m(real: Path, out: Path) -> None:
    d = load_real(real, "h36m")
    for s in d["samples"]:
        subject = int(s["extra"]["subject"].lstrip("S"))
        seq, frame = Path(s["extra"]["orig_path"]).stem.rsplit("_", 1)  # S1_Directions_1.54138969, 000001
        action_sub, cam_id = seq.split(".")
        action = action_sub.split("_")[1]
        subaction = 2 if action_sub.endswith("_1") else 1
        a, c, f = H36M_ACTIONS.index(action) + 2, H36M_CAMERAS[cam_id], int(frame) - 1
        folder = f"s_{subject:02d}_act_{a:02d}_subact_{subaction:02d}_ca_{c:02d}"
        file_name = f"{folder}/{folder}_{f + 1:06d}.jpg"
        R, t_mm, world_mm = h36m_world(s)
        w, h = s["image_size"]
        image = {
            "id": subject * 100000 + f,
            "file_name": file_name,
            "width": w,
            "height": h,
            "subject": subject,
            "action_name": action,
            "action_idx": a,
            "subaction_idx": subaction,
            "cam_idx": c,
            "frame_idx": f,
        }
        ann = {
            "id": image["id"],
            "image_id": image["id"],
            "bbox": s["bbox"],
            "keypoints_vis": [bool(v) for v in s["joints_3d_valid"]],
        }
        cam = s["camera"]
        annot = out / "h36m" / "annotations"
        prefix = f"Human36M_subject{subject}"
        write_json(annot / f"{prefix}_data.json", {"images": [image], "annotations": [ann]})
        write_json(
            annot / f"{prefix}_camera.json",
            {str(c): {"R": R.tolist(), "t": t_mm.tolist(), "f": cam["focal"], "c": cam["princpt"]}},
        )
        write_json(annot / f"{prefix}_joint_3d.json", {str(a): {str(subaction): {str(f): world_mm.tolist()}}})
        smpl = s["smpl"]
        pose = list(smpl["pose"])
        pose[:3] = rotvec_premul(R.T, pose[:3])  # camera-frame root → world-frame root
        trans = (world_mm[0] / 1000.0).tolist()  # placeholder: the real sample has no SMPL translation
        write_json(
            annot / f"{prefix}_SMPL_NeuralAnnot.json",
            {str(a): {str(subaction): {str(f): {"pose": pose, "shape": smpl["betas"], "trans": trans}}}},
        )
        link_image(real / s["image"], out / "h36m" / "images" / file_name)


# --- COCO and COCO-WholeBody ------------------------------------------------------------------------
#: The ``licenses`` table of the COCO 2017 annotation files.
COCO_LICENSES = [
    ("Attribution-NonCommercial-ShareAlike License", "http://creativecommons.org/licenses/by-nc-sa/2.0/"),
    ("Attribution-NonCommercial License", "http://creativecommons.org/licenses/by-nc/2.0/"),
    ("Attribution-NonCommercial-NoDerivs License", "http://creativecommons.org/licenses/by-nc-nd/2.0/"),
    ("Attribution License", "http://creativecommons.org/licenses/by/2.0/"),
    ("Attribution-ShareAlike License", "http://creativecommons.org/licenses/by-sa/2.0/"),
    ("Attribution-NoDerivs License", "http://creativecommons.org/licenses/by-nd/2.0/"),
    ("No known copyright restrictions", "http://flickr.com/commons/usage/"),
    ("United States Government Work", "http://www.usa.gov/copyright.shtml"),
]
COCO_SKELETON = [
    [16, 14],
    [14, 12],
    [17, 15],
    [15, 13],
    [12, 13],
    [6, 12],
    [7, 13],
    [6, 7],
    [6, 8],
    [7, 9],
    [8, 10],
    [9, 11],
    [2, 3],
    [1, 2],
    [1, 3],
    [2, 4],
    [3, 5],
    [4, 6],
    [5, 7],
]
#: COCO-WholeBody keypoint groups after the 17 body keypoints, in joints_2d order.
WHOLEBODY_GROUPS = [("foot_kpts", 6), ("face_kpts", 68), ("lefthand_kpts", 21), ("righthand_kpts", 21)]


def coco_keypoints(rows: list, vis: list) -> list[float]:
    """Flat [x, y, v, ...] with the original visibility flags (x = y = 0 where unlabeled, as COCO)."""
    out = []
    for (x, y, _), v in zip(rows, vis, strict=True):
        out += [x, y, v] if v > 0 else [0, 0, 0]
    return [int(v) if float(v).is_integer() else v for v in out]


def make_coco(real: Path, out: Path) -> None:
    for name, file_name in (
        ("coco", "person_keypoints_val2017.json"),
        ("coco_wholebody", "coco_wholebody_val_v1.0.json"),
    ):
        d = load_real(real, name)
        images, annotations = {}, []
        for s in d["samples"]:
            e = s["extra"]
            stem = Path(s["image"]).name.removeprefix(f"{name}__")
            lic = [n for n, _ in COCO_LICENSES].index(e["image_license"]["name"]) + 1
            w, h = s["image_size"]
            images[e["coco_image_id"]] = {
                "license": lic,
                "file_name": stem,
                "coco_url": e["coco_url"],
                "height": h,
                "width": w,
                "flickr_url": e["flickr_url"],
                "id": e["coco_image_id"],
            }
            vis, rows = e["orig_visibility"], s["joints_2d"]
            x, y, bw, bh = s["bbox"]
            ann = {
                "num_keypoints": e["num_keypoints_body"],
                "area": round(bw * bh, 4),
                "iscrowd": 0,
                "keypoints": coco_keypoints(rows[:17], vis[:17]),
                "image_id": e["coco_image_id"],
                "bbox": s["bbox"],
                "category_id": 1,
                "id": e["coco_ann_id"],
            }
            if name == "coco_wholebody":
                start = 17
                for key, n in WHOLEBODY_GROUPS:
                    ann[key] = coco_keypoints(rows[start : start + n], vis[start : start + n])
                    start += n
                for key in (
                    "face_box",
                    "lefthand_box",
                    "righthand_box",
                    "face_valid",
                    "lefthand_valid",
                    "righthand_valid",
                    "foot_valid",
                ):
                    ann[key] = e[key]
            annotations.append(ann)
            if name == "coco":  # COCO-WholeBody uses the same val2017 images
                link_image(real / s["image"], out / "coco" / "val2017" / stem)
        write_json(
            out / "coco" / "annotations" / file_name,
            {
                "info": {"description": f"{name} fixture rebuilt from tests/data/real/{name}.json"},
                "licenses": [{"url": u, "id": i + 1, "name": n} for i, (n, u) in enumerate(COCO_LICENSES)],
                "images": list(images.values()),
                "annotations": annotations,
                "categories": [
                    {
                        "supercategory": "person",
                        "id": 1,
                        "name": "person",
                        "keypoints": d["joint_names"][:17],
                        "skeleton": COCO_SKELETON,
                    }
                ],
            },
        )


# --- FreiHAND ------------------------------------------------------------------------------------------
def make_freihand(real: Path, out: Path) -> None:
    """The real 2D joints lifted to 3D at a fixed depth with a fixed K, so projection gives them back.

    The 8 real images are 4 versions of 2 annotations (indices 355 and 17620 mod 32560); the
    fixture keeps that structure with N = 2 annotations: image i uses annotation i % 2.
    """
    d = load_real(real, "freihand")
    samples = sorted(d["samples"], key=lambda s: int(Path(s["image"]).stem.split("__")[1]))
    n = 2
    K = np.array(FREIHAND_K)
    xyz, root = [], out / "freihand"
    for i, s in enumerate(samples):
        uv = np.array(s["joints_2d"], np.float64)[:, :2]
        pts = np.concatenate(
            [(uv - K[:2, 2]) / K[[0, 1], [0, 1]] * FREIHAND_DEPTH_M, np.full((21, 1), FREIHAND_DEPTH_M)], 1
        )
        if i < n:
            xyz.append(pts.tolist())
        elif not np.allclose(pts, xyz[i % n]):
            raise ValueError(f"{s['image']}: 2D differs from its annotation {i % n}")
        link_image(real / s["image"], root / "training" / "rgb" / f"{i:08d}.jpg")
    write_json(root / "training_xyz.json", xyz)
    write_json(root / "training_K.json", [FREIHAND_K] * n)
    # placeholder MANO entries (the real samples have none): zero pose and shape, trans = wrist
    write_json(root / "training_mano.json", [[[0.0] * 58 + x[0]] for x in xyz])


# --- InterHand2.6M -------------------------------------------------------------------------------------
INTERHAND_SPLIT = "test"  # the split name is the fixture's choice (the mmpose sample does not say)


def make_interhand(real: Path, out: Path) -> None:
    """World joints solve ``R @ (X_world - campos) = X_cam`` exactly for the real camera-frame joints."""
    d = load_real(real, "interhand2.6m")
    split, root = INTERHAND_SPLIT, out / "interhand2.6m"
    images, annotations, cameras, joints = [], [], {}, {}
    for s in d["samples"]:
        e, cam = s["extra"], s["camera"]
        ext = cam["extrinsics_world_to_cam"]
        R, campos_mm = np.array(ext["R"], np.float64), np.array(ext["campos_m"], np.float64) * 1000.0
        world_mm = np.linalg.solve(R, np.array(s["joints_3d"], np.float64).T * 1000.0).T + campos_mm
        cap, cam_id, frame = str(e["capture"]), cam["camera_id"], e["frame_idx"]
        file_name = f"Capture{cap}/{e['seq_name']}/cam{cam_id}/image{frame}.jpg"
        w, h = s["image_size"]
        images.append(
            {
                "id": frame,
                "file_name": file_name,
                "width": w,
                "height": h,
                "capture": e["capture"],
                "subject": e["subject"],
                "seq_name": e["seq_name"],
                "camera": cam_id,
                "frame_idx": frame,
            }
        )
        annotations.append(
            {
                "id": frame,
                "image_id": frame,
                "bbox": s["bbox"],
                "joint_valid": [[int(v)] for v in s["joints_3d_valid"]],
                "hand_type": e["hand_type"],
                "hand_type_valid": e["hand_type_valid"],
            }
        )
        c = cameras.setdefault(cap, {"campos": {}, "camrot": {}, "focal": {}, "princpt": {}})
        c["campos"][cam_id], c["camrot"][cam_id] = campos_mm.tolist(), R.tolist()
        c["focal"][cam_id], c["princpt"][cam_id] = cam["focal"], cam["princpt"]
        joints.setdefault(cap, {})[str(frame)] = {
            "world_coord": world_mm.tolist(),
            "joint_valid": [[int(v)] for v in s["joints_3d_valid"]],
            "hand_type": e["hand_type"],
            "hand_type_valid": e["hand_type_valid"],
        }
        link_image(real / s["image"], root / "images" / split / file_name)
    annot = root / "annotations" / split
    write_json(annot / f"InterHand2.6M_{split}_data.json", {"images": images, "annotations": annotations})
    write_json(annot / f"InterHand2.6M_{split}_camera.json", cameras)
    write_json(annot / f"InterHand2.6M_{split}_joint_3d.json", joints)


# --- MPI-INF-3DHP (built from the real H36M joints) -------------------------------------------------
#: H36M source joint of each of the 28 3DHP joints that is not one of the 17 evaluation joints.
MPI_FILL = {
    "spine3": "spine",
    "spine4": "thorax",
    "spine2": "spine",
    "left_clavicle": "thorax",
    "right_clavicle": "thorax",
    "left_hand": "left_wrist",
    "right_hand": "right_wrist",
    "left_foot": "left_foot",
    "left_toe": "left_foot",
    "right_foot": "right_foot",
    "right_toe": "right_foot",
}


def h36m_to_3dhp28(rows) -> np.ndarray:
    """(17, C) h36m17 rows → (28, C) 3DHP rows: the 17 evaluation joints by the project's joint
    matching, the other 11 copied from a neighbouring H36M joint (:data:`MPI_FILL`)."""
    rows = np.asarray(rows, np.float64)
    idx, found = conversion_indices("h36m17", "mpi_inf_3dhp17")
    assert all(found)
    out = np.zeros((28, rows.shape[1]))
    for name, src in MPI_FILL.items():
        out[JOINTS28.index(name)] = rows[H36M17.index(src)]
    out[RELEVANT17] = rows[idx]
    return out


def calibration_text(cams: list[tuple[int, dict, np.ndarray, list]]) -> str:
    """A Skeletool camera.calibration for (index, camera, 4x4 world→camera mm, image size)."""
    lines = ["Skeletool Camera Calibration File V1.0"]
    for i, cam, RT, size in cams:
        (fx, fy), (cx, cy) = cam["focal"], cam["princpt"]
        K = [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0, 0, 0, 0, 1]
        lines += [
            f"name          {i}",
            "  sensor      10 10",
            f"  size        {size[0]} {size[1]}",
            "  animated    0",
            "  intrinsic   " + " ".join(f"{v:.10g}" for v in K),
            "  extrinsic   " + " ".join(f"{v:.10g}" for v in RT.reshape(-1)),
            "  radial      0",
        ]
    return "\n".join(lines) + "\n"


def by_camera(samples: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in samples:
        out.setdefault(s["camera"]["camera_id"], []).append(s)
    return out


def world_to_cam_4x4(s: dict) -> np.ndarray:
    R, t_mm, _ = h36m_world(s)
    RT = np.eye(4)
    RT[:3, :3], RT[:3, 3] = R, t_mm
    return RT


def make_mpi_inf_3dhp(real: Path, out: Path) -> None:
    """Training S1/Seq1 (camera 0 = H36M camera 54138969 with the S1 and S5 frames, camera 1 =
    55011271 with S7 and S8) and test TS1 (the two camera-54138969 frames plus an invalid frame)."""
    groups = by_camera(load_real(real, "h36m")["samples"])
    seq, root = out / "mpi_inf_3dhp" / "S1" / "Seq1", out / "mpi_inf_3dhp"
    annot2, annot3, calib = [], [], []
    for c, (_, group) in enumerate(sorted(groups.items())):
        annot2.append(np.stack([h36m_to_3dhp28(s["joints_2d"])[:, :2].reshape(-1) for s in group]))
        annot3.append(np.stack([(h36m_to_3dhp28(s["joints_3d"]) * 1000).reshape(-1) for s in group]))
        calib.append((c, group[0]["camera"], world_to_cam_4x4(group[0]), group[0]["image_size"]))
        for f, s in enumerate(group):
            link_image(real / s["image"], seq / "imageFrames" / f"video_{c}" / f"frame_{f + 1:06d}.jpg")
    cells = np.empty((len(annot2), 1), dtype=object)
    cells3 = np.empty((len(annot3), 1), dtype=object)
    for k in range(len(annot2)):
        cells[k, 0], cells3[k, 0] = annot2[k], annot3[k]
    save_mat(
        seq / "annot.mat",
        {
            "annot2": cells,
            "annot3": cells3,
            "univ_annot3": cells3,
            "cameras": np.arange(len(annot2))[None],
            "frames": np.arange(2)[:, None],
        },
    )
    (seq / "camera.calibration").write_text(calibration_text(calib), encoding="utf-8")
    group = sorted(groups.items())[0][1]
    ts = root / "mpi_inf_3dhp_test_set" / "TS1"
    frames = group + group[:1]  # the third frame is marked invalid
    uv = np.stack([np.array(s["joints_2d"])[:, :2] for s in frames])
    idx, _ = conversion_indices("h36m17", "mpi_inf_3dhp17")
    uv = uv[:, idx]
    xyz = np.stack([np.array(s["joints_3d"])[idx] * 1000 for s in frames])
    matlab = {
        "annot2": uv.transpose(2, 1, 0)[:, :, None],
        "annot3": xyz.transpose(2, 1, 0)[:, :, None],
        "univ_annot3": xyz.transpose(2, 1, 0)[:, :, None],
        "valid_frame": np.array([[1, 1, 0]]),
    }
    save_mat(ts / "annot_data.mat", matlab)
    (ts / "camera.calibration").write_text(calibration_text(calib[:1]), encoding="utf-8")
    for f, s in enumerate(frames):
        link_image(real / s["image"], ts / "imageSequence" / f"img_{f + 1:06d}.jpg")


# --- 3DPW (built from the real H36M joints) -----------------------------------------------------------
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, default=ROOT / "tests" / "data" / "real")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "official")
    args = ap.parse_args()
    for make in (make_h36m, make_coco, make_freihand, make_interhand, make_mpi_inf_3dhp, make_3dpw):
        make(args.real, args.out)
        print(f"wrote {make.__name__.removeprefix('make_')}")


if __name__ == "__main__":
    main()
