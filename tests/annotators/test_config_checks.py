"""AnnotatorConfig's value checks: every closed-choice key and bound refused with one line naming it."""

from __future__ import annotations

import re

import pytest

from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.config_checks import closed_choices

CHOICES = closed_choices(AnnotatorConfig)


@pytest.mark.parametrize("key", sorted(CHOICES))
def test_every_closed_choice_key_refuses_another_value_naming_the_allowed_ones(key):
    shown = " | ".join(a for a in CHOICES[key] if a is not None)
    with pytest.raises(ValueError, match=re.escape(f"{key} must be {shown}, got 'bogus'")):
        AnnotatorConfig(**{"mode": "wild", key: "bogus"})


def test_the_choices_are_read_from_the_fields_literal_annotations():
    assert set(CHOICES) == {"mode", "inputs", "outputs", "head", "image_features", "camera",
                            "output_camera", "wholebody_head", "joint_input"}  # fmt: skip
    assert CHOICES["mode"] == ("mocap", "wild")
    assert CHOICES["head"] == (None, "paper", "swing")  # faces resolve no head
    assert CHOICES["joint_input"] == ("heatmaps", "coordinates")  # no None once resolved


def test_the_defaults_resolved_per_part_pass_the_checks():
    for mode in ("mocap", "wild"):
        for part in ("body", "hand", "lhand", "rhand", "face", "wholebody"):
            cfg = AnnotatorConfig(mode=mode, part=part)
            assert all(getattr(cfg, key) in allowed for key, allowed in CHOICES.items())


@pytest.mark.parametrize("fields, match", [
    ({"mode": "wild", "head": "swing"}, "head 'swing' needs GT 3D joints"),
    ({"root_hypotheses": 0}, "root_hypotheses must be >= 1"),
    ({"feature_dropout": 1.0}, r"feature_dropout must be in \[0, 1\)"),
    ({"w_params": "4"}, "w_params must be a number > 0, got '4'"),
    ({"w_params": float("nan")}, "w_params must be a number > 0"),
    ({"swing_weight": 0.0}, r"swing_weight must be in \(0, 1\]"),
    ({"shape_damping": 0.0}, "shape_damping > 0"),
    ({"part": "hand", "face_stage": True}, "face_stage refines face pseudo-GTs"),
    ({"part": "face", "wrist_stage": True}, "wrist_stage refines body pseudo-GTs"),
    ({"end_crops": True, "end_crop_size": 16}, "end crops need end_crop_size >= 32"),
    ({"mode": "mocap", "aux_data": "synthetic"}, "wild-mode sets only"),
])  # fmt: skip
def test_bounds_and_combinations_are_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        AnnotatorConfig(**{"mode": "mocap", **fields})
