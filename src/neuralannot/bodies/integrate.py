"""Part → whole-body integration (paper Sec. 3.3): body, hand and face annotations into one model.

The body annotator gives the global rotation, body pose, shape and translation; each hand annotator
its finger rotations and the hand's global (camera-frame) rotation; the face annotator its jaw and
expression. A hand's global rotation becomes the body's local wrist rotation through the inverse of
the global rotation of the wrist's parent chain (up to the forearm / elbow):
``R_wrist_local = R_parent_global^-1 · R_hand_global``.

- Anny (``AnnyBody(hands=True, face=True)``, the ``anny`` ``wholebody`` model): the hand part models
  (``AnnyHand``) live in their wrist's rest frame, so the hand's global wrist frame is
  ``R_hand = root_pose_hand`` and the body's is ``G_body · W_parent · U_parent^T · D_wrist · U_wrist``
  (``W``: posed native bone frames, ``U``: reference orientations, ``D``: the ``local-ref`` delta,
  ``G_body = root_pose · ANNY_TO_CANONICAL``); solved for ``D_wrist`` with the **body's** rest frames.
  Finger rotations are ``local-ref`` deltas in the same world-aligned axes in the hand and the body
  rigs (the hand rigs are subtrees of the body rig), so they are copied unchanged. The face part's
  ``expression`` (52 facial actions, jaw via ``jawOpen``) replaces the body's.
- The head, where the face part gives ``head_rotation`` (the global rotation of its head bone:
  :func:`anny_head_rotation` for ``AnnyHead``; for FLAME ``R(root_pose) · R(neck_pose)``), is solved
  the same way as a wrist: the body's local head rotation becomes the one that gives the head that
  global rotation (Anny: the head rig is a subtree of the body rig, so its head bone frame is the
  body's). The paper keeps the body's head; the 68 face landmarks see its turn better than the body's
  few head keypoints do.
- SMPL-X (``SMPLXBody``): rest frames are the identity, so ``R_wrist_local = R_elbow_global^T ·
  R_mano_global``; MANO finger rotations are copied to ``lhand_pose``/``rhand_pose`` (both models must
  use the same ``flat_hand_mean``; the official SMPL-X hand means are MANO's), FLAME ``jaw_pose`` and
  ``expr`` (cut or zero-padded to SMPL-X's count) to the same SMPL-X groups.

A missing part (``None``, or ``valid`` False for a sample) keeps the body's own values (zero when the
body annotator had none) and is flagged ``*_valid = False``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from neuralannot.bodies.base import BodyModel, BodyModelError, as_rotmat, as_rotvec

__all__ = [
    "VALID_KEYS", "anny_hand_vertex_map", "anny_head_rotation", "anny_part_vertex_ids", "integrate",
    "parent_global_rotation",
]

#: Valid flags of an integrated record (the SMPL-X release names).
VALID_KEYS = ("lhand_valid", "rhand_valid", "face_valid")
#: body_pose slot (0-based) of each wrist in the 21-slot body pose (SMPL-X joints 20 / 21; Anny BODY_SLOTS).
WRIST_SLOT = {"left": 19, "right": 20}
#: body_pose slot of the head (SMPL-X joint 15, its parent the neck, joint 12; Anny's ``head`` bone).
HEAD_SLOT = 14
_SIDE_KEYS = (("left", "lhand", "lhand_pose"), ("right", "rhand", "rhand_pose"))
Part = Mapping[str, Tensor] | None


def _batch(params: Mapping[str, Tensor]) -> int:
    return int(next(iter(params.values())).shape[0])


def _valid(part: Part, valid: Tensor | None, batch: int, device) -> Tensor:
    """(B,) bool: which samples have this part."""
    if part is None:
        return torch.zeros(batch, dtype=torch.bool, device=device)
    if valid is None:
        return torch.ones(batch, dtype=torch.bool, device=device)
    v = torch.as_tensor(valid, dtype=torch.bool, device=device).reshape(-1)
    if v.shape[0] != batch:
        raise BodyModelError(f"integrate: valid has {v.shape[0]} rows, the body batch has {batch}")
    return v


def _select(valid: Tensor, new: Tensor, old: Tensor) -> Tensor:
    return torch.where(valid.reshape(-1, *[1] * (new.ndim - 1)), new, old)


def _check_part(part: Part, name: str, keys: tuple[str, ...], batch: int) -> None:
    if part is None:
        return
    missing = [k for k in keys if k not in part]
    if missing:
        raise BodyModelError(f"integrate: {name} parameters lack {missing} (got {sorted(part)})")
    for k in keys:
        if part[k].shape[0] != batch:
            raise BodyModelError(
                f"integrate: {name} '{k}' has batch {part[k].shape[0]}, the body has {batch}"
            )


def _kind(body: BodyModel) -> str:
    if body.name == "anny" and "lhand_pose" in body.param_specs and "expression" in body.param_specs:
        return "anny"
    if body.name == "smplx":
        return "smplx"
    raise BodyModelError(
        f"integrate: needs the Anny whole-body model (load_body_model('anny', part='wholebody')) or "
        f"SMPL-X, got {body.name} ({body.part})"
    )


def _anny_frames(body, params: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Anny ``local-ref`` forward kinematics without skinning: posed native bone frames W (B, NB, 3, 3),
    the reference orientations U the deltas are taken against ((1, NB, 3, 3): Anny's fixed
    ``reference_bone_orientations``, else the rest ones) and the output rotation G = root_pose · frame."""
    full, batch = body.complete_params(dict(params))
    coeffs = body._blendshape_coeffs(full, batch)
    rest = body._rest_bone_poses(coeffs)
    delta = body._delta_transforms(full, batch)
    _, poses = body.anny.get_bone_transforms(delta, rest)
    G = as_rotmat(full["root_pose"], (3,)) @ body.frame
    ref = body.anny.reference_bone_orientations
    U = rest[..., :3, :3] if ref is None else ref[None].to(G)
    return poses[..., :3, :3], U, G


def parent_global_rotation(body: BodyModel, params: Mapping[str, Tensor], side: str) -> Tensor:
    """Output-frame global rotation (B, 3, 3) of the ``side`` wrist's parent: for SMPL-X the elbow's
    ``root · Π body rotations``; for Anny the posed frame of the wrist's parent bone (``lowerarm02``)."""
    if _kind(body) == "smplx":
        return _smplx_globals(body, params)[:, body.parents[WRIST_SLOT[side] + 1]]
    W, _, G = _anny_frames(body, params)
    wrist = body.bone_index(f"wrist.{side[0].upper()}")
    return G @ W[:, body.anny.bone_parents[wrist]]


def anny_head_rotation(head, params: Mapping[str, Tensor]) -> Tensor:
    """Output-frame global rotation (B, 3, 3) of the head bone of an Anny head part model (``AnnyHead``)
    posed with ``params``: the ``head_rotation`` a face part gives :func:`integrate`."""
    W, _, G = _anny_frames(head, params)
    return G @ W[:, head.bone_index("head")]


def _local_delta(kind: str, body, frames, bone: str, slot: int, R_global: Tensor) -> Tensor:
    """The local rotation (B, 3, 3) of body slot ``slot`` (Anny: bone ``bone``) that gives that bone the
    output-frame global rotation ``R_global``, the rest of the body's pose kept."""
    if kind == "anny":
        W, U, G = frames
        b = body.bone_index(bone)
        p = body.anny.bone_parents[b]
        # G W_p U_p^T D U_b = R_global  →  D = U_p W_p^T G^T R_global U_b^T
        return (U[:, p] @ W[:, p].transpose(-1, -2) @ G.transpose(-1, -2) @ R_global
                @ U[:, b].transpose(-1, -2))  # fmt: skip
    return frames[:, body.parents[slot + 1]].transpose(-1, -2) @ R_global


def _smplx_globals(body, params: Mapping[str, Tensor]) -> Tensor:
    """Global rotations (B, 22, 3, 3) of SMPL-X's pelvis + 21 body joints."""
    batch = _batch(params)
    local = torch.cat([as_rotmat(params["root_pose"], (3,)).reshape(batch, 1, 3, 3),
                       as_rotmat(params["body_pose"], (21, 3))], 1)  # fmt: skip
    out = [local[:, 0]]
    for j in range(1, 22):
        out.append(out[body.parents[j]] @ local[:, j])
    return torch.stack(out, 1)


def integrate(
    body: BodyModel,
    body_params: Mapping[str, Tensor],
    lhand: Part = None,
    rhand: Part = None,
    face: Part = None,
    *,
    lhand_valid: Tensor | None = None,
    rhand_valid: Tensor | None = None,
    face_valid: Tensor | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Whole-body parameters of ``body`` (Anny whole body or SMPL-X) from part annotations.

    Args:
        body: the whole-body model the result is for.
        body_params: the body annotator's parameters (batch B; axis-angle or matrices). Anny:
            ``root_pose, body_pose, phenotype, trans`` (+ optional hands / expression); SMPL-X:
            ``root_pose, body_pose, shape, trans`` (+ optional groups).
        lhand, rhand: hand annotations with ``root_pose`` (the hand's global rotation in the same
            camera frame as the body) and ``hand_pose`` (15 finger rotations); Anny: the left / right
            ``AnnyHand`` parameters, SMPL-X: MANO left / right. ``None`` = no hand.
        face: Anny: ``AnnyHead`` parameters (``expression``); SMPL-X: FLAME (``jaw_pose``, ``expr``).
            Optional ``head_rotation`` (B, 3, 3 or axis-angle B, 3): the head's global rotation in the
            body's camera frame; the body's head rotation is then solved to match it (else kept).
        lhand_valid, rhand_valid, face_valid: optional (B,) bool masks: which samples have the part.

    Returns:
        ``(params, valid)``: axis-angle whole-body parameters (B, ...) in ``body``'s names and
        ``{"lhand_valid", "rhand_valid", "face_valid"}`` (B,) bool. Samples without a part keep the
        body's own values for it.
    """
    kind = _kind(body)
    batch = _batch(body_params)
    dev = next(iter(body_params.values())).device
    _check_part(lhand, "lhand", ("root_pose", "hand_pose"), batch)
    _check_part(rhand, "rhand", ("root_pose", "hand_pose"), batch)
    face_keys = ("expression",) if kind == "anny" else ("jaw_pose", "expr")
    head_given = face is not None and "head_rotation" in face
    _check_part(face, "face", face_keys + (("head_rotation",) if head_given else ()), batch)
    full, _ = body.complete_params({k: v for k, v in body_params.items() if k in body.param_specs})
    out = {k: as_rotvec(v, body.param_specs[k].shape) if body.param_specs[k].kind == "rotation" else v
           for k, v in full.items()}  # fmt: skip
    valid = {
        "lhand_valid": _valid(lhand, lhand_valid, batch, dev),
        "rhand_valid": _valid(rhand, rhand_valid, batch, dev),
        "face_valid": _valid(face, face_valid, batch, dev),
    }
    frames = _anny_frames(body, full) if kind == "anny" else _smplx_globals(body, full)
    body_pose = out["body_pose"].clone()
    for side, name, key in _SIDE_KEYS:
        part, v = (lhand if side == "left" else rhand), valid[f"{name}_valid"]
        if part is None:
            continue
        R_hand = as_rotmat(part["root_pose"], (3,)).to(body.dtype)
        D = _local_delta(kind, body, frames, f"wrist.{side[0].upper()}", WRIST_SLOT[side], R_hand)
        body_pose[:, WRIST_SLOT[side]] = _select(v, as_rotvec(D, (3,)), body_pose[:, WRIST_SLOT[side]])
        out[key] = _select(v, as_rotvec(part["hand_pose"], (15, 3)).to(body.dtype), out[key])
    if head_given:
        R_head = as_rotmat(face["head_rotation"], (3,)).to(body.dtype)
        D = _local_delta(kind, body, frames, "head", HEAD_SLOT, R_head)
        body_pose[:, HEAD_SLOT] = _select(valid["face_valid"], as_rotvec(D, (3,)), body_pose[:, HEAD_SLOT])
    out["body_pose"] = body_pose
    if face is not None:
        v = valid["face_valid"]
        if kind == "anny":
            out["expression"] = _select(v, face["expression"].to(body.dtype), out["expression"])
        else:
            out["jaw_pose"] = _select(v, as_rotvec(face["jaw_pose"], (3,)).to(body.dtype), out["jaw_pose"])
            expr, n = face["expr"].to(body.dtype), out["expr"].shape[1]
            expr = torch.nn.functional.pad(expr[:, :n], (0, max(0, n - expr.shape[1])))
            out["expr"] = _select(v, expr, out["expr"])
    return out, valid


def anny_hand_vertex_map(body, hand) -> tuple[Tensor, Tensor]:
    """Vertex correspondences ``(hand_ids, body_ids)`` between an Anny hand part model and the Anny
    body: the hand vertices (same base-mesh vertex) that the body skins to the wrist and finger bones
    only, so that they move with the hand alone (the forearm-blended ring at the cut is left out)."""
    pos = {int(v): i for i, v in enumerate(body.anny.base_mesh_vertex_indices.tolist())}
    base = hand.anny.base_mesh_vertex_indices.tolist()
    pairs = [(i, pos[int(v)]) for i, v in enumerate(base) if int(v) in pos]
    if not pairs:
        raise BodyModelError(f"{hand.name}: no vertex in common with {body.name}")
    hand_ids = torch.tensor([p[0] for p in pairs])
    body_ids = torch.tensor([p[1] for p in pairs])
    subtree = torch.tensor([body.bone_index(b) for b in hand.bone_labels if b != "root"])
    w = body.anny.vertex_bone_weights[body_ids]
    idx = body.anny.vertex_bone_indices[body_ids]
    inside = (torch.isin(idx, subtree.to(idx.device)) | (w == 0)).all(1).cpu()
    return hand_ids[inside], body_ids[inside]


def anny_part_vertex_ids(body) -> dict[str, Tensor]:
    """The Anny whole body's vertices of each part: ``lhand`` / ``rhand`` (those that move with the
    hand alone, :func:`anny_hand_vertex_map`) and ``face`` (the head part model's vertices, neck
    included), as indices into ``body``'s mesh; for per-part mesh errors of whole-body results."""
    from neuralannot.bodies import get_body_model

    pos = {int(v): i for i, v in enumerate(body.anny.base_mesh_vertex_indices.tolist())}
    head = get_body_model("anny", "face").anny.base_mesh_vertex_indices.tolist()
    return {
        "lhand": anny_hand_vertex_map(body, get_body_model("anny", "lhand"))[1],
        "rhand": anny_hand_vertex_map(body, get_body_model("anny", "hand"))[1],
        "face": torch.tensor(sorted(pos[int(v)] for v in head if int(v) in pos)),
    }
