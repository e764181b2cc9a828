"""Human3.6M in the Moon et al. JSON release layout, and the H36M camera geometry reused by 3DHP / 3DPW."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import link_image, load_real, rotvec_premul, write_json

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


def by_camera(samples: list[dict]) -> dict[str, list[dict]]:
    """The real H36M samples grouped by camera id, in sample order."""
    out: dict[str, list[dict]] = {}
    for s in samples:
        out.setdefault(s["camera"]["camera_id"], []).append(s)
    return out

