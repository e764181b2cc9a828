"""Outputs that would clobber inputs are refused before any work (exit 2), unless --force."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from conftest import REAL
from neuralannot.cli import app
from neuralannot.io.guard import OutputError, check_output


def test_an_output_equal_to_an_input_is_refused(tmp_path):
    data = tmp_path / "d.json"
    data.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(data)
    for out in (data, link, tmp_path / "x" / ".." / "d.json"):
        with pytest.raises(OutputError, match="is an input of this command.*--force"):
            check_output(out, [], [data])
    with pytest.raises(OutputError, match="--json .*init.json"):
        check_output(tmp_path / "init.json", [tmp_path / "init.json"], [data], option="--json")
    check_output(tmp_path / "pred.json", [None], [data])  # next to a dataset file: fine
    check_output(data, [], [data], force=True)


def test_an_output_inside_a_dataset_folder_is_refused(tmp_path):
    (tmp_path / "set").mkdir()
    with pytest.raises(OutputError, match="inside the dataset folder"):
        check_output(tmp_path / "set" / "sub" / "pred.json", [], [tmp_path / "set"])
    check_output(tmp_path / "set" / "pred.json", [], [tmp_path / "set"], force=True)
    check_output(tmp_path / "settle.json", [], [tmp_path / "set"])


def test_a_replaced_folder_must_not_hold_an_input_even_with_force(tmp_path):
    with pytest.raises(OutputError, match="would replace a folder holding the input"):
        check_output(tmp_path, [tmp_path / "pred.json"], [], force=True, replaces_folder=True)
    check_output(tmp_path / "report", [tmp_path / "pred.json"], [], replaces_folder=True)


@pytest.fixture
def dataset(tmp_path):
    data = json.loads((REAL / "h36m.json").read_text())
    for s in data["samples"]:
        shutil.copy(REAL / s["image"], tmp_path / s["image"])
    path = tmp_path / "h36m.json"
    path.write_text(json.dumps(data))
    return path


def _run(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, res.stderr


@pytest.mark.skipif(not REAL.is_dir(), reason="tests/data/real is absent")
@pytest.mark.parametrize(
    "args",
    [
        ("fit", "--data", "{data}", "--out", "{data}"),
        ("annotate", "--data", "{data}", "--out", "{data}"),
        ("predict", "--data", "{data}", "--out", "{data}", "--checkpoint", "{dir}/c.pt"),
        ("eval", "--pred", "{dir}/p.json", "--data", "{data}", "--json", "{data}"),
        ("eval", "--pred", "{dir}/p.json", "--data", "{dir}", "--csv", "{dir}/m.csv"),
        ("fit", "--data", "{dir}", "--out", "{dir}/pred.json"),
        ("export", "--pred", "{dir}/p.json", "--to", "npz", "--out", "{dir}/p.json"),
        ("report", "--pred", "{dir}/p.json", "--data", "{data}", "--out", "{dir}"),
    ],
)
def test_cli_refuses_to_clobber_the_dataset(dataset, args):
    before = dataset.read_bytes()
    args = [a.format(data=dataset, dir=dataset.parent) for a in args]
    code, err = _run(*args)
    assert code == 2, err
    assert err.count("\n") == 1 and "error:" in err and ("input" in err or "dataset folder" in err), err
    assert dataset.read_bytes() == before
    assert sorted(p.name for p in dataset.parent.iterdir() if p.suffix in (".json", ".csv")) == ["h36m.json"]


@pytest.mark.parametrize(
    "args",
    [
        ("fit", "--data", "{data}", "--out", "{map}"),
        ("annotate", "--data", "{data}", "--out", "{map}"),
        ("eval", "--pred", "{dir}/p.json", "--data", "{data}", "--json", "{map}"),
        ("export", "--pred", "{dir}/p.json", "--to", "json", "--data", "{data}", "--out", "{map}"),
    ],
)
def test_cli_refuses_to_overwrite_the_joint_map(tmp_path, args):
    data = tmp_path / "data" / "d.json"
    data.parent.mkdir()
    data.write_text("{}")
    jmap = tmp_path / "map.json"
    jmap.write_text('{"pelvis": "pelvis"}')
    args = [a.format(data=data, dir=data.parent, map=jmap) for a in args]
    code, err = _run(*args, "--joint-map", jmap)
    assert code == 2, err
    assert "is an input of this command" in err, err
    assert jmap.read_text() == '{"pelvis": "pelvis"}'
