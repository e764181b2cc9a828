"""surface.py: exact point-triangle distances, the KD-tree surface query and the face surface error."""

import time

import numpy as np
import pytest
import roma
import torch

from neuralannot.metrics import point_to_mesh_distance
from neuralannot.surface import SurfaceQuery, point_triangle_distance, surface_error

TRI = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])


@pytest.mark.parametrize("point, expected", [
    ([0.5, 0.5, 3.0], 3.0),  # above the interior: the plane distance
    ([0.5, 0.5, -0.25], 0.25),  # below it
    ([1.0, -2.0, 0.0], 2.0),  # beside edge ab, in the plane
    ([1.0, -1.0, 1.0], np.sqrt(2.0)),  # off edge ab, out of the plane
    ([2.0, 2.0, 0.0], np.sqrt(2.0)),  # beside the hypotenuse bc (nearest point (1, 1, 0))
    ([-1.0, -1.0, 1.0], np.sqrt(3.0)),  # nearest to vertex a
    ([4.0, -1.0, 0.0], np.sqrt(5.0)),  # nearest to vertex b
    ([0.0, 2.0, 0.0], 0.0),  # on vertex c
    ([1.0, 0.0, 0.0], 0.0),  # on edge ab
])  # fmt: skip
def test_point_triangle_distance_known_values(point, expected):
    a, b, c = TRI
    assert point_triangle_distance(np.array(point), a, b, c) == pytest.approx(expected, abs=1e-12)
    q = SurfaceQuery(TRI, np.array([[0, 1, 2]]))
    assert q.distance(np.array([point]))[0] == pytest.approx(expected, abs=1e-12)


def test_degenerate_triangles_are_segments():
    a, b = np.zeros(3), np.array([2.0, 0.0, 0.0])
    assert point_triangle_distance(np.array([1.0, 1.0, 0.0]), a, b, b) == pytest.approx(1.0)
    assert point_triangle_distance(np.array([3.0, 0.0, 0.0]), a, a, a) == pytest.approx(3.0)


def _random_mesh(rng, n=40):
    """A bumpy sphere (triangles of very different sizes) and points around its surface."""
    from scipy.spatial import ConvexHull

    u = rng.normal(size=(n, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    faces = ConvexHull(u).simplices
    v = u * rng.uniform(0.7, 1.3, (n, 1))
    return v, faces


def test_query_equals_the_exhaustive_search_on_a_random_mesh():
    rng = np.random.default_rng(0)
    v, faces = _random_mesh(rng)
    pts = np.concatenate([v + rng.normal(0, 0.05, v.shape), rng.normal(0, 1.5, (300, 3))])
    ref = point_to_mesh_distance(torch.tensor(pts)[None], torch.tensor(v)[None], torch.as_tensor(faces),
                                 candidates=0)[0].numpy()  # fmt: skip
    for k in (1, 4, 50):
        np.testing.assert_allclose(SurfaceQuery(v, faces).distance(pts, k), ref, atol=1e-12)
    brute = point_triangle_distance(pts[:, None], *(v[faces][None, :, i] for i in range(3))).min(1)
    np.testing.assert_allclose(brute, ref, atol=1e-12)


def test_surface_error_alignments():
    rng = np.random.default_rng(1)
    v, faces = _random_mesh(rng, 60)
    R = roma.rotvec_to_rotmat(torch.tensor([0.3, -0.5, 0.2], dtype=torch.float64)).numpy()
    moved = v @ R.T + [0.5, 0.1, -2.0]
    assert surface_error(moved, v, faces) < 1e-9  # rigid removes rotation + translation
    assert surface_error(moved, v, faces, align="none") > 0.5
    assert surface_error(2 * moved, v, faces) > 0.05  # rigid keeps a size error ...
    assert surface_error(2 * moved, v, faces, align="procrustes") < 1e-9  # ... similarity does not
    bumped = v * (1 + 0.05 * rng.standard_normal((len(v), 1)))
    per = surface_error(np.stack([v, bumped]), np.stack([v, v]), faces, reduce=False)
    assert per.shape == (2,) and per[0] < 1e-12 < per[1]
    with pytest.raises(ValueError, match="align"):
        surface_error(v, v, faces, align="scale")
    with pytest.raises(ValueError, match="same vertices"):
        surface_error(v[:-1], v, faces)
    with pytest.raises(ValueError, match="out of range"):
        SurfaceQuery(v, faces + len(v))


@pytest.mark.anny
def test_anny_head_matches_the_old_metric_and_is_fast(anny_head):
    from neuralannot.metrics import face_surface_error

    g = torch.Generator().manual_seed(0)
    params = anny_head.default_params(2)
    params["expression"] = torch.rand(2, params["expression"].shape[-1], generator=g) * 0.5
    gt = anny_head(params).vertices.double()
    params["phenotype"] = torch.rand(2, 6, generator=g)
    params["root_pose"] = torch.randn(2, 3, generator=g) * 0.3
    pred = anny_head(params).vertices.double()
    faces = anny_head.faces
    t = time.perf_counter()
    new = surface_error(pred, gt, faces, align="procrustes", reduce=False)
    per_mesh = (time.perf_counter() - t) / 2
    old = face_surface_error(pred[:1], gt[:1], faces, reduce=False)
    assert new[0] == pytest.approx(float(old[0]), rel=1e-9)
    assert per_mesh < 0.5  # ~0.05 s on one core (the torch metric: seconds)
