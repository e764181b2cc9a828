"""Neural annotator on hands (and the swing head's per-model default): MoCap swing head, wild mode
through the hand PCA embedding, left hands flipped in and out."""

import numpy as np
import pytest
import torch

from conftest import TINY, synth_set
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.pipeline import build_annotator, load_samples, run_annotate
from neuralannot.annotators.training import make_dataset
from neuralannot.bodies.base import BodyModelError
from neuralannot.io.pseudo_gt import read_pseudo_gt

pytestmark = pytest.mark.anny


@pytest.fixture(scope="module")
def hand_set(tmp_path_factory):
    return synth_set(tmp_path_factory, "hand", 12, seed=5)


def test_hand_swing_head_reproduces_the_given_joints_from_the_first_step(hand_set):
    samples, _ = load_samples(hand_set, "hand", needs_3d=True)
    batch, errs = None, {}
    # None: the MoCap default, the swing head (hands swing half-way: HAND_SWING_WEIGHT); 1.0: exact
    for head, weight in (("paper", None), (None, 1.0), (None, None)):
        cfg = AnnotatorConfig(mode="mocap", part="hand", head=head, swing_weight=weight, **TINY)
        model = build_annotator(cfg, "hand21")
        assert (model._aux["swing"] is None) == (head == "paper")
        if batch is None:
            batch = next(iter(torch.utils.data.DataLoader(make_dataset(model, samples), batch_size=8)))
        with torch.no_grad():
            errs[(head, weight)] = float(model.losses(batch, model(batch))["joints3d"])
    paper, exact, half = errs[("paper", None)], errs[(None, 1.0)], errs[(None, None)]
    assert exact < 0.25 * paper, errs
    assert exact < half < 0.8 * paper, errs  # half-way: between the network's guess and the joints


def test_default_head_falls_back_to_paper_where_the_solver_cannot_pose_the_model(caplog):
    # Anny's head model has no rotation per non-root joint: the default head resolves to "paper"
    with caplog.at_level("INFO"):
        model = build_annotator(AnnotatorConfig(mode="mocap", part="face", **TINY), "face68")
    assert model._aux["swing"] is None and "head: paper" in caplog.text
    with pytest.raises(BodyModelError, match="swing solver"):
        build_annotator(AnnotatorConfig(mode="mocap", part="face", head="swing", **TINY), "face68")


@pytest.mark.parametrize("mode", ["mocap", "wild"])
def test_hand_annotate_runs_with_left_hands(hand_set, tmp_path, mode):
    cfg = AnnotatorConfig(mode=mode, part="hand", **dict(TINY, epochs=1))
    model = build_annotator(cfg, "hand21")
    if mode == "wild":
        assert model.embedded_group == "hand_pose"  # the hand PCA embedding (anny-hand-pca)
    summary = run_annotate(hand_set, tmp_path / "p.npz", cfg, tmp_path / "work", progress=False)
    assert summary["annotate"]["annotated"] == 12
    records, _ = read_pseudo_gt(tmp_path / "p.npz")
    samples, _ = load_samples(hand_set, "hand")
    sides = {s.id: "left" if s.part == "lhand" else "right" for s in samples}
    assert set(sides.values()) == {"left", "right"}  # the set has both sides
    for r in records:
        assert r.side == sides[r.sample_id]  # left pseudo-GTs are flipped back to left hands
        assert r.params["hand_pose"].shape == (15, 3) and np.isfinite(r.params["hand_pose"]).all()


def test_wild_hand_root_hypotheses_are_palm_and_back(hand_set):
    from test_neural import check_root_hypothesis_is_picked

    samples, _ = load_samples(hand_set, "hand")
    model = build_annotator(AnnotatorConfig(mode="wild", part="hand", **TINY), "hand21")
    assert model.cfg.root_hypotheses == 2  # the hand's default
    hyp, root = check_root_hypothesis_is_picked(model, samples, index=1, count=2)  # the back-facing hand
    # the second is the prediction turned 180 degrees about the hand's own wrist -> fingers axis (+Y)
    half = torch.diag(torch.tensor([-1.0, 1.0, -1.0]))
    assert torch.allclose(hyp[1], root @ half, atol=1e-5)
