"""COCO keypoints (``person_keypoints_*.json``) and COCO-WholeBody (``coco_wholebody_*.json``).

Layout (``path`` = an annotation file, the ``annotations/`` folder or the COCO root)::

    <root>/annotations/person_keypoints_val2017.json      COCO: keypoints (17 x [x, y, v])
    <root>/annotations/coco_wholebody_val_v1.0.json       + foot_kpts (6), face_kpts (68),
                                                           lefthand_kpts / righthand_kpts (21 each),
                                                           face/lefthand/righthand boxes and *_valid flags
    <root>/val2017/000000000785.jpg                       (or <root>/images/val2017/...)

One sample per person annotation, id = the annotation id (as the NeuralAnnot COCO release keys
its fits). COCO gives ``body`` samples (``coco17``); COCO-WholeBody gives ``wholebody`` samples
(``coco_wholebody133`` = body 17 + feet 6 + face 68 + left hand 21 + right hand 21). Confidence =
``v > 0`` (the original flags stay in ``extra.orig_visibility``); bbox = the annotation bbox.
Crowd annotations and annotations without a labeled keypoint are dropped (counted in
``SkipReport.dropped``). The image folder is the split named by the file (``val2017``,
``train2017``) unless ``image_dir`` is given.

Options: ``image_dir``, ``check_images`` (None / ``"exists"`` / ``"verify"``).
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
    per_file,
)
from neuralannot.data.adapters.folder import DatasetFormatError, SkipReport
from neuralannot.data.sample import Sample, SampleError

__all__ = ["load_coco", "find_coco_files", "FILE_PATTERNS"]

#: File-name pattern of each format; group 1 = the split word.
FILE_PATTERNS = {
    "coco": re.compile(r"^person_keypoints_(\w+?)\.json$"),
    "coco_wholebody": re.compile(r"^coco_wholebody_(train|val|test)[\w.]*\.json$"),
}
#: COCO-WholeBody parts after the 17 body keypoints: (annotation key, joints, valid-flag key, box key).
WHOLEBODY_PARTS = [
    ("foot_kpts", 6, "foot_valid", None),
    ("face_kpts", 68, "face_valid", "face_box"),
    ("lefthand_kpts", 21, "lefthand_valid", "lefthand_box"),
    ("righthand_kpts", 21, "righthand_valid", "righthand_box"),
]
DEFAULTS = dict(image_dir=None, check_images="exists")


def find_coco_files(path: str | Path, fmt: str) -> list[Path]:
    """Annotation files of ``fmt`` (``coco`` / ``coco_wholebody``): the file itself or those in a folder."""
    p, pattern = Path(path), FILE_PATTERNS[fmt]
    if p.is_file():
        return [p]
    for d in (p / "annotations", p):
        found = sorted(f for f in (d.iterdir() if d.is_dir() else []) if pattern.match(f.name))
        if found:
            return found
    raise DatasetFormatError(
        f"no {fmt} annotation files ({pattern.pattern}) found (in it or in annotations/)", p
    )


def _image_dir(ann_file: Path, fmt: str, image_dir: str | Path | None) -> Path:
    if image_dir is not None:
        return Path(image_dir)
    m = FILE_PATTERNS[fmt].match(ann_file.name)
    split = m.group(1) if m else "val"
    if not split[-1].isdigit():
        split += "2017"  # coco_wholebody_val_v1.0.json → val2017
    annot = ann_file.parent.resolve()
    root = annot.parent if annot.name == "annotations" else annot
    candidates = [root / split, root / "images" / split]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def _keypoints(ann: dict, key: str, n: int, sid: str) -> np.ndarray:
    return as_matrix(ann[key], (3 * n,), key, sid).reshape(n, 3)


def _license(meta: dict, license_id: Any) -> dict | None:
    for lic in meta.get("licenses") or []:
        if isinstance(lic, dict) and lic.get("id") == license_id:
            return {"name": lic.get("name"), "url": lic.get("url")}
    return None


def _read_file(ann_file: Path, fmt: str, opts: dict[str, Any], report: SkipReport) -> Iterator[Sample]:
    images = _image_dir(ann_file, fmt, opts["image_dir"])
    wholebody = fmt == "coco_wholebody"

    def records():
        for img, ann, meta in iter_image_annotations(ann_file):
            sid = str(ann.get("id")) if isinstance(ann, dict) else "?"
            yield sid, (img, ann, meta)

    def convert(sid: str, raw: tuple) -> list[Sample | str]:
        img, ann, meta = raw
        if not isinstance(ann, dict):
            raise SampleError(
                f"annotation is a {type(ann).__name__}, expected an object", sid, kind="malformed"
            )
        if img is None:
            raise SampleError(f"image_id {ann.get('image_id')!r} is not in 'images'", sid, kind="missing_key")
        if ann.get("iscrowd"):
            return ["crowd annotation"]
        kp = _keypoints(ann, "keypoints", 17, sid)
        extra: dict[str, Any] = {}
        if wholebody:
            parts = [kp] + [_keypoints(ann, key, n, sid) for key, n, _, _ in WHOLEBODY_PARTS]
            kp = np.concatenate(parts)
            for *_, box_key in WHOLEBODY_PARTS:
                if box_key is not None and box_key in ann:
                    extra[box_key] = ann[box_key]
            for _, _, valid_key, _ in WHOLEBODY_PARTS:
                if valid_key in ann:
                    extra[valid_key] = bool(ann[valid_key])
        if not (kp[:, 2] > 0).any():
            return ["no labeled keypoint"]
        extra.update(
            dataset=fmt,
            coco_image_id=img["id"],
            coco_ann_id=ann["id"],
            orig_visibility=kp[:, 2].tolist(),
            num_keypoints_body=ann.get("num_keypoints"),
            image_license=_license(meta, img.get("license")),
            flickr_url=img.get("flickr_url"),
            coco_url=img.get("coco_url"),
            file_name=img["file_name"],
        )
        s = Sample(
            id=sid,
            image=image_path(images / str(img["file_name"]), sid, opts["check_images"]),
            bbox=ann["bbox"],
            part="wholebody" if wholebody else "body",
            joint_set="coco_wholebody133" if wholebody else "coco17",
            joints_2d=np.concatenate([kp[:, :2], (kp[:, 2:] > 0).astype(np.float32)], 1),
            image_size=(img["width"], img["height"]) if "width" in img and "height" in img else None,
            extra=extra,
        )
        return [s.validate()]

    yield from convert_records(records(), convert, ann_file, opts["skip_bad"], report)


def load_coco(
    path, fmt: str = "coco", skip_bad: bool = False, report: SkipReport | None = None, **options
) -> Iterator[Sample]:
    """Stream COCO (``fmt="coco"``) or COCO-WholeBody (``"coco_wholebody"``) samples."""
    if fmt not in FILE_PATTERNS:
        raise ValueError(f"fmt must be one of {sorted(FILE_PATTERNS)}, got {fmt!r}")
    opts = check_options(fmt, options, DEFAULTS)
    opts["skip_bad"] = skip_bad
    report = report if report is not None else SkipReport()
    files = find_coco_files(path, fmt)
    return per_file(files, lambda f: _read_file(f, fmt, opts, report), skip_bad, report)
