"""The demo's verdict against the mission's targets (demo.py), and a tiny end-to-end demo run."""

import pytest

from neuralannot.demo import TARGET_MPVPE_RATIO, verdict


def _row(mpjpe, mpvpe):
    return {"mpjpe_mm": mpjpe, "mpvpe_mm": mpvpe}


def test_verdict_needs_both_targets():
    base = _row(15.0, 40.0)
    assert verdict({"neuralannot": _row(10.0, 30.0), "baseline": base}).startswith("NeuralAnnot wins")
    # MPVPE ahead but not by the target ratio, or joints worse: not a win
    short = verdict({"neuralannot": _row(10.0, 40.0 * (TARGET_MPVPE_RATIO + 0.1)), "baseline": base})
    assert short.startswith("NeuralAnnot ahead but short")
    assert verdict({"neuralannot": _row(20.0, 30.0), "baseline": base}).startswith("NeuralAnnot ahead")
    assert verdict({"neuralannot": _row(20.0, 50.0), "baseline": base}).startswith("SMPLify-X wins")


def test_verdict_reports_the_hybrid():
    table = {"neuralannot": _row(10.0, 30.0), "baseline": _row(15.0, 40.0), "hybrid": _row(9.0, 28.0)}
    assert "hybrid 28.0 mm (better than both)" in verdict(table)
    table["hybrid"] = _row(9.0, 35.0)
    assert "not better than both" in verdict(table)


@pytest.mark.anny
def test_tiny_demo_runs_end_to_end(tmp_path):
    from neuralannot.demo import run_annotation_demo

    result = run_annotation_demo(tmp_path, n=8, min_steps=4)
    # the demo's annotator reads the person masks (MoCap default): so does the masked SMPLify-X row
    rows = {"neuralannot", "smplifyx3d", "smplifyx3d_vae", "smplifyx3d_vae_sil", "hybrid", "two_stage"}
    assert set(result["metrics"]) == rows
    assert result["verdict"] and (tmp_path / "comparison.json").exists()
    assert all(m["n"] == 8 for m in result["metrics"].values())
    # every row that reads the masks ends with the same wrist stage (like for like); the others do not
    refined = {k: m["wrists_refined"] for k, m in result["metrics"].items()}
    assert refined["smplifyx3d"] == refined["smplifyx3d_vae"] == 0
    assert all(refined[k] > 0 for k in ("neuralannot", "smplifyx3d_vae_sil", "hybrid")), refined
    # and every row (MoCap bodies) with the joint refit
    assert all(m["joints_refined"] > 0 for m in result["metrics"].values()), result["metrics"]
    # the printed ratio is the verdict's: to the strongest SMPLify-X row
    sx = {k: result["metrics"][k]["mpvpe_mm"] for k in ("smplifyx3d", "smplifyx3d_vae", "smplifyx3d_vae_sil")}
    assert result["best_baseline"] == min(sx, key=sx.get)
    na = result["metrics"]["neuralannot"]["mpvpe_mm"]
    assert result["mpvpe_ratio"] == pytest.approx(na / min(sx.values()))
    assert f"against {result['best_baseline']}" in result["verdict"]


def test_verdict_uses_the_strongest_baseline():
    table = {"neuralannot": _row(10.0, 30.0), "smplifyx3d": _row(15.0, 40.0),
             "smplifyx3d_vae": _row(12.0, 36.0)}
    line = verdict(table)
    assert "against smplifyx3d_vae)" in line and "MPVPE ratio 0.83" in line
    table["smplifyx3d_vae"]["wrists_refined"] = 3  # the masked rows end with the wrist stage: say so
    assert "against smplifyx3d_vae + wrist stage)" in verdict(table)
    table["smplifyx3d_vae"]["joints_refined"] = 8  # and the joint refit
    assert "against smplifyx3d_vae + joint refit + wrist stage)" in verdict(table)


def test_verdict_needs_a_baseline_row():
    with pytest.raises(ValueError, match="no SMPLify-X row"):
        verdict({"neuralannot": _row(10.0, 30.0), "hybrid": _row(9.0, 28.0)})


def test_the_demo_command_prints_the_verdicts_ratio(monkeypatch, tmp_path):
    """The printed table's ratio column is the verdict's (to the strongest SMPLify-X row), named."""
    from typer.testing import CliRunner

    from neuralannot import demo
    from neuralannot.cli import app

    rows = {"neuralannot": (9.0, 21.0), "smplifyx3d": (12.0, 36.0), "smplifyx3d_vae_sil": (11.0, 28.0)}
    metrics = {k: {"mpjpe_mm": j, "pa_mpjpe_mm": j, "mpvpe_mm": v, "pa_mpvpe_mm": v, "samples_per_s": 1.0,
                   "mpvpe_ratio_to_best_baseline": v / 28.0} for k, (j, v) in rows.items()}  # fmt: skip
    summary = {"vertices": 1, "joints": 1, "people": [], "files": {"meshes": "m", "overlay": "o"}}
    monkeypatch.setattr(demo, "run_demo", lambda out: summary)
    result = {"n": 3, "metrics": metrics, "best_baseline": "smplifyx3d_vae_sil", "best": "neuralannot",
              "verdict": verdict({k: _row(*v) for k, v in rows.items()})}  # fmt: skip
    monkeypatch.setattr(demo, "run_annotation_demo", lambda out, n, min_steps: result)
    out = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)], terminal_width=200).output
    assert "ratio: MPVPE over smplifyx3d_vae_sil's" in out and "MPVPE ratio 0.75" in out, out
    assert " 0.75 " in out and " 1.29 " in out  # the annotator's and the L2 fit's, to the masked fit
