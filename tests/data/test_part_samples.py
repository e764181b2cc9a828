"""Whole-body samples → body / hand / face part samples: boxes, ids, missing parts, bad boxes."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REAL
from neuralannot.data.loading import load_samples
from neuralannot.data.part_samples import BOX_SCALE, PART_SLICES, split_samples, split_wholebody
from neuralannot.data.sample import Sample, SampleError


def wholebody_sample(seed=0, **extra) -> Sample:
    """A 400x300 image with body, face and hand keypoints in separate regions, all valid."""
    rng = np.random.default_rng(seed)
    j = np.ones((133, 3), np.float32)
    j[:23, :2] = rng.uniform([100, 50], [300, 280], (23, 2))
    j[23:91, :2] = rng.uniform([180, 60], [220, 100], (68, 2))
    j[91:112, :2] = rng.uniform([260, 150], [285, 175], (21, 2))
    j[112:133, :2] = rng.uniform([110, 150], [130, 180], (21, 2))
    return Sample("p7", "img.jpg", [90, 40, 220, 250], "wholebody", "coco_wholebody133", j,
                  image_size=(400, 300), extra=dict(extra)).validate()  # fmt: skip


def test_split_gives_part_samples_with_keypoint_boxes():
    s = wholebody_sample()
    sp = split_wholebody(s)
    for part in ("body", "lhand", "rhand", "face"):
        p = sp.get(part)
        rows, joint_set = PART_SLICES[part]
        assert p.id == f"p7/{part}" and p.joint_set == joint_set and p.image == s.image
        assert np.array_equal(p.joints_2d, s.joints_2d[rows])
        assert p.extra["wholebody_id"] == "p7"
        uv = p.joints_2d[:, :2]
        lo, hi = p.bbox[:2], p.bbox[:2] + p.bbox[2:]
        assert (uv >= lo - 1e-3).all() and (uv <= hi + 1e-3).all()
    assert sp.lhand.part == "lhand" and sp.rhand.part == "rhand" and sp.face.part == "face"
    assert np.array_equal(sp.body.bbox, s.bbox)
    uv = s.joints_2d[91:112, :2]
    np.testing.assert_allclose(sp.lhand.bbox[2:], (uv.max(0) - uv.min(0)) * BOX_SCALE, rtol=1e-5)


def test_missing_parts_are_left_out():
    s = wholebody_sample()
    s.joints_2d[91:112, 2] = 0  # no left-hand keypoint
    s.joints_2d[23:86, 2] = 0  # 5 face keypoints left: too few
    s.joints_2d[112:118, 2] = 0  # 15 right-hand keypoints: enough
    sp = split_wholebody(s)
    assert sp.lhand is None and sp.face is None and sp.rhand is not None and sp.body is not None
    # the dataset's own flag marks a part invalid even with keypoints
    sp = split_wholebody(wholebody_sample(righthand_valid=False))
    assert sp.rhand is None and sp.lhand is not None
    splits, by_part = split_samples([wholebody_sample(0), s])
    assert [x.id for x in by_part["face"]] == ["p7/face"] and len(by_part["body"]) == 2
    assert len(splits) == 2


def test_dataset_box_is_used_when_given():
    sp = split_wholebody(wholebody_sample(face_box=[170, 50, 60, 60]))
    assert sp.face.bbox.tolist() == [170, 50, 60, 60]


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda s: s.joints_2d.__setitem__((slice(112, 133), slice(0, 2)), 120.0), "rhand box .* zero size"),
        (lambda s: s.extra.__setitem__("lefthand_box", [500, 20, 30, 30]), "lhand box .* outside"),
        (lambda s: s.extra.__setitem__("face_box", [10, 20, 0, 30]), "face box .* zero size"),
    ],
)
def test_bad_part_boxes_name_the_sample(change, match):
    s = wholebody_sample()
    change(s)
    with pytest.raises(SampleError, match=f"sample 'p7'.*{match}"):
        split_wholebody(s)


def test_skip_bad_leaves_out_a_sample_with_a_bad_part_box(caplog):
    good, bad = wholebody_sample(), wholebody_sample()
    bad.extra["lefthand_box"] = [500, 20, 30, 30]  # outside the image
    with pytest.raises(SampleError, match="lhand box"):
        split_samples([good, bad])
    with caplog.at_level("WARNING"):
        splits, by_part = split_samples([good, bad], skip_bad=True)
    assert [sp.sample for sp in splits] == [good] and len(by_part["lhand"]) == 1
    assert "lhand box" in caplog.text


def test_real_coco_wholebody_samples():
    samples, _ = load_samples(REAL / "coco_wholebody.json", "wholebody", images=False)
    splits, by_part = split_samples(samples)
    assert len(by_part["body"]) == len(samples)
    first = splits[0]  # annotation 442619: left hand flagged invalid, right hand and face valid
    assert first.sample.extra["lefthand_valid"] is False and first.lhand is None
    assert first.rhand is not None and first.face is not None
    assert first.rhand.bbox.tolist() == pytest.approx(first.sample.extra["righthand_box"])
    with pytest.raises(SampleError, match="coco_wholebody133"):
        split_wholebody(first.body)
