"""Anny (naver/anny, Apache-2.0 code, CC0 data) as :class:`BodyModel`: full body, right/left hand, head.

Pose parameterisation: Anny's ``local-ref`` — each bone rotates about its head in world-aligned
axes of the rest pose, carried by its posed parent; identity = Anny's rest A-pose. The annotator
predicts a fixed subset of bones ("slots"); all other bones stay at rest. The global rotation
``root_pose`` and translation ``trans`` are applied after posing, about the root bone head, which
Anny places at the origin for every shape.

Canonical frames (meters):
- body / wholebody: **Y up, facing +Z, model's left = +X** (the SMPL convention; Anny's native
  Z-up/−Y-forward world is rotated by ``ANNY_TO_CANONICAL``). Root = pelvis centre at hip height.
- hand (right; left uses the mirrored ``hand.L`` rig): Anny's wrist frame, +Y from the wrist toward
  the fingers. Root = wrist.
- head: Anny's neck01 frame, +Y up, face toward +Z. Root = neck01 head.

Body slots (SMPL body-joint analogues, in SMPL order 1..21): see :data:`BODY_SLOTS`. Twist bones
(``*02``), spine05/04, neck02/03 and metacarpals stay at rest; each ``toes.*`` slot drives the five
``toe*-1`` bones of that foot with one rotation. Finger slots (15 per hand, thumb first):
``finger{1..5}-{1..3}``.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings

import roma
import torch
from torch import Tensor

from neuralannot.bodies.base import BodyModel, BodyModelError, BodyOutput, as_rotmat
from neuralannot.bodies.specs import anny_body_specs, anny_hand_specs, anny_head_specs
from neuralannot.paths import anny_cache_dir

#: (canonical joint name, Anny bones driven by that slot); joint position = head of the first bone.
BODY_SLOTS: list[tuple[str, tuple[str, ...]]] = [
    ("left_hip", ("upperleg01.L",)),
    ("right_hip", ("upperleg01.R",)),
    ("spine1", ("spine03",)),
    ("left_knee", ("lowerleg01.L",)),
    ("right_knee", ("lowerleg01.R",)),
    ("spine2", ("spine02",)),
    ("left_ankle", ("foot.L",)),
    ("right_ankle", ("foot.R",)),
    ("spine3", ("spine01",)),
    ("left_foot", tuple(f"toe{i}-1.L" for i in (3, 1, 2, 4, 5))),
    ("right_foot", tuple(f"toe{i}-1.R" for i in (3, 1, 2, 4, 5))),
    ("neck", ("neck01",)),
    ("left_collar", ("clavicle.L",)),
    ("right_collar", ("clavicle.R",)),
    ("head", ("head",)),
    ("left_shoulder", ("upperarm01.L",)),
    ("right_shoulder", ("upperarm01.R",)),
    ("left_elbow", ("lowerarm01.L",)),
    ("right_elbow", ("lowerarm01.R",)),
    ("left_wrist", ("wrist.L",)),
    ("right_wrist", ("wrist.R",)),
]
#: SMPL kinematic tree restricted to pelvis + the 21 body slots.
BODY_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
FINGER_NAMES = ["thumb", "index", "middle", "ring", "pinky"]
#: Anny finger bones per hand, thumb first; ``{s}`` is the side suffix ``L`` or ``R``.
FINGER_BONES = [f"finger{f}-{k}.{{s}}" for f in range(1, 6) for k in range(1, 4)]
HAND_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
#: Knee and elbow hinge axes (Anny native axes, unit) from the zero pose of the default body: the
#: normal of the (upper bone, lower bone) plane, oriented so that a positive angle folds the joint
#: (flexion). The synthetic pose library fits knees and elbows as such hinges; the swing solver and
#: SMPLify's bending prior use them too.
HINGE_AXES: dict[str, tuple[float, float, float]] = {
    "left_knee": (0.9922, -0.0898, 0.0861),
    "right_knee": (0.9922, 0.0898, -0.0861),
    "left_elbow": (-0.7433, -0.0468, -0.6674),
    "right_elbow": (-0.7433, 0.0468, 0.6674),
}
#: Anny native body world (Z up, −Y forward) → canonical (Y up, +Z forward).
ANNY_TO_CANONICAL = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def build_anny(**kwargs) -> torch.nn.Module:
    """Build an ``anny.Anny`` in float32 with its cache under :func:`anny_cache_dir`."""
    cache = anny_cache_dir()
    os.environ.setdefault("ANNY_CACHE_DIR", str(cache))
    cache.mkdir(parents=True, exist_ok=True)
    _quiet_warp()
    import anny

    anny.paths.set_anny_cache_path(cache)
    logging.getLogger("anny").setLevel(logging.WARNING)  # it logs every cache file it opens
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = anny.Anny(**kwargs)
    return model.to(torch.float32)


@functools.cache
def _quiet_warp() -> None:
    """NVIDIA Warp prints CUDA-driver warnings on CPU machines; keep them out of our logs."""
    try:
        import warp

        warp.config.log_level = getattr(warp, "LOG_ERROR", 40)
    except ImportError:
        pass


class _AnnyModel(BodyModel):
    """Shared machinery: slots → delta transforms → Anny FK/LBS → global transform."""

    def __init__(
        self,
        anny_model,
        slot_groups: list[tuple[str, list[tuple[str, ...]]]],
        joint_names: list[str],
        joint_bones: list[str],
        parents: list[int],
        frame: Tensor,
        phenotype_group: str = "phenotype",
    ):
        super().__init__()
        self.anny = anny_model
        self.bone_labels: list[str] = list(anny_model.bone_labels)
        index = {b: i for i, b in enumerate(self.bone_labels)}
        # slot s (1-based; 0 = identity) driving each Anny bone
        bone_to_slot = torch.zeros(len(self.bone_labels), dtype=torch.long)
        self._slot_groups = []
        slot = 1
        for group, slots in slot_groups:
            self._slot_groups.append((group, len(slots)))
            for bones in slots:
                for b in bones:
                    bone_to_slot[index[b]] = slot
                slot += 1
        self.register_buffer("bone_to_slot", bone_to_slot, persistent=False)
        self.register_buffer(
            "joint_bone_ids", torch.tensor([index[b] for b in joint_bones]), persistent=False
        )
        self.register_buffer("frame", frame.to(torch.float32), persistent=False)
        self.register_buffer("faces", anny_model.faces.clone(), persistent=False)
        self.joint_names = joint_names
        self.parents = parents
        self._phenotype_group = phenotype_group
        self._n_local = len(anny_model.local_change_labels)
        self._n_face = len(anny_model.facial_action_labels)
        self._subsets: dict[tuple, tuple[Tensor, ...]] = {}  # see _vertex_subset

    # -- Anny internals --------------------------------------------------------------------
    def _blendshape_coeffs(self, params: dict[str, Tensor], batch: int) -> Tensor:
        m = self.anny
        ph = params[self._phenotype_group]
        lc = params.get("local_changes", ph.new_zeros(batch, self._n_local))
        fa = params.get("expression", ph.new_zeros(batch, self._n_face))
        return m._get_phenotype_blendshape_coefficients(ph, lc, fa)

    def _rest_bone_poses(self, coeffs: Tensor) -> Tensor:
        """Anny's "cached" rest bone frames without computing rest vertices (the costly part)."""
        from anny.skinning.skinning import apply_linear_blendshape

        m = self.anny
        heads = apply_linear_blendshape(m.template_bone_heads, m.bone_heads_blendshapes, coeffs)
        M = m.bone_template_orientation_matrices[None] + torch.einsum(
            "ba,akij->bkij", coeffs, m.bone_orientation_blendshapes
        )
        orient = roma.special_procrustes(M)
        if m.rest_orientation_refiner is not None:
            orient = m.rest_orientation_refiner(orient, heads)
        poses = roma.Rigid(linear=orient, translation=heads).to_homogeneous()
        if m.root_identity_orientation:
            poses = _with_root_identity(poses)
        return poses

    @property
    def native_frame(self) -> Tensor:
        """(3, 3) rotation from the axes the pose deltas act in (Anny's ``local-ref``: its reference
        world) to the canonical output frame: ``frame · U_0ᵀ`` with ``U_0`` the root's reference
        orientation (the identity for the body; the wrist's for the hand, whose output is in that
        frame). The swing solver (bodies/swing_ik.py) composes rotations in these axes."""
        ref = self.anny.reference_bone_orientations
        if ref is None:
            return self.frame
        return self.frame @ ref[0].to(self.frame).transpose(-1, -2)

    def _delta_transforms(self, params: dict[str, Tensor], batch: int) -> Tensor:
        rots = [
            as_rotmat(params[g], self.param_specs[g].shape).reshape(batch, n, 3, 3)
            for g, n in self._slot_groups
        ]
        eye = torch.eye(3, dtype=self.frame.dtype, device=self.frame.device).expand(batch, 1, 3, 3)
        R = torch.cat([eye, *rots], dim=1)[:, self.bone_to_slot]  # (B, NB, 3, 3)
        zeros = R.new_zeros(*R.shape[:-1], 1)
        bottom = R.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(*R.shape[:-2], 1, 4)
        return torch.cat([torch.cat([R, zeros], -1), bottom], -2)

    def _vertex_subset(self, vertex_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Template (S, 3), blendshapes (C, S, 3) and dense skinning weights (S, bones) of a vertex
        subset, gathered once per subset (the silhouette term and vertex keypoints pose the same few
        thousand vertices every training step)."""
        m = self.anny
        key = (
            vertex_ids.data_ptr(),
            vertex_ids.device,
            tuple(vertex_ids.shape),
            m.blendshapes.device,
            m.blendshapes.dtype,
        )
        hit = self._subsets.get(key)
        if hit is not None and torch.equal(hit[0], vertex_ids):
            return hit[1:]
        ids = vertex_ids.to(m.template_vertices.device)
        weights = m.vertex_bone_weights[ids]
        dense = weights.new_zeros(len(ids), len(self.bone_labels))
        dense.scatter_add_(1, m.vertex_bone_indices[ids], weights)
        out = (m.template_vertices[ids], m.blendshapes[:, ids].contiguous(), dense)
        if len(self._subsets) > 8:
            self._subsets.clear()
        self._subsets[key] = (vertex_ids.clone(), *out)
        return out

    @staticmethod
    def _skin_subset(rest_vertices: Tensor, transforms: Tensor, weights: Tensor) -> Tensor:
        """Linear blend skinning of a vertex subset (B, S, 3) with dense weights (S, bones): one
        matrix product, ~3× faster forward and backward than gathering 9 transforms per vertex."""
        A = torch.einsum("sk,bkij->bsij", weights.to(transforms), transforms[..., :3, :])  # (B, S, 3, 4)
        return (A[..., :3] @ rest_vertices[..., None]).squeeze(-1) + A[..., 3]

    # -- forward -----------------------------------------------------------------------------
    def forward(
        self, params: dict[str, Tensor], return_vertices: bool = True, vertex_ids: Tensor | None = None
    ) -> BodyOutput:
        """Pose the model.

        ``return_vertices=False`` skips skinning (joints only, ~4× faster); ``vertex_ids`` skins
        only those vertices (``output.vertices`` is then (B, len(vertex_ids), 3)).
        """
        params, batch = self.complete_params(params)
        coeffs = self._blendshape_coeffs(params, batch)
        rest_poses = self._rest_bone_poses(coeffs)
        delta = self._delta_transforms(params, batch)
        transforms, bone_poses = self.anny.get_bone_transforms(delta, rest_poses)
        G = as_rotmat(params["root_pose"], (3,)) @ self.frame  # (B, 3, 3)
        t = params["trans"][:, None]

        def place(x: Tensor) -> Tensor:
            return x @ G.transpose(-1, -2) + t

        bone_heads = place(bone_poses[..., :3, 3])
        vertices = None
        if vertex_ids is not None:
            template, blendshapes, weights = self._vertex_subset(vertex_ids)
            rest = template[None] + torch.einsum("cpd,bc->bpd", blendshapes, coeffs)
            vertices = place(self._skin_subset(rest.expand(batch, -1, -1), transforms, weights))
        elif return_vertices:
            rest = self.anny.get_rest_vertices(coeffs).expand(batch, -1, -1)
            vertices = place(self.anny.get_skinned_vertices(rest, transforms))
        return BodyOutput(
            joints=bone_heads[:, self.joint_bone_ids],
            vertices=vertices,
            extras={"bone_heads": bone_heads, "global_rotation": G},
        )

    @property
    def num_vertices(self) -> int:
        return int(self.anny.template_vertices.shape[0])

    def bone_index(self, name: str) -> int:
        try:
            return self.bone_labels.index(name)
        except ValueError:
            raise BodyModelError(f"{self.name}: no bone named {name!r}") from None


def _with_root_identity(poses: Tensor) -> Tensor:
    """Replace the root bone's rest orientation by the identity (Anny's ``root_identity_orientation``)."""
    eye = torch.eye(4, dtype=poses.dtype, device=poses.device)
    root = eye.expand(poses.shape[0], 1, 4, 4).clone()
    root[..., :3, 3] = poses[:, :1, :3, 3]
    return torch.cat([root, poses[:, 1:]], dim=1)


class AnnyBody(_AnnyModel):
    """Anny full body: ``root_pose`` (3), ``body_pose`` (21, 3), ``phenotype`` (6), ``trans`` (3);
    optional ``lhand_pose``/``rhand_pose`` (15, 3) with ``hands=True``, ``expression`` (52) with
    ``face=True`` (ARKit-style facial actions incl. ``jawOpen``), ``local_changes`` with
    ``local_changes=True``.
    """

    name = "anny"
    part = "body"
    hinge_axes = HINGE_AXES

    def __init__(
        self,
        hands: bool = False,
        face: bool = False,
        local_changes: bool = False,
        skinning: str | None = None,
    ):
        m = build_anny(
            facial_actions="all" if face else "none",
            local_changes="default" if local_changes else "none",
            skinning_method=skinning,
        )
        specs = anny_body_specs(
            hands,
            len(m.facial_action_labels) if face else None,
            len(m.local_change_labels) if local_changes else None,
        )
        groups = [("body_pose", [bones for _, bones in BODY_SLOTS])]
        if hands:
            for side, s in (("lhand_pose", "L"), ("rhand_pose", "R")):
                groups.append((side, [(b.format(s=s),) for b in FINGER_BONES]))
        if hands or face:
            self.part = "wholebody"
        names = ["pelvis"] + [n for n, _ in BODY_SLOTS]
        bones = ["root"] + [b[0] for _, b in BODY_SLOTS]
        super().__init__(m, groups, names, bones, BODY_PARENTS, ANNY_TO_CANONICAL)
        self.param_specs = {s.name: s for s in specs}

    def twist_axes(self) -> Tensor:
        """Unit limb axis of each ``body_pose`` slot (21, 3) in the frame its rotation acts in (Anny's
        rest pose, native axes): toward the slot's child joint; zero for end slots (feet, head,
        wrists), whose twist is not defined. Joint positions cannot observe rotations about these."""
        if getattr(self, "_twist_axes", None) is None:
            with torch.no_grad():
                params = self.default_params(batch_size=1)
                joints = self.forward(params, return_vertices=False).joints[0] @ self.frame  # native
            axes = torch.zeros(len(BODY_PARENTS) - 1, 3)
            for child, parent in enumerate(BODY_PARENTS):
                if parent > 0 and not axes[parent - 1].any():
                    d = joints[child] - joints[parent]
                    axes[parent - 1] = d / d.norm()
            self._twist_axes = axes
        return self._twist_axes


class AnnyHand(_AnnyModel):
    """Anny hand part model: ``root_pose`` (wrist, 3), ``hand_pose`` (15, 3), ``phenotype`` (6),
    ``trans`` (3)."""

    name = "anny-hand"
    part = "hand"

    def __init__(self, side: str = "right", skinning: str | None = None):
        if side not in ("right", "left"):
            raise BodyModelError(f"anny-hand: side must be 'right' or 'left', got {side!r}")
        s = "R" if side == "right" else "L"
        m = build_anny(rig=f"anny-hand.{s}", topology=f"hand.{s}", skinning_method=skinning)
        bones = [b.format(s=s) for b in FINGER_BONES]
        names = ["wrist"] + [f"{f}{k}" for f in FINGER_NAMES for k in (1, 2, 3)]
        super().__init__(
            m,
            [("hand_pose", [(b,) for b in bones])],
            names,
            [f"wrist.{s}", *bones],
            HAND_PARENTS,
            torch.eye(3),
        )
        self.side = side
        self.param_specs = {s.name: s for s in anny_hand_specs()}

    def twist_axes(self) -> Tensor:
        """Unit bone axis of each ``hand_pose`` slot (15, 3) in the axes its rotation acts in (Anny's
        rest pose, native axes): toward the slot's child joint, for the distal slots toward the
        fingertip (``hand21`` keypoint). Joint positions barely observe rotations about these, and
        fingers barely twist about them."""
        if getattr(self, "_twist_axes", None) is None:
            with torch.no_grad():
                out = self.forward(self.default_params(batch_size=1))
                joints, tips = out.joints[0], self.keypoints(out, "hand21")[0, 4::4]
            axes = torch.zeros(len(HAND_PARENTS) - 1, 3)
            for slot in range(len(axes)):
                children = [c for c, parent in enumerate(HAND_PARENTS) if parent == slot + 1]
                d = (joints[children[0]] if children else tips[slot // 3]) - joints[slot + 1]
                axes[slot] = d / d.norm()
            self._twist_axes = axes @ self.native_frame.cpu()
        return self._twist_axes


class AnnyHead(_AnnyModel):
    """Anny head part model: ``root_pose`` (neck, 3), ``head_pose`` (3), optional ``eye_pose`` (2, 3),
    ``expression`` (52, incl. ``jawOpen``), ``phenotype`` (6), ``trans`` (3)."""

    name = "anny-head"
    part = "face"

    def __init__(self, skinning: str | None = None):
        m = build_anny(rig="anny-head", topology="head", facial_actions="all", skinning_method=skinning)
        groups = [("head_pose", [("head",)]), ("eye_pose", [("eye.L",), ("eye.R",)])]
        names = ["neck", "head", "left_eye", "right_eye"]
        super().__init__(m, groups, names, ["neck01", "head", "eye.L", "eye.R"], [-1, 0, 1, 1], torch.eye(3))
        self.param_specs = {s.name: s for s in anny_head_specs(len(m.facial_action_labels))}
