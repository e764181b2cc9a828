import json

import numpy as np
import pytest

from neuralannot.data import Sample, SampleError


def make(**kw):
    j2 = np.zeros((17, 3), np.float32)
    j2[:, 0], j2[:, 1], j2[:, 2] = np.arange(17) + 10, np.arange(17) + 20, 1
    j3 = np.concatenate(
        [np.random.default_rng(0).normal(size=(17, 2)), np.full((17, 1), 4.0), np.ones((17, 1))], 1
    )
    args = dict(
        id="h36m/S1/0", image="img.jpg", bbox=[1, 2, 30, 40], part="body", joint_set="h36m17", joints_2d=j2,
        joints_3d=j3, intrinsics={"focal": [1000, 1000], "princpt": [500, 500]}, image_size=(1000, 1002),
        gt={"model": "smpl", "params": {"betas": np.zeros(10)}}, extra={"subject": "S1"},
    )  # fmt: skip
    args.update(kw)
    return Sample(**args)


def test_valid_sample_roundtrips_through_json():
    s = make().validate()
    assert s.joints_2d.dtype == np.float32 and s.joints_3d.shape == (17, 4) and s.bbox.shape == (4,)
    assert s.K[0, 2] == 500 and s.num_joints == 17 and s.valid_2d.all() and s.valid_3d.all()
    d = json.loads(json.dumps(s.to_dict()))
    t = Sample.from_dict(d)
    assert t.id == s.id and t.image_size == (1000, 1002) and t.gt["params"]["betas"] == [0.0] * 10
    np.testing.assert_array_equal(t.joints_2d, s.joints_2d)
    np.testing.assert_allclose(t.joints_3d, s.joints_3d)
    assert t.joint_names[0] == "root"


def test_optional_fields_may_be_none():
    s = make(joints_3d=None, intrinsics=None, image_size=None, gt=None, image=None).validate()
    assert s.K is None and not s.valid_3d.any()
    assert Sample.from_dict(json.loads(json.dumps(s.to_dict()))).joints_3d is None


def test_nan_in_valid_joint_names_sample_and_joint():
    j2 = make().joints_2d
    j2[3, 0] = np.nan
    with pytest.raises(SampleError, match=r"h36m/S1/0.*right_foot") as exc:
        make(joints_2d=j2).validate()
    assert exc.value.sample_id == "h36m/S1/0" and exc.value.kind == "nonfinite"


def test_nan_in_invalid_joint_is_zeroed():
    j2 = make().joints_2d
    j2[3] = [np.nan, np.inf, 0]
    j3 = make().joints_3d
    j3[5] = [np.nan, np.nan, np.nan, 0]
    s = make(joints_2d=j2, joints_3d=j3).validate()
    assert (s.joints_2d[3] == 0).all() and (s.joints_3d[5] == 0).all()


@pytest.mark.parametrize(
    "kw, pattern",
    [
        (dict(bbox=[0, 0, 0, 10]), "zero or negative area"),
        (dict(bbox=[0, 0, -5, 10]), "zero or negative area"),
        (dict(bbox=[0, np.nan, 5, 10]), "non-finite"),
        (dict(bbox=[0, 0, 5]), "bbox has shape"),
        (dict(joints_2d=np.zeros((16, 3))), r"shape \(16, 3\).*h36m17"),
        (dict(joints_3d=np.zeros((17, 3))), r"joints_3d has shape"),
        (dict(part="face"), "does not match joint set"),
        (dict(part="arm"), "not one of"),
        (dict(joint_set="smpl99"), "unknown joint set"),
        (dict(joints_2d=np.full((17, 3), 2.0)), r"outside \[0, 1\]"),
        (dict(joints_3d=np.concatenate([np.full((17, 3), 4000.0), np.ones((17, 1))], 1)), "millimeters"),
        (dict(intrinsics={"focal": [-1, 1], "princpt": [0, 0]}), "positive focal"),
        (dict(image_size=(0, 10)), "image_size"),
    ],
)
def test_bad_samples_raise_with_id(kw, pattern):
    with pytest.raises(SampleError, match=pattern) as exc:
        make(**kw).validate()
    assert "h36m/S1/0" in str(exc.value)


def test_ragged_joints_raise_at_construction():
    with pytest.raises(SampleError, match="joints_2d is not a numeric array"):
        make(joints_2d=[[1, 2, 3], [1, 2]])


def test_hand_parts_accept_hand_sets():
    j2 = np.zeros((21, 3), np.float32)
    for part in ("lhand", "rhand", "hand"):
        Sample(id="h", image=None, bbox=[0, 0, 1, 1], part=part, joint_set="hand21", joints_2d=j2).validate()
    Sample(id="h", image=None, bbox=[0, 0, 1, 1], part="lhand", joint_set="lhand21", joints_2d=j2).validate()
    with pytest.raises(SampleError, match="does not match"):
        Sample(
            id="h", image=None, bbox=[0, 0, 1, 1], part="lhand", joint_set="rhand21", joints_2d=j2
        ).validate()


def test_from_dict_missing_key():
    d = make().to_dict()
    del d["joints_2d"]
    with pytest.raises(SampleError, match=r"h36m/S1/0.*joints_2d"):
        Sample.from_dict(d)
