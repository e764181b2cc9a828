"""Head top, fingertips and the asset content for every Anny topology (:func:`build_all`)."""

from __future__ import annotations

import warnings

import numpy as np

from .face68 import face68
from .mesh import Rest


def head_top(rest: Rest) -> int:
    """The highest skin vertex of the rest body (on the midline: self-mirrored)."""
    V = rest.V
    skin = np.where(rest.skin)[0]
    top = int(skin[np.argmax(V[skin, 1])])
    mid = skin[rest.mirror[skin] == skin]
    top_mid = int(mid[np.argmax(V[mid, 1])])
    assert V[top, 1] - V[top_mid, 1] < 1e-3, (top, top_mid)
    return top_mid


def fingertips(rest: Rest, s: str) -> list[int]:
    """Per finger (thumb first): the vertex skinned mostly to ``finger{f}-3.{s}`` that lies farthest
    from that bone's head along the bone (direction = head of finger-2 → head of finger-3)."""
    m = rest.body.anny
    idx = m.vertex_bone_indices.numpy()
    w = m.vertex_bone_weights.double().numpy()
    dominant = idx[np.arange(len(idx)), np.argmax(w, axis=1)]
    tips = []
    for f in range(1, 6):
        b3 = rest.bone_labels.index(f"finger{f}-3.{s}")
        h3 = rest.bone(f"finger{f}-3.{s}")
        d = h3 - rest.bone(f"finger{f}-2.{s}")
        d /= np.linalg.norm(d)
        cand = np.where((dominant == b3) & rest.skin)[0]
        tips.append(int(cand[np.argmax((rest.V[cand] - h3) @ d)]))
    return tips


def build_all(rest: Rest, debug: dict | None = None) -> dict:
    face = face68(rest, debug)
    top = head_top(rest)
    tips_r = fingertips(rest, "R")
    tips_l = fingertips(rest, "L")
    mirrored = [int(rest.mirror[v]) for v in tips_r]
    if mirrored != tips_l:
        err = np.linalg.norm(rest.V[mirrored] - rest.V[tips_l], axis=1).max()
        print(f"note: left fingertips differ from the mirrored right ones (max {err * 1e3:.2f} mm); "
              "using the mirrored ones")
    tips_l = mirrored
    b = rest.base_ids
    base = {
        "face68": [int(b[v]) for v in face],
        "head_top": int(b[top]),
        "fingertips": {"left": [int(b[v]) for v in tips_l], "right": [int(b[v]) for v in tips_r]},
    }
    topologies = {"anny": {"vertex_count": len(rest.V), "face68": face, "head_top": top,
                           "fingertips": {"left": tips_l, "right": tips_r}}}
    from neuralannot.bodies.anny import build_anny

    parts = [("head", dict(rig="anny-head", topology="head"), ["face68", "head_top"]),
             ("hand.R", dict(rig="anny-hand.R", topology="hand.R"), ["fingertips"]),
             ("hand.L", dict(rig="anny-hand.L", topology="hand.L"), ["fingertips"])]
    for key, kwargs, keys in parts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = build_anny(**kwargs)
        inv = {int(x): i for i, x in enumerate(m.base_mesh_vertex_indices.tolist())}
        entry: dict = {"vertex_count": int(m.template_vertices.shape[0])}
        for k in keys:
            if k == "fingertips":
                side = "right" if key.endswith("R") else "left"
                entry[k] = [inv[x] for x in base[k][side]]
            elif k == "head_top":
                entry[k] = inv[base[k]]
            else:
                entry[k] = [inv[x] for x in base[k]]
        topologies[key] = entry
    import anny

    return {
        "description": "Anny vertex ids behind neuralannot's keypoint sets: iBUG-68 face landmarks (face68, "
                       "0-based iBUG order), the head-top vertex and the fingertips (thumb, index, middle, "
                       "ring, pinky). 'base' = MakeHuman base-mesh ids (anny_model.base_mesh_vertex_indices "
                       "maps a topology's vertices to them); 'topologies' = ids in each Anny topology.",
        "generator": "scripts/build_face_landmarks.py",
        "anny_version": getattr(anny, "__version__", "unknown"),
        "base_vertex_count": 19158,
        "base": base,
        "topologies": topologies,
    }
