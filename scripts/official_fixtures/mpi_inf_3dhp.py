"""MPI-INF-3DHP training (annot.mat, camera.calibration) and test set, built from the real H36M joints."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuralannot.bodies.joint_names import H36M17, conversion_indices
from neuralannot.data.adapters.mpi_inf_3dhp import JOINTS28, RELEVANT17

from .common import link_image, load_real, save_mat
from .h36m import by_camera, h36m_world

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

