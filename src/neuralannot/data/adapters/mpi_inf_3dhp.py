"""MPI-INF-3DHP: training ``S*/Seq*/annot.mat`` (+ ``camera.calibration``) and test ``TS*/annot_data.mat``.

Layout (``path`` = the root, a sequence / test folder, or one ``.mat`` file)::

    <root>/S1/Seq1/annot.mat           annot2 / annot3 / univ_annot3: a cell per camera, frames x 28 joints
                  camera.calibration   per camera: intrinsic and extrinsic 4x4 (Skeletool format)
                  imageFrames/video_0/frame_000001.jpg   frames extracted from imageSequence/video_0.avi
    <root>/mpi_inf_3dhp_test_set/TS1/annot_data.mat   annot2 / annot3 / univ_annot3 (17 joints), valid_frame
                                    imageSequence/img_000001.jpg

One ``body`` sample (``mpi_inf_3dhp17``: the 17 evaluation joints, picked from the 28 training
joints) per camera and frame; ids ``S1_Seq1_cam0_000001`` / ``TS1_000001`` (1-based frame number,
as in the image names). ``joints_3d`` = ``annot3`` (camera frame, mm → m; ``univ_annot3`` with
``universal=True``), ``joints_2d`` = ``annot2``, all joints valid; bbox = square, side 1.2 x the
larger extent of the 2D joints (mmpose's 3DHP box). Intrinsics come from ``camera.calibration``
(the ``intrinsic`` matrix of that camera), for the test set from the option ``intrinsics`` or a
``camera.calibration`` next to ``annot_data.mat`` (camera 0); without them samples have none.
Test frames with ``valid_frame == 0`` are dropped (counted). MATLAB v7.3 files (the test set's
``annot_data.mat``) need ``h5py``.

Options: ``subjects`` (e.g. ``[1, "S2"]``), ``sequences``, ``cameras`` (camera indices), ``stride``
(keep frame index % stride == 0), ``universal``, ``intrinsics`` (test set: ``{"focal": [fx, fy],
"princpt": [cx, cy]}``), ``image_pattern`` (training images, relative to the sequence folder,
default ``imageFrames/video_{camera}/frame_{frame:06d}.jpg`` with ``frame`` 1-based),
``check_images``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neuralannot.data.adapters.common import (
    check_options,
    convert_records,
    image_path,
    per_file,
)
from neuralannot.data.adapters.folder import DatasetFormatError, SkipReport
from neuralannot.data.sample import Sample, SampleError

__all__ = ["load_mpi_inf_3dhp", "find_3dhp_files", "read_calibration", "JOINTS28", "RELEVANT17"]

#: The 28 joints of the training ``annot.mat`` (``mpii_get_joint_set('all')`` order).
JOINTS28 = [
    "spine3",
    "spine4",
    "spine2",
    "spine",
    "pelvis",
    "neck",
    "head",
    "head_top",
    "left_clavicle",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand",
    "right_clavicle",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "left_toe",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
    "right_toe",
]
#: Rows of :data:`JOINTS28` giving the 17 evaluation joints in ``mpi_inf_3dhp17`` order.
RELEVANT17 = [7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6]
BOX_SCALE = 1.2
DEFAULTS = dict(
    subjects=None,
    sequences=None,
    cameras=None,
    stride=1,
    universal=False,
    intrinsics=None,
    image_pattern="imageFrames/video_{camera}/frame_{frame:06d}.jpg",
    check_images="exists",
)


def find_3dhp_files(path: str | Path) -> list[Path]:
    """``annot.mat`` / ``annot_data.mat`` files: the file itself or those under the folder."""
    p = Path(path)
    if p.is_file():
        if p.name not in ("annot.mat", "annot_data.mat"):
            raise DatasetFormatError("not an MPI-INF-3DHP annot.mat / annot_data.mat file", p)
        return [p]
    for name in ("annot.mat", "annot_data.mat"):
        if (p / name).is_file():
            return [p / name]
    found = sorted(p.glob("S*/Seq*/annot.mat")) + sorted(p.glob("TS*/annot_data.mat"))
    found += sorted(p.glob("mpi_inf_3dhp_test_set/TS*/annot_data.mat"))
    if not found:
        raise DatasetFormatError("no S*/Seq*/annot.mat or TS*/annot_data.mat found", p)
    return found


def read_calibration(path: Path) -> dict[int, dict[str, np.ndarray]]:
    """``camera.calibration`` → {camera: {"K": 3x3, "RT": 4x4, "size": (w, h)}}."""
    cams: dict[int, dict[str, Any]] = {}
    current = None
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            tok = line.split()
            if not tok:
                continue
            if tok[0] == "name":
                current = cams.setdefault(int(tok[1]), {})
            elif current is not None and tok[0] in ("intrinsic", "extrinsic"):
                m = np.array([float(v) for v in tok[1:]]).reshape(4, 4)
                current["K" if tok[0] == "intrinsic" else "RT"] = m[:3, :3] if tok[0] == "intrinsic" else m
            elif current is not None and tok[0] == "size":
                current["size"] = (int(tok[1]), int(tok[2]))
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"malformed camera calibration: {exc}", path) from None
    bad = [c for c, v in cams.items() if "K" not in v]
    if not cams or bad:
        raise DatasetFormatError(f"no intrinsic matrix for camera(s) {bad or 'any'}", path)
    return cams


def _load_mat(path: Path) -> dict[str, np.ndarray]:
    """MATLAB file → arrays; v7.3 (HDF5) through h5py with axes reversed to MATLAB order."""
    import scipy.io

    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:  # v7.3
        pass
    except (ValueError, TypeError, OSError) as exc:
        raise DatasetFormatError(f"cannot read MATLAB file: {exc}", path) from None
    try:
        import h5py
    except ImportError:
        raise DatasetFormatError("MATLAB v7.3 (HDF5) file: install h5py to read it", path) from None
    with h5py.File(path, "r") as f:
        return {k: np.asarray(v).transpose() for k, v in f.items() if isinstance(v, h5py.Dataset)}


def _square_box(uv: np.ndarray) -> np.ndarray:
    lo, hi = uv.min(0), uv.max(0)
    side = BOX_SCALE * float((hi - lo).max())
    c = (lo + hi) / 2
    return np.array([c[0] - side / 2, c[1] - side / 2, side, side], np.float32)


def _sample(sid, uv, xyz, K, image, size, extra) -> Sample:
    ones = np.ones((17, 1), np.float32)
    intr = None if K is None else {"focal": K[[0, 1], [0, 1]], "princpt": K[:2, 2]}
    return Sample(
        id=sid,
        image=image,
        bbox=_square_box(uv),
        part="body",
        joint_set="mpi_inf_3dhp17",
        joints_2d=np.concatenate([uv, ones], 1),
        joints_3d=np.concatenate([xyz / 1000.0, ones], 1),
        intrinsics=intr,
        image_size=size,
        extra=extra,
    ).validate()


def _cells(mat: dict, key: str, path: Path) -> list[np.ndarray]:
    if key not in mat:
        raise DatasetFormatError(f"missing variable {key!r}", path)
    return [np.asarray(c, np.float64) for c in np.asarray(mat[key], dtype=object).reshape(-1)]


def _read_train(path: Path, opts: dict[str, Any], report: SkipReport) -> Iterator[Sample]:
    mat = _load_mat(path)
    seq_dir = path.parent
    subject, seq = seq_dir.parent.name, seq_dir.name
    annot2 = _cells(mat, "annot2", path)
    annot3 = _cells(mat, "univ_annot3" if opts["universal"] else "annot3", path)
    cams = np.asarray(mat.get("cameras", np.arange(len(annot2)))).reshape(-1).astype(int)
    if not (len(annot2) == len(annot3) == len(cams)):
        raise DatasetFormatError(
            f"{len(annot2)} annot2 / {len(annot3)} annot3 cells for {len(cams)} cameras", path
        )
    calib_file = seq_dir / "camera.calibration"
    calib = read_calibration(calib_file) if calib_file.is_file() else {}
    frames = mat.get("frames")
    wanted = None if opts["cameras"] is None else {int(c) for c in opts["cameras"]}

    def records():
        for k, cam in enumerate(cams):
            if wanted is not None and cam not in wanted:
                continue
            n = len(annot2[k])
            numbers = np.arange(n) if frames is None else np.asarray(frames).reshape(-1).astype(int)
            if len(numbers) != n:
                raise DatasetFormatError(f"camera {cam}: {n} annot2 rows but {len(numbers)} frames", path)
            for row in range(n):
                if numbers[row] % opts["stride"] == 0:
                    yield f"{subject}_{seq}_cam{cam}_{numbers[row] + 1:06d}", (k, cam, row, int(numbers[row]))

    def convert(sid: str, raw: tuple) -> list[Sample]:
        k, cam, row, frame = raw
        a2, a3 = annot2[k][row], annot3[k][row]
        if a2.shape != (56,) or a3.shape != (84,):
            raise SampleError(
                f"annot2/annot3 rows have {a2.shape}/{a3.shape} values, expected 56/84", sid, kind="shape"
            )
        uv, xyz = a2.reshape(28, 2)[RELEVANT17], a3.reshape(28, 3)[RELEVANT17]
        c = calib.get(int(cam), {})
        image = image_path(
            seq_dir / opts["image_pattern"].format(camera=cam, frame=frame + 1), sid, opts["check_images"]
        )
        extra = {
            "dataset": "mpi_inf_3dhp",
            "subject": subject,
            "sequence": seq,
            "camera_index": int(cam),
            "frame": frame,
            "universal": bool(opts["universal"]),
        }
        if "RT" in c:
            extra["camera"] = {"RT_world_to_cam_mm": c["RT"]}
        return [_sample(sid, uv, xyz, c.get("K"), image, c.get("size"), extra)]

    yield from convert_records(records(), convert, path, opts["skip_bad"], report)


def _test_array(mat: dict, key: str, dims: int, path: Path) -> np.ndarray:
    """(N, 17, dims) from the MATLAB (dims, 17, 1, N) layout."""
    if key not in mat:
        raise DatasetFormatError(f"missing variable {key!r}", path)
    arr = np.asarray(mat[key], np.float64)
    if arr.ndim != 4 or arr.shape[:3] != (dims, 17, 1):
        raise DatasetFormatError(f"{key} has shape {arr.shape}, expected ({dims}, 17, 1, frames)", path)
    return arr[:, :, 0, :].transpose(2, 1, 0)


def _read_test(path: Path, opts: dict[str, Any], report: SkipReport) -> Iterator[Sample]:
    mat = _load_mat(path)
    ts = path.parent.name
    uv_all = _test_array(mat, "annot2", 2, path)
    xyz_all = _test_array(mat, "univ_annot3" if opts["universal"] else "annot3", 3, path)
    if len(uv_all) != len(xyz_all):
        raise DatasetFormatError(f"{len(uv_all)} annot2 frames but {len(xyz_all)} annot3 frames", path)
    valid = np.asarray(mat.get("valid_frame", np.ones(len(uv_all)))).reshape(-1)
    K = None
    if opts["intrinsics"] is not None:
        f, c = (np.asarray(opts["intrinsics"][k], np.float64) for k in ("focal", "princpt"))
        K = np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]])
    elif (path.parent / "camera.calibration").is_file():
        K = read_calibration(path.parent / "camera.calibration").get(0, {}).get("K")

    def records():
        for i in range(len(uv_all)):
            if i % opts["stride"] == 0:
                yield f"{ts}_{i + 1:06d}", i

    def convert(sid: str, i: int) -> list[Sample | str]:
        if i >= len(valid) or not valid[i]:
            return ["invalid test frame (valid_frame = 0)"]
        image = image_path(path.parent / "imageSequence" / f"img_{i + 1:06d}.jpg", sid, opts["check_images"])
        extra = {
            "dataset": "mpi_inf_3dhp",
            "split": "test",
            "sequence": ts,
            "frame": i,
            "universal": bool(opts["universal"]),
        }
        return [_sample(sid, uv_all[i], xyz_all[i], K, image, None, extra)]

    yield from convert_records(records(), convert, path, opts["skip_bad"], report)


def _keep(f: Path, opts: dict[str, Any]) -> bool:
    if f.name != "annot.mat":
        return opts["subjects"] is None and opts["sequences"] is None
    subj, seq = f.parent.parent.name, f.parent.name
    ok = opts["subjects"] is None or subj in {f"S{str(s).upper().lstrip('S')}" for s in opts["subjects"]}
    return ok and (
        opts["sequences"] is None or seq in {f"Seq{str(s).lstrip('Seq')}" for s in opts["sequences"]}
    )


def load_mpi_inf_3dhp(
    path, skip_bad: bool = False, report: SkipReport | None = None, **options
) -> Iterator[Sample]:
    """Stream MPI-INF-3DHP samples (module docstring); fills ``report`` if given."""
    opts = check_options("mpi_inf_3dhp", options, DEFAULTS)
    opts["skip_bad"] = skip_bad
    files = [f for f in find_3dhp_files(path) if _keep(f, opts)]
    if not files:
        raise DatasetFormatError("no sequence matches the subjects / sequences options", path)
    report = report if report is not None else SkipReport()

    def read(f: Path) -> Iterator[Sample]:
        return _read_train(f, opts, report) if f.name == "annot.mat" else _read_test(f, opts, report)

    return per_file(files, read, skip_bad, report)
