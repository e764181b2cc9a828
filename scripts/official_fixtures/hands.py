"""Hand datasets: FreiHAND and InterHand2.6M."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import link_image, load_real, write_json

# --- FreiHAND ------------------------------------------------------------------------------------------
#: FreiHAND fixture camera (documented in the README): K of a 224 px crop, every joint at this depth.
FREIHAND_K = [[500.0, 0.0, 112.0], [0.0, 500.0, 112.0], [0.0, 0.0, 1.0]]
FREIHAND_DEPTH_M = 0.6


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

