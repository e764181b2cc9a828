"""Rigid PnP by damped Gauss-Newton (geometry/pnp.py): recovers a known pose from exact projections."""

import math

import roma
import torch

from neuralannot.geometry import intrinsics_matrix, project
from neuralannot.geometry.pnp import rigid_pnp


def _scene(focal: float, depth: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    B, J = 5, 21
    X = torch.randn(B, J, 3, generator=g, dtype=torch.float64) * 0.05  # a hand-sized point set
    X[..., 2] += depth
    K = intrinsics_matrix(
        torch.full((B, 2), focal, dtype=torch.float64), torch.tensor([[128.0, 128.0]] * B).double()
    )
    axis = torch.nn.functional.normalize(torch.randn(B, 3, generator=g, dtype=torch.float64), dim=-1)
    Q_true = roma.rotvec_to_rotmat(axis * math.radians(15.0))
    c = X.mean(1)
    shift = torch.randn(B, 3, generator=g, dtype=torch.float64) * torch.tensor([0.01, 0.01, 0.05]).double()
    target = (X - c[:, None]) @ Q_true.transpose(-1, -2) + (c + shift)[:, None]
    return X, K, Q_true, shift, target


def test_recovers_a_known_rotation_and_translation_in_perspective():
    X, K, Q_true, shift, target = _scene(focal=500.0, depth=0.5)
    uv = project(target, K)
    w = torch.ones(X.shape[:2], dtype=X.dtype)
    Q, t, moved = rigid_pnp(X, uv, w, K, iterations=20)
    assert float(torch.rad2deg(roma.rotmat_geodesic_distance(Q, Q_true)).max()) < 1e-3
    assert torch.allclose(t, shift, atol=1e-6)
    assert torch.allclose(moved, target, atol=1e-6)
    assert float((project(moved, K) - uv).norm(dim=-1).max()) < 1e-4


def test_nearly_orthographic_camera_lowers_the_reprojection_error():
    """A crop's virtual camera (5,000 px focal, far away): depth and size trade off, the fit still
    lands on the 2D points."""
    X, K, _, _, target = _scene(focal=5000.0, depth=5.0, seed=1)
    uv = project(target, K)
    w = torch.ones(X.shape[:2], dtype=X.dtype)
    before = (project(X, K) - uv).norm(dim=-1).mean(-1)
    _, _, moved = rigid_pnp(X, uv, w, K, iterations=20)
    after = (project(moved, K) - uv).norm(dim=-1).mean(-1)
    assert bool((after < 0.01 * before).all()), (before, after)


def test_ignores_zero_weights_and_leaves_underdetermined_samples_unchanged():
    X, K, Q_true, _, target = _scene(focal=500.0, depth=0.5, seed=2)
    uv = project(target, K)
    w = torch.ones(X.shape[:2], dtype=X.dtype)
    w[0, :5] = 0.0
    uv[0, :4] = 1e4  # garbage where the weight is 0
    uv[0, 4] = float("nan")
    w[1, 2:] = 0.0  # two points: not enough for a pose
    Q, t, moved = rigid_pnp(X, uv, w, K, iterations=20)
    assert float(torch.rad2deg(roma.rotmat_geodesic_distance(Q[0], Q_true[0]))) < 1e-3
    assert torch.allclose(Q[1], torch.eye(3, dtype=Q.dtype)) and torch.allclose(
        t[1], torch.zeros(3, dtype=t.dtype)
    )
    assert torch.allclose(moved[1], X[1])
    assert Q.dtype == X.dtype and moved.shape == X.shape
