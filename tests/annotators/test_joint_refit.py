"""MoCap joint refit at annotation (annotators/joint_refit.py): every rotation, the shape and the
translation refitted together to the given 3D joints, kept per sample where the joint error drops."""

import dataclasses

import pytest
import torch

from conftest import TINY, synth_set
from neuralannot.annotators.config import JOINT_REFIT_STEPS, AnnotatorConfig
from neuralannot.annotators.joint_refit import refit_joints_3d
from neuralannot.annotators.pipeline import build_annotator, load_samples
from neuralannot.annotators.state import prediction_key
from neuralannot.bodies.joints import get_regressor, posed_keypoints
from neuralannot.data.synthetic.poses import HandPoseSampler

pytestmark = pytest.mark.anny


class _Posed:
    """The part of a NeuralAnnotator the refit reads: its body model and its keypoints."""

    def __init__(self, body):
        self.body, self.regressor = body, get_regressor(body, "hand21")

    def keypoints(self, pred):
        params = {k: v for k, v in pred.items() if k in self.body.param_specs and k != "trans"}
        params["trans"] = torch.zeros(params["root_pose"].shape[0], 3)
        return posed_keypoints(self.body, self.regressor, params)


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

    model = _Posed(anny_hand)
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
    kp_out = refit_joints_3d(model, {"joints_3d": joints}, pred, kp, steps=150)
    after = error(kp_out, pred["trans"])
    assert torch.allclose(kp_out, model.keypoints(pred), atol=1e-6)  # the keypoints of the params kept
    assert (after[1:] < 0.3 * before[1:]).all(), (before, after)
    for k in start:  # sample 0: nothing to gain, nothing changed
        assert torch.equal(pred[k][0], start[k][0]), k
    assert ((pred["phenotype"] >= 0) & (pred["phenotype"] <= 1)).all()
    assert refit_joints_3d(model, {"joints_3d": joints}, pred, kp_out, steps=0) is kp_out


def test_refit_defaults_to_mocap_hands_and_is_in_the_prediction_key_only(tmp_path_factory):
    hand = AnnotatorConfig(mode="mocap", part="hand")
    assert hand.joint_refit_steps == JOINT_REFIT_STEPS
    assert AnnotatorConfig(mode="mocap").joint_refit_steps == 0  # bodies: twists the joints miss
    assert AnnotatorConfig(mode="wild", part="hand").joint_refit_steps == 0
    assert dataclasses.replace(hand, joint_refit=0).digest() == hand.digest()  # same trained weights
    with pytest.raises(ValueError, match="joint_refit must be >= 0"):
        AnnotatorConfig(mode="mocap", part="hand", joint_refit=-1)
    samples, _ = load_samples(synth_set(tmp_path_factory, "hand", 4, seed=6), "hand", needs_3d=True)
    on = build_annotator(AnnotatorConfig(mode="mocap", part="hand", **TINY), samples[0].joint_set)
    off_cfg = AnnotatorConfig(mode="mocap", part="hand", joint_refit=0, **TINY)
    off = build_annotator(off_cfg, samples[0].joint_set)
    off.load_state_dict(on.state_dict())
    assert prediction_key(on, samples) != prediction_key(off, samples)


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
