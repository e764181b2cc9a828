"""Two-stage annotator and SPIN-style loop: parameter targets, supervision term, end-to-end runs."""

import numpy as np
import pytest
import roma
import torch

from conftest import TINY
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.pipeline import build_annotator, load_samples
from neuralannot.annotators.two_stage import (
    pseudo_gt_targets,
    run_spin_loop,
    run_two_stage,
    train_and_annotate,
)
from neuralannot.io.pseudo_gt import PseudoGT

pytestmark = pytest.mark.anny


def _record(sid: str, rng) -> PseudoGT:
    p = {"root_pose": rng.normal(0, 0.5, 3), "body_pose": rng.normal(0, 0.3, (21, 3)),
         "phenotype": rng.uniform(0.2, 0.8, 6), "trans": rng.normal(0, 1, 3)}  # fmt: skip
    return PseudoGT(sid, "anny", "body", {k: v.astype(np.float32) for k, v in p.items()}, None, {})


def test_targets_are_rotation_matrices_in_sample_order(anny_body):
    from neuralannot.data.sample import Sample

    rng = np.random.default_rng(0)
    recs = [_record(f"s{i}", rng) for i in range(3)]
    j2 = np.zeros((17, 3))
    samples = [Sample(f"s{i}", None, [0, 0, 10, 10], "body", "coco17", j2) for i in (2, 0, 1)]
    t = pseudo_gt_targets(recs, samples, anny_body)
    assert set(t) == {"root_pose", "body_pose", "phenotype"}
    assert t["body_pose"].shape == (3, 21, 3, 3) and t["root_pose"].shape == (3, 3, 3)
    want = roma.rotvec_to_rotmat(torch.from_numpy(recs[2].params["body_pose"]))
    torch.testing.assert_close(t["body_pose"][0], want)
    with pytest.raises(ValueError, match="no first-stage pseudo-GT"):
        pseudo_gt_targets(recs[:1], samples, anny_body)


def test_params_term_is_zero_at_the_target_and_grows_away(mocap_set):  # noqa: F811
    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    model = build_annotator(AnnotatorConfig(mode="mocap", **TINY), samples[0].joint_set)
    from neuralannot.annotators.training import _WithTargets, make_dataset

    base = make_dataset(model, samples[:4])
    batch = torch.utils.data.default_collate([base[i] for i in range(4)])
    with torch.no_grad():
        pred = model(batch)
        same = {f"target_{k}": pred[k].clone() for k in ("root_pose", "body_pose", "phenotype")}
        assert float(model.losses({**batch, **same}, dict(pred))["params"]) < 1e-6
        off = {k: v + 0.1 for k, v in same.items()}
        assert float(model.losses({**batch, **off}, dict(pred))["params"]) == pytest.approx(0.3, rel=1e-4)
    item = _WithTargets(base, {"phenotype": torch.arange(4.0)[:, None].expand(4, 6)})[2]
    assert torch.equal(item["target_phenotype"], torch.full((6,), 2.0))


def test_two_stage_and_spin_run_end_to_end(mocap_set, tmp_path):  # noqa: F811
    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    cfg = AnnotatorConfig(mode="mocap", **dict(TINY, epochs=1))
    stage1, _ = train_and_annotate(cfg, samples, tmp_path, progress=False)
    assert [r.sample_id for r in stage1] == [s.id for s in samples]
    two, info = run_two_stage(cfg, samples, stage1, tmp_path, progress=False)
    assert [r.sample_id for r in two] == [s.id for s in samples] and info["method"] == "two_stage"
    assert all(r.quality["method"] == "neuralannot-two-stage-mocap" for r in two)
    assert info["run_dir"] != ""
    spin, sinfo = run_spin_loop(cfg, samples, stage1, tmp_path, rounds=1, fit_iterations=3, progress=False)
    assert len(spin) == len(samples) and 0 <= sinfo["rounds"][0]["fits_kept"] <= len(samples)
    assert all(np.isfinite(r.quality["joint_err_mm"]) for r in spin)
