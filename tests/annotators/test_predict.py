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
    sample, crop = AnnotatorConfig(mode="wild"), AnnotatorConfig(mode="wild", output_camera="crop")
    assert sample.output_camera == "sample" and crop.digest() == sample.digest()  # same network
    assert AnnotatorConfig(mode="wild", part="face").output_camera == "crop"  # faces: the crop camera


def test_the_turn_onto_the_real_ray_is_about_the_anchor_not_a_far_model_origin():
    """A part model whose origin lies 0.4 m from its keypoints (as a hand's may): turned about the
    origin, the hand would swing off its pixels; turned about its keypoints' centroid (``anchor``),
    the centroid keeps its pixel and the overlay moves only by the perspective the crop camera lacks."""
    g = torch.Generator().manual_seed(0)
    local = torch.randn(21, 3, generator=g, dtype=torch.float64) * 0.04
    local[:, 0] += 0.4
    root = roma.rotvec_to_rotmat(torch.tensor([0.3, -0.5, 0.2], dtype=torch.float64))
    fv, centre = 20000.0, np.array([1000.0, 600.0])  # a crop 30 degrees off the real optical axis
    trans = np.array([-0.4, 0.0, 0.6 * fv / 1200.0])
    params = {"root_pose": roma.rotmat_to_rotvec(root).numpy(), "trans": trans, "phenotype": np.full(6, 0.5),
              "hand_pose": np.zeros((15, 3))}
    record = PseudoGT("h0", "anny", "rhand", params, {"focal": [fv, fv], "princpt": list(centre)}, {})
    K_virtual = np.array([[fv, 0, centre[0]], [0, fv, centre[1]], [0, 0, 1]])

    def points(params) -> torch.Tensor:
        R = roma.rotvec_to_rotmat(torch.as_tensor(np.asarray(params["root_pose"], np.float64)))
        return local @ R.T + torch.as_tensor(np.asarray(params["trans"], np.float64))

    virtual = points(record.params)
    uv_virtual = _project(virtual, K_virtual)
    sample = SimpleNamespace(intrinsics={"focal": [1200.0, 1200.0], "princpt": [640.0, 360.0]}, K=K_REAL)
    about_origin = to_sample_camera(record, sample)
    about_anchor = to_sample_camera(record, sample, anchor=virtual.mean(0).numpy())
    shift = {name: (_project(points(r.params), K_REAL) - uv_virtual).norm(dim=-1)
             for name, r in (("origin", about_origin), ("anchor", about_anchor))}
    centroid_px = _project(points(about_anchor.params).mean(0, keepdim=True), K_REAL)[0]
    assert torch.allclose(centroid_px, _project(virtual.mean(0, keepdim=True), K_virtual)[0], atol=1e-6)
    # (a hand 0.6 m away, 20 degrees off-axis: ~10 px of perspective on average; about the origin ~45 px)
    assert float(shift["anchor"].mean()) < 12.0, shift["anchor"]
    assert float(shift["origin"].mean()) > 3 * float(shift["anchor"].mean()), shift
    assert np.allclose(about_anchor.params["root_pose"], about_origin.params["root_pose"])  # same turn
