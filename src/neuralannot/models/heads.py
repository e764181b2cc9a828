"""Regression heads of the neural annotator (paper Fig. 1).

- :class:`JointEncoder`: GT 3D joints (root-relative, masked) → 2 FC → 512-d (MoCap mode).
- :class:`ParamHead`: [image feature ‖ joint feature] → FC(s) → one flat vector laid out by a
  :class:`HeadLayout` (6D rotations, pose-embedding latent, shape, expression, camera).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


class JointEncoder(nn.Module):
    """(B, J, 4) joints ``[x, y, z, valid]`` → (B, dim); invalid joints are zeroed, validity is an input.

    With ``distances``, the distances between every pair of joints (0 where either is invalid) are
    inputs too: bone lengths are what the shape must reproduce, and an MLP on raw coordinates can only
    approximate the norm of a difference.
    """

    def __init__(self, num_joints: int, dim: int = 512, distances: bool = False):
        super().__init__()
        self.distances = distances
        n_in = num_joints * 4
        if distances:
            self.register_buffer("pairs", torch.triu_indices(num_joints, num_joints, 1), persistent=False)
            n_in += self.pairs.shape[1]
        self.net = nn.Sequential(nn.Linear(n_in, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())

    def inputs(self, joints: Tensor) -> Tensor:
        """The network's input vector (B, J·4 [+ J(J−1)/2 distances])."""
        valid = joints[..., 3:4]
        x = [torch.cat([joints[..., :3] * valid, valid], -1).flatten(1)]
        if self.distances:
            a, b = self.pairs
            d = (joints[:, a, :3] - joints[:, b, :3]).norm(dim=-1)
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


@dataclass(frozen=True)
class HeadEntry:
    """One slice of the head output: ``kind`` in rot6d | latent | bounded | linear | camera."""

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
