"""CropDataset's crop camera (data/crops.py): virtual focal or the sample's own intrinsics."""

import numpy as np
import pytest

from neuralannot.data.crops import CropDataset
from neuralannot.data.sample import Sample
from neuralannot.data.transforms import apply_affine_2d, crop_affine


def _sample(part="body", joint_set="h36m17", intrinsics=True):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(17, 3)) * [0.3, 0.6, 0.2] + [0.1, 0.0, 3.0]
    K = np.array([[900.0, 0.0, 420.0], [0.0, 880.0, 300.0], [0.0, 0.0, 1.0]])
    uv = (X @ K.T)[:, :2] / X[:, 2:]
    j2 = np.concatenate([uv, np.ones((17, 1))], 1)
    lo, hi = uv.min(0) - 15, uv.max(0) + 15
    cam = {"focal": [900.0, 880.0], "princpt": [420.0, 300.0]} if intrinsics else None
    return Sample("s", None, [*lo, *(hi - lo)], part, joint_set, j2, None, cam, (800, 600)), X


def test_intrinsics_camera_projects_the_3d_joints_onto_the_cropped_2d_joints():
    s, X = _sample()
    item = CropDataset([s], 128, load_images=False, camera="intrinsics")[0]
    K = item["K"].double().numpy()
    uv = (X @ K.T)[:, :2] / X[:, 2:]
    np.testing.assert_allclose(uv, item["joints_2d"][:, :2].double().numpy(), atol=1e-3)
    A = crop_affine(s.bbox, (128, 128))
    np.testing.assert_allclose(uv, apply_affine_2d((X @ s.K.T)[:, :2] / X[:, 2:], A), atol=1e-3)


def test_virtual_camera_and_fallback_without_intrinsics():
    s, _ = _sample()
    virtual = CropDataset([s], 128, load_images=False, virtual_focal=5000.0)[0]["K"]
    assert float(virtual[0, 0]) == pytest.approx(5000.0 * 128 / 256) and float(virtual[0, 2]) == 64.0
    bare, _ = _sample(intrinsics=False)
    fallback = CropDataset([bare], 128, load_images=False, camera="intrinsics")[0]["K"]
    assert fallback.tolist() == virtual.tolist()
    with pytest.raises(ValueError, match="camera"):
        CropDataset([s], 128, load_images=False, camera="orthographic")


@pytest.mark.anny
def test_left_hand_item_is_the_right_hand_of_the_mirrored_parameters(gen):
    """A left hand enters the network as the right hand of its mirrored GT parameters (joints, crop
    camera and the 2D joints agree), and its crop flipped back is the unflipped crop."""
    import torch

    from neuralannot.bodies import load_body_model
    from neuralannot.bodies.joints import get_regressor
    from neuralannot.data.crop_cache import render_crop
    from neuralannot.io.records import mirror_to_left

    left, right = load_body_model("anny", part="lhand"), load_body_model("anny", part="hand")
    p = left.default_params(1)
    p["hand_pose"] = 0.4 * torch.randn(1, 15, 3, generator=gen)
    p["root_pose"] = torch.randn(1, 3, generator=gen)
    p["trans"] = torch.tensor([[0.02, -0.01, 0.5]])
    X = get_regressor(left, "hand21")(left(p)).numpy()[0]
    K = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])
    uv = (X @ K.T)[:, :2] / X[:, 2:]
    lo, hi = uv.min(0) - 20, uv.max(0) + 20
    j3 = np.concatenate([X, np.ones((21, 1))], 1)
    j2 = np.concatenate([uv, np.ones((21, 1))], 1)
    cam = {"focal": [600.0, 600.0], "princpt": [320.0, 240.0]}
    s = Sample("l", None, [*lo, *(hi - lo)], "lhand", "hand21", j2, j3, cam, (640, 480))
    item = CropDataset([s], 128, load_images=False, camera="intrinsics")[0]
    pr = mirror_to_left({k: v[0].numpy() for k, v in p.items()}, right)  # its own inverse
    Xr = get_regressor(right, "hand21")(right({k: torch.from_numpy(v)[None] for k, v in pr.items()}))[0]
    np.testing.assert_allclose(item["joints_3d"][:, :3].numpy(), Xr.numpy(), atol=1e-5)
    Kc = item["K"].double().numpy()
    uv_r = (Xr.double().numpy() @ Kc.T)[:, :2] / Xr.double().numpy()[:, 2:]
    np.testing.assert_allclose(uv_r, item["joints_2d"][:, :2].double().numpy(), atol=1e-2)
    # the image: a random picture, its left-hand crop mirrored back equals the plain crop
    img = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    from unittest import mock

    with mock.patch("neuralannot.data.crop_cache.load_image", return_value=img):
        s_img = Sample("l", "x.png", s.bbox, "lhand", "hand21", j2, j3, cam, (640, 480))
        s_right = Sample("r", "x.png", s.bbox, "rhand", "hand21", j2, j3, cam, (640, 480))
        np.testing.assert_array_equal(render_crop(s_img, 64)[:, ::-1], render_crop(s_right, 64))
