"""Where a body's end parts (hands, feet, head) lie in an image, from the 2D joints of their limbs.

The body joint sets (H36M-17, COCO-17, MPI-INF-3DHP) carry no rotation of the wrists, ankles or head;
the image and the person mask can. The end-part crops of the annotator's image branch
(``models/end_crops.py``) and the end-weighted silhouette term (``data/silhouette.py``) both place the
parts here: a hand beyond the wrist along the forearm, a foot at the ankle, the head between its joints.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuralannot.bodies.joint_names import JOINT_SETS

#: Part → alternative rules (anchor joint, tip joint, offset): the box centre is
#: ``tip + offset · (tip − anchor)``; the first rule whose joints the set has is used.
END_PARTS: dict[str, list[tuple[str, str, float]]] = {
    "left_hand": [("left_elbow", "left_wrist", 0.35)],
    "right_hand": [("right_elbow", "right_wrist", 0.35)],
    "left_foot": [("left_knee", "left_ankle", 0.1), ("left_knee", "left_foot", 0.1)],
    "right_foot": [("right_knee", "right_ankle", 0.1), ("right_knee", "right_foot", 0.1)],
    "head": [("neck_base", "head", -0.5), ("head", "head_top", -0.5), ("nose", "nose", 0.0)],
}


def end_part_rules(joint_set: str) -> tuple[list[str], Tensor, Tensor]:
    """(part names, (P, 2) long joint indices [anchor, tip], (P,) offsets) of ``joint_set``."""
    names = JOINT_SETS.get(joint_set)
    if names is None:
        raise ValueError(f"end parts: unknown joint set {joint_set!r}")
    parts, idx, offsets = [], [], []
    for part, rules in END_PARTS.items():
        for anchor, tip, offset in rules:
            if anchor in names and tip in names:
                parts.append(part)
                idx.append([names.index(anchor), names.index(tip)])
                offsets.append(offset)
                break
    if not parts:
        raise ValueError(
            f"end parts: joint set {joint_set!r} has none of the limb joints the end parts are placed from "
            "(elbow/wrist, knee/ankle, head): set end_crops: false and silhouette_end_weight: 1"
        )
    return parts, torch.tensor(idx), torch.tensor(offsets)


def end_part_frames(joints_2d: Tensor, idx: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(B, J, 3) crop-pixel joints ``[u, v, valid]`` → (B, P, 2) box centres, (B, P, 2) unit limb
    directions anchor → tip (``(0, 1)``, image down, where the two joints coincide) and (B, P) validity
    (both of the part's joints valid)."""
    anchor, tip = joints_2d[:, idx[:, 0]], joints_2d[:, idx[:, 1]]
    limb = tip[..., :2] - anchor[..., :2]
    centre = tip[..., :2] + offsets.to(joints_2d)[:, None] * limb
    valid = (anchor[..., 2] > 0) & (tip[..., 2] > 0)
    centre = torch.where(valid[..., None], centre, torch.zeros_like(centre))
    length = limb.norm(dim=-1, keepdim=True)
    down = torch.tensor([0.0, 1.0]).to(limb)
    direction = torch.where(valid[..., None] & (length > 1e-3), limb / length.clamp_min(1e-3), down)
    return centre, direction, valid
