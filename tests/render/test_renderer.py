"""MeshRenderer against analytic projections: silhouette, depth, row order, compositing, clipping."""

import pickle

import numpy as np
import pytest

from conftest import skip_unless_ci
from neuralannot.render import MeshRenderer, RenderResult

W = H = 256
K = np.array([[200.0, 0.0, 128.0], [0.0, 200.0, 128.0], [0.0, 0.0, 1.0]])
TRI_F = np.array([[0, 1, 2]])


@pytest.fixture(scope="module")
def renderer():
    try:
        import moderngl  # noqa: F401
    except ImportError:
        skip_unless_ci("moderngl not installed (pip install 'neuralannot[render]')")
    r = MeshRenderer(W, H)
    try:
        assert r.gl_renderer  # creates the context
    except RuntimeError as e:
        skip_unless_ci(f"no OpenGL context available (run scripts/install_system_deps.sh): {e}")
    yield r
    r.release()


def project(v: np.ndarray, K: np.ndarray = K) -> np.ndarray:
    """(N, 3) camera points -> (N, 2) OpenCV pixel coordinates."""
    p = v @ K.T
    return p[:, :2] / p[:, 2:]


def triangle(z: float = 2.0, shift=(0.0, 0.0)) -> np.ndarray:
    v = np.array([[-0.5, -0.4, z], [0.6, -0.3, z], [0.1, 0.5, z]], np.float32)
    v[:, :2] += np.asarray(shift, np.float32) * z
    return v


def test_silhouette_matches_projected_triangle(renderer):
    v = triangle()
    res = renderer.render(v, TRI_F, K, color=(1.0, 0.0, 0.0))
    assert isinstance(res, RenderResult)
    assert res.image.shape == (H, W, 3) and res.image.dtype == np.uint8
    assert res.mask.shape == (H, W) and res.mask.dtype == bool
    assert res.depth.shape == (H, W) and res.depth.dtype == np.float32
    p = project(v)
    (ax, ay), (bx, by) = p[1] - p[0], p[2] - p[0]
    area = 0.5 * abs(ax * by - ay * bx)
    ys, xs = np.nonzero(res.mask)
    assert abs(len(xs) - area) < 0.02 * area + 150  # perimeter ≈ 400 px: boundary pixels either way
    np.testing.assert_allclose([xs.mean(), ys.mean()], p.mean(0), atol=1.0)
    assert res.image[res.mask][:, 0].min() > 0 and res.image[res.mask][:, 1:].max() == 0


def test_depth_equals_known_z(renderer):
    res = renderer.render(triangle(z=3.25), TRI_F, K)
    np.testing.assert_allclose(res.depth[res.mask], 3.25, rtol=1e-5)
    assert (res.depth[~res.mask] == 0).all()


def test_rows_not_flipped(renderer):
    v = triangle(z=2.0, shift=(-0.45, -0.45))  # up-left in OpenCV (x right, y down)
    res = renderer.render(v, TRI_F, K)
    ys, xs = np.nonzero(res.mask)
    assert xs.mean() < W / 4 and ys.mean() < H / 4
    np.testing.assert_allclose([xs.mean(), ys.mean()], project(v).mean(0), atol=1.0)


def test_background_preserved(renderer):
    bg = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    res = renderer.render(triangle(), TRI_F, K, color=(0.0, 1.0, 0.0), background=bg)
    assert 0 < res.mask.sum() < H * W
    np.testing.assert_array_equal(res.image[~res.mask], bg[~res.mask])
    assert (res.image[res.mask][:, [0, 2]] == 0).all()


def test_overlay_other_size(renderer):
    h, w = 180, 320
    Ko = np.array([[150.0, 0.0, w / 2], [0.0, 150.0, h / 2], [0.0, 0.0, 1.0]])
    img = np.full((h, w, 3), 100, np.uint8)
    v = triangle()
    out = renderer.overlay(img, v, TRI_F, Ko, color=(1.0, 1.0, 1.0), alpha=0.5)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    cx, cy = np.round(project(v, Ko).mean(0)).astype(int)
    assert out[cy, cx, 0] > 150  # 0.5 * 100 + 0.5 * shaded white
    assert (out[0, 0] == 100).all() and (out[-1, -1] == 100).all()
    res = renderer.render(v, TRI_F, K)  # the default-size framebuffer still works afterwards
    assert res.mask.shape == (H, W) and res.mask.any()


def test_behind_camera_is_empty(renderer):
    res = renderer.render(triangle(z=-2.0), TRI_F, K)
    assert not res.mask.any() and (res.image == 0).all()


def test_truncated_and_multi_mesh_occlusion(renderer):
    # A quad crossing the camera plane (z from -1 to 3) must be clipped, not crash or wrap around.
    quad = np.array([[-0.3, 0.2, -1.0], [0.3, 0.2, -1.0], [0.3, 0.2, 3.0], [-0.3, 0.2, 3.0]], np.float32)
    floor = (quad, np.array([[0, 1, 2], [0, 2, 3]]), (0.0, 0.0, 1.0))
    res = renderer.render_meshes([floor], K)
    assert res.mask.any() and np.isfinite(res.depth).all()
    assert res.depth[res.mask].min() >= renderer.near and res.depth.max() <= 3.0 + 1e-4
    # A nearer occluder (red, z=1.5) hides a farther triangle (green, z=2.5) where they overlap.
    far_, near_ = (triangle(2.5), TRI_F, (0.0, 1.0, 0.0)), (triangle(1.5), TRI_F, (1.0, 0.0, 0.0))
    res = renderer.render_meshes([far_, near_], K)
    c = np.round(project(triangle(1.5)).mean(0)).astype(int)
    assert res.image[c[1], c[0], 0] > 0 and res.image[c[1], c[0], 1] == 0
    assert res.depth[c[1], c[0]] == pytest.approx(1.5, rel=1e-5)


def test_torch_input_smooth_and_batch(renderer):
    torch = pytest.importorskip("torch")
    v = torch.from_numpy(triangle())
    a = renderer.render(v, torch.tensor([[0, 1, 2]]), torch.from_numpy(K), smooth=True)
    b = renderer.render(triangle(), TRI_F, K)
    np.testing.assert_array_equal(a.mask, b.mask)
    batch = renderer.render_batch(np.stack([triangle(2.0), triangle(4.0)]), TRI_F, K)
    assert [round(float(r.depth[r.mask].mean()), 4) for r in batch] == [2.0, 4.0]


def test_missing_gl_error_names_packages(monkeypatch):
    moderngl = pytest.importorskip("moderngl")

    def fail(**kwargs):
        raise OSError("libEGL.so.1: cannot open shared object file")

    monkeypatch.setattr(moderngl, "create_standalone_context", fail)
    with pytest.raises(
        RuntimeError, match=r"libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri.*install_system_deps\.sh"
    ):
        MeshRenderer().render(triangle(), TRI_F, K)


def test_pickles_without_context(renderer):
    r = pickle.loads(pickle.dumps(renderer))  # e.g. sent to a spawned DataLoader worker
    assert r._ctx is None and (r.width, r.height) == (W, H)
