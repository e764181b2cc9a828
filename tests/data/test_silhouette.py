"""Silhouette targets and loss (data/silhouette.py): mask crops, GT mesh at the minimum, wiring."""

import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from neuralannot.data.silhouette import (
    EndPartWeights,
    mask_path,
    nearest_points,
    silhouette_batch,
    silhouette_loss,
    silhouette_residual,
    silhouette_target,
    silhouette_targets,
)


def test_target_of_a_square_mask():
    mask = np.zeros((100, 100), np.uint8)
    mask[20:60, 30:70] = 255
    A = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # identity crop of the top-left 112 px
    dt, edge = silhouette_target(mask, A, 112, grid=112, points=32)
    assert dt[40, 50] == 0 and dt[40, 10] == pytest.approx(20.0, abs=1.5)  # 20 px left of the square
    # outline points lie on the square's border
    on_x = (np.abs(edge[:, 0] - 30.5) < 1.5) | (np.abs(edge[:, 0] - 69.5) < 1.5)
    on_y = (np.abs(edge[:, 1] - 20.5) < 1.5) | (np.abs(edge[:, 1] - 59.5) < 1.5)
    assert (on_x | on_y).all()
    assert silhouette_target(np.zeros((100, 100), np.uint8), A, 112) is None


def test_loss_is_zero_only_when_points_fill_the_mask():
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    A = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    dt, edge = silhouette_target(mask, A, 64, grid=64, points=64)
    dt, edge = torch.from_numpy(dt)[None], torch.from_numpy(edge)[None]
    ys, xs = np.mgrid[16:48, 16:48] + 0.5
    inside = torch.tensor(np.stack([xs.ravel(), ys.ravel()], -1), dtype=torch.float32)[None]
    fill = float(silhouette_loss(inside, dt, edge, 64))
    shrunk = float(silhouette_loss(32 + 0.5 * (inside - 32), dt, edge, 64))  # covers a quarter
    grown = float(silhouette_loss(32 + 1.5 * (inside - 32), dt, edge, 64))  # spills outside
    assert fill < 0.01 and shrunk > 2 * fill + 0.02 and grown > 2 * fill + 0.02


def test_outline_term_gradient_equals_the_dense_minimum():
    """The outline term picks each point's nearest vertex without grad; its value and gradient must
    equal those of the plain (dense) minimum over all vertices."""
    g = torch.Generator().manual_seed(0)
    uv = (torch.rand(3, 200, 2, generator=g, dtype=torch.float64) * 64).requires_grad_()
    edge = torch.rand(3, 24, 2, generator=g, dtype=torch.float64) * 64
    dt = torch.zeros(3, 16, 16)
    silhouette_loss(uv, dt, edge, 64).sum().backward()
    fast = uv.grad.clone()
    uv.grad = None
    ((uv[:, None] - edge[:, :, None]).norm(dim=-1).amin(-1).mean(-1) / 64).sum().backward()
    torch.testing.assert_close(fast, uv.grad)


def test_nearest_points_match_the_dense_argmin():
    """The CPU k-d tree picks the same nearest vertex as the dense distances; a non-finite vertex
    (a diverging fit) is never picked and breaks nothing; an empty batch gives an empty index."""
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(4, 300, 2, generator=g, dtype=torch.float64) * 224
    q = torch.rand(4, 50, 2, generator=g, dtype=torch.float64) * 224
    assert torch.equal(nearest_points(q, pts), torch.cdist(q, pts).argmin(-1))
    pts[0, 7] = float("nan")
    idx = nearest_points(q, pts)
    assert idx.shape == (4, 50) and not bool((idx[0] == 7).any())
    assert nearest_points(q[:0], pts[:0]).shape == (0, 50)


@pytest.mark.anny
def test_gt_mesh_fits_its_mask_better_than_other_shapes(anny_body, tmp_path):
    from neuralannot.annotators.pipeline import load_samples
    from neuralannot.data.silhouette import silhouette_vertex_ids
    from neuralannot.data.synthetic.generator import generate
    from neuralannot.evaluation import gt_params
    from neuralannot.geometry import project

    data = tmp_path / "mocap"
    generate("mocap", 6, data, seed=5, workers=1, shard_size=6, image_size=128, masks=True, progress=False)
    samples, _ = load_samples(data, "body", needs_3d=True)
    assert all(mask_path(s) is not None for s in samples)
    t = silhouette_targets(samples, 112)
    assert bool(t["sil_valid"].all())
    ids = silhouette_vertex_ids(anny_body, 1024)
    gt = {
        k: torch.as_tensor(np.stack([gt_params(s.gt, anny_body)[k] for s in samples]))
        for k in ("root_pose", "body_pose", "phenotype", "trans")
    }
    losses = {}
    for name, dw in (("gt", 0.0), ("heavier", 0.4), ("lighter", -0.4)):
        p = {**gt, "phenotype": (gt["phenotype"] + torch.tensor([0, 0, dw, dw, 0, 0])).clamp(0, 1)}
        uv = project(anny_body(p, vertex_ids=ids).vertices, t["K_image"])
        losses[name] = float(silhouette_loss(uv, t["sil_dt"], t["sil_edge"], 112).mean())
    assert losses["gt"] < min(losses["heavier"], losses["lighter"]), losses

    # the per-sample fit's residual (3D SMPLify-X --silhouette) ranks the shapes the same way
    sil = silhouette_batch(anny_body, samples, 112)
    idx = torch.arange(len(samples))
    res = {}
    for name, dw in (("gt", 0.0), ("heavier", 0.4)):
        p = {**gt, "phenotype": (gt["phenotype"] + torch.tensor([0, 0, dw, dw, 0, 0])).clamp(0, 1)}
        res[name] = float(silhouette_residual(anny_body, p, sil, idx).mean())
    assert res["gt"] < res["heavier"], res
    assert silhouette_batch(anny_body, [replace(s, extra={}) for s in samples], 112) is None


@pytest.mark.anny
def test_3d_fit_takes_a_silhouette_term(tmp_path):
    from neuralannot.annotators.optimize import FitOptions, fit_dataset
    from neuralannot.data.loading import load_samples
    from neuralannot.data.synthetic.generator import generate

    data = tmp_path / "mocap"
    generate("mocap", 2, data, seed=6, workers=1, shard_size=2, image_size=96, masks=True, progress=False)
    samples, _ = load_samples(data, "body", needs_3d=True)
    opt = FitOptions(iterations=2, w_silhouette=10.0)
    records, summary = fit_dataset(samples, "3d", "anny", options=opt, parts_dir=tmp_path / "fits")
    assert summary["method"] == "smplifyx-3d-silhouette" and len(records) == 2
    assert all(np.isfinite(r.quality["joint_err_mm"]) for r in records) and summary["masked"] == 2
    _, resumed = fit_dataset(samples, "3d", "anny", options=opt, parts_dir=tmp_path / "fits")
    assert resumed["resumed"] == 2 and resumed["masked"] == 2  # read back, still counted as masked
    assert resumed["method"] == summary["method"]
    # the resume folder's name follows the mask files: a mask rewritten in place names a new folder
    from neuralannot.annotators.optimize import fit_digest
    from neuralannot.data.silhouette import mask_path

    key, no_masks = fit_digest(samples, "3d", opt), fit_digest(samples, "3d", FitOptions(iterations=2))
    mask = mask_path(samples[0])
    os.utime(mask, ns=(mask.stat().st_atime_ns, mask.stat().st_mtime_ns + 10**9))
    assert fit_digest(samples, "3d", opt) != key
    assert fit_digest(samples, "3d", FitOptions(iterations=2)) == no_masks  # an unmasked fit reads none
    with pytest.raises(ValueError, match="w_silhouette"):
        FitOptions(w_silhouette=-1.0)
    # samples without masks: the weight is set but no term is added, and the name says so
    _, plain = fit_dataset([replace(s, extra={}) for s in samples], "3d", "anny", options=opt)
    assert plain["method"] == "smplifyx-3d" and plain["masked"] == 0


def test_3d_hybrid_refines_with_the_masks_by_default(tmp_path):
    from neuralannot.annotators.hybrid import HybridOptions, refine_records
    from neuralannot.annotators.optimize import FitOptions, fit_dataset
    from neuralannot.annotators.optimize_problem import HYBRID_SILHOUETTE
    from neuralannot.data.loading import load_samples
    from neuralannot.data.synthetic.generator import generate

    data = tmp_path / "mocap"
    generate("mocap", 2, data, seed=7, workers=1, shard_size=2, image_size=96, masks=True, progress=False)
    samples, _ = load_samples(data, "body", needs_3d=True)
    start, _ = fit_dataset(samples, "3d", "anny", options=FitOptions(iterations=2))
    _, summary = refine_records(samples, start, "3d", "anny", options=HybridOptions(iterations=2))
    assert summary["w_silhouette"] == HYBRID_SILHOUETTE and summary["method"].endswith("-silhouette")
    no_masks = HybridOptions(iterations=2, w_silhouette=0.0)
    _, off = refine_records(samples, start, "3d", "anny", options=no_masks)
    assert off["w_silhouette"] == 0.0 and not off["method"].endswith("-silhouette")


def test_silhouette_residual_poses_smpl_family_models(tmp_path):
    """The masked fit's residual with a user's SMPL model (no vertex-subset forward)."""
    from neuralannot.bodies import load_body_model
    from neuralannot.data.silhouette import silhouette_vertex_ids
    from smplx_fixtures import write_smpl

    smpl = load_body_model(write_smpl(tmp_path)[0])
    ids = silhouette_vertex_ids(smpl, 16)
    params = smpl.default_params(2)
    params["trans"] = torch.tensor([[0.0, 0.0, 3.0]] * 2)
    K = torch.tensor([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]]).expand(2, 3, 3)
    sil = {"ids": ids, "K_image": K, "sil_dt": torch.ones(2, 16, 16), "sil_edge": torch.full((2, 8, 2), 32.0),
           "sil_valid": torch.ones(2, dtype=torch.bool), "size": 64}  # fmt: skip
    res = silhouette_residual(smpl, params, sil, torch.arange(2))
    assert res.shape == (2,) and bool(torch.isfinite(res).all()) and bool((res > 0).all())


def test_weighted_loss_is_the_plain_one_under_equal_weights_and_follows_the_weights():
    dt = torch.zeros(1, 8, 8)
    dt[0, :, 4:] = 10.0  # the right half is outside the mask, 10 px away
    edge = torch.tensor([[[1.0, 1.0], [1.0, 7.0]]])
    uv = torch.tensor([[[1.0, 1.0], [6.0, 6.0]]])  # one vertex in, one out; outline point 2 uncovered
    plain = silhouette_loss(uv, dt, edge, 8)
    same = silhouette_loss(uv, dt, edge, 8, torch.full((2,), 3.0), torch.full((1, 2), 5.0))
    assert torch.allclose(plain, same)
    # only the inside vertex and the covered outline point count: zero loss
    zero = silhouette_loss(uv, dt, edge, 8, torch.tensor([1.0, 0.0]), torch.tensor([[1.0, 0.0]]))
    assert float(zero) == pytest.approx(0.0, abs=1e-6)
    out = silhouette_loss(uv, dt, edge, 8, torch.tensor([0.0, 1.0]), torch.tensor([[1.0, 0.0]]))
    assert float(out) == pytest.approx(10.0 / 8)  # the outside vertex alone: 10 px, in crop units


def test_end_part_weights_stress_end_vertices_and_outline_points_near_the_hands(anny_body):
    from neuralannot.bodies.regions import vertex_regions

    regions = vertex_regions(anny_body)
    ids = torch.cat([regions["hands"][:3], regions["torso"][:3]])
    w = EndPartWeights(anny_body, ids, "h36m17", weight=4.0, radius=10.0)
    assert w.vertex.tolist() == [4.0] * 3 + [1.0] * 3
    joints = torch.zeros(1, 17, 3)
    joints[0, 12] = torch.tensor([50.0, 50.0, 1.0])  # left elbow
    joints[0, 13] = torch.tensor([50.0, 70.0, 1.0])  # left wrist: the hand centre at (50, 77)
    edge = torch.tensor([[[50.0, 80.0], [10.0, 10.0], [0.0, 0.0]]])
    kw = w(joints, edge)
    # near the left hand: 4; far: 1; at the origin, where the missing parts' centres sit: 1 (invalid)
    assert kw["edge_weight"].tolist() == [[4.0, 1.0, 1.0]]
