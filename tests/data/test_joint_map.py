"""Datasets with their own joint names: permuted, aliased, partial lists and ``--joint-map`` files."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import OFFICIAL, REAL
from neuralannot.bodies.joint_names import H36M17
from neuralannot.data.adapters import DatasetFormatError, load_any
from neuralannot.data.adapters.joint_map import JointMapError, read_joint_map

#: H36M's official joint names, in h36m17 order.
H36M_OFFICIAL = [
    "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck/Nose", "Head",
    "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
]  # fmt: skip
PERM = [13, 4, 0, 16, 9, 2, 11, 7, 15, 1, 6, 14, 3, 10, 8, 5, 12]
DROPPED = ("spine", "neck_base")


def _variant(d: Path, names: list[str], columns: list[int], extra_column: bool = False) -> Path:
    """h36m.json rewritten with ``names`` for the h36m17 joints ``columns`` (+ an unknown column)."""
    data = json.loads((REAL / "h36m.json").read_text())
    d.mkdir(parents=True, exist_ok=True)
    for s in data["samples"]:
        shutil.copy(REAL / s["image"], d / s["image"])
        for key in ("joints_2d", "joints_3d", "joints_3d_valid"):
            rows = [s[key][c] for c in columns]
            if extra_column:
                rows.append([0.0] * len(rows[0]) if isinstance(rows[0], list) else 1.0)
            s[key] = rows
    data["joint_names"] = names + (["Background"] if extra_column else [])
    data["num_joints"] = len(data["joint_names"])
    path = d / "mine.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("joint_map")
    keep = [c for c in PERM if H36M17[c] not in DROPPED]
    aliased = _variant(root / "aliased", [H36M_OFFICIAL[c] for c in keep], keep, extra_column=True)
    coded = _variant(root / "coded", [f"J{c:02d}" for c in PERM], PERM)
    jmap = root / "map.json"
    jmap.write_text(json.dumps({f"J{c:02d}": H36M17[c] for c in PERM} | {"J07": None}))
    return {"original": REAL / "h36m.json", "aliased": aliased, "coded": coded, "map": jmap}


def test_permuted_aliased_partial_list_reads_as_the_canonical_set(datasets, caplog):
    original = list(load_any(datasets["original"]))
    with caplog.at_level(logging.INFO, logger="neuralannot.data.adapters.joint_map"):
        mine = list(load_any(datasets["aliased"], check_images=None))
    assert "ignoring 1 joint name(s) that match no h36m17 joint: Background" in caplog.text
    assert "absent from the file (read as invisible): spine, neck_base" in caplog.text
    dropped = [H36M17.index(n) for n in DROPPED]
    kept = [k for k in range(17) if k not in dropped]
    for a, b in zip(original, mine, strict=True):
        assert b.joint_set == "h36m17" and b.joints_2d.shape == (17, 3) and b.joints_3d.shape == (17, 4)
        np.testing.assert_array_equal(b.joints_2d[kept], a.joints_2d[kept])
        np.testing.assert_array_equal(b.joints_3d[kept], a.joints_3d[kept])
        assert (b.joints_2d[dropped, 2] == 0).all() and (b.joints_3d[dropped, 3] == 0).all()


def test_joint_map_file_reads_coded_names(datasets):
    with pytest.raises(DatasetFormatError, match=r"mine\.json: joint_names .*match no known joint set"):
        list(load_any(datasets["coded"]))
    original = list(load_any(datasets["original"]))
    mine = list(load_any(datasets["coded"], joint_map=datasets["map"]))
    spine = H36M17.index("spine")  # J07 is mapped to null: dropped on purpose
    for a, b in zip(original, mine, strict=True):
        np.testing.assert_array_equal(np.delete(b.joints_3d, spine, 0), np.delete(a.joints_3d, spine, 0))
        assert b.joints_3d[spine, 3] == 0


def test_missing_required_joints_name_them_and_the_file(tmp_path):
    keep = [c for c in range(17) if H36M17[c] not in ("root", "left_hip")]
    path = _variant(tmp_path, [H36M17[c] for c in keep], keep)
    pattern = r"mine\.json: .*15 of the 17 h36m17 joints; missing \['root', 'left_hip'\]"
    with pytest.raises(DatasetFormatError, match=pattern):
        list(load_any(path))


def test_joint_map_file_errors(tmp_path, datasets):
    bad = tmp_path / "bad.json"
    for text, pattern in [
        ("[1]", "expected a JSON object"),
        ('{"a": 3}', "values must be keypoint names or null"),
        ('{"joints": {"a": "root"}, "jointset": "h36m17"}', r"unknown key\(s\) \['jointset'\]"),
        ('{"joints": {}, "joint_set": "h37m"}', "unknown joint_set 'h37m'"),
        ("{", "cannot read the joint map"),
    ]:
        bad.write_text(text)
        with pytest.raises(JointMapError, match=pattern):
            read_joint_map(bad)
    with pytest.raises(JointMapError, match="not found"):
        read_joint_map(tmp_path / "nope.json")
    bad.write_text(json.dumps({"J00": "elbow_of_doom"}))
    with pytest.raises(DatasetFormatError, match="'J00' → 'elbow_of_doom'"):
        list(load_any(datasets["coded"], joint_map=bad))
    official = OFFICIAL / "h36m"
    with pytest.raises(ValueError, match="joint map applies to the folder format; h36m has a fixed"):
        load_any(official, joint_map={"Pelvis": "root"})


@pytest.mark.anny
def test_fit_and_eval_a_renamed_dataset_end_to_end(datasets, tmp_path):
    from neuralannot.cli import app

    def run(*args):
        res = CliRunner().invoke(app, [*map(str, args)])
        assert res.exit_code == 0, res.output
        return res

    common = ["--iterations", 2, "--threads", 1, "--batch-size", 4]
    run("fit", "--method", "smplifyx3d", "--data", datasets["aliased"], "--out", tmp_path / "a.npz", *common)
    run("eval", "--pred", tmp_path / "a.npz", "--data", datasets["aliased"], "--json", tmp_path / "a.json")
    summary = json.loads((tmp_path / "a.json").read_text())
    assert summary["n"] == 4 and summary["missing"] == 0 and np.isfinite(summary["mpjpe_mm"])
    fit2d = ["fit", "--method", "smplifyx", "--data", datasets["coded"], "--out", tmp_path / "c.npz", *common]
    res = CliRunner().invoke(app, [*map(str, fit2d)])
    assert res.exit_code == 2 and "match no known joint set" in res.output
    res = CliRunner().invoke(app, [*map(str, fit2d), "--joint-map", tmp_path / "nope.json"])
    assert res.exit_code == 2 and "nope.json: joint map not found" in res.output
    run(*fit2d, "--joint-map", datasets["map"])
    run("eval", "--pred", tmp_path / "c.npz", "--data", datasets["coded"], "--joint-map", datasets["map"],
        "--json", tmp_path / "c.json")  # fmt: skip
    summary = json.loads((tmp_path / "c.json").read_text())
    assert summary["n"] == 4 and np.isfinite(summary["reproj_px"])
