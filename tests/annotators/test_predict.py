"""Wild pseudo-GTs moved from the crop's virtual camera to the sample's intrinsics (CLIFF-style)."""

from types import SimpleNamespace

import numpy as np
import pytest
import roma
import torch

from neuralannot.annotators.predict import to_sample_camera
from neuralannot.io.pseudo_gt import PseudoGT
from test_optimize import body_params, keypoints

pytestmark = pytest.mark.anny

K_REAL = np.array([[1200.0, 0.0, 640.0], [0.0, 1200.0, 360.0], [0.0, 0.0, 1.0]])


def _project(points: torch.Tensor, K: np.ndarray) -> torch.Tensor:
    uv = points[..., :2] / points[..., 2:]
    return uv * torch.tensor([K[0, 0], K[1, 1]]) + torch.tensor(K[:2, 2])


def test_virtual_record_moves_onto_the_real_ray(anny_body):
    """A body off to the side of a real camera, described as a crop camera would see it (optical axis
    through the crop centre: the root turned back by the ray's rotation, a long focal): moved to the
    sample's camera, the root is the real one and the 2D joints stay where they were."""
    gt = body_params(1, seed=3)
    gt["trans"] = torch.tensor([[1.6, 0.3, 4.5]])  # 20 degrees right of the optical axis
    kp_real = keypoints(anny_body, gt, "coco17")[0]
    centre = _project(gt["trans"], K_REAL)[0].double().numpy()
    ray = np.linalg.solve(K_REAL, [*centre, 1.0])
    ray /= np.linalg.norm(ray)
    axis = np.cross([0.0, 0.0, 1.0], ray)
    R_ray = roma.rotvec_to_rotmat(torch.from_numpy(axis / np.linalg.norm(axis) * np.arccos(ray[2])))
    fv = 20000.0
    zv = float(gt["trans"][0, 2]) * fv / 1200.0  # the apparent size of the real view
    root_v = R_ray.T.float() @ roma.rotvec_to_rotmat(gt["root_pose"][0])
    params = {k: v[0].numpy() for k, v in gt.items()}
    params.update(root_pose=roma.rotmat_to_rotvec(root_v).numpy(), trans=np.array([0.0, 0.0, zv], np.float32))
    record = PseudoGT("s0", "anny", "body", params, {"focal": [fv, fv], "princpt": list(centre)}, {})
    virtual = {k: torch.as_tensor(np.asarray(v))[None].float() for k, v in params.items()}
    K_virtual = np.array([[fv, 0, centre[0]], [0, fv, centre[1]], [0, 0, 1]])
    uv_virtual = _project(keypoints(anny_body, virtual, "coco17")[0], K_virtual)

    moved = to_sample_camera(record, SimpleNamespace(intrinsics={"focal": [1200.0, 1200.0],
                                                                 "princpt": [640.0, 360.0]}, K=K_REAL))
    assert moved.camera == {"focal": [1200.0, 1200.0], "princpt": [640.0, 360.0]}
    R = roma.rotvec_to_rotmat(torch.as_tensor(moved.params["root_pose"]))
    assert torch.rad2deg(roma.rotmat_geodesic_distance(R, roma.rotvec_to_rotmat(gt["root_pose"][0]))) < 0.01
    t = moved.params["trans"]
    assert np.allclose(t / np.linalg.norm(t), ray, atol=1e-5)  # on the real ray through the crop centre
    assert np.allclose(t, gt["trans"][0].numpy(), atol=1e-4)  # here: the GT's own place
    mp = {k: torch.as_tensor(np.asarray(v))[None].float() for k, v in moved.params.items()}
    uv_moved = _project(keypoints(anny_body, mp, "coco17")[0], K_REAL)
    # the overlay moves only by the perspective the nearly orthographic crop camera lacks (a body 1.8 m
    # tall, 4.5 m away, 20 degrees off-axis: 4.5 px on average, under 20 px at the feet)
    shift = (uv_moved - uv_virtual).norm(dim=-1)
    assert float(shift.mean()) < 6.0 and float(shift.max()) < 25.0, shift
    assert torch.allclose(keypoints(anny_body, mp, "coco17")[0], kp_real, atol=1e-4)  # the GT body
    same = to_sample_camera(record, SimpleNamespace(intrinsics=None, K=None))
    assert same is record


def test_output_camera_is_checked_and_keeps_the_weights_digest():
    from neuralannot.annotators.config import AnnotatorConfig

    with pytest.raises(ValueError, match="output_camera"):
        AnnotatorConfig(mode="wild", output_camera="image")
    crop, sample = AnnotatorConfig(mode="wild"), AnnotatorConfig(mode="wild", output_camera="sample")
    assert crop.output_camera == "crop" and crop.digest() == sample.digest()  # same network, other records
