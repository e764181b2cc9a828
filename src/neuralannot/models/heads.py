"""Regression heads of the neural annotator (paper Fig. 1).

- :class:`JointEncoder`: GT 3D joints (root-relative, masked) → 2 FC → 512-d (MoCap mode).
- :class:`JointFeatureSampler`: the backbone's spatial map read at each GT 2D joint (pixel-aligned
  evidence: which side of the head faces the camera, a limb's girth and twist), ``image_features: joints``.
- :class:`ParamHead`: [image feature ‖ joint feature] → FC(s) → one flat vector laid out by a
  :class:`HeadLayout` (6D rotations, pose-embedding latent, shape, expression, camera).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class JointEncoder(nn.Module):
    """(B, J, coords + 1) joints ``[x, y, (z,) valid]`` → (B, dim); invalid joints are zeroed, validity is
    an input (3D MoCap joints, or wild mode's crop-normalised 2D joints with ``coords=2``).

    With ``distances``, the distances between every pair of joints (0 where either is invalid) are
    inputs too: bone lengths are what the shape must reproduce, and an MLP on raw coordinates can only
    approximate the norm of a difference.
    """

    def __init__(self, num_joints: int, dim: int = 512, distances: bool = False, coords: int = 3):
        super().__init__()
        self.distances, self.coords = distances, coords
        n_in = num_joints * (coords + 1)
        if distances:
            self.register_buffer("pairs", torch.triu_indices(num_joints, num_joints, 1), persistent=False)
            n_in += self.pairs.shape[1]
        self.net = nn.Sequential(nn.Linear(n_in, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())

    def inputs(self, joints: Tensor) -> Tensor:
        """The network's input vector (B, J·(coords + 1) [+ J(J−1)/2 distances])."""
        c = self.coords
        valid = joints[..., c : c + 1]
        x = [torch.cat([joints[..., :c] * valid, valid], -1).flatten(1)]
        if self.distances:
            a, b = self.pairs
            d = (joints[:, a, :c] - joints[:, b, :c]).norm(dim=-1)
            x.append(d * valid[:, a, 0] * valid[:, b, 0])
        return torch.cat(x, -1)

    def forward(self, joints: Tensor) -> Tensor:
        return self.net(self.inputs(joints))


class HeatmapEncoder(nn.Module):
    """(B, J, h, w) joint heatmaps → (B, dim): a small strided CNN + global average pooling."""

    def __init__(self, num_joints: int, dim: int = 256):
        super().__init__()
        layers, c = [], num_joints
        for out in (64, 128, 256, dim):
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dim = dim

    def forward(self, heatmaps: Tensor) -> Tensor:
        return self.net(heatmaps)


class JointFeatureSampler(nn.Module):
    """(B, C, h, w) spatial features + (B, J, 3) crop-pixel joints ``[u, v, valid]`` → (B, J·(dim+1)).

    Each joint reads the map bilinearly at its position (the map covers the ``input_size`` crop;
    ``align_corners=False``), a shared linear layer projects the C channels to ``dim``, and joints that
    are invalid or outside the crop give zeros; their validity flag is part of the output.
    """

    def __init__(self, channels: int, num_joints: int, dim: int = 32):
        super().__init__()
        self.proj = nn.Linear(channels, dim)
        self.out_dim = num_joints * (dim + 1)

    def forward(self, fmap: Tensor, joints_2d: Tensor, input_size: int) -> Tensor:
        uv = joints_2d[..., :2]
        valid = (joints_2d[..., 2] > 0) & (uv >= 0).all(-1) & (uv <= input_size).all(-1)
        grid = (uv / input_size * 2 - 1).clamp(-1, 1).to(fmap.dtype)[:, :, None]  # (B, J, 1, 2)
        picked = F.grid_sample(fmap, grid, mode="bilinear", align_corners=False)  # (B, C, J, 1)
        v = valid[..., None].to(fmap.dtype)
        return torch.cat([self.proj(picked[..., 0].transpose(1, 2)) * v, v], -1).flatten(1)


@dataclass(frozen=True)
class HeadEntry:
    """One slice of the head output: ``kind`` in rot6d | latent | bounded | folded | linear | camera."""

    name: str
    kind: str
    size: int
    shape: tuple[int, ...]


class HeadLayout:
    """Ordered slices of the flat head output, with their initial biases."""

    def __init__(self, entries: list[HeadEntry]):
        self.entries = entries
        self.slices: dict[str, slice] = {}
        start = 0
        for e in entries:
            self.slices[e.name] = slice(start, start + e.size)
            start += e.size
        self.size = start

    def split(self, raw: Tensor) -> dict[str, Tensor]:
        return {e.name: raw[:, self.slices[e.name]].reshape(raw.shape[0], *e.shape) for e in self.entries}


class ParamHead(nn.Module):
    """Image feature (``feat_dim``, 0 = none) and joint feature (``joint_dim``, 0 = none) → flat output.

    ``hidden`` adds ReLU layers before the output FC (``[]`` = the paper's single FC). The output
    layer starts with small weights and ``bias`` so the initial prediction is the neutral model.
    """

    def __init__(
        self,
        feat_dim: int,
        joint_dim: int,
        layout: HeadLayout,
        bias: Tensor,
        hidden: list[int] | tuple[int, ...] = (),
    ):
        super().__init__()
        layers: list[nn.Module] = []
        d = feat_dim + joint_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(d, layout.size)
        nn.init.xavier_uniform_(self.out.weight, gain=0.01)
        with torch.no_grad():
            self.out.bias.copy_(bias)
        self.layout = layout

    def forward(self, feat: Tensor | None, joint_feat: Tensor | None) -> dict[str, Tensor]:
        x = torch.cat([t for t in (feat, joint_feat) if t is not None], dim=-1)  # at least one is given
        return self.layout.split(self.out(self.mlp(x)))
