"""Human3.6M in the JSON release of Moon et al. (I2L-MeshNet / Pose2Pose / Hand4Whole).

Layout (``path`` = the root, its ``annotations/`` folder, or one ``*_data.json``)::

    <root>/annotations/Human36M_subject{S}_data.json        COCO-like: images + annotations
                       Human36M_subject{S}_camera.json      {cam_idx: {R, t (mm), f, c}}
                       Human36M_subject{S}_joint_3d.json    {action: {subaction: {frame: 17x3 world mm}}}
                       Human36M_subject{S}_SMPL_NeuralAnnot.json   optional, same keys: {pose, shape, trans}
                       (or Human36M_subject{S}_smpl_param.json)
    <root>/images/<image file_name>                         e.g. s_01_act_02_subact_01_ca_01/..._000001.jpg

One ``body`` sample (``h36m17``) per annotation, id = the image file stem. Conventions as in the
release's loader: ``X_cam = R @ X_world + t`` (mm) then /1000; ``joints_2d`` = the pinhole
projection of the camera-frame joints with ``f``, ``c`` (the release has no 2D labels, so the lens
distortion of the original 2D labels is absent); confidence/validity = ``keypoints_vis`` (all 1
if absent); bbox = the annotation bbox as is. SMPL fits → ``gt`` with the root rotation moved to
the camera frame (``R @ root``) and ``transl`` None (moving the translation needs the model's pelvis);
the world translation is kept in ``gt["world_trans"]``.

Options: ``subjects`` (e.g. ``[1, 5]`` or ``["S1"]``; default: all found), ``stride`` (keep frames
with ``frame_idx % stride == 0``; the usual protocol is 5 for training, 64 for testing),
``cameras`` (cam_idx list), ``smpl`` (read the SMPL fits, default True), ``image_dir``,
``check_images`` (None / ``"exists"`` / ``"verify"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neuralannot.data.adapters.common import (
    as_matrix,
    check_options,
    convert_records,
    image_path,
    iter_image_annotations,
    iter_json,
    per_file,
    project,
    read_json,
    rotate_root,
    world_to_camera,
)
from neuralannot.data.adapters.folder import DatasetFormatError, SkipReport
from neuralannot.data.sample import Sample, SampleError

__all__ = ["load_h36m", "find_h36m_files", "DATA_FILE_RE"]

DATA_FILE_RE = re.compile(r"^Human36M_subject(\d+)_data\.json$")
SMPL_FILES = ("Human36M_subject{}_SMPL_NeuralAnnot.json", "Human36M_subject{}_smpl_param.json")
DEFAULTS = dict(subjects=None, stride=1, cameras=None, smpl=True, image_dir=None, check_images="exists")
NUM_JOINTS = 17


def find_h36m_files(path: str | Path) -> list[tuple[int, Path]]:
    """(subject, data file) pairs under ``path`` (a data file, ``annotations/`` or the root)."""
    p = Path(path)
    if p.is_file():
        m = DATA_FILE_RE.match(p.name)
        if not m:
            raise DatasetFormatError("not a Human36M_subject{S}_data.json file", p)
        return [(int(m.group(1)), p)]
    for d in (p / "annotations", p):
        found = sorted(
            (int(m.group(1)), f)
            for f in (d.glob("Human36M_subject*_data.json") if d.is_dir() else [])
            if (m := DATA_FILE_RE.match(f.name))
        )
        if found:
            return found
    raise DatasetFormatError("no Human36M_subject{S}_data.json found (in it or in annotations/)", p)


def _subject_number(s: Any) -> int:
    return int(str(s).upper().lstrip("S"))


def _frames_by_key(path: Path, stride: int, what: str) -> dict[tuple[str, str, int], Any]:
    """{(action, subaction, frame): value} of an action/subaction/frame-keyed file, one action at a time."""
    out: dict[tuple[str, str, int], Any] = {}
    for action, subs in iter_json(path):
        if not isinstance(subs, dict) or not all(isinstance(v, dict) for v in subs.values()):
            raise DatasetFormatError(f"{what}: action {action!r} must map subactions to frame objects", path)
        for sub, frames in subs.items():
            for frame, value in frames.items():
                try:
                    f = int(frame)
                except ValueError:
                    raise DatasetFormatError(f"{what}: frame key {frame!r} is not an integer", path) from None
                if f % stride == 0:
                    out[(str(action), str(sub), f)] = value
    return out


def _image_dir(data_file: Path, image_dir: str | Path | None) -> Path:
    if image_dir is not None:
        return Path(image_dir)
    annot = data_file.parent.resolve()
    return (annot.parent if annot.name == "annotations" else annot) / "images"


def _read_subject(
    subject: int, data_file: Path, opts: dict[str, Any], report: SkipReport
) -> Iterator[Sample]:
    stride, cams = opts["stride"], opts["cameras"]
    cameras = read_json(data_file.with_name(f"Human36M_subject{subject}_camera.json"))
    joints_file = data_file.with_name(f"Human36M_subject{subject}_joint_3d.json")
    joints = _frames_by_key(joints_file, stride, "joint_3d")
    smpl, smpl_file = {}, None
    if opts["smpl"]:
        smpl_file = next(
            (f for n in SMPL_FILES if (f := data_file.with_name(n.format(subject))).is_file()), None
        )
        if smpl_file is not None:
            smpl = _frames_by_key(smpl_file, stride, "SMPL")
    images = _image_dir(data_file, opts["image_dir"])
    cam_set = None if cams is None else {str(c) for c in cams}

    def keep(img: dict) -> bool:
        try:
            return int(img["frame_idx"]) % stride == 0 and (cam_set is None or str(img["cam_idx"]) in cam_set)
        except (KeyError, TypeError, ValueError):
            return True  # reported as a bad sample by convert()

    def records():
        for img, ann, _ in iter_image_annotations(data_file, keep):
            name = (img or {}).get("file_name")
            sid = Path(str(name)).stem if name else f"ann{ann.get('id') if isinstance(ann, dict) else '?'}"
            yield sid, (img, ann)

    def convert(sid: str, raw: tuple[dict | None, Any]) -> list[Sample]:
        img, ann = raw
        if img is None:
            raise SampleError(
                f"annotation's image_id {ann.get('image_id')!r} is not in 'images'", sid, kind="missing_key"
            )
        key = (str(img["action_idx"]), str(img["subaction_idx"]), int(img["frame_idx"]))
        if key not in joints:
            raise SampleError(
                f"no 3D joints for action/subaction/frame {'/'.join(map(str, key))} in {joints_file.name}",
                sid,
                kind="missing_key",
            )
        cam = cameras.get(str(img["cam_idx"]))
        if not isinstance(cam, dict) or not {"R", "t", "f", "c"} <= set(cam):
            raise SampleError(
                f"camera {img['cam_idx']!r} missing or incomplete (R, t, f, c) in "
                f"Human36M_subject{subject}_camera.json",
                sid,
                kind="intrinsics",
            )
        R, t = as_matrix(cam["R"], (3, 3), "camera R", sid), as_matrix(cam["t"], (3,), "camera t", sid)
        f, c = as_matrix(cam["f"], (2,), "camera f", sid), as_matrix(cam["c"], (2,), "camera c", sid)
        world = as_matrix(joints[key], (NUM_JOINTS, 3), "joint_3d", sid)
        xyz = world_to_camera(world, R, t) / 1000.0
        vis = ann.get("keypoints_vis")
        valid = np.ones(NUM_JOINTS) if vis is None else as_matrix(vis, (NUM_JOINTS,), "keypoints_vis", sid)
        valid = (valid > 0).astype(np.float32)
        uv = project(xyz, f, c)
        extra = {
            "dataset": "h36m",
            "subject": f"S{subject}",
            "action_idx": img["action_idx"],
            "action_name": img.get("action_name"),
            "subaction_idx": img["subaction_idx"],
            "cam_idx": img["cam_idx"],
            "frame_idx": img["frame_idx"],
            "image_id": img["id"],
            "ann_id": ann.get("id"),
            "file_name": img["file_name"],
            "camera": {"R": R, "t_mm": t, "formula": "X_cam = R @ X_world + t (mm)"},
        }
        s = Sample(
            id=sid,
            image=image_path(images / str(img["file_name"]), sid, opts["check_images"]),
            bbox=ann["bbox"],
            part="body",
            joint_set="h36m17",
            joints_2d=np.concatenate([uv, valid[:, None]], 1),
            joints_3d=np.concatenate([xyz, valid[:, None]], 1),
            intrinsics={"focal": f, "princpt": c},
            image_size=(img["width"], img["height"]) if "width" in img and "height" in img else None,
            gt=_smpl_gt(smpl.get(key), R, sid, smpl_file) if smpl else None,
            extra=extra,
        )
        return [s.validate()]

    yield from convert_records(records(), convert, data_file, opts["skip_bad"], report)


def _smpl_gt(param: Any, R: np.ndarray, sid: str, path: Path | None) -> dict[str, Any] | None:
    if param is None:
        return None
    if not isinstance(param, dict) or "pose" not in param or "shape" not in param:
        raise SampleError(
            f"SMPL entry in {path.name if path else 'SMPL file'} needs 'pose' and 'shape'",
            sid,
            kind="malformed",
        )
    pose = as_matrix(param["pose"], (72,), "SMPL pose", sid)
    return {
        "model": "smpl",
        "params": {
            "pose": rotate_root(pose, R, sid),
            "betas": as_matrix(param["shape"], (10,), "SMPL shape", sid),
            "transl": None,
        },
        "description": "NeuralAnnot SMPL fit from the Human3.6M JSON release",
        "global_orient_frame": "camera (world root rotation pre-multiplied by the camera R)",
        "world_trans": param.get("trans"),
    }


def load_h36m(path, skip_bad: bool = False, report: SkipReport | None = None, **options) -> Iterator[Sample]:
    """Stream Human3.6M samples (module docstring); fills ``report`` if given."""
    opts = check_options("h36m", options, DEFAULTS)
    opts["skip_bad"] = skip_bad
    files = find_h36m_files(path)
    if opts["subjects"] is not None:
        wanted = {_subject_number(s) for s in opts["subjects"]}
        files = [(s, f) for s, f in files if s in wanted]
        if not files:
            raise DatasetFormatError(f"none of the subjects {sorted(wanted)} found", path)
    report = report if report is not None else SkipReport()
    subject_of = {f: s for s, f in files}
    return per_file(
        [f for _, f in files], lambda f: _read_subject(subject_of[f], f, opts, report), skip_bad, report
    )
