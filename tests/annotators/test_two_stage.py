"""Two-stage annotator and SPIN-style loop: parameter targets, supervision term, end-to-end runs."""

from dataclasses import replace

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


def test_targets_in_the_sample_camera_turn_into_the_crop_frame(anny_body):
    """A wild network sees the crop along the real ray through its centre: a record in the sample's own
    camera (SMPLify-X's) gets its root turned back by that ray's rotation; a crop-camera record or a
    MoCap network's targets are left as they are."""
    from neuralannot.data.sample import Sample
    from neuralannot.geometry import ray_rotation

    rng = np.random.default_rng(1)
    K = np.array([[1000.0, 0.0, 500.0], [0.0, 1000.0, 400.0], [0.0, 0.0, 1.0]])
    intr = {"focal": np.array([1000.0, 1000.0]), "princpt": np.array([500.0, 400.0])}
    j2 = np.zeros((17, 3))
    samples = [Sample(f"s{i}", None, [1300, 300, 200, 200], "body", "coco17", j2, intrinsics=intr)
               for i in range(2)]  # fmt: skip
    recs = [_record(f"s{i}", rng) for i in range(2)]
    recs[0] = replace(recs[0], camera={"focal": [1000.0, 1000.0], "princpt": [500.0, 400.0]})  # sample camera
    recs[1] = replace(recs[1], camera={"focal": [9000.0, 9000.0], "princpt": [1400.0, 400.0]})  # crop camera
    plain = pseudo_gt_targets(recs, samples, anny_body)
    crop = pseudo_gt_targets(recs, samples, anny_body, crop_frame=True)
    R = ray_rotation(torch.from_numpy(K), torch.tensor([1400.0, 400.0])).float()
    torch.testing.assert_close(crop["root_pose"][0], R.T @ plain["root_pose"][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(crop["root_pose"][1], plain["root_pose"][1])
    angle = torch.rad2deg(roma.rotmat_geodesic_distance(crop["root_pose"][0] @ plain["root_pose"][0].T,
                                                        torch.eye(3)))  # fmt: skip
    assert abs(float(angle) - 41.99) < 0.01  # the crop centre is 0.9 focal lengths right: atan(0.9)
    torch.testing.assert_close(crop["body_pose"], plain["body_pose"])
