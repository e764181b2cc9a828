"""End-part crops: rules by joint name, box placement, the crop pixels, the encoder, and the annotator
reading the same features whether they are precomputed (frozen backbone) or cut on the fly."""

import pytest
import torch

from conftest import TINY
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.bodies.joint_names import COCO17, H36M17
from neuralannot.models.end_crops import EndCropEncoder, cut_end_crops, end_crop_boxes, end_crop_rules


def test_rules_follow_the_joint_names_of_each_set():
    parts, idx, offsets = end_crop_rules("h36m17")
    assert parts == ["left_hand", "right_hand", "left_foot", "right_foot", "head"]
    named = [(H36M17[a], H36M17[t]) for a, t in idx.tolist()]
    assert named[0] == ("left_elbow", "left_wrist") and named[3] == ("right_knee", "right_foot")
    assert named[4] == ("neck_base", "head") and offsets[4] == -0.5  # between the head's joints
    parts, idx, _ = end_crop_rules("coco17")
    assert parts[2] == "left_foot" and COCO17[idx[2, 1]] == "left_ankle"
    assert COCO17[idx[4, 0]] == COCO17[idx[4, 1]] == "nose"
    with pytest.raises(ValueError, match="hand21.*elbow"):
        end_crop_rules("hand21")
    with pytest.raises(ValueError, match="unknown joint set"):
        end_crop_rules("nope")


def test_boxes_sit_beyond_the_tip_along_the_limb_and_missing_joints_are_invalid():
    # joints: 0 = elbow (10, 10), 1 = wrist (30, 10), 2 = missing
    j = torch.tensor([[[10.0, 10.0, 1.0], [30.0, 10.0, 1.0], [0.0, 0.0, 0.0]]])
    idx = torch.tensor([[0, 1], [1, 1], [0, 2]])
    boxes, valid = end_crop_boxes(j, idx, torch.tensor([0.5, 0.0, 0.5]), side=8.0)
    assert torch.allclose(boxes[0, 0], torch.tensor([36.0, 6.0, 44.0, 14.0]))  # centre 30 + 0.5 * 20
    assert torch.allclose(boxes[0, 1], torch.tensor([26.0, 6.0, 34.0, 14.0]))  # at the tip
    assert valid.tolist() == [[True, True, False]]


def test_crops_read_the_box_pixels_and_zeros_outside_the_image():
    img = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    img[0, 0, 8:16, 8:16] = 255  # a red square
    img[0, 2, 16:24, 16:24] = 255  # a blue one
    boxes = torch.tensor([[[8.0, 8.0, 16.0, 16.0], [16.0, 16.0, 24.0, 24.0], [-40.0, -40.0, -32.0, -32.0]]])
    crops = cut_end_crops(img, boxes, size=16)  # upsampled 2x
    assert crops.shape == (3, 3, 16, 16)
    red, blue, outside = crops
    inner = (slice(None), slice(2, -2), slice(2, -2))  # the edges blend in the neighbours (bilinear)
    assert torch.allclose(red[inner][0], torch.ones(12, 12)) and red[inner][1:].abs().max() == 0
    assert torch.allclose(blue[inner][2], torch.ones(12, 12)) and blue[inner][:2].abs().max() == 0
    assert outside.abs().max() == 0


def test_encoder_zeroes_invalid_parts_and_appends_their_flags():
    enc = EndCropEncoder(channels=6, num_parts=2, dim=4)
    feats = torch.randn(3, 2, 6)
    valid = torch.tensor([[True, True], [True, False], [False, False]])
    out = enc(feats, valid).view(3, 2, 5)
    assert enc.out_dim == 10
    assert torch.equal(out[..., 4], valid.float())
    assert out[1, 1].abs().max() == 0 and out[2].abs().max() == 0
    assert torch.allclose(out[0, 1, :4], enc.proj[1](feats[0, 1]))  # each part has its own projection
    assert not torch.allclose(enc.proj[0](feats[0, 1]), enc.proj[1](feats[0, 1]))


def test_config_checks_and_digest():
    base = AnnotatorConfig(mode="mocap")
    # the branch's settings leave the digest alone while it is off (older runs still resume)
    assert AnnotatorConfig(mode="mocap", end_crop_size=64).digest() == base.digest()
    on = AnnotatorConfig(mode="mocap", end_crops=True)
    assert on.digest() != base.digest()
    assert AnnotatorConfig(mode="mocap", end_crops=True, end_crop_dim=8).digest() != on.digest()
    with pytest.raises(ValueError, match="end_crop_size >= 32"):
        AnnotatorConfig(mode="mocap", end_crops=True, end_crop_size=8)
    with pytest.raises(ValueError, match="end_crop_extent"):
        AnnotatorConfig(mode="mocap", end_crops=True, end_crop_extent=0.0)


@pytest.mark.anny
def test_annotator_reads_the_same_end_features_precomputed_or_cut_on_the_fly(mocap_set):
    from neuralannot.annotators.pipeline import build_annotator, load_samples
    from neuralannot.annotators.training import make_dataset
    from neuralannot.data.crops import CropDataset

    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    samples = samples[:4]
    # the paper head: the swing solve would amplify the float16 rounding of the stored features
    cfg = AnnotatorConfig(
        mode="mocap", head="paper", end_crops=True, end_crop_size=32, freeze_backbone=True, **TINY
    )
    model = build_annotator(cfg, samples[0].joint_set).eval()
    assert model.end_parts == ["left_hand", "right_hand", "left_foot", "right_foot", "head"]
    collate = torch.utils.data.default_collate
    cached = collate([make_dataset(model, samples)[i] for i in range(4)])
    assert cached["end_feature"].shape == (4, 5, model.backbone.feature_dim)
    raw = collate([CropDataset(samples, cfg.input_size, load_images=True)[i] for i in range(4)])
    with torch.no_grad():
        live = model.end_part_features(raw)
        assert torch.allclose(cached["end_feature"].float(), live, atol=1e-2, rtol=1e-2)  # float16 store
        a, b = model(cached), model(raw)
    assert torch.allclose(a["body_pose"], b["body_pose"], atol=1e-4)
    with pytest.raises(ValueError, match="RGB image backbone"):
        build_annotator(AnnotatorConfig(mode="mocap", inputs="joints", end_crops=True, **TINY), "h36m17")
