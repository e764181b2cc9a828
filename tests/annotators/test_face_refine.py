"""Face-size stage: refits phenotypes and the rigid head to the 2D landmarks, keeps the expression."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from neuralannot.annotators.face_refine import FaceRefineOptions, refine_face_size
from neuralannot.io.pseudo_gt import PseudoGT
from neuralannot.io.records import sample_camera

pytestmark = pytest.mark.anny


@pytest.fixture(scope="module")
def face_set(tmp_path_factory):
    from neuralannot.annotators.pipeline import load_samples
    from neuralannot.data.synthetic.generator import generate

    data = tmp_path_factory.mktemp("faces") / "face"
    generate("face", 6, data, seed=11, workers=1, shard_size=6, image_size=96, progress=False)
    samples, _ = load_samples(data, "face")
    return samples


def test_a_mean_size_face_fits_its_landmarks_better_and_keeps_its_expression(face_set, anny_head):
    from neuralannot.evaluation import gt_params

    torch.set_num_threads(1)
    samples = list(face_set)
    gt = [gt_params(s.gt, anny_head) for s in samples]
    start = []
    for s, g in zip(samples, gt, strict=True):
        p = {k: np.asarray(v, np.float32).copy() for k, v in g.items()}
        p["phenotype"][:] = 0.5  # the mean face: its size is off, the rest is GT
        start.append(PseudoGT(s.id, "anny", "face", p, sample_camera(s), {"method": "test"}))
    start[-1] = replace(start[-1], camera=None)  # no camera: nothing to project with, kept as is
    out, summary = refine_face_size(samples, start, anny_head, FaceRefineOptions(steps=300))
    assert [r.sample_id for r in out] == [s.id for s in samples] and out[-1] is start[-1]
    refined = [i for i, r in enumerate(out) if "face_refine" in r.quality]
    assert len(refined) >= 3 and summary["refined"] == len(refined)
    for i in refined:
        q = out[i].quality["face_refine"]
        assert q["err_px"] < q["err0_px"]
        np.testing.assert_array_equal(out[i].params["expression"], start[i].params["expression"])
        for k in ("head_pose", "eye_pose"):  # only phenotypes, the head's rigid placement move
            np.testing.assert_array_equal(out[i].params[k], start[i].params[k])
    # the size is read from the landmarks' proportions, a weak cue per sample: the benchmark
    # (bench/parts.py, BENCHMARKS.md) measures it over 200 faces; here only the landmark fit is checked
