"""Body regions of a mesh's vertices, for per-region mesh errors ("where does the error live").

Each vertex goes to the region of the bone (joint) with its largest skinning weight. Region names:
``head`` (neck, head, face), ``hands`` (wrists, palms, fingers), ``arms``, ``torso``, ``legs`` and
``feet`` (ankles, feet, toes). The split matters for Anny, whose mesh is dense where body joints see
nothing: about a third of its 13,718 vertices are on the head, a fifth on the fingers and a sixth on the
feet, so its MPVPE weighs end-bone rotations (wrist, ankle, head) far more than SMPL's does.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

REGIONS = ("head", "hands", "arms", "torso", "legs", "feet")
#: bone / joint name patterns (lower case; Anny rig and SMPL-family names); the first match wins, so
#: arms come before head ("forearm" contains "ear")
_RULES = (
    ("hands", r"wrist|hand|finger|thumb|index|middle|ring|pinky|metacarpal|carpal"),
    ("feet", r"foot|toe|ankle"),
    ("arms", r"arm|elbow|shoulder|clavicle|collar"),
    ("head", r"head|neck|jaw|eye|tongue|teeth|tooth|oris|levator|risorius|temporalis|nose|brow|ear|lip"),
    ("legs", r"leg|knee|hip|thigh"),
)


def region_of(name: str) -> str:
    """The region of a bone or joint name (anything unmatched is ``torso``)."""
    low = name.lower()
    return next((region for region, pattern in _RULES if re.search(pattern, low)), "torso")


def _dominant_bones(model) -> tuple[Tensor, list[str]] | None:
    """Per-vertex index of the most-weighted bone and the bone names, or None for unknown models."""
    anny = getattr(model, "anny", None)
    if anny is not None:
        weights, bones = anny.vertex_bone_weights, anny.vertex_bone_indices
        return bones.gather(1, weights.argmax(1, keepdim=True))[:, 0], list(model.bone_labels)
    layer = getattr(model, "smplx_layer", None)
    if layer is not None and hasattr(layer, "lbs_weights"):
        names = list(model.joint_names)
        weights = layer.lbs_weights[:, : len(names)]
        return weights.argmax(1), names
    return None


def vertex_regions(model) -> dict[str, Tensor]:
    """``{region: vertex ids}`` of a body model's mesh (regions without vertices left out; empty
    for models whose skinning is unknown)."""
    found = _dominant_bones(model)
    if found is None:
        return {}
    dominant, names = found
    label = torch.tensor([REGIONS.index(region_of(n)) for n in names])[dominant.cpu()]
    out = {r: torch.nonzero(label == i)[:, 0] for i, r in enumerate(REGIONS)}
    return {r: ids for r, ids in out.items() if len(ids)}
