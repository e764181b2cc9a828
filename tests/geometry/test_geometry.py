"""Geometry helpers against hand-computed values: 6D rotations, projection, crops, alignment."""

import math

import pytest
import roma
import torch

from neuralannot.geometry import (
    apply_similarity,
    backproject,
    crop_resize_affine,
    crop_resize_intrinsics,
    estimate_translation,
    flip_rotvec,
    intrinsics_matrix,
    procrustes_align,
    project,
    rigid_align,
    rot6d_to_rotmat,
    rot6d_to_rotvec,
    rotation_format,
    rotmat_to_rot6d,
    rotmat_to_rotvec,
    rotvec_to_rot6d,
    rotvec_to_rotmat,
    similarity_align,
    to_rotmat,
    to_rotvec,
    transform_points_2d,
)

K0 = torch.tensor([[1000.0, 0.0, 320.0], [0.0, 1100.0, 240.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def close(a, b, atol=1e-6):
    torch.testing.assert_close(
        torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), atol=atol, rtol=0
    )


# --- rotations ---------------------------------------------------------------------------------


def test_rot6d_is_first_two_columns_and_roundtrips(gen):
    R = roma.random_rotmat((5, 2), generator=gen, dtype=torch.float64)
    x = rotmat_to_rot6d(R)
    assert x.shape == (5, 2, 6)
    close(x[..., :3], R[..., :, 0])
    close(x[..., 3:], R[..., :, 1])
    close(rot6d_to_rotmat(x), R, atol=1e-12)
    rv = rotmat_to_rotvec(R)
    close(rot6d_to_rotvec(rotvec_to_rot6d(rv)), rv, atol=1e-9)


def test_rot6d_gram_schmidt_of_unnormalised_input():
    x = torch.tensor([2.0, 0.0, 0.0, 1.0, 3.0, 0.0])  # columns (2,0,0) and (1,3,0) -> identity
    close(rot6d_to_rotmat(x), torch.eye(3))
    assert torch.isfinite(rot6d_to_rotmat(torch.zeros(6))).all()


def test_rotation_format_names_each_representation_and_never_guesses():
    one_rotvec_per_sample_batch3 = torch.zeros(3, 3)  # B=3 single rotations, axis-angle
    assert rotation_format(one_rotvec_per_sample_batch3) == "axis_angle"
    assert rotation_format(torch.zeros(3, 3, 3)) == "matrix"  # B=3 single matrices
    assert rotation_format(torch.zeros(3, 3), count=(3,), batch_dims=0) == "axis_angle"
    assert rotation_format(torch.zeros(2, 5, 21, 3), count=(21,), batch_dims=2) == "axis_angle"
    assert rotation_format(torch.zeros(2, 21, 3, 3), count=(21,)) == "matrix"
    with pytest.raises(ValueError, match=r"neither axis-angle \(B, 21, 3\) nor matrices \(B, 21, 3, 3\)"):
        rotation_format(torch.zeros(2, 20, 3), count=(21,))
    with pytest.raises(ValueError, match="neither"):
        rotation_format(torch.zeros(2, 6))


def test_to_rotmat_and_to_rotvec_follow_the_named_format(gen):
    rv = torch.randn(4, 2, 3, generator=gen, dtype=torch.float64)
    R = to_rotmat(rv, "axis_angle")
    close(R, rotvec_to_rotmat(rv))
    assert to_rotmat(R, "matrix") is R
    close(to_rotvec(R, "matrix"), rotmat_to_rotvec(R))
    assert to_rotvec(rv, "axis_angle") is rv
    with pytest.raises(ValueError, match="unknown rotation format"):
        to_rotmat(rv, "quaternion")


def test_rotvec_90_degrees_about_z():
    R = rotvec_to_rotmat(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    close(R, [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], atol=1e-12)
    close(R @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), [0.0, 1.0, 0.0], atol=1e-12)
    close(rotmat_to_rotvec(R), [0.0, 0.0, math.pi / 2], atol=1e-12)
    close(rotmat_to_rot6d(R), [0.0, 1.0, 0.0, -1.0, 0.0, 0.0], atol=1e-12)


def test_flip_rotvec_is_mirror_conjugation(gen):
    rv = roma.random_rotvec(8, generator=gen, dtype=torch.float64)
    M = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    close(rotvec_to_rotmat(flip_rotvec(rv)), M @ rotvec_to_rotmat(rv) @ M, atol=1e-12)
    close(flip_rotvec(torch.tensor([1.0, 2.0, 3.0])), [1.0, -2.0, -3.0])


# --- camera ------------------------------------------------------------------------------------


def test_project_by_hand():
    P = torch.tensor([[0.0, 0.0, 2.0], [1.0, -0.5, 2.0], [0.2, 0.4, 4.0]], dtype=torch.float64)
    expected = [[320.0, 240.0], [320.0 + 500.0, 240.0 - 275.0], [320.0 + 50.0, 240.0 + 110.0]]
    close(project(P, K0), expected)
    close(
        project(P[None], focal=torch.tensor([[1000.0, 1100.0]]), princpt=torch.tensor([[320.0, 240.0]])),
        [expected],
    )
    close(intrinsics_matrix(torch.tensor([1000.0, 1100.0]), torch.tensor([320.0, 240.0])), K0)


def test_project_skew_broadcast_and_behind_camera():
    K = K0.clone()
    K[0, 1] = 10.0
    P = torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)
    close(project(P, K), [[320.0 + 250.0 + 5.0, 240.0 + 550.0]])
    Ks = torch.stack([K0, 2 * K0])
    Ks[1, 2, 2] = 1.0
    assert project(P.expand(2, 3, 3), Ks).shape == (2, 3, 2)
    behind = project(torch.tensor([[1.0, 1.0, -1.0]]), K0.float(), eps=1e-3)
    assert torch.isfinite(behind).all() and (behind > 1e5).all()  # clamped to z = eps, not mirrored


def test_project_needs_intrinsics():
    with pytest.raises(ValueError):
        project(torch.ones(2, 3))
    with pytest.raises(ValueError):
        project(torch.ones(2, 3), K0, focal=1.0, princpt=torch.zeros(2))


def test_backproject_inverts_project(gen):
    K = K0.clone()
    K[0, 1] = 3.0
    P = torch.randn(4, 10, 3, generator=gen, dtype=torch.float64) + torch.tensor([0.0, 0.0, 5.0])
    close(backproject(project(P, K), P[..., 2], K), P, atol=1e-9)


def test_crop_resize_intrinsics_matches_2d_transform(gen):
    P = torch.randn(3, 12, 3, generator=gen, dtype=torch.float64) + torch.tensor([0.0, 0.0, 4.0])
    bbox = torch.tensor(
        [[100.0, 50.0, 300.0, 200.0], [-40.0, -30.0, 800.0, 600.0], [500.0, 400.0, 64.0, 128.0]],
        dtype=torch.float64,
    )  # 2nd and 3rd extend outside a 640x480 image
    K = K0.clone()
    K[0, 1] = 2.0
    K2 = crop_resize_intrinsics(K, bbox, (256, 192))
    close(project(P, K2), transform_points_2d(project(P, K), bbox, (256, 192)), atol=1e-8)
    # by hand for the first bbox: sx = 256/300, sy = 192/200
    close(
        K2[0], [[1000 * 256 / 300, 2 * 256 / 300, 220 * 256 / 300], [0.0, 1100 * 0.96, 190 * 0.96], [0, 0, 1]]
    )
    A = crop_resize_affine(bbox[0], (256, 192), dtype=torch.float64)
    close(A, [[256 / 300, 0.0, -100 * 256 / 300], [0.0, 0.96, -50 * 0.96]])
    with pytest.raises(ValueError):
        crop_resize_intrinsics(K, torch.tensor([0.0, 0.0, 0.0, 10.0]), (256, 256))


def test_estimate_translation_recovers_known_translation(gen):
    J = 0.3 * torch.randn(3, 17, 3, generator=gen, dtype=torch.float64)
    T = torch.tensor([[0.1, -0.2, 4.0], [0.5, 0.3, 8.0], [-0.4, 0.0, 2.5]], dtype=torch.float64)
    uv = project(J + T[:, None], K0)
    close(estimate_translation(J, uv, None, K0), T, atol=1e-8)
    w = torch.rand(3, 17, generator=gen, dtype=torch.float64)
    w[:, 5:] = 0.0
    uv[:, 5:] = float("nan")  # ignored where weight is 0
    close(estimate_translation(J, uv, w, K0[None]), T, atol=1e-8)
    t32 = estimate_translation(J.float(), project(J + T[:, None], K0).float(), None, K0.float())
    assert t32.dtype == torch.float32
    close(t32, T, atol=1e-3)


def test_estimate_translation_fallback_with_one_valid_joint(gen):
    J = 0.3 * torch.randn(2, 17, 3, generator=gen, dtype=torch.float64)
    T = torch.tensor([[0.1, -0.2, 4.0], [0.5, 0.3, 8.0]], dtype=torch.float64)
    uv = project(J + T[:, None], K0)
    w = torch.zeros(2, 17, dtype=torch.float64)
    w[0, 3] = 1.0  # one valid joint; sample 1 has none
    t = estimate_translation(J, uv, w, K0)
    assert torch.isfinite(t).all()
    close(project(J[0, 3:4] + t[0], K0), uv[0, 3:4], atol=1e-6)  # the valid joint projects exactly
    assert ((t[:, 2] - T[:, 2]).abs() / T[:, 2] < 0.25).all()  # similar-triangles depth is close


# --- alignment ---------------------------------------------------------------------------------


def test_umeyama_recovers_similarity(gen):
    R = roma.random_rotmat(6, generator=gen)
    t = torch.randn(6, 3, generator=gen)
    s = torch.rand(6, generator=gen) + 0.5
    src = torch.randn(6, 30, 3, generator=gen) + 3.0  # float32, off-centre
    dst = apply_similarity(src, R, t, s)
    R2, t2, s2 = similarity_align(src, dst)
    assert R2.dtype == torch.float32
    close(R2, R, atol=1e-5)
    close(t2, t, atol=1e-4)
    close(s2, s, atol=1e-5)
    R3, t3 = rigid_align(src, apply_similarity(src, R, t))
    close(R3, R, atol=1e-5)
    close(t3, t, atol=1e-4)


def test_umeyama_weighted_ignores_zero_weight_outliers(gen):
    R = roma.random_rotmat(2, generator=gen, dtype=torch.float64)
    src = torch.randn(2, 12, 3, generator=gen, dtype=torch.float64)
    dst = apply_similarity(
        src, R, torch.ones(2, 3, dtype=torch.float64), 2.0 * torch.ones(2, dtype=torch.float64)
    )
    dst[:, :3] += 100.0
    w = torch.ones(2, 12, dtype=torch.float64)
    w[:, :3] = 0.0
    R2, _, s2 = similarity_align(src, dst, w)
    close(R2, R, atol=1e-10)
    close(s2, [2.0, 2.0], atol=1e-10)
    R0, t0, s0 = similarity_align(src, dst, torch.zeros(2, 12, dtype=torch.float64))  # nothing valid
    close(R0, torch.eye(3).expand(2, 3, 3))
    close(t0, torch.zeros(2, 3))
    close(s0, [1.0, 1.0])


def test_umeyama_reflection_gives_proper_rotation(gen):
    # A planar set mirrored in x equals a 180 deg rotation about y: a proper fit is exact.
    src = torch.randn(1, 10, 3, generator=gen, dtype=torch.float64)
    src[..., 2] = 0.0
    dst = src * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    R, t, s = similarity_align(src, dst)
    close(torch.linalg.det(R), [1.0], atol=1e-10)
    close(R[0], torch.diag(torch.tensor([-1.0, 1.0, -1.0])), atol=1e-10)
    close(apply_similarity(src, R, t, s), dst, atol=1e-10)
    # A non-planar mirrored set cannot be fit exactly, but R stays a rotation and beats identity.
    src3 = torch.randn(1, 10, 3, generator=gen, dtype=torch.float64)
    dst3 = src3 * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    R3, t3, s3 = similarity_align(src3, dst3)
    close(torch.linalg.det(R3), [1.0], atol=1e-10)
    res = (apply_similarity(src3, R3, t3, s3) - dst3).square().sum()
    assert res < (src3 - dst3).square().sum()


def test_procrustes_align_zero_residual_and_grad(gen):
    src = torch.randn(4, 25, 3, generator=gen, requires_grad=True)
    R = roma.random_rotmat(4, generator=gen)
    dst = apply_similarity(src.detach(), R, torch.randn(4, 3, generator=gen), torch.full((4,), 0.7))
    aligned = procrustes_align(src, dst)
    assert (aligned - dst).norm(dim=-1).max() < 1e-4
    (aligned - dst + 0.01).square().sum().backward()
    assert torch.isfinite(src.grad).all()
    # degenerate (collinear) input still gives finite values and gradients
    line = (torch.linspace(0, 1, 5)[:, None] * torch.tensor([1.0, 2.0, 3.0]))[None].requires_grad_(True)
    out = procrustes_align(line, line.detach() + 1.0)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(line.grad).all()


def test_twist_angle_of_known_swing_and_twist():
    from neuralannot.geometry.rotations import twist_angle

    z = torch.tensor([0.0, 0.0, 1.0])
    twist = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, 0.7]))  # 0.7 rad about the axis
    swing = roma.rotvec_to_rotmat(torch.tensor([0.5, 0.0, 0.0]))  # about a perpendicular axis
    assert twist_angle(twist, z).item() == pytest.approx(0.7, abs=1e-5)
    assert twist_angle(swing, z).item() == pytest.approx(0.0, abs=1e-6)
    assert twist_angle(swing @ twist, z).item() == pytest.approx(0.7, abs=1e-5)  # R = swing · twist
    big = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, -3.0]))
    assert twist_angle(big, z).item() == pytest.approx(-3.0, abs=1e-5)  # stays in (−π, π]
    assert twist_angle(twist, torch.zeros(3)).item() == 0.0
    R = roma.rotvec_to_rotmat(torch.randn(4, 21, 3, generator=torch.Generator().manual_seed(0)))
    assert twist_angle(R, torch.nn.functional.normalize(torch.randn(21, 3), dim=-1)).shape == (4, 21)


def test_translation_fit_is_the_masked_mean_offset():
    from neuralannot.geometry.alignment import translation_fit

    pred = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [5.0, 5, 5]]])
    gt = pred + torch.tensor([0.5, -1.0, 2.0])
    gt[0, 2] = 100.0  # masked out
    valid = torch.tensor([[True, True, False]])
    assert torch.allclose(translation_fit(pred, gt, valid), torch.tensor([[0.5, -1.0, 2.0]]))
    assert torch.equal(translation_fit(pred, gt, torch.zeros(1, 3, dtype=torch.bool)), torch.zeros(1, 3))

def test_ray_rotation_known_values():
    from neuralannot.geometry import ray_rotation

    K = torch.tensor([[1000.0, 0.0, 500.0], [0.0, 800.0, 400.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    uv = torch.tensor([[500.0, 400.0], [1500.0, 400.0], [500.0, 1200.0]], dtype=torch.float64)
    R = ray_rotation(K.expand(3, 3, 3), uv)
    torch.testing.assert_close(R[0], torch.eye(3, dtype=torch.float64))  # on the axis: identity
    c = math.sqrt(0.5)
    # one focal length right: 45 degrees about +y, taking z onto (1, 0, 1)/sqrt(2)
    torch.testing.assert_close(R[1], torch.tensor([[c, 0, c], [0, 1, 0], [-c, 0, c]], dtype=torch.float64))
    # one focal length down (fy = 800): 45 degrees about -x, z onto (0, 1, 1)/sqrt(2)
    torch.testing.assert_close(R[2] @ torch.tensor([0, 0, 1.0], dtype=torch.float64),
                               torch.tensor([0, c, c], dtype=torch.float64))  # fmt: skip
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(3, 3, 3))
