"""Analytic swing solve (bodies/swing_ik.py): attachments, exact reach, twist kept, masks, gradients."""

import pytest
import roma
import torch

from neuralannot.bodies.base import BodyModelError
from neuralannot.bodies.joint_names import get_joint_names
from neuralannot.bodies.joints import get_regressor
from neuralannot.bodies.swing_ik import SwingSolver
from neuralannot.geometry.rotations import twist_angle


@pytest.fixture(scope="module")
def solver(anny_body):
    return SwingSolver(anny_body, get_regressor(anny_body, "h36m17"))


def _posed(body, reg, B, gen):
    p = body.default_params(batch_size=B)
    p["phenotype"] = torch.rand(B, 6, generator=gen)
    p["body_pose"] = roma.rotvec_to_rotmat(0.35 * torch.randn(B, 21, 3, generator=gen))
    p["root_pose"] = roma.rotvec_to_rotmat(torch.randn(B, 3, generator=gen))
    p["trans"] = torch.randn(B, 3, generator=gen)
    return p, reg(body(p, vertex_ids=reg.vertex_ids))


def _keypoints(body, reg, p):
    return reg(body(p, vertex_ids=reg.vertex_ids))


def test_attachments_follow_the_skeleton(solver):
    names = get_joint_names("h36m17")
    att = dict(zip(names, solver.attach, strict=True))
    # a keypoint is carried by the highest frame that holds it fixed: hips by the pelvis, knees by hips, ...
    assert att["root"] == att["left_hip"] == att["right_hip"] == 0
    assert (att["left_knee"], att["left_foot"], att["right_knee"]) == (1, 4, 2)
    assert (att["left_elbow"], att["left_wrist"], att["thorax"]) == (16, 18, 9)
    assert att["spine"] == -1  # midpoint of pelvis and thorax: no single frame carries it


def test_limb_swings_reach_the_targets_and_keep_the_twist(anny_body, solver, gen):
    reg = solver.regressor
    gt, target = _posed(anny_body, reg, 16, gen)
    pred = dict(gt)
    limbs = [0, 1, 3, 4, 15, 16, 17, 18]  # hips, knees, shoulders, elbows (body_pose slots)
    noise = torch.zeros(16, 21, 3)
    noise[:, limbs] = 0.4 * torch.randn(16, len(limbs), 3, generator=gen)
    pred["body_pose"] = gt["body_pose"] @ roma.rotvec_to_rotmat(noise)
    pred["root_pose"] = roma.rotvec_to_rotmat(0.3 * torch.randn(16, 3, generator=gen)) @ gt["root_pose"]
    pred["trans"] = torch.zeros(16, 3)
    plain = SwingSolver(anny_body, reg, hinges=False)  # hinges would set the twist (tested below)
    out = plain.solve(pred, target, torch.ones(16, 17, dtype=torch.bool))
    err = (_keypoints(anny_body, reg, out) - target).norm(dim=-1)
    names = get_joint_names("h36m17")
    limb_kp = [names.index(n) for n in ("left_knee", "left_foot", "right_knee", "right_foot", "left_elbow",
                                        "left_wrist", "right_elbow", "right_wrist")]  # fmt: skip
    assert err[:, limb_kp].max() < 2e-3  # m
    # rotations the targets cannot see (twists about the limb axes) are the prediction's
    axes = anny_body.twist_axes()
    tw_pred, tw_out = twist_angle(pred["body_pose"], axes), twist_angle(out["body_pose"], axes)
    tw_gt = twist_angle(gt["body_pose"], axes)
    assert (tw_out - tw_pred)[:, limbs].abs().mean() < 0.5 * (tw_gt - tw_pred)[:, limbs].abs().mean() + 0.02


def test_exact_prediction_is_a_fixed_point(anny_body, solver, gen):
    gt, target = _posed(anny_body, solver.regressor, 8, gen)  # random knees: not hinges
    out = SwingSolver(anny_body, solver.regressor, hinges=False).solve(
        gt, target, torch.ones(8, 17, dtype=torch.bool)
    )
    assert torch.allclose(out["body_pose"], gt["body_pose"], atol=1e-4)
    assert torch.allclose(out["root_pose"], gt["root_pose"], atol=1e-4)
    assert torch.allclose(out["trans"], gt["trans"], atol=1e-4)


def test_missing_targets_keep_the_prediction(anny_body, solver, gen):
    gt, target = _posed(anny_body, solver.regressor, 4, gen)
    pred = dict(gt)
    pred["body_pose"] = gt["body_pose"] @ roma.rotvec_to_rotmat(0.3 * torch.randn(4, 21, 3, generator=gen))
    valid = torch.ones(4, 17, dtype=torch.bool)
    names = get_joint_names("h36m17")
    valid[:, names.index("left_wrist")] = False  # the left elbow (slot 18) has nothing to aim at
    out = solver.solve(pred, target, valid)
    W_pred = solver.global_rotations(pred["root_pose"], pred["body_pose"])
    W_out = solver.global_rotations(out["root_pose"], out["body_pose"])
    # the elbow's rotation relative to its parent is unchanged
    rel = lambda W: W[:, 16].transpose(-1, -2) @ W[:, 18]  # noqa: E731
    assert torch.allclose(rel(W_out), rel(W_pred), atol=1e-5)
    assert torch.isfinite(out["body_pose"]).all()


def test_gradients_reach_shape_and_are_finite(anny_body, solver, gen):
    gt, target = _posed(anny_body, solver.regressor, 4, gen)
    pred = {k: v.clone() for k, v in gt.items()}
    pred["phenotype"] = torch.full((4, 6), 0.5, requires_grad=True)
    rot6 = torch.zeros(4, 21, 3, requires_grad=True)
    pred["body_pose"] = roma.rotvec_to_rotmat(rot6)  # identity: swings of up to 180 degrees
    out = solver.solve(pred, target, torch.ones(4, 17, dtype=torch.bool))
    loss = (_keypoints(anny_body, solver.regressor, out) + out["trans"][:, None] - target).abs().mean()
    loss.backward()
    assert torch.isfinite(pred["phenotype"].grad).all() and pred["phenotype"].grad.abs().sum() > 0
    assert torch.isfinite(rot6.grad).all()


def test_models_outside_the_convention_are_refused(anny_hand, anny_head, monkeypatch):
    # read in the axes of its output (the wrist frame), Anny's hand rotates its fingers about other axes
    monkeypatch.setattr(type(anny_hand), "native_frame", property(lambda self: torch.eye(3)))
    with pytest.raises(BodyModelError, match="convention"):
        SwingSolver(anny_hand, get_regressor(anny_hand, "hand21"))
    with pytest.raises(BodyModelError, match="swing solver"):
        SwingSolver(anny_head, get_regressor(anny_head, "face68"))


def _posed_hand(hand, reg, B, gen):
    p = hand.default_params(batch_size=B)
    p["phenotype"] = torch.rand(B, 6, generator=gen)
    p["phenotype"][:, 1] = 0.55 + 0.4 * p["phenotype"][:, 1]  # adults: finger bones over MIN_LEVER
    p["hand_pose"] = roma.rotvec_to_rotmat(0.4 * torch.randn(B, 15, 3, generator=gen))
    p["root_pose"] = roma.rotvec_to_rotmat(torch.randn(B, 3, generator=gen))
    p["trans"] = 0.1 * torch.randn(B, 3, generator=gen)
    return p, _keypoints(hand, reg, p)


def test_hand_fingers_swing_onto_their_targets(anny_hand, gen):
    # Anny's hand is output in its wrist's reference frame; its rotations act in the native axes
    reg = get_regressor(anny_hand, "hand21")
    solver = SwingSolver(anny_hand, reg)
    names = get_joint_names("hand21")
    att = dict(zip(names, solver.attach, strict=True))
    assert att["wrist"] == att["index1"] == att["pinky1"] == 0 and att["thumb2"] == 1 and att["index4"] == 6
    gt, target = _posed_hand(anny_hand, reg, 12, gen)
    valid = torch.ones(12, 21, dtype=torch.bool)
    fixed = solver.solve(gt, target, valid)
    assert torch.allclose(fixed["hand_pose"], gt["hand_pose"], atol=1e-4)
    pred = dict(gt)
    pred["hand_pose"] = gt["hand_pose"] @ roma.rotvec_to_rotmat(0.4 * torch.randn(12, 15, 3, generator=gen))
    pred["root_pose"] = roma.rotvec_to_rotmat(0.3 * torch.randn(12, 3, generator=gen)) @ gt["root_pose"]
    pred["trans"] = torch.zeros(12, 3)
    before = (_keypoints(anny_hand, reg, pred) - target).norm(dim=-1)
    err = (_keypoints(anny_hand, reg, solver.solve(pred, target, valid)) - target).norm(dim=-1)
    tips = [names.index(f"{f}4") for f in ("thumb", "index", "middle", "ring", "pinky")]
    heads = [k for k in range(21) if k not in tips]
    assert before.mean() > 0.01 and err[:, heads].max() < 1e-4  # m
    assert err[:, tips].max() < 5e-3  # skinned fingertip vertices: nearly rigid


def test_hinges_recover_the_twist_of_thighs_and_upper_arms(anny_body, solver, gen):
    """Knees and elbows bend about their hinge axes: their plane fixes the upper bone's twist."""
    from neuralannot.bodies.anny import BODY_SLOTS, HINGE_AXES

    slots = [n for n, _ in BODY_SLOTS]
    B = 16
    gt, _ = _posed(anny_body, solver.regressor, B, gen)
    rv = 0.35 * torch.randn(B, 21, 3, generator=gen)
    for name, axis in HINGE_AXES.items():  # pure hinges, clearly bent (30-90 degrees)
        angle = torch.rand(B, 1, generator=gen) * 1.0 + 0.5
        rv[:, slots.index(name)] = angle * torch.tensor(axis)
    gt["body_pose"] = roma.rotvec_to_rotmat(rv)
    target = _keypoints(anny_body, solver.regressor, gt)
    upper = [slots.index(n) for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder")]
    axes = anny_body.twist_axes()
    twist = torch.zeros(B, 21, 3)
    twist[:, upper] = (0.6 * torch.randn(B, 4, 1, generator=gen)) * axes[upper]
    pred = {**gt, "body_pose": gt["body_pose"] @ roma.rotvec_to_rotmat(twist), "trans": torch.zeros(B, 3)}
    valid = torch.ones(B, 17, dtype=torch.bool)
    err = {}
    for hinges in (False, True):
        out = SwingSolver(anny_body, solver.regressor, hinges=hinges).solve(pred, target, valid)
        err[hinges] = roma.rotmat_geodesic_distance(out["body_pose"][:, upper], gt["body_pose"][:, upper])
    assert err[False].mean() > 0.2  # the twist error of the prediction stays without hinges
    assert err[True].mean() < 0.05, err[True]  # radians


def test_swing_of_opposite_directions_is_a_half_turn():
    from neuralannot.bodies.swing_ik import _swing

    u = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.3, 0.9], [0.2, -0.5, 0.1]])
    for v in (-u, torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])):
        R = roma.unitquat_to_rotmat(_swing(u, v))
        moved = (R @ u[..., None])[..., 0]
        assert torch.allclose(
            moved / moved.norm(dim=-1, keepdim=True), v / v.norm(dim=-1, keepdim=True), atol=1e-5
        )


def test_spine_top_twists_to_fit_the_shoulders(anny_body, solver, gen):
    """The thorax alone cannot show the upper spine's twist; the shoulders its children carry can."""
    names = get_joint_names("h36m17")
    spine3 = solver.body.joint_names.index("spine3")
    entry = next(e for e in solver.plan if e[0] == spine3)
    assert [names[k] for k in entry[1]] == ["thorax", "left_shoulder", "right_shoulder"]
    assert solver.primary[spine3] == 1  # swings toward the thorax only
    reg = solver.regressor
    gt, target = _posed(anny_body, reg, 8, gen)
    pred = dict(gt)
    twist = torch.zeros(8, 21, 3)
    twist[:, 8, 2] = 0.5  # spine3 (body_pose slot 8) turned 29 degrees about the body's vertical (Z)
    pred["body_pose"] = gt["body_pose"] @ roma.rotvec_to_rotmat(twist)
    valid = torch.ones(8, 17, dtype=torch.bool)
    out = solver.solve(pred, target, valid)
    err = roma.rotmat_geodesic_distance(out["body_pose"][:, 8], gt["body_pose"][:, 8])
    before = roma.rotmat_geodesic_distance(pred["body_pose"][:, 8], gt["body_pose"][:, 8])
    assert before.min() > 0.45 and err.max() < 0.1  # rad


def test_swing_weight_stops_between_the_prediction_and_the_targets(anny_hand, gen):
    """``weight`` w < 1: the fingers reach ``K + w (targets − K)`` (K: the prediction's keypoints after
    the root alignment), so with noisy targets they land part-way; w = 1 is the exact solve."""
    reg = get_regressor(anny_hand, "hand21")
    gt, target = _posed_hand(anny_hand, reg, 8, gen)
    valid = torch.ones(8, 21, dtype=torch.bool)
    pred = dict(gt)
    pred["hand_pose"] = gt["hand_pose"] @ roma.rotvec_to_rotmat(0.3 * torch.randn(8, 15, 3, generator=gen))
    pred["trans"] = torch.zeros(8, 3)
    full = SwingSolver(anny_hand, reg).solve(pred, target, valid)
    half = SwingSolver(anny_hand, reg, weight=0.5).solve(pred, target, valid)
    same = SwingSolver(anny_hand, reg, weight=1.0).solve(pred, target, valid)
    torch.testing.assert_close(same["hand_pose"], full["hand_pose"])

    def err(p):
        k = _keypoints(anny_hand, reg, p)
        return (k - k.mean(1, keepdim=True) - (target - target.mean(1, keepdim=True))).norm(dim=-1).mean()

    e_pred, e_half, e_full = err(pred), err(half), err(full)
    assert e_full < 0.1 * e_pred and 0.2 * e_pred < e_half < 0.8 * e_pred, (e_pred, e_half, e_full)
    with pytest.raises(ValueError, match="swing weight"):
        SwingSolver(anny_hand, reg, weight=0.0)
