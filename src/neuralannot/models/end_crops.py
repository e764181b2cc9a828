"""Close-up crops of the body's end parts (hands, feet, head) for the image branch (``end_crops``).

The hands, feet and head hold most of the annotator's MoCap mesh error (BENCHMARKS.md: 44 %, 18 % and
24 % of its pose-only vertex error), and the body's joints (H36M-17, COCO-17) carry none of their
rotations: only the image can. In a 224-px body crop a hand is 10–20 px and the frozen backbone's
7×7 map sees it as a fraction of one cell. Here each end part gets its own box, placed from the 2D
joints of its limb (a hand beyond the wrist along the forearm, a foot at the ankle, the head between
its joints), cut from the crop and upsampled (``roi_align``) to ``size`` px, so the backbone reads it
at several cells; :class:`EndCropEncoder` projects each part's pooled feature for the head.

Rules name joints, so every body joint set with an elbow/wrist, knee/ankle and a head joint gets the
crops; a part whose joints the set lacks is left out, a part whose joints are missing in a sample
gives zeros and a 0 validity flag.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align

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


def end_crop_rules(joint_set: str) -> tuple[list[str], Tensor, Tensor]:
    """(part names, (P, 2) long joint indices [anchor, tip], (P,) offsets) of ``joint_set``."""
    names = JOINT_SETS.get(joint_set)
    if names is None:
        raise ValueError(f"end_crops: unknown joint set {joint_set!r}")
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
            f"end_crops: joint set {joint_set!r} has none of the limb joints the end-part crops are "
            "placed from (elbow/wrist, knee/ankle, head): set end_crops: false"
        )
    return parts, torch.tensor(idx), torch.tensor(offsets)


def end_crop_boxes(joints_2d: Tensor, idx: Tensor, offsets: Tensor, side: float) -> tuple[Tensor, Tensor]:
    """(B, J, 3) crop-pixel joints ``[u, v, valid]`` → (B, P, 4) boxes ``x1, y1, x2, y2`` of ``side`` px
    and (B, P) validity (both of the part's joints valid)."""
    anchor, tip = joints_2d[:, idx[:, 0]], joints_2d[:, idx[:, 1]]
    centre = tip[..., :2] + offsets.to(joints_2d)[:, None] * (tip[..., :2] - anchor[..., :2])
    valid = (anchor[..., 2] > 0) & (tip[..., 2] > 0)
    centre = torch.where(valid[..., None], centre, torch.zeros_like(centre))
    half = side / 2
    return torch.cat([centre - half, centre + half], -1), valid


def cut_end_crops(images: Tensor, boxes: Tensor, size: int) -> Tensor:
    """(B, 3, H, W) images and (B, P, 4) boxes → (B·P, 3, size, size) crops, bilinear (outside = 0)."""
    b, p = boxes.shape[:2]
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    batch_idx = torch.arange(b, device=boxes.device, dtype=boxes.dtype).repeat_interleave(p)[:, None]
    rois = torch.cat([batch_idx, boxes.reshape(b * p, 4).to(x.dtype)], -1)
    return roi_align(x, rois.to(x.dtype), (size, size), spatial_scale=1.0, sampling_ratio=2, aligned=True)


def end_crop_features(backbone, images: Tensor, joints_2d: Tensor, idx: Tensor, offsets: Tensor,
                      side: float, size: int) -> Tensor:  # fmt: skip
    """Pooled backbone features of every end-part crop: (B, P, F)."""
    boxes, _ = end_crop_boxes(joints_2d, idx, offsets, side)
    crops = cut_end_crops(images, boxes, size)
    return backbone(backbone.normalize(crops)).reshape(*boxes.shape[:2], -1)


class EndCropEncoder(nn.Module):
    """(B, P, F) end-part features + (B, P) validity → (B, P·(dim+1)): one linear projection per part,
    zeros for invalid parts, the validity flag appended."""

    def __init__(self, channels: int, num_parts: int, dim: int = 64):
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(channels, dim) for _ in range(num_parts))
        self.out_dim = num_parts * (dim + 1)

    def forward(self, feats: Tensor, valid: Tensor) -> Tensor:
        v = valid[..., None].to(self.proj[0].weight.dtype)
        out = torch.stack([p(feats[:, i].to(v.dtype)) for i, p in enumerate(self.proj)], 1)
        return torch.cat([out * v, v], -1).flatten(1)
