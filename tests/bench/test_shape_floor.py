"""bench/shape_floor.py: the GT pose on one constant shape, the floor of a shape-blind method."""

import numpy as np
import pytest

from bench_loader import load_bench
from conftest import synth_set


@pytest.fixture(scope="module")
def shape_floor():
    return load_bench("shape_floor")


def test_the_gt_pose_scores_zero_on_its_own_shape_and_more_on_a_constant_one(shape_floor, tmp_path_factory):
    from neuralannot.data.loading import load_samples
    from neuralannot.evaluation import ModelCache, evaluate

    samples, _ = load_samples(synth_set(tmp_path_factory, "hand", 6, seed=11), "hand")
    cache = ModelCache()
    _, exact = evaluate(shape_floor.gt_records(samples), samples, cache)
    assert exact["mpvpe_mm"] < 1e-3 and exact["mpjpe_mm"] < 1e-3
    shapes = shape_floor.constant_shapes(samples, cache)
    gt = np.stack([s.gt["params"]["phenotype"] for s in samples])
    np.testing.assert_allclose(shapes["GT-median shape"]["phenotype"], np.median(gt, 0), atol=1e-6)
    np.testing.assert_array_equal(shapes["default shape"]["phenotype"], np.full(6, 0.5, np.float32))
    records = shape_floor.gt_records(samples, shapes["GT-median shape"])
    assert all(np.array_equal(r.params["phenotype"], shapes["GT-median shape"]["phenotype"])
               for r in records.values())  # fmt: skip
    assert {r.side for r in records.values()} <= {"left", "right"}
    _, floor = evaluate(records, samples, cache)
    assert floor["mpvpe_mm"] > 0.1  # the hands' sizes differ: one shape cannot fit them all
