"""COCO 2017 person keypoints and COCO-WholeBody annotation files."""

from __future__ import annotations

from pathlib import Path

from .common import link_image, load_real, write_json

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

