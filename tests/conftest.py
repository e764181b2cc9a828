"""Shared fixtures: Anny models are built once per test session (~1–2 s each from the cache)."""

import pytest
import torch


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
