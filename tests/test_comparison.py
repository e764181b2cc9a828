"""comparison.py: the indirect evaluation's regressor config, method checks, a tiny from-2D run."""

import numpy as np
import pytest

from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.comparison import best_baseline, regressor_config


def test_indirect_regressor_is_supervised_by_labels_only():
    cfg = regressor_config(AnnotatorConfig(mode="mocap", min_steps=50), min_steps=7)
    assert (cfg.mode, cfg.inputs, cfg.outputs) == ("wild", "image", "rotations")
    assert cfg.w_joints2d == cfg.w_joints3d == 0.0 and cfg.w_params == 1.0 and cfg.min_steps == 7
    # no learned pose prior: the regressors of different annotators differ by their labels only
    assert cfg.reg["pose_prior"] == 0.0 and cfg.reg["body_pose"] == AnnotatorConfig().reg["body_pose"]
    # its budget is its own, not the wild annotator's longer one
    long = regressor_config(AnnotatorConfig(mode="wild", epochs=200, body_wild_epochs=960))
    assert long.epochs_resolved == 200


def test_the_best_baseline_is_the_lowest_smplifyx_row():
    table = {"neuralannot": {"mpvpe_mm": 20.0}, "hybrid": {"mpvpe_mm": 19.0},
             "smplifyx3d": {"mpvpe_mm": 40.0}, "smplifyx3d_vae_sil": {"mpvpe_mm": 30.0},
             "smplifyx3d_vae": {"mpvpe_mm": None}}  # fmt: skip
    assert best_baseline(table) == "smplifyx3d_vae_sil"  # networks and unscored rows never count
    assert best_baseline({"neuralannot": {"mpvpe_mm": 20.0}}) is None


def test_compare_direct_refuses_unknown_methods_before_any_work(tmp_path):
    from neuralannot.comparison import compare_direct

    cfg = AnnotatorConfig()
    with pytest.raises(ValueError, match="unknown methods"):
        compare_direct("from2d", [], cfg, tmp_path, ("neuralannot", "hybird"))
    with pytest.raises(ValueError, match="add 'hybrid'"):
        compare_direct("from2d", [], cfg, tmp_path, ("neuralannot", "two_stage_hybrid"))
    with pytest.raises(ValueError, match="auxiliary 3D set"):
        compare_direct("from2d", [], cfg, tmp_path, ("neuralannot", "neuralannot_aux"))
    assert not any(tmp_path.iterdir())


@pytest.mark.anny
def test_from_2d_comparison_reuses_its_smplifyx_row_and_distils_the_hybrid(tmp_path_factory, tmp_path):
    """From 2D joints the hybrid keeps SMPLify-X's own fit where it matches the joints better, reusing
    the comparison's SMPLify-X row (its time counted), ``two_stage_hybrid`` trains on the hybrid, and
    the ``*_aux`` rows train with an auxiliary 3D set."""
    from conftest import TINY, synth_set
    from neuralannot.annotators.aux_mocap import AuxMocap
    from neuralannot.annotators.pipeline import load_samples
    from neuralannot.comparison import compare_direct

    data = synth_set(tmp_path_factory, "wild", 4, seed=11)
    samples, _ = load_samples(data, "body")
    aux, _ = load_samples(synth_set(tmp_path_factory, "wild3d", 4, seed=12), "body", needs_3d=True)
    cfg = AnnotatorConfig(mode="wild", aux_data="none", **dict(TINY, epochs=1))  # the image network alone
    lifter = AnnotatorConfig(mode="wild", inputs="joints", joint_input="coordinates", **dict(TINY, epochs=1))
    methods = ("neuralannot", "baseline", "hybrid", "two_stage_hybrid", "neuralannot_aux", "hybrid_aux")
    table, recs = compare_direct("from2d", samples, cfg, tmp_path, methods, hybrid_iterations=2,
                                 progress=False, aux=AuxMocap(aux), aux_cfg=lifter)  # fmt: skip
    # the *_aux rows train their own network (aux_cfg); the others cfg's
    runs = {p.name.split("-")[1 if p.name.startswith("aux") else 0] for p in (tmp_path / "runs").iterdir()}
    assert {cfg.digest(), lifter.digest()} <= runs and cfg.digest() != lifter.digest()
    assert table["neuralannot"]["aux"] is None and table["neuralannot_aux"]["aux"]["samples"] == len(aux)
    assert set(table) == set(methods) - {"baseline"} | {"smplifyx"}
    hybrid = table["hybrid"]
    assert hybrid["refined"] + hybrid["from_scratch"] <= len(samples)
    own = {r.sample_id: r for r in recs["smplifyx"]}
    for r in recs["hybrid"]:  # a record taken from the scratch start is the SMPLify-X row's own fit
        if r.quality["hybrid"]["reason"] == "SMPLify-X's own start fitted better":
            assert all(np.array_equal(v, own[r.sample_id].params[k]) for k, v in r.params.items())
    assert hybrid["pipeline_s"] >= table["smplifyx"]["pipeline_s"]
    assert [r.sample_id for r in recs["two_stage_hybrid"]] == [s.id for s in samples]
    assert all("two-stage" in r.quality["method"] for r in recs["two_stage_hybrid"])
    # the auxiliary set changes the network (its own run), and the hybrid starts from it
    assert [r.sample_id for r in recs["neuralannot_aux"]] == [s.id for s in samples]
    assert any(not np.array_equal(a.params["body_pose"], b.params["body_pose"])
               for a, b in zip(recs["neuralannot"], recs["neuralannot_aux"], strict=True))  # fmt: skip
    assert table["hybrid_aux"]["refined"] + table["hybrid_aux"]["from_scratch"] <= len(samples)
    # every row's pseudo-GT file names the samples it was made from
    from neuralannot.data.fingerprint import FINGERPRINT_KEY, samples_fingerprint
    from neuralannot.io.pseudo_gt import read_pseudo_gt

    for name in table:
        _, meta = read_pseudo_gt(tmp_path / "pseudo_gt" / f"{name}.npz")
        assert meta[FINGERPRINT_KEY] == samples_fingerprint(samples), name


@pytest.mark.anny
def test_the_configs_auxiliary_set_is_read_once(tmp_path_factory, tmp_path, monkeypatch):
    """The annotator and the two-stage network both train with the config's set, read once."""
    from conftest import TINY, synth_set
    from neuralannot.annotators import aux_mocap
    from neuralannot.annotators.pipeline import load_samples
    from neuralannot.comparison import compare_direct

    samples, _ = load_samples(synth_set(tmp_path_factory, "wild", 4, seed=11), "body")
    aux_dir = synth_set(tmp_path_factory, "wild3d", 4, seed=12)
    loads = []
    real = aux_mocap.load_aux
    monkeypatch.setattr(aux_mocap, "load_aux", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    cfg = AnnotatorConfig(mode="wild", aux_data=str(aux_dir), **dict(TINY, epochs=1))
    table, _ = compare_direct("from2d", samples, cfg, tmp_path, ("neuralannot", "two_stage"), progress=False)
    assert loads == [str(aux_dir)]
    assert table["neuralannot"]["aux"]["samples"] == 4
    runs = [p.name for p in (tmp_path / "runs").iterdir()]
    assert len(runs) == 2 and all("aux" in name for name in runs)  # both networks trained with it


def test_indirect_regressor_reading_the_joints():
    cfg = regressor_config(AnnotatorConfig(mode="wild"), inputs="joints")
    assert (cfg.mode, cfg.outputs) == ("mocap", "rotations") and cfg.uses_image and cfg.uses_joints
    assert cfg.w_joints3d == cfg.silhouette_weight == 0.0
    assert not cfg.refines_wrists and cfg.joint_refit_steps == 0
    with pytest.raises(ValueError, match="indirect regressor"):
        regressor_config(AnnotatorConfig(), inputs="heatmaps")


@pytest.mark.anny
def test_indirect_gt_row_is_the_regressor_trained_on_the_gt(tmp_path_factory, tmp_path):
    """The ``gt`` row is the regressor trained on the GT parameters (the same run as on a copy of them);
    other labels give another regressor. (Which labels rank first is measured, not asserted: on tiny
    sets even the GT's regressor need not be the best; BENCHMARKS.md.)"""
    from conftest import TINY, synth_set
    from neuralannot.annotators.pipeline import load_samples
    from neuralannot.comparison import compare_indirect
    from neuralannot.io.records import gt_record
    from neuralannot.report.demo import perturbed_gt_records

    train, _ = load_samples(synth_set(tmp_path_factory, "mocap", 6, seed=21), "body")
    test, _ = load_samples(synth_set(tmp_path_factory, "mocap", 3, seed=22), "body")
    cfg = AnnotatorConfig(**dict(TINY, epochs=1))
    labels = {"copy": [gt_record(s) for s in train], "noisy": perturbed_gt_records(train, noise_rad=0.3)}
    table = compare_indirect(labels, train, test, cfg, tmp_path, min_steps=20, progress=False,
                             regressor="joints", gt_reference=True)  # fmt: skip
    assert set(table) == {"copy", "noisy", "gt"} and all(r["n"] == 3 for r in table.values())
    assert all(np.isfinite(r["pa_mpvpe_mm"]) for r in table.values())
    assert table["copy"]["pa_mpvpe_mm"] == pytest.approx(table["gt"]["pa_mpvpe_mm"])
    assert table["noisy"]["pa_mpvpe_mm"] != pytest.approx(table["gt"]["pa_mpvpe_mm"])


def test_the_joints_regressor_refuses_samples_without_3d_joints(tmp_path):
    from types import SimpleNamespace

    from neuralannot.comparison import compare_indirect

    train = [SimpleNamespace(id="w/0", joints_3d=None)]
    with pytest.raises(ValueError, match="1 samples lack 3D joints"):
        compare_indirect({}, train, [], AnnotatorConfig(), tmp_path, regressor="joints")
    assert not any(tmp_path.iterdir())
