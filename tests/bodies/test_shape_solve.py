"""Analytic shape solve (bodies/shape_solve.py): recovery, translation, damping, masks, bounds, gradients."""

import pytest
import roma
import torch

import smplx_fixtures as fx
from neuralannot.bodies.base import BodyModelError
from neuralannot.bodies.joints import get_regressor
from neuralannot.bodies.shape_solve import ShapeSolver


@pytest.fixture(scope="module")
def solver(anny_body):
    return ShapeSolver(anny_body, get_regressor(anny_body, "h36m17"))


def _posed(body, B, gen):
    p = body.default_params(batch_size=B)
    p["phenotype"] = 0.1 + 0.8 * torch.rand(B, 6, generator=gen)
    p["body_pose"] = roma.rotvec_to_rotmat(0.3 * torch.randn(B, 21, 3, generator=gen))
    p["root_pose"] = roma.rotvec_to_rotmat(torch.randn(B, 3, generator=gen))
    p["trans"] = torch.randn(B, 3, generator=gen)
    return p


def _problem(body, solver, B, gen):
    """A posed GT body, its keypoints as targets (moved anywhere: translation is free), all valid, and
    the GT pose with the mean phenotypes as the start."""
    gt = _posed(body, B, gen)
    with torch.no_grad():
        target = solver.keypoints(gt) + gt["trans"][:, None]
    start = {**gt, "phenotype": torch.full((B, 6), 0.5)}
    return gt, target, torch.ones(B, target.shape[1], dtype=torch.bool), start


def _centred_error(solver, params, target):
    d = target - solver.keypoints(params)
    return (d - d.mean(1, keepdim=True)).norm(dim=-1).mean(1)


def test_fast_keypoints_match_the_model(anny_body, solver, gen):
    p = _posed(anny_body, 4, gen)
    reg = solver.reg
    full = reg(anny_body({**p, "trans": torch.zeros(4, 3)}, vertex_ids=reg.vertex_ids))
    torch.testing.assert_close(solver.keypoints(p), full, atol=1e-5, rtol=0)


def test_recovers_the_shape_from_exact_joints(anny_body, solver, gen):
    gt, target, valid, start = _problem(anny_body, solver, 8, gen)
    before = _centred_error(solver, start, target)
    out = solver.solve(start, target, valid, damping=1e-6, iterations=3)
    after = _centred_error(solver, out, target)
    assert before.mean() > 0.03 and after.mean() < 0.1 * before.mean() and after.max() < 0.01
    height = 4  # the phenotype joints see best
    assert (out["phenotype"][:, height] - gt["phenotype"][:, height]).abs().max() < 0.05
    for k in ("body_pose", "root_pose", "trans"):
        assert out[k] is start[k]  # the pose is held


def test_damping_keeps_the_start(anny_body, solver, gen):
    _, target, valid, start = _problem(anny_body, solver, 4, gen)
    out = solver.solve(start, target, valid, damping=1e3)
    assert (out["phenotype"] - 0.5).abs().max() < 1e-3


def test_invalid_joints_are_ignored_and_bounds_hold(anny_body, solver, gen):
    _, target, valid, start = _problem(anny_body, solver, 4, gen)
    valid[:, 3] = False
    clean = solver.solve(start, target, valid, damping=1e-4)
    bad = target.clone()
    bad[:, 3] += 1.0
    torch.testing.assert_close(solver.solve(start, bad, valid, damping=1e-4)["phenotype"], clean["phenotype"])
    far = target * 3.0  # a giant: every phenotype pushed past its bound
    out = solver.solve(start, far, torch.ones_like(valid), damping=1e-6, iterations=2)
    assert out["phenotype"].min() >= 0.0 and out["phenotype"].max() <= 1.0


def test_gradients_reach_the_start_and_the_pose(anny_body, solver, gen):
    gt, target, valid, start = _problem(anny_body, solver, 2, gen)
    start["phenotype"].requires_grad_(True)
    pose = roma.rotmat_to_rotvec(gt["body_pose"]).requires_grad_(True)
    start["body_pose"] = roma.rotvec_to_rotmat(pose)
    out = solver.solve(start, target, valid, damping=6e-4)
    out["phenotype"].sum().backward()
    assert start["phenotype"].grad.abs().sum() > 0 and pose.grad.abs().sum() > 0


def test_smpl_betas(tmp_path, gen):
    from neuralannot.bodies.smplx_family import load_smplx_family

    path, _ = fx.write_smpl(tmp_path)
    model = load_smplx_family("smpl", path)
    solver = ShapeSolver(model, get_regressor(model, "smpl24"))
    assert solver.group == "shape" and solver.fast is None
    B, n = 3, model.param_specs["shape"].shape[0]
    gt = model.default_params(B)
    gt["shape"] = torch.randn(B, n, generator=gen)
    gt["body_pose"] = 0.3 * torch.randn(B, 23, 3, generator=gen)
    with torch.no_grad():
        target = solver.keypoints(gt)
    valid = torch.ones(B, target.shape[1], dtype=torch.bool)
    out = solver.solve({**gt, "shape": torch.zeros(B, n)}, target, valid, damping=1e-8, iterations=2)
    # SMPL joints are linear in the betas at a fixed pose: one step is exact
    torch.testing.assert_close(solver.keypoints(out), target, atol=1e-4, rtol=0)


def test_models_without_one_shape_group_are_refused():
    class NoShape:
        name = "toy"
        param_specs = {}

    with pytest.raises(BodyModelError, match="no single shape group"):
        ShapeSolver(NoShape(), None)


def test_keep_better_takes_each_sample_from_the_closer_fit(anny_body, solver, gen):
    gt, target, valid, _ = _problem(anny_body, solver, 4, gen)
    worse = {**gt, "phenotype": gt["phenotype"].clone()}
    worse["phenotype"][[1, 3]] = 1.0 - worse["phenotype"][[1, 3]]  # samples 1 and 3 move away
    err = solver.error(worse, target, valid)
    assert (err[[0, 2]] < 1e-10).all() and (err[[1, 3]] > 1e-5).all()
    out = solver.keep_better(worse, gt, target, valid)
    torch.testing.assert_close(out["phenotype"], gt["phenotype"])
    out = solver.keep_better(gt, worse, target, valid)
    torch.testing.assert_close(out["phenotype"], gt["phenotype"])
    assert out["body_pose"].shape == gt["body_pose"].shape


def test_faces_solve_their_expression_with_the_shape(anny_head, gen):
    """A face's landmarks see its facial actions: the joint solve (phenotypes + expression) from the
    neutral face recovers a GT expression's landmarks; bodies keep their single shape group."""
    from neuralannot.bodies.shape_solve import solve_groups

    groups = solve_groups(anny_head)
    assert groups == ["phenotype", "expression"]
    face = ShapeSolver(anny_head, get_regressor(anny_head, "face68"), groups)
    B = 4
    gt = anny_head.default_params(batch_size=B)
    gt["expression"] = 0.6 * torch.rand(B, 52, generator=gen) * (torch.rand(B, 52, generator=gen) < 0.15)
    gt["phenotype"] = 0.2 + 0.6 * torch.rand(B, 6, generator=gen)
    with torch.no_grad():
        target = face.keypoints(gt)
    valid = torch.ones(B, target.shape[1], dtype=torch.bool)
    start = {**gt, "expression": torch.zeros(B, 52), "phenotype": torch.full((B, 6), 0.5)}
    solved = face.solve(start, target, valid, damping=1e-6, iterations=3)
    before, after = _centred_error(face, start, target), _centred_error(face, solved, target)
    assert bool((after < 0.2 * before).all()), (before, after)
    assert float(solved["expression"].min()) >= 0.0 and float(solved["expression"].max()) <= 1.0
    assert solved["expression"].shape == (B, 52) and solved["phenotype"].shape == (B, 6)
    assert torch.equal(solved["head_pose"], start["head_pose"])  # the pose is not solved


def test_rigid_solve_turns_a_misoriented_start_back(anny_head, gen):
    """A face start whose global rotation is off by 10°: without ``rigid`` the solve pushes the
    misfit into the expression; with it the orientation is recovered and the landmarks are met."""
    from neuralannot.bodies.shape_solve import solve_groups

    face = ShapeSolver(anny_head, get_regressor(anny_head, "face68"), solve_groups(anny_head))
    B = 4
    gt = anny_head.default_params(batch_size=B)
    gt["root_pose"] = roma.rotvec_to_rotmat(0.3 * torch.randn(B, 3, generator=gen))
    gt["expression"] = 0.5 * torch.rand(B, 52, generator=gen) * (torch.rand(B, 52, generator=gen) < 0.15)
    with torch.no_grad():
        target = face.keypoints(gt) + torch.randn(B, 1, 3, generator=gen)  # anywhere: translation is free
    valid = torch.ones(B, target.shape[1], dtype=torch.bool)
    axis = torch.nn.functional.normalize(torch.randn(B, 3, generator=gen), dim=-1)
    off = roma.rotvec_to_rotmat(axis * torch.deg2rad(torch.tensor(10.0)))
    start = {**gt, "root_pose": off @ gt["root_pose"], "expression": torch.zeros(B, 52)}
    plain = face.solve(start, target, valid, damping=1e-4, iterations=3)
    rigid = face.solve(start, target, valid, damping=1e-4, iterations=3, rigid=True)
    e_plain, e_rigid = _centred_error(face, plain, target), _centred_error(face, rigid, target)
    assert bool((e_rigid < 0.3 * e_plain).all()), (e_plain, e_rigid)
    assert float(e_rigid.max()) < 1e-3
    angle = roma.rotmat_geodesic_distance(rigid["root_pose"], gt["root_pose"])
    assert float(torch.rad2deg(angle).max()) < 1.0
    assert torch.equal(plain["root_pose"], start["root_pose"])  # without rigid the rotation is held
    # fewer than 3 valid landmarks: no turn
    few = torch.zeros_like(valid)
    few[:, :2] = True
    held = face.solve(start, target, few, damping=1e-4, iterations=1, rigid=True)
    torch.testing.assert_close(held["root_pose"], start["root_pose"])
