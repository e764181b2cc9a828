"""Keypoint regressors: named keypoint sets (:mod:`neuralannot.bodies.joint_names`) from a forward output.

A :class:`JointRegressor` is a fixed sparse linear map. Each keypoint is a weighted sum of a few
mesh vertices and/or skeleton joints (Anny bone heads, or smplx's full joint output for the SMPL
family)::

    reg = get_regressor(model, "coco17")                         # cached per model and set
    out = model(params, vertex_ids=reg.vertex_ids)                # Anny: skin only the needed vertices
    kp = reg(out)                                                 # (B, K, 3), same frame as ``out``
    kp = model.keypoints(model(params), "coco17")                 # or: full vertices, same result

:func:`joint_sets_for` lists what a model offers; an unknown set raises :class:`BodyModelError`.

**Anny** (``anny`` body, ``anny-hand``, ``anny-head``):

- ``body22``: the model's own joints (``model.joint_names``: pelvis + the 21 SMPL-like slots).
- ``coco23`` / ``coco17``: Anny's own COCO regressor (``anny.KeypointsRegressor.coco``, weights over
  mesh vertices; weights below :data:`COCO_PRUNE` are dropped and each row renormalised, which
  moves the keypoints by at most ~0.3 mm over random poses and phenotypes), feet reordered to the
  COCO-WholeBody order.
- ``h36m17`` / ``mpi_inf_3dhp17``: bone heads: pelvis = ``root``, hips = ``upperleg01``, knees =
  ``lowerleg01``, ankles = ``foot``, shoulders = ``upperarm01``, elbows = ``lowerarm01``, wrists =
  ``wrist``; thorax (3DHP neck) = ``neck01``; spine = midpoint of pelvis and thorax; H36M
  ``neck_base`` (3DHP head) = head centre = ½ ``head`` + ¼ ``eye.L`` + ¼ ``eye.R``; H36M ``head``
  (3DHP head_top) = the highest head vertex of the rest body.
- ``lhand21`` / ``rhand21`` (body), ``hand21`` (hand model): wrist bone head, per finger the heads of
  ``finger{f}-1..3`` (thumb = ``finger1-*``) and a fingertip vertex (the vertex skinned mostly to
  ``finger{f}-3`` farthest along that bone on the rest mesh); ``interhand21`` / ``interhand42``
  reorder them.
- ``face68``: 68 iBUG landmark vertices chosen geometrically on the rest mesh by
  ``scripts/build_face_landmarks.py`` (picture: ``docs/anny_face68.png``).
- ``coco_wholebody133`` = ``coco23`` + ``face68`` + ``lhand21`` + ``rhand21``.

The vertex ids live in ``assets/anny_landmarks.json`` as MakeHuman base-mesh ids, mapped to each
model's topology with ``anny_model.base_mesh_vertex_indices`` (body, head and hands share the face
and hand geometry exactly).

**SMPL family** (``smpl``, ``smplx``, ``mano``, ``flame``): joints are picked by name from
``output.extras["smplx_joints"]`` (``model.smplx_joint_names``): ``smpl24`` (SMPL), ``body22``,
``coco17``/``coco23`` (smplx's vertex-picked nose/eyes/ears/feet, official topologies only), SMPL-X
``lhand21``/``rhand21`` (finger joints + smplx fingertip vertices), MANO ``hand21``/``interhand21``
(16 joints + ``smplx.vertex_ids['mano']`` tips, official 778-vertex topology only), ``face68`` when
68 face landmarks (51 static + 17 contour) are in the output.
"""

from __future__ import annotations

import functools
import json
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from neuralannot.bodies.errors import BodyModelError
from neuralannot.bodies.joint_names import (
    COCO23,
    FACE68,
    HAND21,
    INTERHAND21,
    get_joint_names,
)

if TYPE_CHECKING:  # annotations only: base imports this module (BodyModel.keypoints)
    from neuralannot.bodies.base import BodyModel, BodyOutput

__all__ = [
    "COCO_PRUNE",
    "JointRegressor",
    "anny_landmarks",
    "get_regressor",
    "joint_sets_for",
    "posed_keypoints",
    "posed_vertices",
    "regress_keypoints",
]

#: Anny COCO regressor weights below this are dropped (then rows renormalised).
COCO_PRUNE = 1e-4
LANDMARKS_FILE = Path(__file__).resolve().parents[1] / "assets" / "anny_landmarks.json"
#: Anny's built-in COCO order of its 6 foot points → COCO-WholeBody order (coco23[17:]).
ANNY_FEET = ["left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe", "left_heel", "right_heel"]
FINGERS = ["thumb", "index", "middle", "ring", "pinky"]

#: One keypoint: ({vertex id: weight}, {joint index: weight}).
Row = tuple[dict[int, float], dict[int, float]]


class JointRegressor(nn.Module):
    """Keypoints = ``vertex_weights @ vertices[vertex_ids] + joint_weights @ joints``.

    Args:
        names: keypoint names (K).
        vertex_ids: (S,) model vertex ids used by any keypoint (sorted, unique).
        vertex_weights: (K, S).
        joint_weights: (K, NJ) over the tensor named by ``joint_source``, or None.
        joint_source: ``"joints"`` (``output.joints``) or a key of ``output.extras``
            (Anny: ``"bone_heads"``; SMPL family: ``"smplx_joints"``).
        num_vertices: the model's full vertex count (to tell full outputs from subset outputs).

    ``forward(output)`` accepts full-mesh outputs ``(B, V, 3)`` and subset outputs
    ``(B, len(vertex_ids), 3)`` produced by ``model(params, vertex_ids=reg.vertex_ids)``.
    """

    def __init__(self, names: Sequence[str], vertex_ids: Tensor, vertex_weights: Tensor,
                 joint_weights: Tensor | None, joint_source: str, num_vertices: int, set_name: str = ""):
        super().__init__()
        self.names = list(names)
        self.set_name = set_name
        self.joint_source = joint_source
        self.num_vertices = int(num_vertices)
        K = len(self.names)
        if vertex_weights.shape != (K, vertex_ids.numel()):
            raise ValueError(f"vertex_weights {tuple(vertex_weights.shape)} != ({K}, {vertex_ids.numel()})")
        if joint_weights is not None and joint_weights.shape[0] != K:
            raise ValueError(f"joint_weights has {joint_weights.shape[0]} rows, expected {K}")
        self.register_buffer("_vertex_ids", vertex_ids.long(), persistent=False)
        self.register_buffer("vertex_weights", vertex_weights, persistent=False)
        self.register_buffer("joint_weights", joint_weights, persistent=False)

    @property
    def vertex_ids(self) -> Tensor:
        """Vertex ids to skin (pass to an Anny forward as ``vertex_ids=``)."""
        return self._vertex_ids

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    @property
    def needs_vertices(self) -> bool:
        return self._vertex_ids.numel() > 0

    @classmethod
    def from_rows(cls, names: Sequence[str], rows: Sequence[Row], num_vertices: int, num_joints: int,
                  joint_source: str, set_name: str = "", dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> JointRegressor:
        if len(names) != len(rows):
            raise ValueError(f"{len(names)} names but {len(rows)} rows")
        vids = sorted({v for vw, _ in rows for v in vw})
        col = {v: i for i, v in enumerate(vids)}
        K = len(rows)
        Wv = torch.zeros(K, len(vids), dtype=torch.float64)
        Wj = torch.zeros(K, num_joints, dtype=torch.float64)
        for k, (vw, jw) in enumerate(rows):
            for v, w in vw.items():
                Wv[k, col[v]] += w
            for j, w in jw.items():
                Wj[k, j] += w
        use_joints = bool((Wj != 0).any())
        return cls(names, torch.tensor(vids, dtype=torch.long, device=device),
                   Wv.to(dtype=dtype, device=device),
                   Wj.to(dtype=dtype, device=device) if use_joints else None,
                   joint_source, num_vertices, set_name)

    def _joints(self, output: BodyOutput) -> Tensor:
        if self.joint_source == "joints":
            return output.joints
        try:
            return output.extras[self.joint_source]
        except KeyError:
            raise BodyModelError(
                f"{self.set_name or 'joint regressor'}: output.extras has no {self.joint_source!r} "
                f"(keys: {sorted(output.extras)})") from None

    def forward(self, output: BodyOutput) -> Tensor:
        out = None
        if self.needs_vertices:
            verts = output.vertices
            if verts is None:
                raise BodyModelError(
                    f"{self.set_name or 'joint regressor'} needs vertices: run the model with "
                    "return_vertices=True or vertex_ids=regressor.vertex_ids")
            n = verts.shape[1]
            if n == self.num_vertices:
                verts = verts.index_select(1, self._vertex_ids.to(verts.device))
            elif n != self._vertex_ids.numel():
                raise BodyModelError(
                    f"{self.set_name or 'joint regressor'}: output has {n} vertices; expected the full "
                    f"mesh ({self.num_vertices}) or the regressor's subset ({self._vertex_ids.numel()})")
            W = self.vertex_weights.to(dtype=verts.dtype, device=verts.device)
            out = torch.einsum("ks,bsd->bkd", W, verts)
        if self.joint_weights is not None:
            J = self._joints(output)
            W = self.joint_weights.to(dtype=J.dtype, device=J.device)
            part = torch.einsum("kj,bjd->bkd", W, J)
            out = part if out is None else out + part
        if out is None:  # no keypoints at all
            ref = output.joints
            out = ref.new_zeros(ref.shape[0], 0, 3)
        return out

    def extra_repr(self) -> str:
        joints = "none" if self.joint_weights is None else self.joint_source
        return (f"set={self.set_name!r}, keypoints={self.num_keypoints}, "
                f"vertices={self._vertex_ids.numel()}, joints={joints}")


# ---------------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------------
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def joint_sets_for(model: BodyModel) -> list[str]:
    """Names of the keypoint sets :func:`get_regressor` can build for ``model``."""
    name = getattr(model, "name", "")
    if name == "anny":
        return ["body22", "coco17", "coco23", "h36m17", "mpi_inf_3dhp17", "lhand21", "rhand21",
                "interhand42", "face68", "coco_wholebody133"]
    if name == "anny-hand":
        return ["hand21", "interhand21", f"{_side(model)[0]}hand21"]
    if name == "anny-head":
        return ["face68"]
    if name in ("smpl", "smplx", "mano", "flame"):
        return [s for s in _SMPLX_SETS if _smplx_rows(model, s) is not None]
    return []


def get_regressor(model: BodyModel, name: str) -> JointRegressor:
    """The (cached) :class:`JointRegressor` of set ``name`` for ``model``, on the model's dtype/device."""
    available = joint_sets_for(model)
    if name not in available:
        note = getattr(model, "keypoint_notes", {}).get(name)
        raise BodyModelError(
            f"{getattr(model, 'name', type(model).__name__)}: no keypoint set {name!r}; "
            f"available: {available}" + (f" ({note})" if note else ""))
    per_model = _CACHE.setdefault(model, {})
    reg = per_model.get(name)
    device = model.device
    if reg is None:
        reg = _build(model, name).to(device=device)
        per_model[name] = reg
    elif reg.vertex_weights.device != device:
        reg = reg.to(device=device)
        per_model[name] = reg
    return reg


def regress_keypoints(model: BodyModel, params: dict[str, Tensor], name: str) -> Tensor:
    """Pose ``model`` and regress set ``name`` (B, K, 3), skinning only the needed vertices on Anny."""
    return posed_keypoints(model, get_regressor(model, name), params)


def posed_keypoints(model: BodyModel, reg: JointRegressor, params: dict[str, Tensor]) -> Tensor:
    """Pose ``model`` and apply ``reg`` (B, K, 3): Anny skins only the vertices ``reg`` reads (none
    for joint-only sets); other models skin every vertex when ``reg`` needs any."""
    if getattr(model, "is_anny", False):
        out = model(params, vertex_ids=reg.vertex_ids) if reg.needs_vertices else model(
            params, return_vertices=False)
    else:
        out = model(params, return_vertices=reg.needs_vertices)
    return reg(out)


def untranslated_params(model: BodyModel, params: dict[str, Tensor]) -> dict[str, Tensor]:
    """``params`` reduced to ``model``'s parameter groups (a prediction's ``latent``, ``camera``, ...
    dropped) with a zero translation."""
    params = {k: v for k, v in params.items() if k in model.param_specs and k != "trans"}
    first = next(iter(params.values()))
    params["trans"] = first.new_zeros(first.shape[0], 3)
    return params


def untranslated_keypoints(model: BodyModel, reg: JointRegressor, params: dict[str, Tensor]) -> Tensor:
    """:func:`posed_keypoints` of ``params`` at zero translation (B, K, 3); keys that are not ``model``'s
    parameter groups and ``trans`` are ignored (:func:`untranslated_params`)."""
    return posed_keypoints(model, reg, untranslated_params(model, params))


def posed_vertices(model: BodyModel, params: dict[str, Tensor], vertex_ids: Tensor) -> Tensor:
    """Posed vertices ``vertex_ids`` (B, S, 3): Anny skins only those; other models skin every vertex."""
    if getattr(model, "is_anny", False):
        return model(params, vertex_ids=vertex_ids).vertices
    return model(params).vertices[:, vertex_ids.to(model.device)]


def _build(model: BodyModel, name: str) -> JointRegressor:
    dtype = model.dtype if model.dtype.is_floating_point else torch.float32
    if model.is_anny:
        names, rows = _anny_rows(model, name)
        return JointRegressor.from_rows(names, rows, model.num_vertices, len(model.bone_labels),
                                        "bone_heads", name, dtype)
    rows = _smplx_rows(model, name)
    assert rows is not None
    names = get_joint_names(name) if name in _NAMED_SETS else _own_names(model, name)
    return JointRegressor.from_rows(names, rows, model.num_vertices, len(model.smplx_joint_names),
                                    "smplx_joints", name, dtype)


# ---------------------------------------------------------------------------------------------
# Anny
# ---------------------------------------------------------------------------------------------
@functools.cache
def anny_landmarks() -> dict:
    """The content of ``assets/anny_landmarks.json`` (see ``scripts/build_face_landmarks.py``)."""
    try:
        return json.loads(LANDMARKS_FILE.read_text())
    except FileNotFoundError:
        raise BodyModelError(f"{LANDMARKS_FILE} is missing; run scripts/build_face_landmarks.py") from None


def _side(model) -> str:
    return getattr(model, "side", "right")


def _topology_key(model) -> str:
    if model.name == "anny":
        return "anny"
    if model.name == "anny-head":
        return "head"
    return "hand." + ("R" if _side(model) == "right" else "L")


def _anny_vertex_ids(model, key: str, side: str | None = None) -> list[int]:
    """Landmark vertex ids of ``key`` (``face68``, ``head_top``, ``fingertips``) in the model's topology."""
    data = anny_landmarks()
    base = data["base"][key]
    if side is not None:
        base = base[side]
    scalar = isinstance(base, int)
    base_list = [base] if scalar else list(base)
    topo = data["topologies"].get(_topology_key(model), {})
    stored = topo.get(key)
    if isinstance(stored, dict):
        stored = stored.get(side)
    bmi = model.anny.base_mesh_vertex_indices
    if stored is not None and topo.get("vertex_count") == model.num_vertices:
        ids = [stored] if scalar else list(stored)
        if bmi[torch.tensor(ids)].tolist() == base_list:
            return ids
    inverse = {int(b): i for i, b in enumerate(bmi.tolist())}
    missing = [b for b in base_list if b not in inverse]
    if missing:
        raise BodyModelError(
            f"{model.name}: {len(missing)} {key} landmark vertices are not in this Anny topology "
            f"({model.num_vertices} vertices); rebuild {LANDMARKS_FILE.name} with "
            "scripts/build_face_landmarks.py")
    return [inverse[b] for b in base_list]


def _bone(model, name: str, w: float = 1.0) -> Row:
    return {}, {model.bone_index(name): w}


def _vert(v: int) -> Row:
    return {v: 1.0}, {}


def _mix(*parts: tuple[Row, float]) -> Row:
    vw: dict[int, float] = {}
    jw: dict[int, float] = {}
    for (v, j), w in parts:
        for k, x in v.items():
            vw[k] = vw.get(k, 0.0) + w * x
        for k, x in j.items():
            jw[k] = jw.get(k, 0.0) + w * x
    return vw, jw


def _anny_coco23(model) -> list[Row]:
    import anny

    kr = anny.KeypointsRegressor.coco(model.anny)
    W = kr.regression_weights.detach().double().cpu()
    rows = []
    for name in COCO23:
        w = W[kr.labels.index(name)]
        keep = torch.nonzero(w.abs() > COCO_PRUNE).flatten()
        ww = w[keep] / w[keep].sum()
        rows.append(({int(v): float(x) for v, x in zip(keep, ww, strict=True)}, {}))
    return rows


def _anny_hand_rows(model, s: str) -> dict[str, Row]:
    """hand21 keypoints of the side-``s`` ('L'/'R') hand, by hand21 name."""
    tips = _anny_vertex_ids(model, "fingertips", "left" if s == "L" else "right")
    rows = {"wrist": _bone(model, f"wrist.{s}")}
    for f, (finger, tip) in enumerate(zip(FINGERS, tips, strict=True), start=1):
        for k in (1, 2, 3):
            rows[f"{finger}{k}"] = _bone(model, f"finger{f}-{k}.{s}")
        rows[f"{finger}4"] = _vert(tip)
    return rows


def _anny_rows(model, name: str) -> tuple[list[str], list[Row]]:
    if model.name == "anny-hand":
        s = "R" if _side(model) == "right" else "L"
        hand = _anny_hand_rows(model, s)
        order = INTERHAND21 if name == "interhand21" else HAND21
        return get_joint_names(name), [hand[n] for n in order]
    if model.name == "anny-head":
        return get_joint_names(name), [_vert(v) for v in _anny_vertex_ids(model, "face68")]
    # body
    if name == "body22":
        return list(model.joint_names), [({}, {int(j): 1.0}) for j in model.joint_bone_ids.tolist()]
    if name in ("coco17", "coco23"):
        rows = _anny_coco23(model)
        return get_joint_names(name), rows[: len(get_joint_names(name))]
    if name == "face68":
        return list(FACE68), [_vert(v) for v in _anny_vertex_ids(model, "face68")]
    if name in ("lhand21", "rhand21"):
        hand = _anny_hand_rows(model, "L" if name == "lhand21" else "R")
        return get_joint_names(name), [hand[n] for n in HAND21]
    if name == "interhand42":
        right, left = _anny_hand_rows(model, "R"), _anny_hand_rows(model, "L")
        return get_joint_names(name), [right[n] for n in INTERHAND21] + [left[n] for n in INTERHAND21]
    if name == "coco_wholebody133":
        parts = [_anny_rows(model, s) for s in ("coco23", "face68", "lhand21", "rhand21")]
        return get_joint_names(name), [r for _, rows in parts for r in rows]
    # h36m17 / mpi_inf_3dhp17
    b = functools.partial(_bone, model)
    top = _vert(_anny_vertex_ids(model, "head_top")[0])
    thorax = b("neck01")
    spine = _mix((b("root"), 0.5), (thorax, 0.5))
    head_centre = _mix((b("head"), 0.5), (b("eye.L"), 0.25), (b("eye.R"), 0.25))
    common = {"pelvis": b("root"), "thorax": thorax, "spine": spine, "head_centre": head_centre, "top": top}
    for side, s in (("left", "L"), ("right", "R")):
        for joint, bone in (("hip", "upperleg01"), ("knee", "lowerleg01"), ("ankle", "foot"),
                            ("shoulder", "upperarm01"), ("elbow", "lowerarm01"), ("wrist", "wrist")):
            common[f"{side}_{joint}"] = b(f"{bone}.{s}")
    alias = {"root": "pelvis", "right_foot": "right_ankle", "left_foot": "left_ankle",
             "neck_base": "head_centre", "head": "top"} if name == "h36m17" else {
             "head_top": "top", "neck": "thorax", "head": "head_centre"}
    names = get_joint_names(name)
    return names, [common[alias.get(n, n)] for n in names]


# ---------------------------------------------------------------------------------------------
# SMPL family
# ---------------------------------------------------------------------------------------------
_NAMED_SETS = ("coco17", "coco23", "hand21", "interhand21", "lhand21", "rhand21", "face68",
               "coco_wholebody133")
_SMPLX_SETS = ("smpl24", "body22", "coco17", "coco23", "lhand21", "rhand21", "hand21", "interhand21",
               "face68", "coco_wholebody133")
#: MANO fingertip vertices (= ``smplx.vertex_ids.vertex_ids['mano']``).
_MANO_TIPS = {"thumb": 744, "index": 320, "middle": 443, "ring": 554, "pinky": 671}
_MANO_VERTICES = 778


def _own_names(model, name: str) -> list[str]:
    return list(model.joint_names[:24] if name == "smpl24" else model.joint_names[:22])


def _face68_sources() -> list[str]:
    from smplx.joint_names import JOINT_NAMES

    return list(JOINT_NAMES[127:144]) + list(JOINT_NAMES[76:127])


def _smplx_rows(model, name: str) -> list[Row] | None:
    """Rows over ``extras['smplx_joints']`` (and MANO tip vertices), or None if unavailable."""
    t = model.name
    names = list(getattr(model, "smplx_joint_names", []))
    index = {n: i for i, n in enumerate(names)}

    def pick(sources: Sequence[str]) -> list[Row] | None:
        if not all(s in index for s in sources):
            return None
        return [({}, {index[s]: 1.0}) for s in sources]

    if name == "smpl24":
        return pick(model.joint_names[:24]) if t == "smpl" else None
    if name == "body22":
        return pick(model.joint_names[:22]) if t in ("smpl", "smplx") else None
    if name in ("coco17", "coco23"):
        return pick(get_joint_names(name)) if t in ("smpl", "smplx") else None
    if name in ("lhand21", "rhand21"):
        if t != "smplx":
            return None
        side = "left" if name == "lhand21" else "right"
        return pick([f"{side}_wrist" if n == "wrist" else f"{side}_{n[:-1]}" if n.endswith("4")
                     else f"{side}_{n}" for n in HAND21])
    if name in ("hand21", "interhand21"):
        if t != "mano" or model.num_vertices != _MANO_VERTICES:
            return None
        rows = {}
        for n in HAND21:
            if n.endswith("4"):
                rows[n] = _vert(_MANO_TIPS[n[:-1]])
            else:
                if n not in index:
                    return None
                rows[n] = ({}, {index[n]: 1.0})
        return [rows[n] for n in (HAND21 if name == "hand21" else INTERHAND21)]
    if name == "face68":
        return pick(_face68_sources()) if t in ("smplx", "flame") else None
    if name == "coco_wholebody133":
        parts = [_smplx_rows(model, s) for s in ("coco23", "face68", "lhand21", "rhand21")]
        return None if any(p is None for p in parts) else [r for p in parts for r in p]
    return None
