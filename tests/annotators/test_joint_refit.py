"""MoCap joint refit at annotation (annotators/joint_refit.py): every rotation, the shape and the
translation refitted together to the given 3D joints, kept per sample where the joint error drops."""

import dataclasses

import pytest
import torch

from conftest import TINY, synth_set
from neuralannot.annotators.config import FACE_REFIT_STEPS, JOINT_REFIT_STEPS, AnnotatorConfig
from neuralannot.annotators.joint_refit import PosedModel, refit_joints_3d
from neuralannot.annotators.pipeline import build_annotator, load_samples
from neuralannot.data.synthetic.poses import HandPoseSampler

pytestmark = pytest.mark.anny


def _hands(body, n=4, seed=0):
    import roma

    g = torch.Generator().manual_seed(seed)
    pose = HandPoseSampler().sample(n, generator=g)
    return {
        "root_pose": roma.rotvec_to_rotmat(torch.randn(n, 3, generator=g)),
        "hand_pose": roma.rotvec_to_rotmat(pose),
        "phenotype": torch.rand(n, 6, generator=g),
        "trans": torch.tensor([0.0, 0.0, 0.5]).expand(n, 3).clone(),
    }


def test_refit_fits_the_joints_and_keeps_an_exact_start(anny_hand):
    """Joints posed from known hands; the start has its finger rotations perturbed by ~0.15 rad and
    its translation moved, except sample 0 which starts exact: the refit brings the others' joint
    error down several-fold, leaves sample 0 unchanged, and ignores invalid joints."""
    import roma

    model = PosedModel(anny_hand, "hand21")
    gt = _hands(anny_hand)
    joints = model.keypoints(gt) + gt["trans"][:, None]
    joints = torch.cat([joints, torch.ones_like(joints[..., :1])], -1)
    joints[:, 7, :3] += 0.5  # a wild, invalid joint
    joints[:, 7, 3] = 0.0
    g = torch.Generator().manual_seed(1)
    noise = roma.rotvec_to_rotmat(0.15 * torch.randn(4, 15, 3, generator=g))
    pred = {**gt, "hand_pose": gt["hand_pose"] @ noise, "trans": gt["trans"] + 0.005}
    pred["hand_pose"][0], pred["trans"][0] = gt["hand_pose"][0], gt["trans"][0]
    start = {k: v.clone() for k, v in pred.items()}
    kp = model.keypoints(pred)
    valid = joints[..., 3] > 0

    def error(points, trans):
        return ((points + trans[:, None] - joints[..., :3]).norm(dim=-1) * valid).sum(-1) / valid.sum(-1)

    before = error(kp, pred["trans"])
    kp_out = refit_joints_3d(model, joints, pred, kp, steps=150)
    after = error(kp_out, pred["trans"])
    assert torch.allclose(kp_out, model.keypoints(pred), atol=1e-6)  # the keypoints of the params kept
    assert (after[1:] < 0.3 * before[1:]).all(), (before, after)
    for k in start:  # sample 0: nothing to gain, nothing changed
        assert torch.equal(pred[k][0], start[k][0]), k
    assert ((pred["phenotype"] >= 0) & (pred["phenotype"] <= 1)).all()
    assert refit_joints_3d(model, joints, pred, kp_out, steps=0) is kp_out


def test_refit_moves_a_faces_expression_within_its_bounds(anny_head):
    """Landmarks posed from a face with three facial actions; the start has none (the expression at
    its default 0, a bound) and the head turned a little: the refit lowers the landmark error
    several-fold by moving the expression (kept in [0, 1]) toward the GT's."""
    import roma

    model = PosedModel(anny_head, "face68")
    expr = torch.zeros(2, 52)
    expr[:, [3, 17, 25]] = torch.tensor([0.6, 0.5, 0.7])
    gt = {
        "root_pose": roma.rotvec_to_rotmat(torch.tensor([[0.0, 3.1416, 0.0]]).expand(2, 3)),
        "head_pose": roma.rotvec_to_rotmat(torch.zeros(2, 3)),
        "expression": expr,
        "phenotype": torch.full((2, 6), 0.5),
        "trans": torch.tensor([[0.0, 0.0, 0.5]]).expand(2, 3).clone(),
    }
    joints = model.keypoints(gt) + gt["trans"][:, None]
    joints = torch.cat([joints, torch.ones_like(joints[..., :1])], -1)
    turn = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.05, 0.0]))
    pred = {**gt, "expression": torch.zeros(2, 52), "head_pose": gt["head_pose"] @ turn}
    kp = model.keypoints(pred)

    def error(points, trans):
        return (points + trans[:, None] - joints[..., :3]).norm(dim=-1).mean(-1)

    before = error(kp, pred["trans"])
    after = error(refit_joints_3d(model, joints, pred, kp, steps=300), pred["trans"])
    assert (after < 0.3 * before).all(), (before, after)
    assert ((pred["expression"] >= 0) & (pred["expression"] <= 1)).all()
    active = [3, 17, 25]  # the GT's actions, from 0 toward theirs (landmarks do not tell every action)
    assert (pred["expression"][:, active] > 0.1).all()
    assert (pred["expression"][:, active] - expr[:, active]).abs().mean() < 0.6 * expr[:, active].mean()


def test_refit_moves_flame_expression_coefficients(tmp_path):
    """FLAME (a user's file; here a tiny generated one, its contour landmarks made the same in every
    yaw bin: random ones would jump between bins): the ``expr`` coefficients (kind expression,
    unbounded) are refitted like Anny's facial actions, from zero toward the landmarks'."""
    import numpy as np
    import roma

    import smplx_fixtures as fx
    from neuralannot.bodies.smplx_family import load_smplx_family

    path, _ = fx.write_flame(tmp_path)
    contour = np.load(tmp_path / "flame_dynamic_embedding.npy", allow_pickle=True).item()
    smooth = {k: np.repeat(v[:1], len(v), 0) for k, v in contour.items()}
    np.save(tmp_path / "flame_dynamic_embedding.npy", np.array(smooth, dtype=object), allow_pickle=True)
    flame = load_smplx_family("flame", path)
    model = PosedModel(flame, "face68")
    gt = flame.default_params(2)
    gt["expr"] = 0.5 * torch.randn(2, gt["expr"].shape[1], generator=torch.Generator().manual_seed(0))
    gt["trans"] = torch.tensor([[0.0, 0.0, 0.5]]).expand(2, 3).clone()
    rotations = [k for k in gt if flame.param_specs[k].kind == "rotation"]
    pred = {**gt, **{k: roma.rotvec_to_rotmat(gt[k]) for k in rotations}}
    joints = model.keypoints(pred) + pred["trans"][:, None]
    joints = torch.cat([joints, torch.ones_like(joints[..., :1])], -1)
    pred["expr"] = torch.zeros_like(gt["expr"])
    kp = model.keypoints(pred)

    def error(points):
        return (points + pred["trans"][:, None] - joints[..., :3]).norm(dim=-1).mean(-1)

    before = error(kp)
    after = error(refit_joints_3d(model, joints, pred, kp, steps=200))
    assert (after < 0.5 * before).all(), (before, after)
    assert (pred["expr"] - gt["expr"]).abs().mean() < 0.7 * gt["expr"].abs().mean()


def test_refit_ends_mocap_body_and_hand_annotation_and_keeps_the_trained_weights():
    from neuralannot.annotators.finish import config_stages
    from neuralannot.annotators.joint_refit import refine_joints_3d

    hand = AnnotatorConfig(mode="mocap", part="hand")
    assert hand.joint_refit_steps == JOINT_REFIT_STEPS
    [(stage, options)] = config_stages(hand)
    assert stage is refine_joints_3d and options.steps == JOINT_REFIT_STEPS
    assert AnnotatorConfig(mode="mocap").joint_refit_steps == JOINT_REFIT_STEPS  # bodies too
    assert AnnotatorConfig(mode="mocap", part="face").joint_refit_steps == FACE_REFIT_STEPS
    assert AnnotatorConfig(mode="wild", part="face").joint_refit_steps == 0
    assert AnnotatorConfig(mode="wild", part="hand").joint_refit_steps == 0
    assert config_stages(AnnotatorConfig(mode="mocap", part="hand", joint_refit=0)) == []
    assert dataclasses.replace(hand, joint_refit=0).digest() == hand.digest()  # same trained weights
    with pytest.raises(ValueError, match="joint_refit must be >= 0"):
        AnnotatorConfig(mode="mocap", part="hand", joint_refit=-1)


def test_the_stage_refits_records_to_their_samples_joints(tmp_path_factory, anny_hand):
    """Records at the GT with perturbed finger rotations (left hands on the left-hand model) come
    closer to their samples' 3D joints, and a rerun resumes from the part files."""
    import numpy as np
    import roma

    from neuralannot.annotators.joint_refit import JointRefitOptions, refine_joints_3d
    from neuralannot.bodies.parts import record_model_part
    from neuralannot.evaluation import ModelCache, gt_params
    from neuralannot.io.pseudo_gt import PseudoGT

    samples, _ = load_samples(synth_set(tmp_path_factory, "hand", 6, seed=7), "hand", needs_3d=True)
    cache, g = ModelCache(), torch.Generator().manual_seed(2)
    records = []
    for i, s in enumerate(samples):
        side = "left" if s.part == "lhand" else "right"
        model = cache.get("anny", record_model_part(s.part, side))
        p = {k: np.asarray(v, np.float32).copy() for k, v in gt_params(s.gt, model).items()}
        if i:
            turn = roma.rotvec_to_rotmat(0.1 * torch.randn(15, 3, generator=g))
            hand = roma.rotvec_to_rotmat(torch.from_numpy(p["hand_pose"])) @ turn
            p["hand_pose"] = roma.rotmat_to_rotvec(hand).numpy()
        records.append(PseudoGT(s.id, "anny", "hand", p, None, {"method": "test"}, side=side))
    parts = tmp_path_factory.mktemp("refit")
    out, summary = refine_joints_3d(samples, records, "anny", JointRefitOptions(steps=100), parts_dir=parts)
    assert [r.sample_id for r in out] == [s.id for s in samples]
    refined = [i for i, r in enumerate(out) if "joint_refine" in r.quality]
    assert summary["refined"] == len(refined) and set(range(1, 6)) <= set(refined)
    for i in range(1, 6):
        q = out[i].quality["joint_refine"]
        assert q["err_mm"] < 0.7 * q["err0_mm"], q
    again, _ = refine_joints_3d(samples, records, "anny", JointRefitOptions(steps=100), parts_dir=parts)
    for a, b in zip(out, again, strict=True):  # resumed from the part files: the same records
        for k in a.params:
            np.testing.assert_array_equal(np.asarray(a.params[k]), np.asarray(b.params[k]))


def test_finger_twist_regulariser_is_mocap_only(tmp_path_factory):
    """``reg.twist`` reaches the fingers in MoCap mode, not wild hands (measured worse there)."""
    from neuralannot.annotators.training import make_dataset

    samples, _ = load_samples(synth_set(tmp_path_factory, "hand", 4, seed=6), "hand", needs_3d=True)
    for mode, expected in (("mocap", True), ("wild", False)):
        model = build_annotator(AnnotatorConfig(mode=mode, part="hand", **TINY), samples[0].joint_set)
        batch = next(iter(torch.utils.data.DataLoader(make_dataset(model, samples), batch_size=4)))
        terms = model.losses(batch, model(batch))
        assert ("reg_twist" in terms) == expected, mode
        if expected:
            assert float(terms["reg_twist"].detach()) > 0
