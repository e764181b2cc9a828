"""Close-up crops of the body's end parts (hands, feet, head) for the image branch (``end_crops``).

The hands, feet and head hold most of the annotator's MoCap mesh error (BENCHMARKS.md: 44 %, 18 % and
24 % of its pose-only vertex error), and the body's joints (H36M-17, COCO-17) carry none of their
rotations: only the image can. In a 224-px body crop a hand is 10–20 px and the frozen backbone's
7×7 map sees it as a fraction of one cell. Here each end part gets its own box, placed from the 2D
joints of its limb (a hand beyond the wrist along the forearm, a foot at the ankle, the head between
its joints), cut from the crop and upsampled to ``size`` px (``end_crop_rotate``: turned so that the
limb points down), so the backbone reads it at several cells; :class:`EndCropEncoder` projects each
part's pooled feature (``end_crop_spatial``: its map) for the head.

Rules name joints, so every body joint set with an elbow/wrist, knee/ankle and a head joint gets the
crops; a part whose joints the set lacks is left out, a part whose joints are missing in a sample
gives zeros and a 0 validity flag.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuralannot.bodies.end_parts import end_part_frames, end_part_rules


def cut_end_crops(images: Tensor, centre: Tensor, direction: Tensor | None, side: float, size: int) -> Tensor:
    """(B, 3, H, W) square images → (B·P, 3, size, size) crops of ``side`` px about the (B, P, 2) pixel
    centres, bilinear (outside the image: 0). With (B, P, 2) unit ``direction``s each crop is turned so
    that its limb points down (the hand hangs below its forearm in every crop), else axis-aligned."""
    b, p = centre.shape[:2]
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    width = x.shape[-1]
    if direction is None:
        direction = torch.tensor([0.0, 1.0]).to(centre).expand(b, p, 2)
    dx, dy = direction.reshape(b * p, 2).unbind(-1)
    rot = torch.stack([torch.stack([dy, dx], -1), torch.stack([-dx, dy], -1)], -2)  # 2nd column: the limb
    # output [-1, 1]² → input normalised coordinates (align_corners=False: u px ↔ 2u / W − 1)
    theta = torch.cat([rot * (side / width), (2 * centre.reshape(b * p, 2, 1) / width - 1)], -1)
    grid = F.affine_grid(theta.to(x.dtype), [b * p, 3, size, size], align_corners=False)
    return F.grid_sample(x.repeat_interleave(p, 0), grid, mode="bilinear", align_corners=False)


def end_crop_features(backbone, images: Tensor, joints_2d: Tensor, idx: Tensor, offsets: Tensor, side: float,
                      size: int, rotate: bool = False, spatial: bool = False) -> Tensor:  # fmt: skip
    """Backbone features of every end-part crop: pooled (B, P, F), or with ``spatial`` the maps
    (B, P, F, h, w); ``rotate``: crops turned along their limbs (:func:`cut_end_crops`)."""
    centre, direction, _ = end_part_frames(joints_2d, idx, offsets)
    crops = backbone.normalize(cut_end_crops(images, centre, direction if rotate else None, side, size))
    feats = backbone.forward_features(crops) if spatial else backbone(crops)
    return feats.reshape(*centre.shape[:2], *feats.shape[1:])


class EndCropEncoder(nn.Module):
    """(B, P, F) pooled end-part features, or (B, P, F, h, w) maps, + (B, P) validity → (B, P·(dim+1)):
    per part a linear projection (maps: first a 1×1 convolution to ``map_channels``, then the flattened
    map), zeros for invalid parts, the validity flag appended."""

    def __init__(self, channels: int, num_parts: int, dim: int = 64, map_size: int | None = None,
                 map_channels: int = 16):  # fmt: skip
        super().__init__()
        if map_size is None:
            self.reduce = None
            self.proj = nn.ModuleList(nn.Linear(channels, dim) for _ in range(num_parts))
        else:
            self.reduce = nn.ModuleList(nn.Conv2d(channels, map_channels, 1) for _ in range(num_parts))
            flat = map_channels * map_size**2
            self.proj = nn.ModuleList(nn.Linear(flat, dim) for _ in range(num_parts))
        self.out_dim = num_parts * (dim + 1)

    def forward(self, feats: Tensor, valid: Tensor) -> Tensor:
        v = valid[..., None].to(self.proj[0].weight.dtype)
        feats = feats.to(v.dtype)
        parts = []
        for i, proj in enumerate(self.proj):
            f = feats[:, i] if self.reduce is None else torch.relu(self.reduce[i](feats[:, i])).flatten(1)
            parts.append(proj(f))
        return torch.cat([torch.stack(parts, 1) * v, v], -1).flatten(1)


class EndCropBranch(nn.Module):
    """The end-part crop branch of an annotator: the rules of its joint set (buffers), the crop settings
    and the :class:`EndCropEncoder`. The backbone is the annotator's, passed in (not a submodule here)."""

    def __init__(self, backbone, joint_set: str, input_size: int, size: int, extent: float, dim: int,
                 rotate: bool = False, spatial: bool = False):  # fmt: skip
        super().__init__()
        if backbone is None or backbone.in_channels != 3:
            raise ValueError("end_crops needs an RGB image backbone (inputs image or image+joints, with the "
                             "joints as coordinates or through their own encoder)")  # fmt: skip
        self.parts, idx, offsets = end_part_rules(joint_set)
        self.register_buffer("idx", idx, persistent=False)
        self.register_buffer("offsets", offsets, persistent=False)
        self.side, self.size, self.rotate, self.spatial = extent * input_size, size, rotate, spatial
        map_size = None
        if spatial:  # the backbone's map side at this crop size
            with torch.no_grad():
                map_size = backbone.eval().forward_features(torch.zeros(1, 3, size, size)).shape[-1]
        self.encoder = EndCropEncoder(backbone.feature_dim, len(self.parts), dim, map_size)
        self.out_dim = self.encoder.out_dim

    def features(self, backbone, images: Tensor, joints_2d: Tensor) -> Tensor:
        """The backbone's features of the crops of ``images`` at ``joints_2d`` (:func:`end_crop_features`)."""
        rule = (self.idx, self.offsets, self.side, self.size)
        return end_crop_features(backbone, images, joints_2d, *rule, rotate=self.rotate, spatial=self.spatial)

    def forward(self, feats: Tensor, joints_2d: Tensor) -> Tensor:
        """Encoded end-part features (B, P·(dim+1)); parts whose joints are missing give zeros."""
        _, _, valid = end_part_frames(joints_2d, self.idx, self.offsets)
        return self.encoder(feats, valid)
