"""Part → whole-body integration: hand orientation, finger and face transfer, vertex equality at the
wrist, missing parts (Anny), and the same rule for SMPL-X with MANO / FLAME (tiny fixture files)."""

from __future__ import annotations

import warnings

import pytest
import roma
import torch

import smplx_fixtures as fx
from neuralannot.bodies import BodyModelError, load_body_model
from neuralannot.bodies.integrate import (
    HEAD_SLOT,
    WRIST_SLOT,
    _anny_frames,
    anny_hand_vertex_map,
    anny_head_rotation,
    anny_part_vertex_ids,
    integrate,
    parent_global_rotation,
)

B = 3


@pytest.fixture(scope="module")
def anny_lhand():
    return load_body_model("anny", part="lhand")


def _rand_rot(n, g, scale=1.0, shape=()):
    return scale * torch.randn(n, *shape, 3, generator=g)


def anny_parts(body, g, phenotype=None):
    """Random body, left/right hand (``AnnyHand`` params) and face parameters, B samples."""
    ph = torch.rand(B, 6, generator=g) if phenotype is None else phenotype
    bp = {"root_pose": _rand_rot(B, g), "body_pose": _rand_rot(B, g, 0.3, (21,)), "phenotype": ph,
          "trans": torch.randn(B, 3, generator=g)}  # fmt: skip
    hand = lambda: {"root_pose": _rand_rot(B, g), "hand_pose": _rand_rot(B, g, 0.3, (15,)),  # noqa: E731
                    "phenotype": ph, "trans": torch.randn(B, 3, generator=g)}  # fmt: skip
    face = {"expression": torch.rand(B, 52, generator=g), "root_pose": _rand_rot(B, g)}
    return bp, hand(), hand(), face


def _wrist_frame(body, params, side):
    """Output-frame rotation of the posed wrist bone of the integrated body (B, 3, 3)."""
    W, _, G = _anny_frames(body, params)
    return G @ W[:, body.bone_index(f"wrist.{side[0].upper()}")]


@pytest.mark.anny
def test_anny_hand_orientation_and_fingers_transfer(anny_wholebody, gen):
    body = anny_wholebody
    bp, lh, rh, face = anny_parts(body, gen)
    with torch.no_grad():
        out, valid = integrate(body, bp, lh, rh, face)
    assert all(v.all() for v in valid.values())
    for side, part in (("left", lh), ("right", rh)):
        with torch.no_grad():
            R = _wrist_frame(body, out, side)
        torch.testing.assert_close(R, roma.rotvec_to_rotmat(part["root_pose"]), atol=1e-5, rtol=0)
        assert torch.equal(out[f"{side[0]}hand_pose"], part["hand_pose"])  # fingers copied exactly
    assert torch.equal(out["expression"], face["expression"])
    # body pose outside the wrists, shape, global rotation and translation stay the body's
    keep = [i for i in range(21) if i not in WRIST_SLOT.values()]
    assert torch.equal(out["body_pose"][:, keep], bp["body_pose"][:, keep])
    for k in ("root_pose", "phenotype", "trans"):
        assert torch.equal(out[k], bp[k])
    # the wrist's local rotation changed: the hand's own orientation is not the body's guess
    assert not torch.allclose(out["body_pose"][:, 19], bp["body_pose"][:, 19], atol=1e-3)


@pytest.mark.anny
@pytest.mark.parametrize("side", ["right", "left"])
def test_anny_hand_vertices_equal_part_result_at_wrist(anny_wholebody, anny_hand, anny_lhand, gen, side):
    body, hand = anny_wholebody, (anny_hand if side == "right" else anny_lhand)
    bp, lh, rh, _ = anny_parts(body, gen)
    part = rh if side == "right" else lh
    with torch.no_grad():
        out, _ = integrate(body, bp, lh, rh, None)
        vb = body(out)
        vh = hand(part)
    h_ids, b_ids = anny_hand_vertex_map(body, hand)
    assert len(h_ids) > 1000  # all but the forearm-blended ring at the cut
    wrist = body.bone_index(f"wrist.{side[0].upper()}")
    wrist_b = vb.extras["bone_heads"][:, wrist]
    wrist_h = vh.joints[:, 0]
    a = vb.vertices[:, b_ids] - wrist_b[:, None]
    b = vh.vertices[:, h_ids] - wrist_h[:, None]
    assert (a - b).norm(dim=-1).max() <= 1e-5
    # without integration (the body's own wrist and fingers) the hand is elsewhere
    with torch.no_grad():
        raw = body(bp)
    c = raw.vertices[:, b_ids] - raw.extras["bone_heads"][:, wrist][:, None]
    assert (c - b).norm(dim=-1).max() > 1e-2


@pytest.mark.anny
def test_anny_head_turns_to_the_face_part(anny_wholebody, anny_head, gen):
    """With the face part's head rotation the body's head bone gets it exactly, the face vertices that
    ride on the head alone equal the face part's once aligned at the head joint, and nothing else in
    the body's pose moves; a sample whose face is invalid keeps the body's head."""
    body = anny_wholebody
    bp, _, _, face = anny_parts(body, gen)
    fp = {"root_pose": _rand_rot(B, gen), "head_pose": _rand_rot(B, gen, 0.3), "phenotype": bp["phenotype"],
          "expression": face["expression"], "trans": torch.randn(B, 3, generator=gen)}  # fmt: skip
    mask = torch.tensor([True, True, False])
    with torch.no_grad():
        R_head = anny_head_rotation(anny_head, fp)
        out, _ = integrate(body, bp, face={"expression": fp["expression"], "head_rotation": R_head},
                           face_valid=mask)  # fmt: skip
        vb, vf = body(out), anny_head(fp)
        W, _, G = _anny_frames(body, out)
    torch.testing.assert_close((G @ W[:, body.bone_index("head")])[:2], R_head[:2], atol=1e-5, rtol=0)
    keep = [i for i in range(21) if i != HEAD_SLOT]
    assert torch.equal(out["body_pose"][:, keep], bp["body_pose"][:, keep])
    assert torch.equal(out["body_pose"][2], bp["body_pose"][2])  # invalid face: the body's head
    assert not torch.allclose(out["body_pose"][:2, HEAD_SLOT], bp["body_pose"][:2, HEAD_SLOT], atol=1e-3)
    # the head-only vertices (skinned to head / eyes / jaw bones) of the two meshes, at the head joint
    pos = {int(v): i for i, v in enumerate(body.anny.base_mesh_vertex_indices.tolist())}
    pairs = [(i, pos[int(v)]) for i, v in enumerate(anny_head.anny.base_mesh_vertex_indices.tolist())
             if int(v) in pos]  # fmt: skip
    f_ids, b_ids = (torch.tensor(x) for x in zip(*pairs, strict=True))
    head_bones = [body.bone_index(b) for b in anny_head.bone_labels
                  if b != "root" and not b.startswith("neck")]  # fmt: skip
    idx, w = body.anny.vertex_bone_indices[b_ids], body.anny.vertex_bone_weights[b_ids]
    only_head = (torch.isin(idx, torch.tensor(head_bones)) | (w == 0)).all(1)
    assert int(only_head.sum()) > 2000
    a = vb.vertices[:2, b_ids[only_head]] - vb.extras["bone_heads"][:2, body.bone_index("head")][:, None]
    b = vf.vertices[:2, f_ids[only_head]] - vf.extras["bone_heads"][:2, anny_head.bone_index("head")][:, None]
    assert (a - b).norm(dim=-1).max() <= 1e-5


@pytest.mark.anny
def test_anny_missing_parts_keep_body_values(anny_wholebody, gen):
    body = anny_wholebody
    bp, lh, rh, face = anny_parts(body, gen)
    bp["lhand_pose"] = _rand_rot(B, gen, 0.2, (15,))
    mask = torch.tensor([True, False, True])
    with torch.no_grad():
        out, valid = integrate(body, bp, None, rh, face, rhand_valid=mask)
    assert not valid["lhand_valid"].any() and valid["face_valid"].all()
    assert torch.equal(valid["rhand_valid"], mask)
    assert torch.equal(out["lhand_pose"], bp["lhand_pose"])  # no left hand: the body's own fingers
    assert torch.equal(out["body_pose"][:, WRIST_SLOT["left"]], bp["body_pose"][:, WRIST_SLOT["left"]])
    assert torch.equal(out["rhand_pose"][1], torch.zeros(15, 3))  # invalid row: body had none → rest
    assert torch.equal(out["body_pose"][1], bp["body_pose"][1])
    assert torch.equal(out["rhand_pose"][0], rh["hand_pose"][0])
    out, valid = integrate(body, bp)
    assert not any(v.any() for v in valid.values())
    assert torch.equal(out["expression"], torch.zeros(B, 52))


@pytest.mark.anny
def test_integrate_bad_input(anny_wholebody, anny_body, gen):
    bp, lh, rh, _ = anny_parts(anny_wholebody, gen)
    with pytest.raises(BodyModelError, match="whole-body"):
        integrate(anny_body, bp, lh, rh)
    with pytest.raises(BodyModelError, match="hand_pose"):
        integrate(anny_wholebody, bp, {"root_pose": lh["root_pose"]})
    with pytest.raises(BodyModelError, match="batch"):
        integrate(anny_wholebody, bp, {k: v[:1] for k, v in lh.items()})
    with pytest.raises(BodyModelError, match="head_rotation"):
        integrate(anny_wholebody, bp, face={"expression": torch.zeros(B, 52),
                                            "head_rotation": torch.zeros(1, 3)})  # fmt: skip


# --- SMPL-X + MANO + FLAME ---------------------------------------------------------------------------
def test_anny_part_vertex_ids_move_with_their_part_only(anny_wholebody, gen):
    ids = anny_part_vertex_ids(anny_wholebody)
    assert all(len(v) > 500 for v in ids.values())
    assert not set(ids["lhand"].tolist()) & set(ids["rhand"].tolist())
    assert not set(ids["face"].tolist()) & (set(ids["lhand"].tolist()) | set(ids["rhand"].tolist()))
    rest = {"root_pose": torch.zeros(1, 3), "body_pose": torch.zeros(1, 21, 3), "trans": torch.zeros(1, 3),
            "phenotype": torch.full((1, 6), 0.5)}
    bent = {**rest, "body_pose": rest["body_pose"].clone()}
    bent["body_pose"][0, WRIST_SLOT["left"]] = torch.tensor([0.0, 0.0, 1.0])  # the left wrist only
    moved = (anny_wholebody(bent).vertices - anny_wholebody(rest).vertices).norm(dim=-1)[0]
    assert float(moved[ids["lhand"]].min()) > 1e-4  # every left-hand vertex follows the wrist
    assert float(moved[ids["rhand"]].max()) < 1e-7 and float(moved[ids["face"]].max()) < 1e-7


@pytest.fixture(scope="module")
def smplx_models(tmp_path_factory):
    from neuralannot.bodies.smplx_family import load_smplx_family

    root = fx.write_all(tmp_path_factory.mktemp("wb_models"))["root"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {t: load_smplx_family(t, root / t, flat_hand_mean=True) for t in ("smplx", "flame")}


def test_smplx_wrist_global_equals_mano_global(smplx_models, gen):
    from smplx.lbs import batch_rigid_transform

    body, flame = smplx_models["smplx"], smplx_models["flame"]
    bp = {"root_pose": _rand_rot(B, gen), "body_pose": _rand_rot(B, gen, 0.3, (21,)),
          "shape": torch.randn(B, body.num_betas, generator=gen), "trans": torch.randn(B, 3, generator=gen)}
    hands = [{"root_pose": _rand_rot(B, gen), "hand_pose": _rand_rot(B, gen, 0.3, (15,))} for _ in range(2)]
    face = {"jaw_pose": _rand_rot(B, gen, 0.2), "expr": torch.randn(B, flame.num_expression_coeffs + 3,
                                                                      generator=gen)}
    face["head_rotation"] = _rand_rot(B, gen)
    out, valid = integrate(body, bp, hands[0], hands[1], face, face_valid=torch.tensor([1, 1, 0]))
    # independent forward kinematics (smplx's own) of the integrated pose
    rots = roma.rotvec_to_rotmat(torch.cat([out["root_pose"][:, None], out["body_pose"]], 1))
    layer = body.smplx_layer
    J = torch.einsum("jv,bvc->bjc", layer.J_regressor[:22], layer.v_template.expand(B, -1, -1))
    _, A = batch_rigid_transform(rots, J, layer.parents[:22])
    for side, part in (("left", hands[0]), ("right", hands[1])):
        R_wrist = A[:, WRIST_SLOT[side] + 1, :3, :3]
        torch.testing.assert_close(R_wrist, roma.rotvec_to_rotmat(part["root_pose"]), atol=1e-5, rtol=0)
        torch.testing.assert_close(parent_global_rotation(body, out, side),
                                   A[:, body.parents[WRIST_SLOT[side] + 1], :3, :3], atol=1e-5, rtol=0)
        assert torch.equal(out[f"{side[0]}hand_pose"], part["hand_pose"])
    head = A[:, HEAD_SLOT + 1, :3, :3]  # the head joint gets the face's rotation where the face is valid
    torch.testing.assert_close(head[:2], roma.rotvec_to_rotmat(face["head_rotation"][:2]), atol=1e-5, rtol=0)
    assert torch.equal(out["body_pose"][2, HEAD_SLOT], bp["body_pose"][2, HEAD_SLOT])
    n = body.num_expression_coeffs
    assert torch.equal(out["expr"][:2], face["expr"][:2, :n]) and torch.equal(out["expr"][2], torch.zeros(n))
    assert torch.equal(out["jaw_pose"][:2], face["jaw_pose"][:2])
    assert valid["face_valid"].tolist() == [True, True, False]
    with torch.no_grad():
        body(out)  # the integrated parameters pose the model
