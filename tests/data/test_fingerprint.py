"""`neuralannot.data.fingerprint`: which samples a pseudo-GT was made from, and the warning readers give."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from neuralannot.data.fingerprint import FINGERPRINT_KEY, other_samples, samples_fingerprint
from neuralannot.data.sample import Sample


def _samples(n: int, seed: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    return [Sample(id=f"s/{i:03d}", image=None, part="body", joint_set="coco17", bbox=[0, 0, 100, 100],
                   joints_2d=np.c_[rng.uniform(0, 100, (17, 2)), np.ones(17)]) for i in range(n)]  # fmt: skip


def test_fingerprint_ignores_order_and_sees_the_keypoints():
    a = _samples(5, 0)
    assert samples_fingerprint(a) == samples_fingerprint(a[::-1])
    assert samples_fingerprint(a) != samples_fingerprint(_samples(5, 1))  # same ids, other joints
    assert samples_fingerprint(a, {"s/000", "s/001"}) == samples_fingerprint(a[:2])
    moved = _samples(5, 0)
    moved[3].joints_2d[0, 0] += 0.5
    assert samples_fingerprint(moved) != samples_fingerprint(a)


def test_other_samples_warns_only_when_it_can_tell():
    a, b = _samples(4, 0), _samples(4, 1)
    ids = [s.id for s in a]
    meta = {FINGERPRINT_KEY: samples_fingerprint(a), "data": "set_a"}
    assert other_samples(meta, ids, a) is None
    assert other_samples(meta, ids, a + _samples(6, 0)[4:]) is None  # the set grew: the records' part matches
    warning = other_samples(meta, ids, b)
    assert warning and "made from set_a" in warning and "other keypoints" in warning
    assert other_samples({}, ids, b) is None  # files written before fingerprints
    assert other_samples(meta, ids, b[:2]) is None  # records outside the set: not comparable


@pytest.mark.anny
def test_eval_report_and_export_warn_on_a_pseudo_gt_of_another_set(tmp_path_factory, tmp_path):
    from conftest import synth_set
    from neuralannot.cli import app
    from neuralannot.io.pseudo_gt import read_pseudo_gt

    made = synth_set(tmp_path_factory, "face", 3, seed=2)
    other = synth_set(tmp_path_factory, "face", 3, seed=5)  # the same ids, other faces
    pred = tmp_path / "sx.npz"

    def cli(*args):
        res = CliRunner().invoke(app, [str(a) for a in args])
        assert res.exit_code == 0, res.output
        return res.output

    cli("fit", "--method", "smplifyx", "--part", "face", "--data", made, "--out", pred, "--iterations", 1,
        "--work-dir", tmp_path / "w")  # fmt: skip
    _, meta = read_pseudo_gt(pred)
    assert meta[FINGERPRINT_KEY]
    assert "warning" not in cli("eval", "--pred", pred, "--data", made, "--json", tmp_path / "a.json")
    assert "warning" not in json.loads((tmp_path / "a.json").read_text())
    out = cli("eval", "--pred", pred, "--data", other, "--json", tmp_path / "b.json")
    assert "made from other samples" in out
    assert "other keypoints" in json.loads((tmp_path / "b.json").read_text())["warning"]
    out = cli("report", "--pred", pred, "--data", other, "--out", tmp_path / "r", "--max-samples", 1)
    assert "made from other samples" in out
    assert "WARNING" in (tmp_path / "r" / "index.html").read_text()
    out = cli("export", "--pred", pred, "--to", "humandata", "--out", tmp_path / "h.npz", "--data", other)
    assert "made from other samples" in out
    assert "warning" not in cli("export", "--pred", pred, "--to", "humandata", "--out", tmp_path / "h2.npz",
                                "--data", made)  # fmt: skip
    # fit --init refuses a start made from other samples: its output would carry these samples' fingerprint
    args = ["fit", "--method", "face-size", "--part", "face", "--init", pred, "--data", other, "--out",
            tmp_path / "fs.npz", "--iterations", 1, "--work-dir", tmp_path / "w2"]  # fmt: skip
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code != 0 and "made from other samples" in res.output, res.output
    assert not (tmp_path / "fs.npz").exists()
    args[args.index(other)] = made
    cli(*args)
    # a start from a larger set cannot be compared (as in `eval`): its part for these samples is taken
    from neuralannot.annotators.pipeline import load_samples
    from neuralannot.commands.fit import _stage1

    subset = load_samples(made, "face")[0][:2]
    records, _ = _stage1(subset, None, tmp_path / "w3", pred, "cpu")
    assert [r.sample_id for r in records] == [s.id for s in subset]
