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
