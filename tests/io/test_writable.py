"""Output paths are checked before any compute: one-line errors (exit 2) from every command."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuralannot.io.writable import OutputPathError, check_output_dir, check_output_file

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root writes into read-only folders


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody may write in: chmod 555, or (as root, who ignores that) Linux's /sys."""
    if not ROOT:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        yield ro
        ro.chmod(0o755)
        return
    sys_dir = Path("/sys")
    try:
        fd, name = tempfile.mkstemp(dir=sys_dir)
    except OSError:
        yield sys_dir
        return
    os.close(fd)
    os.unlink(name)
    pytest.skip("no read-only folder available to root here")


def test_check_output_file_and_dir(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert check_output_file(tmp_path / "new" / "deeper" / "o.json") == tmp_path / "new" / "deeper" / "o.json"
    assert check_output_dir(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"
    with pytest.raises(OutputPathError, match=r"afile.*existing file, expected a folder"):
        check_output_dir(tmp_path / "afile")
    with pytest.raises(OutputPathError, match=r"existing folder, expected a file"):
        check_output_file(tmp_path)
    with pytest.raises(OutputPathError, match=r"afile is a file, not a folder"):
        check_output_file(tmp_path / "afile" / "o.json")
    with pytest.raises(OutputPathError, match=r"afile is a file, not a folder"):
        check_output_dir(tmp_path / "afile" / "sub")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".neuralannot-write-test")]


def test_read_only_folder(read_only):
    with pytest.raises(OutputPathError, match=f"--json: cannot write in {read_only}"):
        check_output_file(read_only / "o.json", "--json")
    with pytest.raises(OutputPathError, match=f"--out: cannot write in {read_only}"):
        check_output_dir(read_only / "report")


def _cli(*args) -> tuple[int, list[str]]:
    from neuralannot.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, [ln for ln in result.output.splitlines() if ln.startswith("error:")]


def _bad_outputs(tmp_path: Path) -> dict[str, tuple[list, str]]:
    """Command line → the text its one error line must hold; data paths do not exist, so an error
    about the output proves it is checked before anything is loaded or computed."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    nodata, pred, ckpt = tmp_path / "no-data", tmp_path / "no-pred.json", tmp_path / "no.pt"
    under = afile / "o.json"
    return {
        "synth onto a file": (["synth", "--kind", "mocap", "--n", "2", "--out", afile], "existing file"),
        "report onto a file": (["report", "--pred", pred, "--data", nodata, "--out", afile], "existing file"),
        "eval --json under a file": (["eval", "--pred", pred, "--data", nodata, "--json", under],
                                     "not a folder"),
        "eval --csv is a folder": (["eval", "--pred", pred, "--data", nodata, "--csv", tmp_path], "folder"),
        "export --out under a file": (["export", "--pred", pred, "--to", "json", "--out", under],
                                      "not a folder"),
        "fit --out under a file": (["fit", "--data", nodata, "--out", under], "not a folder"),
        "annotate --out under a file": (["annotate", "--data", nodata, "--out", under], "not a folder"),
        "annotate --work-dir a file": (["annotate", "--data", nodata, "--out", tmp_path / "o.json",
                                        "--work-dir", afile], "existing file"),
        "train --work-dir a file": (["train", "--data", nodata, "--work-dir", afile], "existing file"),
        "predict --out under a file": (["predict", "--data", nodata, "--checkpoint", ckpt, "--out", under],
                                       "not a folder"),
        "annotate --out without a suffix": (["annotate", "--data", nodata, "--out", tmp_path / "o"],
                                            "unsupported pseudo-GT suffix ''"),
        "fit --out .txt": (["fit", "--data", nodata, "--out", tmp_path / "o.txt"], "suffix '.txt'"),
        "predict --out .pkl": (["predict", "--data", nodata, "--checkpoint", ckpt,
                                "--out", tmp_path / "o.pkl"], "use .json or .npz"),
    }


def test_every_command_checks_outputs_before_work(tmp_path):
    for what, (args, text) in _bad_outputs(tmp_path).items():
        code, errors = _cli(*args)
        assert code == 2 and len(errors) == 1 and text in errors[0], (what, errors)


def test_read_only_outputs_fail_before_work(tmp_path, read_only):
    nodata, pred = tmp_path / "no-data", tmp_path / "p.json"
    for args in (["eval", "--pred", pred, "--data", nodata, "--json", read_only / "m.json"],
                 ["synth", "--kind", "mocap", "--n", "2", "--out", read_only / "set"],
                 ["report", "--pred", pred, "--data", nodata, "--out", read_only / "rep"],
                 ["fit", "--data", nodata, "--out", read_only / "o.json"]):
        code, errors = _cli(*args)
        assert code == 2 and len(errors) == 1 and "cannot write in" in errors[0], (args, errors)
