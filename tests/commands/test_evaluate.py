"""`neuralannot annotate` + `eval` end to end on a user-supplied FLAME file (issue 15): the face68
landmarks come from FLAME's 51 static + 17 contour embeddings next to the model file."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import smplx_fixtures as fx
from conftest import TINY, synth_set
from neuralannot.cli import app
from neuralannot.io.pseudo_gt import read_pseudo_gt

pytestmark = pytest.mark.anny  # the synthetic face set is rendered from Anny


def _run(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


def test_face_on_a_flame_file(tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.delenv("NEURALANNOT_MODELS", raising=False)  # the model comes from the given file only
    data = synth_set(tmp_path_factory, "face", 6, seed=1)
    flame, _ = fx.write_flame(tmp_path / "flame")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(dict(TINY)))
    out = tmp_path / "flame.npz"
    _run("annotate", "--body-model", flame, "--part", "face", "--mode", "wild", "--data", data,
         "--out", out, "--config", cfg, "--work-dir", tmp_path / "work")
    records, meta = read_pseudo_gt(out)
    assert len(records) == 6 and meta["model"] == "flame"
    for r in records:
        assert r.model == "flame" and r.part == "face"
        assert {"root_pose", "jaw_pose", "shape", "expr", "trans"} <= set(r.params)
        assert all(np.isfinite(np.asarray(v)).all() for v in r.params.values())
    # no GT FLAME meshes on an Anny set: the 2D reprojection error only; the model file is the one
    # annotate was given (recorded in the pseudo-GT), or --body-model
    for extra in ([], ["--body-model", flame.parent]):
        js = tmp_path / f"ev{len(extra)}.json"
        _run("eval", "--pred", out, "--data", data, "--json", js, *extra)
        summary = json.loads(js.read_text())
        assert summary["n"] == 6 and summary["n_reproj_px"] == 6 and summary["reproj_px"] > 0
        assert summary["mpvpe_mm"] is None
    res = CliRunner().invoke(app, ["eval", "--pred", str(out), "--data", str(data),
                                   "--body-model", str(tmp_path / "nowhere")])
    assert res.exit_code != 0 and "nowhere" in res.output
