"""Metrics against hand-computed values, masking, alignment modes and input validation."""

import math

import numpy as np
import pytest
import roma
import torch

from neuralannot.geometry import apply_similarity
from neuralannot.metrics import (
    FREIHAND_AUC,
    auc,
    auc_from_errors,
    face_surface_error,
    joint_errors,
    mpjpe,
    mpvpe,
    pck,
    pck_curve,
    point_to_mesh_distance,
    point_to_surface_error,
    reprojection_error,
)

GT = np.zeros((1, 3, 3))
PRED = np.array([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]])  # errors 1, 2, 3


def test_mpjpe_by_hand_and_numpy_torch_agree():
    assert mpjpe(PRED, GT) == pytest.approx(2.0)
    assert mpjpe(torch.tensor(PRED, dtype=torch.float32), torch.tensor(GT)) == pytest.approx(2.0)
    assert isinstance(mpjpe(PRED, GT), float)
    assert mpjpe(PRED[0], GT[0]) == pytest.approx(2.0)  # unbatched
    assert mpjpe(PRED, GT, valid=[[1, 0, 1]]) == pytest.approx(2.0)
    assert mpjpe(PRED, GT, valid=[True, True, False]) == pytest.approx(1.5)


def test_mpjpe_pools_joints_and_per_sample():
    pred = np.concatenate([PRED, PRED * 2])
    gt = np.zeros_like(pred)
    valid = np.array([[1, 1, 1], [1, 0, 0]])
    assert mpjpe(pred, gt, valid=valid) == pytest.approx((1 + 2 + 3 + 2) / 4)
    np.testing.assert_allclose(mpjpe(pred, gt, valid=valid, reduce=False), [2.0, 2.0])
    np.testing.assert_allclose(mpjpe(pred, gt, valid=[1, 0, 0], reduce=False), [1.0, 2.0])  # shared mask
    per = mpjpe(pred, gt, valid=np.array([[1, 1, 1], [0, 0, 0]]), reduce=False)
    assert per[0] == pytest.approx(2.0) and math.isnan(per[1])
    assert math.isnan(mpjpe(pred, gt, valid=np.zeros((2, 3))))
    errs = joint_errors(pred, gt, valid=valid)
    assert errs.shape == (2, 3) and np.isnan(errs[1, 1:]).all() and errs[1, 0] == pytest.approx(2.0)


def test_root_alignment_cancels_offset(gen):
    gt = torch.randn(4, 17, 3, generator=gen)
    pred = gt + torch.tensor([0.3, -1.0, 2.0])
    assert mpjpe(pred, gt) == pytest.approx(math.sqrt(0.09 + 1 + 4), rel=1e-6)
    assert mpjpe(pred, gt, align="root") < 1e-6
    assert mpjpe(pred, gt, align="root", root_index=[1, 2]) < 1e-6  # e.g. mean of both hips
    # root joint only: root error is zero, others keep theirs
    pred2 = gt.clone()
    pred2[:, 1, 0] += 1.0
    assert mpjpe(pred2, gt, align="root", root_index=0) == pytest.approx(1 / 17, rel=1e-6)
    assert mpjpe(pred2, gt, align="root", root_index=[0, 1]) > 0


def test_procrustes_error_zero_for_similar_copies(gen):
    gt = torch.randn(5, 14, 3, generator=gen, dtype=torch.float64)
    pred = apply_similarity(
        gt,
        roma.random_rotmat(5, generator=gen, dtype=torch.float64),
        torch.randn(5, 3, generator=gen, dtype=torch.float64),
        torch.rand(5, generator=gen, dtype=torch.float64) + 0.5,
    )
    assert mpjpe(pred, gt) > 0.1
    assert mpjpe(pred, gt, align="procrustes") < 1e-9
    # NaN at invalid gt joints does not leak into the alignment
    gt_nan, pred_bad = gt.clone(), pred.clone()
    gt_nan[:, 0] = float("nan")
    pred_bad[:, 0] = 1e3
    valid = torch.ones(5, 14, dtype=torch.bool)
    valid[:, 0] = False
    assert mpjpe(pred_bad, gt_nan, align="procrustes", valid=valid) < 1e-9


def test_mpvpe_root_options(gen):
    gt = torch.randn(2, 40, 3, generator=gen)
    pred = gt + torch.tensor([1.0, 0.0, 0.0])
    assert mpvpe(pred, gt) == pytest.approx(1.0, rel=1e-6)
    assert mpvpe(pred, gt, align="root") < 1e-6  # vertex means
    assert (
        mpvpe(pred, gt, align="root", pred_root=torch.tensor([[1.0, 0, 0]] * 2), gt_root=torch.zeros(2, 3))
        < 1e-6
    )
    assert mpvpe(pred, gt, align="root", pred_root=torch.zeros(2, 3), gt_root=torch.zeros(2, 3)) == (
        pytest.approx(1.0, rel=1e-6)
    )
    assert mpvpe(pred, gt, align="root", root_index=7) < 1e-6
    with pytest.raises(ValueError, match="both"):
        mpvpe(pred, gt, align="root", pred_root=torch.zeros(2, 3))


def test_freihand_auc_known_values():
    # FreiHAND: 100 thresholds over [0, 50 mm], step h = 50/99 mm. An error of 25 mm = 49.5 h lies
    # midway between two thresholds: the trapezoid area is (T - 49.5 h) / T = 1/2 exactly
    assert auc_from_errors(np.full(7, 0.025), **FREIHAND_AUC) == pytest.approx(0.5, abs=1e-12)
    assert auc_from_errors([0.0, 0.06], **FREIHAND_AUC) == pytest.approx(0.5)  # 1 and 0
    # hand21 with the wrist exact and every other joint 25 mm off, after a translation: root
    # alignment removes the translation, the wrist scores 1 and the rest 1/2 -> 11/21
    gt = np.random.default_rng(0).normal(size=(2, 21, 3)) * 0.05
    d = np.random.default_rng(1).normal(size=(2, 21, 3))
    pred = gt + 0.025 * d / np.linalg.norm(d, axis=-1, keepdims=True)
    pred[:, 0] = gt[:, 0]
    pred += np.array([0.3, -0.1, 0.2])
    assert auc(pred, gt, align="root", **FREIHAND_AUC) == pytest.approx(11 / 21, abs=1e-9)
    assert auc(pred, gt, **FREIHAND_AUC) < 0.01  # without alignment: 0.37 m off


def test_pck_and_auc_known_values():
    gt = np.zeros((1, 4, 3))
    assert auc(gt, gt) == pytest.approx(1.0)
    assert auc(gt, gt, max_threshold=0.05, steps=100) == pytest.approx(1.0)
    pred = gt.copy()
    pred[0, :, 0] = [0.01, 0.02, 0.03, 0.2]
    assert pck(pred, gt, 0.025) == pytest.approx(0.5)
    assert pck(pred, gt, 0.03) == pytest.approx(0.75)  # inclusive threshold
    assert pck(pred, gt, 0.025, valid=[1, 1, 0, 0]) == pytest.approx(1.0)
    np.testing.assert_allclose(pck_curve([0.01, 0.02, np.nan], [0.0, 0.015, 0.02]), [0.0, 0.5, 1.0])
    # all errors equal c = 0.0751 on a 101-point grid over [0, 0.15]: PCK jumps at t_51
    # -> trapezoid area (100 - 51 + 0.5) / 100
    assert auc_from_errors(np.full(10, 0.0751), 0.15, 101) == pytest.approx(0.495)
    # uniformly spread errors: PCK(t) = t / max -> AUC 1/2
    assert auc_from_errors(np.linspace(0, 0.05, 100001), 0.05, 100) == pytest.approx(0.5, abs=1e-4)
    assert auc_from_errors([1.0], 0.15) == 0.0


def test_reprojection_masking():
    gt = np.array([[[0.0, 0.0], [10.0, 10.0], [np.nan, np.nan]]])
    pred = np.array([[[3.0, 4.0], [10.0, 12.0], [100.0, 100.0]]])
    vis = np.array([[1, 1, 0]])
    assert reprojection_error(pred, gt, vis) == pytest.approx(3.5)
    gt_conf = np.concatenate([gt, np.array([[[0.9], [0.0], [0.0]]])], -1)
    assert reprojection_error(pred, gt_conf) == pytest.approx(5.0)
    assert reprojection_error(torch.tensor(pred), torch.tensor(gt_conf)) == pytest.approx(5.0)
    assert math.isnan(reprojection_error(pred, gt, np.zeros((1, 3))))
    with pytest.raises(ValueError, match="NaN"):
        reprojection_error(pred, gt)  # NaN gt at a visible joint


def test_point_to_surface_regions():
    tri = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])
    pts = torch.tensor(
        [
            [
                [0.25, 0.25, 2.0],  # above the interior -> plane distance
                [0.25, 0.25, -0.5],  # below
                [-1.0, -1.0, 0.0],  # vertex region of (0, 0, 0)
                [0.5, -2.0, 1.0],  # edge region of the x-axis edge
                [1.0, 1.0, 0.0],
            ]
        ],
        dtype=torch.float64,
    )  # hypotenuse region
    d = point_to_mesh_distance(pts, tri, faces)
    torch.testing.assert_close(
        d[0], torch.tensor([2.0, 0.5, math.sqrt(2), math.sqrt(5), math.sqrt(0.5)], dtype=torch.float64)
    )
    assert point_to_surface_error(pts[:, :1], tri, faces) == pytest.approx(2.0)
    assert point_to_surface_error(pts[:, :1].numpy(), tri.numpy(), faces.numpy()) == pytest.approx(2.0)
    # a degenerate (zero-area) face behaves as a segment
    d2 = point_to_mesh_distance(torch.tensor([[[0.5, 1.0, 0.0]]]), tri.float(), torch.tensor([[0, 1, 1]]))
    assert d2.item() == pytest.approx(1.0)


def test_point_to_mesh_matches_brute_force_and_chunks(gen):
    V = torch.randn(2, 30, 3, generator=gen, dtype=torch.float64)
    F = torch.randint(0, 30, (40, 3), generator=gen)
    P = torch.randn(2, 25, 3, generator=gen, dtype=torch.float64)
    d = point_to_mesh_distance(P, V, F)
    torch.testing.assert_close(point_to_mesh_distance(P, V, F, chunk_size=7), d)
    # dense barycentric samples give an upper bound that is tight
    u, v = torch.meshgrid(
        torch.linspace(0, 1, 60, dtype=torch.float64),
        torch.linspace(0, 1, 60, dtype=torch.float64),
        indexing="ij",
    )
    keep = (u + v) <= 1
    u, v = u[keep], v[keep]
    tri = V[:, F]  # (2, F, 3, 3)
    samples = (
        tri[:, :, 0, None] * (1 - u - v)[:, None]
        + tri[:, :, 1, None] * u[:, None]
        + tri[:, :, 2, None] * v[:, None]
    ).reshape(2, -1, 3)
    brute = torch.cdist(P, samples).amin(-1)
    assert (d <= brute + 1e-12).all()
    assert (brute - d).max() < 0.05


def test_point_to_mesh_candidate_pruning_is_exact(gen):
    V = torch.randn(1, 60, 3, generator=gen, dtype=torch.float64)
    F = torch.randint(0, 60, (120, 3), generator=gen)
    P = torch.randn(1, 200, 3, generator=gen, dtype=torch.float64)
    ref = point_to_mesh_distance(P, V, F, candidates=0)  # all faces
    for cand in (1, 4, 32):  # few candidates force the certified fallback
        torch.testing.assert_close(point_to_mesh_distance(P, V, F, chunk_size=500, candidates=cand), ref)
    P32 = P.float().requires_grad_(True)
    d = point_to_mesh_distance(P32, V.float(), F)
    d.sum().backward()
    assert d.dtype == torch.float32 and torch.isfinite(P32.grad).all()
    torch.testing.assert_close(d.detach().double(), ref, atol=1e-5, rtol=0)


def test_face_surface_error(gen):
    V = torch.randn(1, 30, 3, generator=gen, dtype=torch.float64)
    F = torch.cat([torch.arange(30).reshape(10, 3), torch.randint(0, 30, (40, 3), generator=gen)])  # all used
    moved = apply_similarity(
        V,
        roma.random_rotmat(1, generator=gen, dtype=torch.float64),
        torch.ones(1, 3, dtype=torch.float64),
        torch.tensor([1.3], dtype=torch.float64),
    )
    assert face_surface_error(moved, V, F) < 1e-9
    assert face_surface_error(moved, V, F, align="none") > 0.1
    assert face_surface_error(V + 1.0, V, F, align="root") < 1e-9
    assert face_surface_error(moved.numpy(), V.numpy(), F.numpy()) == pytest.approx(
        face_surface_error(moved, V, F)
    )


def test_numpy_and_torch_inputs_agree(gen):
    gt = torch.randn(3, 10, 3, generator=gen)
    pred = gt + 0.1 * torch.randn(3, 10, 3, generator=gen)
    for align in ("none", "root", "procrustes"):
        a = mpjpe(pred, gt, align=align)
        b = mpjpe(pred.numpy(), gt.numpy(), align=align)
        assert a == pytest.approx(b, rel=1e-12)
        assert auc(pred, gt, align=align) == pytest.approx(auc(pred.numpy(), gt.numpy(), align=align))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="'none', 'root', 'procrustes'"):
        mpjpe(PRED, GT, align="pa")
    with pytest.raises(ValueError, match="shapes differ"):
        mpjpe(PRED, GT[:, :2])
    gt_nan = GT.copy()
    gt_nan[0, 1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mpjpe(PRED, gt_nan)
    assert mpjpe(PRED, gt_nan, valid=[[1, 0, 1]]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="valid"):
        mpjpe(PRED, GT, valid=np.ones((1, 4)))
    with pytest.raises(ValueError, match="root"):
        mpjpe(PRED, GT, align="root", valid=[[0, 1, 1]])
    with pytest.raises(ValueError, match="root_index"):
        mpjpe(PRED, GT, align="root", root_index=5)
    with pytest.raises(ValueError, match="faces"):
        point_to_surface_error(PRED, GT, np.array([[0.0, 1.0, 2.0]]))
    with pytest.raises(ValueError, match="out of range"):
        point_to_surface_error(PRED, GT, np.array([[0, 1, 3]]))
