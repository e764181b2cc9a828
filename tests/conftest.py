"""Shared fixtures: Anny models are built once per test session (~1–2 s each from the cache), and the
one tiny training config of the network tests (``from conftest import TINY``; also used by
``ddp_worker.py``)."""

import json
import shutil
from pathlib import Path

import pytest
import torch

#: The tiny network every training test uses: ResNet-18 without weights on 64-px crops, one hidden
#: layer of 32, a checkpoint every epoch. Override keys with ``dict(TINY, epochs=1)``; do not mutate.
TINY = dict(
    backbone="resnet18",
    backbone_weights="none",
    input_size=64,
    batch_size=8,
    epochs=2,
    head_hidden=[32],
    checkpoint_every=1,
    lr=1e-3,
    plateau_period=1,
)


@pytest.fixture(scope="session")
def anny_body():
    from neuralannot.bodies import load_body_model

    return load_body_model("anny", part="body")


@pytest.fixture(scope="session")
def anny_wholebody():
    from neuralannot.bodies import load_body_model

    return load_body_model("anny", part="wholebody")


@pytest.fixture(scope="session")
def anny_hand():
    from neuralannot.bodies import load_body_model

    return load_body_model("anny", part="hand")


@pytest.fixture(scope="session")
def anny_head():
    from neuralannot.bodies import load_body_model

    return load_body_model("anny", part="face")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.fixture
def h36m_copy(tmp_path):
    """The real H36M samples (tests/data/real/h36m.json) copied with their images into a temp folder:
    (folder, parsed JSON) for tests that edit a dataset."""
    real = Path(__file__).parent / "data" / "real"
    data = json.loads((real / "h36m.json").read_text())
    for s in data["samples"]:
        shutil.copy(real / s["image"], tmp_path / s["image"])
    return tmp_path, data
