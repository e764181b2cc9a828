"""Anny wrappers: agreement with anny's own forward, frames, fast paths, parameter validation."""

import math

import pytest
import roma
import torch

from neuralannot.bodies import BodyModelError, load_body_model
from neuralannot.bodies.anny import ANNY_TO_CANONICAL, BODY_SLOTS
from neuralannot.bodies.specs import ANNY_FACIAL_ACTIONS
from neuralannot.io.pseudo_gt import PARAM_SHAPES

pytestmark = pytest.mark.anny


def random_params(model, batch, gen, scale=0.3):
    p = model.default_params(batch)
    for name, spec in model.param_specs.items():
        if name not in p:
            continue
        if spec.kind == "rotation":
            p[name] = scale * torch.randn(batch, *spec.shape, generator=gen)
        elif spec.bounds is not None:
            p[name] = torch.rand(batch, *spec.shape, generator=gen)
    p["trans"] = torch.randn(batch, 3, generator=gen)
    return p


def test_body_matches_native_anny_forward(anny_body, gen):
    p = random_params(anny_body, 3, gen)
    out = anny_body(p)
    delta = anny_body._delta_transforms(p, 3)
    ref = anny_body.anny(pose_parameters=delta, phenotype_kwargs=p["phenotype"])
    G = roma.rotvec_to_rotmat(p["root_pose"]) @ ANNY_TO_CANONICAL
    ref_v = ref["vertices"] @ G.transpose(1, 2) + p["trans"][:, None]
    torch.testing.assert_close(out.vertices, ref_v, atol=1e-5, rtol=0)
    ref_j = ref["bone_poses"][..., :3, 3] @ G.transpose(1, 2) + p["trans"][:, None]
    torch.testing.assert_close(out.extras["bone_heads"], ref_j, atol=1e-5, rtol=0)


def test_body_rest_frame_is_y_up_facing_z(anny_body):
    out = anny_body(anny_body.default_params(1))
    v, j = out.vertices[0], out.joints[0]
    names = anny_body.joint_names
    assert torch.allclose(j[0], torch.zeros(3), atol=1e-6)  # pelvis at origin
    assert j[names.index("head"), 1] > 0.5  # head up (+Y)
    assert j[names.index("left_wrist"), 0] > 0.3  # model's left is +X
    assert j[names.index("left_ankle"), 1] < -0.7
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.55 < height < 1.70  # default phenotype: 1.625 m (notes/anny.md)
    toes = j[names.index("left_foot")]
    assert toes[2] > j[names.index("left_ankle"), 2]  # feet point forward (+Z)


def test_joint_names_and_parents(anny_body, anny_hand, anny_head):
    assert anny_body.joint_names[1:] == [n for n, _ in BODY_SLOTS]
    for m in (anny_body, anny_hand, anny_head):
        assert len(m.parents) == len(m.joint_names)
        assert m.parents[0] == -1 and all(0 <= p < i for i, p in enumerate(m.parents) if i)


def test_fast_paths_match_full_forward(anny_body, gen):
    p = random_params(anny_body, 4, gen)
    full = anny_body(p)
    joints_only = anny_body(p, return_vertices=False)
    assert joints_only.vertices is None
    torch.testing.assert_close(joints_only.joints, full.joints)
    ids = torch.tensor([0, 17, 4000, 13000])
    sub = anny_body(p, vertex_ids=ids)
    torch.testing.assert_close(sub.vertices, full.vertices[:, ids], atol=1e-5, rtol=0)
    # the gathered subset is cached: a second subset of the same length, then the first again
    other = torch.tensor([1, 2, 3, 13717])
    torch.testing.assert_close(
        anny_body(p, vertex_ids=other).vertices, full.vertices[:, other], atol=1e-5, rtol=0
    )
    torch.testing.assert_close(anny_body(p, vertex_ids=ids).vertices, sub.vertices)


def test_vertex_subset_gradients_match_full_mesh(anny_body, gen):
    p = {k: v.clone().requires_grad_() for k, v in random_params(anny_body, 2, gen).items()}
    ids = torch.arange(0, 13718, 997)
    anny_body(p, vertex_ids=ids).vertices.square().sum().backward()
    sub = {k: v.grad.clone() for k, v in p.items()}
    for v in p.values():
        v.grad = None
    anny_body(p).vertices[:, ids].square().sum().backward()
    for k, v in p.items():
        torch.testing.assert_close(sub[k], v.grad, atol=1e-4, rtol=1e-4)


def test_rotmat_input_equals_axis_angle(anny_body, gen):
    p = random_params(anny_body, 2, gen)
    q = dict(
        p, body_pose=roma.rotvec_to_rotmat(p["body_pose"]), root_pose=roma.rotvec_to_rotmat(p["root_pose"])
    )
    torch.testing.assert_close(anny_body(p).vertices, anny_body(q).vertices, atol=1e-5, rtol=0)


def test_root_pose_rotates_rigidly(anny_body):
    p = anny_body.default_params(1)
    base = anny_body(p).vertices[0]
    p["root_pose"] = torch.tensor([[0.0, math.pi / 2, 0.0]])
    p["trans"] = torch.tensor([[1.0, 2.0, 3.0]])
    rot = anny_body(p).vertices[0]
    R = roma.rotvec_to_rotmat(torch.tensor([0.0, math.pi / 2, 0.0]))
    torch.testing.assert_close(rot, base @ R.T + torch.tensor([1.0, 2.0, 3.0]), atol=1e-5, rtol=0)


def test_knee_slot_bends_only_the_leg(anny_body):
    p = anny_body.default_params(1)
    rest = anny_body(p)
    k = anny_body.joint_names.index("left_knee") - 1
    p["body_pose"][0, k] = torch.tensor([1.0, 0.0, 0.0])
    bent = anny_body(p)
    moved = (bent.joints - rest.joints).norm(dim=-1)[0]
    names = anny_body.joint_names
    assert moved[names.index("left_ankle")] > 0.1
    assert moved[names.index("right_ankle")] < 1e-6 and moved[names.index("head")] < 1e-6


def test_phenotype_changes_height_and_gradients_flow(anny_body):
    p = anny_body.default_params(2)
    p["phenotype"][0, 4] = 0.0
    p["phenotype"][1, 4] = 1.0
    p["phenotype"].requires_grad_(True)
    p["body_pose"].requires_grad_(True)
    v = anny_body(p).vertices
    h = v[..., 1].amax(1) - v[..., 1].amin(1)
    assert h[1] > h[0] + 0.3
    h.sum().backward()
    assert p["phenotype"].grad.abs().sum() > 0 and torch.isfinite(p["body_pose"].grad).all()


def test_specs_fit_the_pseudo_gt_schema(anny_wholebody, anny_hand, anny_head):
    """PARAM_SHAPES is derived from bodies/specs.py with ANNY_FACIAL_ACTIONS; the models count Anny's."""
    for model in (anny_wholebody, anny_hand, anny_head):
        assert {n: s.shape for n, s in model.param_specs.items()}.items() <= PARAM_SHAPES["anny"].items()
    assert len(anny_head.anny.facial_action_labels) == ANNY_FACIAL_ACTIONS


def test_wholebody_hands_and_face(anny_wholebody, anny_body):
    assert anny_wholebody.part == "wholebody"
    assert {"lhand_pose", "rhand_pose", "expression"} <= set(anny_wholebody.param_specs)
    p = anny_wholebody.default_params(1)
    rest = anny_wholebody(p).vertices
    p2 = dict(p, rhand_pose=torch.full((1, 15, 3), 0.0))
    p2["rhand_pose"][0, :, 0] = 0.8  # curl all right fingers
    p2["expression"] = torch.zeros(1, 52)
    p2["expression"][0, anny_wholebody.anny.facial_action_labels.index("jawOpen")] = 1.0
    moved = (anny_wholebody(p2).vertices - rest).norm(dim=-1)[0]
    assert (moved > 0.01).sum() > 100
    torch.testing.assert_close(anny_body(anny_body.default_params(1)).vertices, rest, atol=1e-5, rtol=0)


def test_hand_and_head_models(anny_hand, anny_head):
    out = anny_hand(anny_hand.default_params(2))
    assert out.vertices.shape == (2, 1609, 3) and out.joints.shape == (2, 16, 3)
    assert torch.allclose(out.joints[:, 0], torch.zeros(3), atol=1e-6)  # wrist at origin
    assert out.joints[0, 1:, 1].min() > 0  # fingers along +Y
    head = anny_head(anny_head.default_params(1))
    assert head.vertices.shape == (1, 4538, 3)
    names = anny_head.joint_names
    assert head.joints[0, names.index("head"), 1] > 0.05  # +Y up
    assert head.vertices[0, :, 2].max() > 0.1  # face toward +Z


def _signed_volume(v: torch.Tensor, faces: torch.Tensor) -> float:
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    return float((a * torch.linalg.cross(b, c)).sum() / 6)


def test_left_hand_model_mirrors_right(gen):
    import numpy as np

    from neuralannot.io.records import mirror_to_left

    left = load_body_model("anny", part="lhand")
    right = load_body_model("anny", part="hand")
    B = 3
    p = right.default_params(B)
    p["phenotype"] = 0.3 + 0.4 * torch.rand(B, 6, generator=gen)
    p["hand_pose"] = 0.4 * torch.randn(B, 15, 3, generator=gen)
    p["root_pose"] = torch.randn(B, 3, generator=gen)
    p["trans"] = 0.1 * torch.randn(B, 3, generator=gen)
    rows = [mirror_to_left({k: v[i].numpy() for k, v in p.items()}, right) for i in range(B)]
    pl = {k: torch.from_numpy(np.stack([r[k] for r in rows])) for k in p}
    # the left-hand mesh of the mirrored parameters is the mirrored right-hand mesh, vertex for vertex
    out_l, out_r = left(pl), right(p)
    M = torch.tensor([-1.0, 1.0, 1.0])
    torch.testing.assert_close(out_l.vertices, out_r.vertices * M, atol=1e-5, rtol=0)
    torch.testing.assert_close(out_l.joints, out_r.joints * M, atol=1e-5, rtol=0)
    # and its faces wind the other way, so both meshes face outward
    vol_l = _signed_volume(out_l.vertices[0], left.faces)
    vol_r = _signed_volume(out_r.vertices[0], right.faces)
    assert vol_l > 0 and vol_r > 0 and abs(vol_l - vol_r) < 0.05 * vol_r


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p: p.update(body_pose=torch.zeros(2, 20, 3)), "body_pose.*shape"),
        (lambda p: p.update(body_pose=torch.zeros(2, 20, 3, 3)), "body_pose.*neither axis-angle"),
        (lambda p: p.update(root_pose=torch.zeros(3, 3)), "batch size"),
        (lambda p: p["phenotype"].__setitem__((1, 2), float("nan")), "NaN.*rows \\[1\\]"),
        (lambda p: p.update(foo=torch.zeros(2, 3)), "unknown parameter"),
        (lambda p: p.pop("trans"), "missing parameter"),
        (lambda p: p.update(trans=[[0, 0, 0]] * 2), "torch.Tensor"),
    ],
)
def test_bad_params_raise_clear_errors(anny_body, change, match):
    p = anny_body.default_params(2)
    change(p)
    with pytest.raises(BodyModelError, match=match):
        anny_body(p)


def test_loader_errors():
    with pytest.raises(BodyModelError, match="unknown part"):
        load_body_model("anny", part="tail")
    with pytest.raises(BodyModelError, match="unknown body model"):
        load_body_model("not-a-model")


def test_twist_axes_follow_the_limbs(anny_body):
    from neuralannot.geometry.rotations import twist_angle

    axes = anny_body.twist_axes()
    names = [n for n, _ in BODY_SLOTS]
    norms = axes.norm(dim=-1)
    ends = {"left_foot", "right_foot", "head", "left_wrist", "right_wrist"}
    assert all((norms[i] == 0) == (n in ends) for i, n in enumerate(names)), norms
    # a pure twist of the left knee (about its limb axis) leaves the ankle where it was
    knee, ankle = names.index("left_knee"), names.index("left_ankle")
    pose = torch.zeros(1, 21, 3)
    pose[0, knee] = 0.8 * axes[knee]
    params = anny_body.default_params(batch_size=1)
    moved = anny_body(dict(params, body_pose=pose), return_vertices=False).joints
    rest = anny_body(params, return_vertices=False).joints
    assert (moved[0, ankle + 1] - rest[0, ankle + 1]).norm() < 1e-4
    angle = twist_angle(roma.rotvec_to_rotmat(pose[0, knee]), axes[knee]).item()
    assert angle == pytest.approx(0.8, abs=1e-5)


def test_hand_twist_axes_follow_the_finger_bones(anny_hand):
    """A twist of a finger slot about its axis leaves the next joint (the fingertip for the distal
    slots) where it was, and moves the finger's vertices: the axis is the bone's, in the pose's axes."""
    axes = anny_hand.twist_axes()
    assert axes.shape == (15, 3) and torch.allclose(axes.norm(dim=-1), torch.ones(15), atol=1e-5)
    params = anny_hand.default_params(batch_size=1)
    rest = anny_hand(params)
    for slot in (0, 4, 5, 14):  # thumb base, index middle and distal, pinky distal
        pose = torch.zeros(1, 15, 3)
        pose[0, slot] = 0.8 * axes[slot]
        moved = anny_hand(dict(params, hand_pose=pose))
        if slot % 3 < 2:  # the child joint
            child = moved.joints[0, slot + 2] - rest.joints[0, slot + 2]
        else:  # the fingertip (hand21: every fourth from thumb4)
            tip = 4 + 4 * (slot // 3)
            child = (anny_hand.keypoints(moved, "hand21") - anny_hand.keypoints(rest, "hand21"))[0, tip]
        assert child.norm() < 1e-5, (slot, child)
        assert (moved.vertices - rest.vertices).norm(dim=-1).max() > 2e-3, slot
