"""`neuralannot.commands.annotate` helpers shared by the commands (the CLI paths: tests/test_cli.py)."""

import pytest
import torch
import typer

from neuralannot.commands.annotate import set_threads


def test_set_threads_applies_a_count_and_keeps_the_default_at_zero(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    set_threads(0)
    assert calls == []
    set_threads(3)
    assert calls == [3]


def test_set_threads_refuses_a_negative_count(monkeypatch):
    monkeypatch.setattr(torch, "set_num_threads", lambda n: pytest.fail("set for a negative count"))
    with pytest.raises(typer.Exit) as err:
        set_threads(-1)
    assert err.value.exit_code == 2
