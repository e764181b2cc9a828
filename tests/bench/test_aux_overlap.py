"""bench/aux_overlap.py: the nearest auxiliary pose of each test pose, and the tertile table."""

import json

import numpy as np
import pytest
import torch

from bench_loader import load_bench


@pytest.fixture(scope="module")
def aux_overlap():
    return load_bench("aux_overlap")


def test_nearest_pose_is_the_mean_joint_angle_to_the_closest_aux_pose(aux_overlap):
    aux = torch.zeros(3, 2, 3)
    aux[1, :, 2] = np.radians(90.0)  # both joints turned 90° about z
    aux[2, 0, 0] = np.radians(30.0)  # one joint turned 30° about x
    test = torch.zeros(2, 2, 3)
    test[0, 0, 0] = np.radians(40.0)  # nearest: aux 2 (10° on joint 0, 0° on joint 1) → mean 5°
    test[1, :, 2] = np.radians(80.0)  # nearest: aux 1 (10° on both) → 10°
    np.testing.assert_allclose(aux_overlap.nearest_pose_deg(test, aux, chunk=1), [5.0, 10.0], atol=1e-3)


def test_tertiles_compare_the_methods_on_the_same_samples(aux_overlap):
    ids = [f"s{i}" for i in range(6)]
    dist = np.array([5.0, 1.0, 6.0, 2.0, 4.0, 3.0])
    method = {i: 10.0 for i in ids} | {"s2": 40.0}  # bad on the farthest pose
    baseline = {i: 20.0 for i in ids if i != "s4"}  # s4 missing from the baseline: left out
    rows = aux_overlap.tertiles(ids, dist, method, baseline, ("a", "b"))
    assert [r["nearest_deg"] for r in rows] == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert [r["n"] for r in rows] == [2, 1, 2]
    assert [r["ratio"] for r in rows] == [0.5, 0.5, 1.25]
    json.dumps(rows)  # written as JSON
