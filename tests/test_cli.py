"""Bad option values: one-line errors with exit code 2 before any data is loaded, never tracebacks."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from neuralannot.cli import app


def _cli(*args) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, [ln for ln in result.output.splitlines() if ln.startswith("error:")]


def _commands(tmp_path, extra):
    nodata, out, ck = tmp_path / "no-data", tmp_path / "o.json", tmp_path / "no.pt"
    return {
        "annotate": ["annotate", "--data", nodata, "--out", out, *extra],
        "train": ["train", "--data", nodata, "--work-dir", tmp_path / "w", *extra],
        "predict": ["predict", "--data", nodata, "--out", out, "--checkpoint", ck, *extra],
        "fit": ["fit", "--data", nodata, "--out", out, *extra],
        "fit eft": ["fit", "--method", "eft", "--data", nodata, "--out", out, *extra],
    }


def _device_commands() -> set[str]:
    """Names of the registered commands that take ``--device``."""
    import inspect

    out = set()
    for c in app.registered_commands:
        if "device" in inspect.signature(c.callback).parameters:
            out.add(c.name or c.callback.__name__)
    return out


def test_device_cuda_without_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a machine with a GPU
    covered = {args[0] for args in _commands(tmp_path, []).values()}
    assert _device_commands() == covered, "a command with --device is missing from _commands"
    for device in ("cuda", "cuda:1"):
        for name, args in _commands(tmp_path, ["--device", device]).items():
            code, errors = _cli(*args)
            assert code == 2 and len(errors) == 1 and "no CUDA GPU" in errors[0], (name, errors)


def test_unknown_device(tmp_path):
    for name, args in _commands(tmp_path, ["--device", "tpu"]).items():
        code, errors = _cli(*args)
        assert code == 2 and errors == ["error: --device must be cpu, cuda, cuda:N or mps, got 'tpu'"], name


@pytest.mark.parametrize("args, text", [
    (["fit", "--threads", "-1"], "--threads must be 0 (torch's default) or more, got -1"),
    (["annotate", "--threads", "-2"], "--threads must be 0 (torch's default) or more, got -2"),
    (["predict", "--checkpoint", "c.pt", "--threads", "-1"],
     "--threads must be 0 (torch's default) or more, got -1"),
    (["fit", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["fit", "--method", "hybrid", "--batch-size", "-3"], "--batch-size must be at least 1, got -3"),
    (["predict", "--checkpoint", "c.pt", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["predict", "--checkpoint", "c.pt", "--chunk-size", "0"], "--chunk-size must be at least 1, got 0"),
])
def test_bad_counts(tmp_path, args, text):
    code, errors = _cli(*args, "--data", tmp_path / "no-data", "--out", tmp_path / "o.json")
    assert code == 2 and errors == [f"error: {text}"]


def test_train_refuses_negative_threads(tmp_path):
    code, errors = _cli("train", "--data", tmp_path / "no-data", "--work-dir", tmp_path / "w",
                        "--threads", "-1")
    assert code == 2 and errors == ["error: --threads must be 0 (torch's default) or more, got -1"]


@pytest.mark.parametrize("args, text", [
    (["--mode", "mocap"], "bad config: aux_data: an auxiliary MoCap set supervises wild-mode sets only"),
    (["--mode", "wild", "--part", "wholebody"], "a folder supervises one part"),
    (["--mode", "wild", "--aux-weight", "0"], "bad config: aux_weight must be a number > 0, got 0.0"),
])
def test_aux_data_refused_before_any_work(tmp_path, args, text):
    code, errors = _cli("annotate", "--data", tmp_path / "no-data", "--out", tmp_path / "o.json",
                        "--aux-data", tmp_path / "no-aux", *args)  # fmt: skip
    assert code == 2 and len(errors) == 1 and text in errors[0], errors


def test_train_takes_the_auxiliary_options_too(tmp_path):
    code, errors = _cli("train", "--data", tmp_path / "no-data", "--work-dir", tmp_path / "w",
                        "--mode", "wild", "--aux-data", "synthetic", "--aux-weight", "-2")  # fmt: skip
    assert code == 2 and errors == ["error: bad config: aux_weight must be a number > 0, got -2.0"]
