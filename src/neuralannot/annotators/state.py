"""Keys of resumable state: what a checkpoint or a folder of partial predictions was computed from.

Resumed state is reused only under the same key, so a run never returns results computed from other
inputs:

- :func:`samples_digest`: the samples' content (ids, part, joint set, joints, boxes, intrinsics,
  declared image size and, when the network reads images, each image's path, byte size and mtime)
  plus any training targets. Two sets with the same ids but other joints or images differ.
- :func:`weights_digest`: the network's weights (its ``state_dict``): a checkpoint's identity.
- :func:`run_dir`: ``work_dir/<tag><config digest>-<data digest>``, the training run of a config on
  a set (its ``checkpoint.pt`` and partial predictions).
- :func:`prediction_key`: data digest + weights digest, the folder name of partial predictions
  (``<run>/parts/<key>/rank<r>``): predicting with another checkpoint never reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["prediction_key", "run_dir", "samples_digest", "weights_digest"]


def _array_bytes(a) -> bytes:
    return b"-" if a is None else np.ascontiguousarray(a, dtype=np.float64).tobytes()


def samples_digest(
    samples: Sequence, images: bool = True, targets: Mapping[str, torch.Tensor] | None = None
) -> str:
    """Short hash (16 hex) of the content of ``samples`` in order (module docstring)."""
    h = hashlib.sha256()
    for s in samples:
        head = [s.id, s.part, s.joint_set, s.image_size, s.image if images else None]
        h.update(json.dumps(head, default=str).encode())
        for a in (s.bbox, s.joints_2d, s.joints_3d):
            h.update(_array_bytes(a))
        for k in ("focal", "princpt"):
            h.update(_array_bytes(None if s.intrinsics is None else s.intrinsics[k]))
        if images and s.image:
            try:
                st = os.stat(s.image)
                h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            except OSError:
                h.update(b"missing")
    for name in sorted(targets or {}):
        h.update(name.encode())
        h.update(targets[name].detach().cpu().double().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def weights_digest(model: torch.nn.Module) -> str:
    """Short hash (16 hex) of a network's ``state_dict`` (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for name, v in sorted(model.state_dict().items()):
        v = v.detach().cpu().contiguous()
        h.update(f"{name}:{v.dtype}:{tuple(v.shape)}".encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def short_digest(text: str) -> str:
    """8 hex of ``text``'s SHA-256 (a tag in a run folder's name)."""
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def run_dir(
    work_dir: str | Path, cfg, samples: Sequence, tag: str = "", targets: Mapping | None = None
) -> Path:
    """The training run of ``cfg`` on ``samples`` (and ``targets``): resumed only for the same data. With
    targets, a weight on them other than 1 (``w_params_resolved``) names the run too (``wp<w>-``)."""
    data = samples_digest(samples, cfg.uses_image, targets)
    if targets is not None and cfg.w_params_resolved != 1.0:
        tag = f"{tag}wp{cfg.w_params_resolved:g}-"
    return Path(work_dir) / f"{tag}{cfg.digest()}-{data[:8]}"


def prediction_key(model, samples: Sequence) -> str:
    """Partial predictions' key: the samples' content, the weights predicting them and how records are
    written (``output_camera``, the shape and root solves; version 2: the wild records' camera moved to
    the sample's; 3: moved about the keypoints' centroid and refitted there)."""
    cfg = model.cfg
    text = f"{samples_digest(samples, cfg.uses_image)}:{weights_digest(model)}"
    text += f":v3:{cfg.output_camera}"
    if cfg.shape_steps:
        text += f":shape-v2:{cfg.shape_steps}:{cfg.shape_lambda}"  # v2: steps kept only where better
        groups = getattr(model._aux.get("shape"), "groups", [])
        if len(groups) > 1:  # a face's expression solved with its shape
            text += ":" + "+".join(groups)
        if model.rigid_shape_solve:  # the solve turns the global rotation too
            text += ":rigid"
    if cfg.root_steps:
        text += f":root:{cfg.root_steps}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]
