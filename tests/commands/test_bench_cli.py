"""``neuralannot bench``: suite names, the script command line, argument pass-through, exit codes,
and one real run of the smallest suite (the body forward at batch 1) writing the script's JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuralannot.cli import app
from neuralannot.commands.bench import SUITES

ROOT = Path(__file__).resolve().parents[2]


def _run(*args):
    result = CliRunner().invoke(app, ["bench", *map(str, args)])
    assert "Traceback" not in result.output, result.output
    return result


def test_every_suite_runs_its_script_with_the_arguments_after_the_separator():
    assert {"compare", "gpu", "memory", "synth", "body"} <= set(SUITES)
    for suite, (script, _) in SUITES.items():
        if not (ROOT / "bench" / script).is_file():
            continue  # test_a_missing_script_is_a_one_line_error
        r = _run("--suite", suite, "--dry-run", "--", "--n", "5", "--flag")
        assert r.exit_code == 0, r.output
        line = r.output.strip().splitlines()[-1]
        assert line == f"cd {ROOT} && {sys.executable} {ROOT / 'bench' / script} --n 5 --flag", line


def test_unknown_suite_is_a_one_line_error():
    r = _run("--suite", "speed")
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2 and len(errors) == 1 and "compare, gpu, memory, synth, body" in errors[0]


def test_a_missing_script_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(SUITES, "later", ("no_such_script.py", "later.json"))
    r = _run("--suite", "later", "--dry-run")
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2 and len(errors) == 1 and "no_such_script.py does not exist" in errors[0], errors


def test_the_script_exit_code_comes_back(capfd):
    r = _run("--suite", "body", "--", "--no-such-option")
    assert r.exit_code == 2  # argparse's usage error, from the child process
    assert "unrecognized arguments: --no-such-option" in capfd.readouterr().err


@pytest.mark.anny
def test_the_smallest_suite_writes_the_scripts_json(tmp_path):
    out = tmp_path / "body.json"
    r = _run("--suite", "body", "--", "--batches", "1", "--repeats", "1", "--out", out)
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    assert set(result) == {"machine", "dtype", "phenotypes", "rows"}
    rows = result["rows"]
    assert {row["batch"] for row in rows} == {1} and {"warp_lbs", "lbs"} <= {row["backend"] for row in rows}
    assert all(row["ms"] > 0 for row in rows)


@pytest.mark.anny
def test_gpu_suite_small_mode_runs_every_part_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    args = ["--small", "--device", "cpu", "--workers", "1", "--data-dir", tmp_path / "data", "--out", out]
    r = _run("--suite", "gpu", "--", *args)
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    assert result["small"] is True and result["device"] == "cpu"
    runs = {row["run"]: row for row in result["runs"]}
    assert set(runs) == {"mocap_frozen", "mocap_finetuned", "mocap_finetuned_amp", "wild_frozen",
                         "smplifyx_3d", "smplifyx_2d"}  # fmt: skip
    assert runs["mocap_finetuned_amp"] == {"run": "mocap_finetuned_amp", "skipped": "AMP runs on CUDA only"}
    assert runs["mocap_frozen"]["frozen"] and not runs["mocap_finetuned"]["frozen"]
    for name, row in runs.items():
        if "skipped" in row:
            continue
        keys = ("train_samples_per_s", "annotate_samples_per_s", "samples_per_s")
        rates = [row[k] for k in keys if k in row]
        assert rates and all(v > 0 for v in rates), (name, row)
        assert row["n"] > 0 and 0 < row["mpvpe_mm"] < 5000, (name, row)  # measured, in mm
