"""AnnotatorConfig: nested blocks merge into the defaults key by key; unknown keys fail at every level."""

from __future__ import annotations

import logging

import pytest

from neuralannot.annotators.config import AnnotatorConfig

DEFAULT_REG = AnnotatorConfig().reg


def test_yaml_reg_block_changes_one_weight_and_keeps_the_others(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nreg:\n  body_pose: 0.2\n")
    cfg = AnnotatorConfig.from_yaml(path)
    assert cfg.reg == {**DEFAULT_REG, "body_pose": 0.2}
    assert cfg.reg["twist"] == 0.3 and cfg.epochs == 3
    assert AnnotatorConfig().reg == DEFAULT_REG  # the default is not mutated


def test_reg_accepts_any_body_model_parameter_group():
    cfg = AnnotatorConfig.from_dict({"reg": {"lhand_pose": 0.5, "neck_pose": 1e-3, "shape": 0}})
    assert cfg.reg["lhand_pose"] == 0.5 and cfg.reg["neck_pose"] == 1e-3 and cfg.reg["latent"] == 1e-3


@pytest.mark.parametrize("text, error", [
    ("reg:\n  body_poes: 0.2\n", r"unknown reg key\(s\) \['body_poes'\]"),
    ("reg:\n  body_pose: [1, 2]\n", r"reg\.body_pose must be a number"),
    ("reg:\n  twist: true\n", r"reg\.twist must be a number"),
    ("reg: 0.1\n", r"reg must be a mapping"),
    ("epochz: 3\n", r"unknown config key\(s\) \['epochz'\]"),
    ("camera: orthographic\n", r"camera must be virtual \| intrinsics"),
    ("reg: " + "[" * 50_000 + "]" * 50_000 + "\n", r"cannot read config"),
])
def test_unknown_or_malformed_keys_are_errors(tmp_path, text, error):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=error):
        AnnotatorConfig.from_yaml(path)


def test_saved_config_round_trips_with_the_same_digest():
    cfg = AnnotatorConfig.from_dict({"reg": {"body_pose": 0.05}, "seed": 3})
    again = AnnotatorConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.digest() == cfg.digest()


def test_shape_solve_defaults_per_part():
    from neuralannot.annotators.config import FACE_SOLVE_DAMPING, FACE_SOLVE_STEPS, SHAPE_SOLVE_DAMPING

    body, face = AnnotatorConfig(mode="mocap"), AnnotatorConfig(mode="mocap", part="face")
    assert (body.shape_steps, body.shape_lambda) == (1, SHAPE_SOLVE_DAMPING)
    assert (face.shape_steps, face.shape_lambda) == (FACE_SOLVE_STEPS, FACE_SOLVE_DAMPING)
    assert AnnotatorConfig(mode="mocap", part="face", shape_damping=1e-3).shape_lambda == 1e-3
    assert AnnotatorConfig(mode="wild", part="face").shape_steps == 0
    assert face.digest() == AnnotatorConfig(mode="mocap", part="face", shape_damping=1e-3).digest()


def test_swing_weight_defaults_per_part_and_enters_the_digest():
    from neuralannot.annotators.config import HAND_SWING_WEIGHT, SWING_WEIGHT

    hand = AnnotatorConfig(mode="mocap", part="hand")
    assert hand.swing_weight_resolved == HAND_SWING_WEIGHT < 1.0
    assert AnnotatorConfig(mode="mocap").swing_weight_resolved == SWING_WEIGHT < 1.0
    assert AnnotatorConfig(mode="mocap", part="hand", swing_weight=1.0).swing_weight_resolved == 1.0
    # the resolved weight trains different weights: explicit 0.5 == default, 1.0 differs
    same = AnnotatorConfig(mode="mocap", part="hand", swing_weight=HAND_SWING_WEIGHT)
    assert hand.digest() == same.digest()
    assert hand.digest() != AnnotatorConfig(mode="mocap", part="hand", swing_weight=1.0).digest()
    # no swing solve in wild mode: its weight does not retrain a wild annotator
    wild = AnnotatorConfig(mode="wild", part="hand")
    assert wild.digest() == AnnotatorConfig(mode="wild", part="hand", swing_weight=0.3).digest()
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="swing_weight"):
            AnnotatorConfig(mode="mocap", part="hand", swing_weight=bad)


def test_silhouette_end_weight_enters_the_digest_only_when_it_changes_the_term():
    base = AnnotatorConfig(mode="mocap")
    assert AnnotatorConfig(mode="mocap", silhouette_end_weight=1.0).digest() == base.digest()
    assert AnnotatorConfig(mode="mocap", silhouette_end_weight=4.0).digest() != base.digest()
    with pytest.raises(ValueError, match="silhouette_end_weight"):
        AnnotatorConfig(mode="mocap", silhouette_end_weight=0.0)


def test_wrist_stage_follows_the_masks_and_leaves_the_weights_alone():
    assert AnnotatorConfig(mode="mocap").refines_wrists  # MoCap bodies read the masks: the stage ends them
    assert not AnnotatorConfig(mode="mocap", w_silhouette=0.0).refines_wrists
    assert not AnnotatorConfig(mode="mocap", head="paper").refines_wrists
    assert not AnnotatorConfig(mode="wild").refines_wrists
    assert not AnnotatorConfig(mode="mocap", part="hand").refines_wrists
    assert AnnotatorConfig(mode="wild", wrist_stage=True).refines_wrists
    assert not AnnotatorConfig(mode="mocap", wrist_stage=False).refines_wrists
    # a stage after annotation: the trained weights (and their checkpoint) are the same
    assert AnnotatorConfig(mode="mocap", wrist_stage=False).digest() == AnnotatorConfig(mode="mocap").digest()
    with pytest.raises(ValueError, match="part body only"):
        AnnotatorConfig(mode="mocap", part="hand", wrist_stage=True)


def test_face_stage_ends_faces_from_2d_only():
    assert AnnotatorConfig(mode="wild", part="face").refines_face
    assert not AnnotatorConfig(mode="mocap", part="face").refines_face
    assert not AnnotatorConfig(mode="wild").refines_face
    assert not AnnotatorConfig(mode="wild", part="face", body_model="flame").refines_face  # Anny's phenotypes
    assert not AnnotatorConfig(mode="wild", part="face", face_stage=False).refines_face
    base = AnnotatorConfig(mode="wild", part="face")
    assert AnnotatorConfig(mode="wild", part="face", face_stage=False).digest() == base.digest()
    with pytest.raises(ValueError, match="part face only"):
        AnnotatorConfig(mode="wild", face_stage=True)


def test_body_epochs_train_bodies_of_their_mode_only_and_an_epochs_override_replaces_them(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 200\nbody_mocap_epochs: 480\nbody_wild_epochs: 360\n")
    body = AnnotatorConfig.from_yaml(path, mode="mocap")
    assert body.epochs_resolved == 480
    assert AnnotatorConfig.from_yaml(path, mode="wild").epochs_resolved == 360
    for other in ("hand", "face"):
        for mode in ("mocap", "wild"):
            cfg = AnnotatorConfig.from_yaml(path, mode=mode, part=other)
            assert cfg.epochs_resolved == 200, (mode, other)
    # the digest names what trains: the same run as the epochs spelled directly
    assert body.digest() == AnnotatorConfig(mode="mocap", epochs=480).digest()
    wild = AnnotatorConfig.from_yaml(path, mode="wild")
    assert wild.digest() == AnnotatorConfig(mode="wild", epochs=360).digest()
    hand = AnnotatorConfig.from_yaml(path, mode="wild", part="hand")
    assert hand.digest() == AnnotatorConfig(mode="wild", part="hand", epochs=200).digest()
    # --epochs N (a smoke run, the demo) is what every part and mode trains
    for mode in ("mocap", "wild"):
        assert AnnotatorConfig.from_yaml(path, mode=mode, epochs=1).epochs_resolved == 1
    for key in ("body_mocap_epochs", "body_wild_epochs"):
        with pytest.raises(ValueError, match=f"{key} must be >= 1"):
            AnnotatorConfig(mode="mocap", **{key: 0})


def test_the_cpu_config_trains_bodies_longer_than_the_parts():
    from pathlib import Path

    parts = ("body", "hand", "face")
    cpu = Path(__file__).resolve().parents[2] / "configs" / "cpu.yaml"
    for mode in ("mocap", "wild"):
        body, hand, face = (AnnotatorConfig.from_yaml(cpu, mode=mode, part=p) for p in parts)
        assert body.epochs_resolved > hand.epochs_resolved == face.epochs_resolved == hand.epochs


def test_backbone_lr_enters_the_digest_only_for_a_fine_tuned_backbone():
    base = AnnotatorConfig(mode="mocap")
    assert AnnotatorConfig(mode="mocap", backbone_lr=1e-5).digest() != base.digest()
    frozen = AnnotatorConfig(mode="mocap", freeze_backbone=True)
    assert AnnotatorConfig(mode="mocap", freeze_backbone=True, backbone_lr=1e-5).digest() == frozen.digest()
    with pytest.raises(ValueError, match="backbone_lr"):
        AnnotatorConfig(mode="mocap", backbone_lr=0.0)


def test_wild_bodies_and_hands_train_with_the_embedded_set_by_default():
    body = AnnotatorConfig(mode="wild")
    assert body.aux_spec == "synthetic"
    assert (body.inputs, body.joint_input) == ("joints", "coordinates")  # the 2D-joint lifter it teaches
    alone = AnnotatorConfig(mode="wild", aux_data="none")
    assert alone.aux_spec is None and (alone.inputs, alone.joint_input) == ("image", "heatmaps")
    hand = AnnotatorConfig(mode="wild", part="rhand")
    assert hand.aux_spec == "synthetic" and hand.inputs == "image+joints"
    for quiet in (AnnotatorConfig(mode="wild", part="face"), AnnotatorConfig(mode="mocap"),
                  AnnotatorConfig(mode="wild", part="wholebody")):  # fmt: skip
        assert quiet.aux_spec is None
    assert AnnotatorConfig(mode="wild", aux_data="synthetic:500").aux_spec == "synthetic:500"
    # the set names the run through its own tag: the same network with or without it has one digest
    same = AnnotatorConfig(mode="wild", aux_data="none", inputs="joints", joint_input="coordinates")
    assert same.digest() == body.digest() != alone.digest()


def test_whole_body_parts_take_their_own_auxiliary_defaults():
    from neuralannot.annotators.wholebody import part_configs

    cfgs = part_configs(AnnotatorConfig(mode="wild", part="wholebody"))
    assert (cfgs["body"].aux_spec, cfgs["body"].inputs) == ("synthetic", "joints")
    assert cfgs["hand"].aux_spec == "synthetic" and cfgs["face"].aux_spec is None
    off = part_configs(AnnotatorConfig(mode="wild", part="wholebody", aux_data="none"))
    assert all(c.aux_spec is None for c in off.values()) and off["body"].inputs == "image"
    assert (cfgs["body"].aux_weight_resolved, cfgs["hand"].aux_weight_resolved) == (1.0, 4.0)  # per part
    weighted = part_configs(AnnotatorConfig(mode="wild", part="wholebody", aux_weight=2))
    assert weighted["body"].aux_weight_resolved == weighted["hand"].aux_weight_resolved == 2.0  # given: all
    assert all(c.aux_weight is None for c in weighted.values() if c.aux_spec is None)  # not to a part without


def test_an_aux_weight_where_no_set_trains_is_said_to_be_ignored(caplog):
    from neuralannot.annotators.aux_mocap import config_aux

    with caplog.at_level(logging.WARNING, logger="neuralannot.annotators.aux_mocap"):
        assert config_aux(AnnotatorConfig(mode="mocap", aux_weight=3), samples=[]) is None
    assert "aux_weight 3 ignored" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="neuralannot.annotators.aux_mocap"):
        assert config_aux(AnnotatorConfig(mode="mocap"), samples=[]) is None
    assert "ignored" not in caplog.text


@pytest.mark.parametrize("weight", [0, -1.0, float("nan"), float("inf"), "2", True])
def test_aux_weight_must_be_a_positive_number(weight):
    with pytest.raises(ValueError, match="aux_weight must be a number > 0"):
        AnnotatorConfig(mode="wild", aux_weight=weight)


def test_hands_weight_their_auxiliary_set_4_bodies_1_unless_told():
    assert AnnotatorConfig(mode="wild").aux_weight_resolved == 1.0
    for hand in ("hand", "lhand", "rhand"):
        assert AnnotatorConfig(mode="wild", part=hand).aux_weight_resolved == 4.0
    assert AnnotatorConfig(mode="wild", part="rhand", aux_weight=1).aux_weight_resolved == 1.0


def test_aux_weight_names_the_run_through_the_sets_tag_not_the_digest():
    assert AnnotatorConfig(mode="wild", aux_weight=4.0).digest() == AnnotatorConfig(mode="wild").digest()
    assert AnnotatorConfig.from_dict({"mode": "wild", "aux_weight": 4}).aux_weight == 4.0


def test_the_two_stage_targets_weight_defaults_per_mode_and_part_and_names_only_runs_with_targets(tmp_path):
    import torch

    from neuralannot.annotators import state

    assert AnnotatorConfig(mode="wild").w_params_resolved == 4.0  # wild bodies (validation seed 201)
    assert AnnotatorConfig(mode="mocap").w_params_resolved == 1.0
    assert AnnotatorConfig(mode="wild", part="hand").w_params_resolved == 1.0
    assert AnnotatorConfig(mode="wild", w_params=2.0).w_params_resolved == 2.0
    # a one-stage run's weights do not depend on it: the digest is the same for every value
    digests = {AnnotatorConfig(mode="wild", w_params=w).digest() for w in (None, 1.0, 4.0)}
    assert len(digests) == 1
    samples = []  # run_dir only hashes them
    plain = state.run_dir(tmp_path, AnnotatorConfig(mode="wild"), samples, "stage2-")
    assert plain.name.startswith("stage2-") and "wp" not in plain.name
    targets = {"shape": torch.zeros(0, 6)}
    named = state.run_dir(tmp_path, AnnotatorConfig(mode="wild"), samples, "stage2-", targets)
    assert named.name.startswith("stage2-wp4-")
    one = state.run_dir(tmp_path, AnnotatorConfig(mode="wild", w_params=1.0), samples, "stage2-", targets)
    assert one.name.startswith("stage2-") and "wp" not in one.name  # the runs before the default moved
    with pytest.raises(ValueError, match="w_params must be a number > 0"):
        AnnotatorConfig(mode="wild", w_params=0.0)
