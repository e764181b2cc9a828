"""Wild-mode root solve at annotation (annotators/root_solve.py): the network's articulation kept, its
global rotation and translation fitted to the 2D joints."""

import dataclasses
import math

import pytest
import roma
import torch

from conftest import TINY, synth_set
from neuralannot.annotators.config import ROOT_SOLVE_STEPS, AnnotatorConfig
from neuralannot.annotators.pipeline import build_annotator, load_samples
from neuralannot.annotators.root_solve import align_root_3d, solve_root
from neuralannot.annotators.state import prediction_key
from neuralannot.annotators.training import make_dataset
from neuralannot.geometry import project

pytestmark = pytest.mark.anny


@pytest.fixture(scope="module")
def wild_set(tmp_path_factory):
    return synth_set(tmp_path_factory, "wild", 8, seed=4)


def test_root_solve_recovers_a_turned_root_and_keeps_a_fitting_one(wild_set):
    """The 2D joints are the prediction's own, with its root turned by 12 degrees and moved: the solve
    finds that root and translation. A sample whose prediction already fits is left as it was."""
    samples, _ = load_samples(wild_set, "body")
    model = build_annotator(AnnotatorConfig(mode="wild", **TINY), samples[0].joint_set).eval()
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(model, samples), batch_size=4)))
    with torch.no_grad():
        pred = model(batch)
        kp = model.keypoints(pred)
        g = torch.Generator().manual_seed(0)
        axis = torch.nn.functional.normalize(torch.randn(4, 3, generator=g), dim=-1)
        turn = roma.rotvec_to_rotmat(axis * math.radians(12.0))
        turn[0] = torch.eye(3)  # sample 0: the prediction is already right
        target = {**pred, "root_pose": turn @ pred["root_pose"]}
        target["trans"] = pred["trans"] + torch.tensor([0.02, -0.01, 0.0])
        target["trans"][0] = pred["trans"][0]
        uv = project(model.keypoints(target) + target["trans"][:, None], batch["K"])
        batch = {**batch, "joints_2d": torch.cat([uv, torch.ones_like(uv[..., :1])], -1)}
        start = {k: v.clone() for k, v in pred.items()}
        kp_out, err = solve_root(model, batch, pred, kp)
    deg = torch.rad2deg(roma.rotmat_geodesic_distance(pred["root_pose"], target["root_pose"]))
    assert float(deg[1:].max()) < 0.05, deg
    assert torch.equal(pred["root_pose"][0], start["root_pose"][0]) and torch.equal(
        pred["trans"][0], start["trans"][0]
    )
    assert float(err.max()) * model.cfg.input_size < 0.05  # crop px
    assert torch.allclose(
        kp_out + pred["trans"][:, None], model.keypoints(target) + target["trans"][:, None], atol=1e-4
    )
    for k in pred:  # articulation and shape untouched
        if k not in ("root_pose", "trans"):
            assert torch.equal(pred[k], start[k]), k


def test_root_solve_defaults_to_wild_mode_and_is_in_the_prediction_key_only():
    wild, mocap = AnnotatorConfig(mode="wild"), AnnotatorConfig(mode="mocap")
    assert (wild.root_steps, mocap.root_steps) == (ROOT_SOLVE_STEPS, 0)  # bodies: the swing solve aligns
    assert AnnotatorConfig(mode="mocap", part="hand").root_steps == 1
    assert AnnotatorConfig(mode="wild", root_solve=0).root_steps == 0
    assert dataclasses.replace(wild, root_solve=3).digest() == wild.digest()  # same trained weights
    with pytest.raises(ValueError, match=">= 0"):
        AnnotatorConfig(mode="wild", root_solve=-1)


def test_prediction_key_changes_with_the_root_solve(wild_set):
    samples, _ = load_samples(wild_set, "body")
    on = build_annotator(AnnotatorConfig(mode="wild", **TINY), samples[0].joint_set)
    off = build_annotator(AnnotatorConfig(mode="wild", root_solve=0, **TINY), samples[0].joint_set)
    off.load_state_dict(on.state_dict())
    assert prediction_key(on, samples) != prediction_key(off, samples)


def test_mocap_root_alignment_recovers_a_turned_root(tmp_path_factory):
    """MoCap mode (the hands' default, where no swing solve aligns the root): the 3D joints are the
    prediction's own with its root turned by 12 degrees; the rigid fit finds that root."""
    samples, _ = load_samples(synth_set(tmp_path_factory, "mocap", 4, seed=5), "body", needs_3d=True)
    cfg = AnnotatorConfig(mode="mocap", head="paper", root_solve=1, **TINY)
    model = build_annotator(cfg, samples[0].joint_set).eval()
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(model, samples), batch_size=4)))
    with torch.no_grad():
        pred = model(batch)
        kp = model.keypoints(pred)
        pred["trans"] = torch.zeros(4, 3)
        axis = torch.nn.functional.normalize(
            torch.randn(4, 3, generator=torch.Generator().manual_seed(1)), dim=-1
        )
        target = {**pred, "root_pose": roma.rotvec_to_rotmat(axis * math.radians(12.0)) @ pred["root_pose"]}
        joints = model.keypoints(target) + torch.tensor([0.1, 0.0, 3.0])
        batch = {**batch, "joints_3d": torch.cat([joints, torch.ones_like(joints[..., :1])], -1)}
        kp_out = align_root_3d(model, batch, pred, kp)
    deg = torch.rad2deg(roma.rotmat_geodesic_distance(pred["root_pose"], target["root_pose"]))
    assert float(deg.max()) < 0.05, deg
    assert torch.allclose(kp_out + pred["trans"][:, None], joints, atol=1e-4)
