"""io/records.py: the one pseudo-GT record builder every annotator uses."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from neuralannot.bodies.base import ParamSpec
from neuralannot.io.records import build_record, error_quality, mirror_to_left

SPECS = {
    "root_pose": ParamSpec("root_pose", (3,), "rotation"),
    "hand_pose": ParamSpec("hand_pose", (15, 3), "rotation"),
    "shape": ParamSpec("shape", (10,), "shape"),
    "trans": ParamSpec("trans", (3,), "translation"),
}
ANNY_SPECS = {
    "root_pose": ParamSpec("root_pose", (3,), "rotation"),
    "body_pose": ParamSpec("body_pose", (21, 3), "rotation"),
    "phenotype": ParamSpec("phenotype", (6,), "shape"),
    "trans": ParamSpec("trans", (3,), "translation"),
}


def _body(part: str, name: str):
    return SimpleNamespace(part=part, name=name, param_specs=SPECS if name == "mano" else ANNY_SPECS)


def _sample(part: str, sid: str = "s0"):
    return SimpleNamespace(id=sid, part=part, bbox=np.array([0.0, 0.0, 100.0, 50.0]))


def _params(specs=SPECS):
    rng = np.random.default_rng(0)
    return {k: rng.normal(size=s.shape).astype(np.float32) for k, s in specs.items()}


def test_left_hand_is_mirrored_back_and_keeps_its_side():
    p = _params()
    r = build_record(_sample("lhand"), _body("hand", "mano"), p, flip=True, err=10.0, three_d=True,
                     camera=None, quality={"method": "m"})  # fmt: skip
    assert (r.model, r.part, r.side) == ("mano", "lhand", "left")
    np.testing.assert_allclose(r.params["trans"], p["trans"] * [-1, 1, 1])
    np.testing.assert_allclose(r.params["root_pose"], p["root_pose"] * [1, -1, -1], atol=1e-6)
    np.testing.assert_array_equal(r.params["shape"], p["shape"])


def test_mirroring_twice_is_the_identity():
    p = _params()
    body = _body("hand", "mano")
    twice = mirror_to_left(mirror_to_left(p, body), body)
    for k, v in p.items():
        np.testing.assert_allclose(twice[k], v, atol=1e-6, err_msg=k)


def test_quality_order_error_first_then_extra_then_unmeasured():
    body = _body("body", "anny-body")
    cam = {"focal": [1.0, 1.0], "princpt": [0.0, 0.0]}
    r = build_record(_sample("body"), body, _params(ANNY_SPECS), err=4.0, three_d=False, camera=cam,
                     quality={"method": "x", "flags": ["diverged"]}, unmeasured="nonfinite_error")
    assert r.model == "anny" and r.part == "body" and r.side is None
    assert list(r.quality) == ["confidence", "method", "flags"]
    assert r.quality["confidence"] == 0.0 and r.quality["flags"] == ["diverged", "nonfinite_error"]


def test_part_override_only_for_non_hand_models():
    body = _body("wholebody", "anny-wholebody")
    assert build_record(_sample("wholebody"), body, _params(ANNY_SPECS), err=1.0, three_d=True, camera=None,
                        quality={}).part == "wholebody"  # fmt: skip
    assert build_record(_sample("wholebody"), body, _params(ANNY_SPECS), err=1.0, three_d=True, camera=None,
                        quality={}, part="body").part == "body"  # fmt: skip


@pytest.mark.parametrize(
    ("three_d", "key", "scale"), [(True, "joint_err_mm", 50.0), (False, "joint_err_px", 5.0)]
)
def test_error_quality_confidence(three_d, key, scale):
    q = error_quality(5.0, three_d, [0, 0, 100, 60])
    assert q[key] == 5.0 and q["confidence"] == pytest.approx(math.exp(-5.0 / scale))



def test_in_sample_camera_tells_the_samples_own_camera_from_a_crop_camera():
    from neuralannot.io.records import in_sample_camera

    sample = SimpleNamespace(intrinsics={"focal": [1000.0, 1000.0], "princpt": [500.0, 400.0]})
    own = SimpleNamespace(camera={"focal": [1000.0, 1000.0], "princpt": [500.0, 400.0]})
    crop = SimpleNamespace(camera={"focal": [9000.0, 9000.0], "princpt": [1400.0, 400.0]})
    assert in_sample_camera(own, sample) and not in_sample_camera(crop, sample)
    assert not in_sample_camera(SimpleNamespace(camera=None), sample)
    assert not in_sample_camera(own, SimpleNamespace(intrinsics=None))


def test_gt_record_is_the_samples_anny_gt_in_its_camera():
    from neuralannot.io.records import gt_record

    params = {"root_pose": [0.1, 0.2, 0.3], "hand_pose": np.zeros((15, 3)).tolist(), "phenotype": [0.5] * 6,
              "trans": [0.0, 0.0, 0.5]}  # fmt: skip
    sample = SimpleNamespace(id="s/1", part="lhand", gt={"model": "anny", "part": "hand", "params": params},
                             intrinsics={"focal": [500.0, 500.0], "princpt": [64.0, 64.0]})  # fmt: skip
    r = gt_record(sample)
    assert (r.sample_id, r.part, r.side, r.quality["method"]) == ("s/1", "lhand", "left", "gt")
    assert r.params["root_pose"].dtype == np.float32 and np.allclose(r.params["root_pose"], [0.1, 0.2, 0.3])
    assert r.camera == {"focal": [500.0, 500.0], "princpt": [64.0, 64.0]}
    for gt in (None, {"model": "smpl", "part": "body", "params": {}}):
        with pytest.raises(ValueError, match="'s/1' has no Anny GT"):
            gt_record(SimpleNamespace(id="s/1", part="body", gt=gt, intrinsics=None))
