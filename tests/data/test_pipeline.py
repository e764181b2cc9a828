"""Loading a dataset for a job: duplicate ids and images outside the dataset folder are refused."""

import json

import pytest

from conftest import REAL
from neuralannot.data import DatasetFormatError, SampleError
from neuralannot.data.loading import load_samples

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="tests/data/real is absent")


def test_duplicate_ids_are_refused_at_load_naming_them(h36m_copy):
    d, data = h36m_copy
    for i, s in enumerate(data["samples"]):
        s["id"] = ["a", "b", "a", "b"][i]
    (d / "dup.json").write_text(json.dumps(data))
    for skip_bad in (False, True):
        pattern = r"dup\.json: duplicate sample ids: 'a' \(2x\), 'b' \(2x\)"
        with pytest.raises(DatasetFormatError, match=pattern):
            load_samples(d / "dup.json", skip_bad=skip_bad)


def test_duplicates_across_files_of_a_folder(h36m_copy):
    d, data = h36m_copy
    (d / "one.json").write_text(json.dumps(data))
    (d / "two.json").write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match=r"duplicate sample ids: 'h36m/S1_Directions"):
        load_samples(d)
    assert len(load_samples(d / "one.json")[0]) == 4


def test_images_outside_the_folder_need_allow_outside_root(h36m_copy):
    d, data = h36m_copy
    sub = d / "sub"
    sub.mkdir()
    for s in data["samples"]:
        s["image"] = f"../{s['image']}"
    (sub / "x.json").write_text(json.dumps(data))
    with pytest.raises(SampleError, match="outside the dataset folder"):
        load_samples(sub / "x.json")
    assert len(load_samples(sub / "x.json", allow_outside_root=True)[0]) == 4
