"""Shared fixtures: Anny models are built once per test session (~1–2 s each from the cache), and the
one tiny training config of the network tests (``from conftest import TINY``; also used by
``ddp_worker.py``), and the fixture folders (``from conftest import REAL``): the tests live in folders
that mirror the package's, so paths are relative to this file, never to a test module."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import roma
import torch

#: ``tests/data``: the real samples (``real/``) and the official-layout fixtures (``official/``).
DATA = Path(__file__).parent / "data"
OFFICIAL, REAL = DATA / "official", DATA / "real"

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


#: The embedded auxiliary set's size in tests (wild bodies and hands train with it by default;
#: ``annotate --aux-data synthetic``): a small set, generated once into the cache as a user's 2,000.
TEST_AUX_N = 16


@pytest.fixture(autouse=True)
def small_embedded_aux_set(monkeypatch):
    """Tests train with the real defaults, the embedded auxiliary set cut to :data:`TEST_AUX_N`."""
    from neuralannot.annotators import aux_mocap

    monkeypatch.setattr(aux_mocap, "SYNTHETIC_AUX_N", TEST_AUX_N)


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
    data = json.loads((REAL / "h36m.json").read_text())
    for s in data["samples"]:
        shutil.copy(REAL / s["image"], tmp_path / s["image"])
    return tmp_path, data


@pytest.fixture(scope="module")
def mocap_set(tmp_path_factory):
    """A synthetic MoCap set of 24 samples with 96-px images (the annotator and ``fit`` tests)."""
    return synth_set(tmp_path_factory, "mocap", 24, seed=3, shard_size=12)


@pytest.fixture(scope="module")
def wild_set(tmp_path_factory):
    """A synthetic wild set of 16 samples with 96-px images (the wild-mode annotator tests)."""
    return synth_set(tmp_path_factory, "wild", 16, seed=4)


def synth_set(tmp_path_factory, kind: str, n: int, seed: int, shard_size: int | None = None):
    """A small synthetic set (96-px images, no masks) in a fresh temporary folder."""
    from neuralannot.data.synthetic.generator import generate

    out = tmp_path_factory.mktemp("synth") / kind
    generate(kind, n, out, seed=seed, workers=1, shard_size=shard_size or n, image_size=96, masks=False,
             progress=False)  # fmt: skip
    return out


def mocap_joint_samples(body, n: int, seed: int = 0) -> list:
    """MoCap samples (no images) of random Anny poses 3 m in front of a 1000-px camera, h36m17 joints,
    every joint valid: for training tests on joints only (``inputs="joints"``)."""
    from neuralannot.bodies.joints import regress_keypoints
    from neuralannot.data.sample import Sample

    g = torch.Generator().manual_seed(seed)
    params = body.default_params(batch_size=n)
    params["body_pose"] = roma.rotvec_to_rotmat(0.3 * torch.randn(n, 21, 3, generator=g))
    root = torch.tensor([np.pi, 0.0, 0.0]) + 0.3 * torch.randn(n, 3, generator=g)
    params["root_pose"] = roma.rotvec_to_rotmat(root)
    params["trans"] = torch.tensor([0.0, 0.0, 3.0]) + 0.1 * torch.randn(n, 3, generator=g)
    with torch.no_grad():
        kp = regress_keypoints(body, params, "h36m17").numpy()
    uv = 1000.0 * kp[..., :2] / kp[..., 2:] + 500.0
    out = []
    for i in range(n):
        j2 = np.concatenate([uv[i], np.ones((len(uv[i]), 1))], 1)
        j3 = np.concatenate([kp[i], np.ones((len(kp[i]), 1))], 1)
        lo, hi = j2[:, :2].min(0) - 20, j2[:, :2].max(0) + 20
        cam = {"focal": [1000.0, 1000.0], "princpt": [500.0, 500.0]}
        out.append(Sample(f"s{i}", None, [*lo, *(hi - lo)], "body", "h36m17", j2, j3, cam, (1000, 1000)))
    return out


def skip_unless_ci(reason: str) -> None:
    """Skip a test whose optional dependency is missing, except under ``CI`` (set by ``.ci/run``),
    where the dependency is part of the install and its absence is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)
