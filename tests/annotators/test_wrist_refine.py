"""Wrist refinement to the person masks: moves only the wrists, toward the GT, only where masks exist."""

from dataclasses import replace

import numpy as np
import pytest
import roma
import torch

from neuralannot.annotators.wrist_refine import WRIST_SLOTS, WristRefineOptions, refine_wrists
from neuralannot.io.pseudo_gt import PseudoGT

pytestmark = pytest.mark.anny


@pytest.fixture(scope="module")
def masked_set(tmp_path_factory):
    from neuralannot.annotators.pipeline import load_samples
    from neuralannot.data.synthetic.generator import generate

    data = tmp_path_factory.mktemp("wrists") / "mocap"
    generate("mocap", 6, data, seed=7, workers=1, shard_size=6, image_size=160, masks=True, progress=False)
    samples, _ = load_samples(data, "body", needs_3d=True)
    return samples


def _wrist_error_deg(records, gt) -> float:
    a = torch.tensor(np.stack([np.asarray(r.params["body_pose"])[list(WRIST_SLOTS)] for r in records]))
    b = torch.tensor(np.stack([g["body_pose"][list(WRIST_SLOTS)] for g in gt]))
    return float(
        torch.rad2deg(
            roma.rotmat_geodesic_distance(roma.rotvec_to_rotmat(a), roma.rotvec_to_rotmat(b))
        ).mean()
    )


def test_refinement_turns_rest_wrists_toward_the_gt_and_leaves_the_rest(masked_set, anny_body):
    from neuralannot.evaluation import gt_params

    torch.set_num_threads(1)
    samples = list(masked_set)
    samples[-1] = replace(samples[-1], extra={})  # no mask: its record must stay as it is
    gt = [{k: np.asarray(v, np.float32) for k, v in gt_params(s.gt, anny_body).items()} for s in samples]
    start = []
    for s, g in zip(samples, gt, strict=True):
        p = {k: v.copy() for k, v in g.items()}
        p["body_pose"][list(WRIST_SLOTS)] = 0.0  # wrists at rest, everything else GT
        start.append(PseudoGT(s.id, "anny", "body", p, None, {"method": "test"}))
    out, summary = refine_wrists(samples, start[::-1], anny_body, WristRefineOptions(steps=100))
    assert [r.sample_id for r in out] == [s.id for s in samples]  # sample order
    assert out[-1] is start[-1] and summary["refined"] <= len(samples) - 1 and summary["samples_per_s"] > 0
    refined = [r for r in out if "wrist_refine" in r.quality]
    assert len(refined) >= 3
    for r in refined:
        assert r.quality["wrist_refine"]["loss"] < r.quality["wrist_refine"]["loss0"]
    before, after = _wrist_error_deg(start[:-1], gt[:-1]), _wrist_error_deg(out[:-1], gt[:-1])
    assert after < before - 3.0, (before, after)
    others = [i for i in range(21) if i not in WRIST_SLOTS]
    for a, b in zip(out, start, strict=True):
        np.testing.assert_array_equal(
            np.asarray(a.params["body_pose"])[others], b.params["body_pose"][others]
        )
        np.testing.assert_array_equal(a.params["phenotype"], b.params["phenotype"])
    with pytest.raises(ValueError, match="no pseudo-GT"):
        refine_wrists(samples, start[:2], anny_body)


def _rest_wrist_records(samples, body) -> list[PseudoGT]:
    from neuralannot.evaluation import gt_params

    out = []
    for s in samples:
        p = {k: np.asarray(v, np.float32).copy() for k, v in gt_params(s.gt, body).items()}
        p["body_pose"][list(WRIST_SLOTS)] = 0.0
        out.append(PseudoGT(s.id, "anny", "body", p, None, {"method": "test"}))
    return out


def _same(a: list[PseudoGT], b: list[PseudoGT]) -> None:
    assert [r.sample_id for r in a] == [r.sample_id for r in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x.params["body_pose"]), np.asarray(y.params["body_pose"]))
        assert x.quality == y.quality


def test_an_interrupted_stage_resumes_from_its_finished_batches(masked_set, anny_body, tmp_path, monkeypatch):
    import neuralannot.annotators.wrist_refine as wr

    torch.set_num_threads(1)
    samples = list(masked_set)
    start = _rest_wrist_records(samples, anny_body)
    opt = WristRefineOptions(steps=10, batch_size=3)
    whole, _ = refine_wrists(samples, start, anny_body, opt)
    parts = tmp_path / "parts"
    first, _ = refine_wrists(samples, start, anny_body, opt, parts_dir=parts)
    _same(first, whole)
    chunks = sorted(parts.glob("part-*.jsonl"))
    assert len(chunks) == 2  # one chunk per batch
    chunks[-1].unlink()  # killed during the second batch
    calls = []
    real = wr._refine_batch
    monkeypatch.setattr(wr, "_refine_batch", lambda *a: calls.append(1) or real(*a))
    resumed, summary = refine_wrists(samples, start, anny_body, opt, parts_dir=parts)
    assert len(calls) == 1 and summary["samples"] == len(samples)  # only the lost batch ran again
    _same(resumed, whole)


def test_the_wrist_stage_rewrites_a_pseudo_gt_file_with_its_summary(masked_set, anny_body, tmp_path):
    from neuralannot.annotators.stages import refine_file, stage_digest
    from neuralannot.io.pseudo_gt import read_pseudo_gt, write_pseudo_gt

    torch.set_num_threads(1)
    samples = list(masked_set)[:3]
    start = _rest_wrist_records(samples, anny_body)
    path = write_pseudo_gt(tmp_path / "p.npz", start, {"method": "test"})
    opt = WristRefineOptions(steps=10)
    summary = refine_file(refine_wrists, opt, samples, path, tmp_path / "work", anny_body)
    records, meta = read_pseudo_gt(path)
    assert meta["method"] == "test" and meta["wrist_refine"]["refined"] == summary["refined"] >= 1
    assert sum("wrist_refine" in r.quality for r in records) == summary["refined"]
    assert (tmp_path / "work" / "refine_wrists" / stage_digest(start, opt)).is_dir()
