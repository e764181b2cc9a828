"""comparison.py: the indirect evaluation's regressor config."""

from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.comparison import regressor_config


def test_indirect_regressor_is_supervised_by_labels_only():
    cfg = regressor_config(AnnotatorConfig(mode="mocap", min_steps=50), min_steps=7)
    assert (cfg.mode, cfg.inputs, cfg.outputs) == ("wild", "image", "rotations")
    assert cfg.w_joints2d == cfg.w_joints3d == 0.0 and cfg.w_params == 1.0 and cfg.min_steps == 7
    # no learned pose prior: the regressors of different annotators differ by their labels only
    assert cfg.reg["pose_prior"] == 0.0 and cfg.reg["body_pose"] == AnnotatorConfig().reg["body_pose"]


def test_compare_direct_refuses_unknown_methods_before_any_work(tmp_path):
    import pytest

    from neuralannot.annotators.config import AnnotatorConfig
    from neuralannot.comparison import compare_direct

    cfg = AnnotatorConfig()
    with pytest.raises(ValueError, match="unknown methods"):
        compare_direct("from2d", [], cfg, tmp_path, ("neuralannot", "hybird"))
    with pytest.raises(ValueError, match="add 'hybrid'"):
        compare_direct("from2d", [], cfg, tmp_path, ("neuralannot", "two_stage_hybrid"))
    assert not any(tmp_path.iterdir())
