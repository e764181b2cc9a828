"""End-part crops: the crop pixels (straight and turned along the limb), the encoder, and the annotator
reading the same features whether they are precomputed (frozen backbone) or cut on the fly."""

import pytest
import torch

from conftest import TINY
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.models.end_crops import EndCropEncoder, cut_end_crops


def test_crops_read_the_box_pixels_and_zeros_outside_the_image():
    img = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    img[0, 0, 8:16, 8:16] = 255  # a red square
    img[0, 2, 16:24, 16:24] = 255  # a blue one
    centre = torch.tensor([[[12.0, 12.0], [20.0, 20.0], [-36.0, -36.0]]])
    crops = cut_end_crops(img, centre, None, side=8.0, size=16)  # upsampled 2x
    assert crops.shape == (3, 3, 16, 16)
    red, blue, outside = crops
    inner = (slice(None), slice(2, -2), slice(2, -2))  # the edges blend in the neighbours (bilinear)
    assert torch.allclose(red[inner][0], torch.ones(12, 12)) and red[inner][1:].abs().max() == 0
    assert torch.allclose(blue[inner][2], torch.ones(12, 12)) and blue[inner][:2].abs().max() == 0
    assert outside.abs().max() == 0


def test_turned_crops_put_the_limb_direction_down():
    img = torch.zeros(1, 3, 32, 32)
    img[0, 0, 14:18, 16:30] = 1.0  # a bar from the centre to the right (the hand beyond its wrist)
    centre = torch.tensor([[[16.0, 16.0]]])
    straight = cut_end_crops(img, centre, None, side=32.0, size=32)[0, 0]
    turned = cut_end_crops(img, centre, torch.tensor([[[1.0, 0.0]]]), side=32.0, size=32)[0, 0]
    assert torch.allclose(straight, img[0, 0], atol=1e-5)  # same size, no turn: the image itself
    assert turned[20:30, 14:18].min() > 0.99 and turned[2:12, 14:18].max() < 0.01  # the bar points down
    assert turned[14:18, 20:30].max() < 0.01


def test_encoder_zeroes_invalid_parts_and_appends_their_flags():
    spatial = EndCropEncoder(channels=6, num_parts=2, dim=4, map_size=3)
    maps = torch.randn(3, 2, 6, 3, 3)
    assert spatial(maps, torch.ones(3, 2, dtype=torch.bool)).shape == (3, 10)
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
    assert AnnotatorConfig(mode="mocap", end_crop_size=64, end_crop_rotate=True).digest() == base.digest()
    on = AnnotatorConfig(mode="mocap", end_crops=True)
    assert on.digest() != base.digest()
    assert AnnotatorConfig(mode="mocap", end_crops=True, end_crop_dim=8).digest() != on.digest()
    assert AnnotatorConfig(mode="mocap", end_crops=True, end_crop_spatial=True).digest() != on.digest()
    with pytest.raises(ValueError, match="end_crop_size >= 32"):
        AnnotatorConfig(mode="mocap", end_crops=True, end_crop_size=8)
    with pytest.raises(ValueError, match="end_crop_extent"):
        AnnotatorConfig(mode="mocap", end_crops=True, end_crop_extent=0.0)


@pytest.mark.anny
@pytest.mark.parametrize("turned_maps", [False, True])
def test_annotator_reads_the_same_end_features_precomputed_or_cut_on_the_fly(mocap_set, turned_maps):
    from neuralannot.annotators.pipeline import build_annotator, load_samples
    from neuralannot.annotators.training import make_dataset
    from neuralannot.data.crops import CropDataset

    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    samples = samples[:4]
    # the paper head: the swing solve would amplify the float16 rounding of the stored features
    end = dict(end_crops=True, end_crop_size=64, end_crop_rotate=turned_maps, end_crop_spatial=turned_maps)
    cfg = AnnotatorConfig(mode="mocap", head="paper", freeze_backbone=True, **end, **TINY)
    model = build_annotator(cfg, samples[0].joint_set).eval()
    assert model.end_crops.parts == ["left_hand", "right_hand", "left_foot", "right_foot", "head"]
    collate = torch.utils.data.default_collate
    cached = collate([make_dataset(model, samples)[i] for i in range(4)])
    maps = (2, 2) if turned_maps else ()  # ResNet-18: 64 px → 2 × 2
    assert cached["end_feature"].shape == (4, 5, model.backbone.feature_dim, *maps)
    raw = collate([CropDataset(samples, cfg.input_size, load_images=True)[i] for i in range(4)])
    with torch.no_grad():
        live = model.end_part_features(raw)
        assert torch.allclose(cached["end_feature"].float(), live, atol=1e-2, rtol=1e-2)  # float16 store
        a, b = model(cached), model(raw)
    assert torch.allclose(a["body_pose"], b["body_pose"], atol=1e-4)
    with pytest.raises(ValueError, match="RGB image backbone"):
        build_annotator(AnnotatorConfig(mode="mocap", inputs="joints", end_crops=True, **TINY), "h36m17")
