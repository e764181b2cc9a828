"""bodies/__init__.py and bodies/parts.py: the shared model factory and the part tables."""

import pytest

from neuralannot.bodies import BodyModelError, get_body_model, load_body_model
from neuralannot.bodies.parts import MODEL_PART, MODEL_PARTS, PARTS, record_model_part
from neuralannot.data.sample import PARTS as SAMPLE_PARTS
from neuralannot.evaluation import ModelCache
from neuralannot.io.pseudo_gt import MODELS


def test_get_body_model_is_one_shared_cache():
    a = get_body_model("anny", "hand")
    assert get_body_model("anny", "hand") is a and ModelCache().get("anny", "hand") is a
    assert get_body_model("anny", "lhand") is not a and not a.training
    assert load_body_model("anny", part="hand") is not a  # a private copy stays possible


def test_unknown_part_is_not_cached_as_a_model():
    with pytest.raises(BodyModelError, match="unknown part"):
        get_body_model("anny", "torso")


def test_tables_are_defined_once():
    assert SAMPLE_PARTS is PARTS and tuple(MODEL_PARTS) == MODELS
    assert set(MODEL_PARTS["anny"]) == set(PARTS) == set(MODEL_PART)
    assert {record_model_part("hand", "left"), record_model_part("lhand")} == {"lhand"}
    assert record_model_part("rhand") == "hand" and record_model_part("face") == "face"
