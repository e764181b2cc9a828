import json

import numpy as np
import pytest

from conftest import REAL
from neuralannot.bodies import joint_names as jn


@pytest.mark.parametrize("name", sorted(jn.JOINT_SETS))
def test_sets_are_consistent(name):
    names = jn.get_joint_names(name)
    assert len(set(names)) == len(names), "duplicate joint names"
    assert jn.num_joints(name) == len(names)
    assert all(0 <= i < len(names) for i in jn.root_indices(name))
    assert name in jn.SET_PARTS


@pytest.mark.parametrize("name", sorted(jn.JOINT_SETS))
def test_flip_permutation_is_an_involution_that_swaps_sides(name):
    names = jn.get_joint_names(name)
    p = jn.flip_permutation(name)
    assert sorted(p) == list(range(len(names)))
    assert [p[i] for i in p] == list(range(len(names)))
    face = set(jn.get_joint_names("face68"))  # iBUG mirror pairs do not keep the index within a part
    for i, n in enumerate(names):
        if n.startswith("left_") and "right_" + n[5:] in names:
            assert names[p[i]] == "right_" + n[5:] if n not in face else names[p[i]].startswith("right_")


def test_known_sizes_and_layouts():
    sizes = {"coco17": 17, "coco23": 23, "h36m17": 17, "mpi_inf_3dhp17": 17, "hand21": 21, "interhand21": 21,
             "interhand42": 42, "face68": 68, "coco_wholebody133": 133}  # fmt: skip
    for name, n in sizes.items():
        assert jn.num_joints(name) == n
    wb = jn.get_joint_names("coco_wholebody133")
    assert wb[:23] == jn.get_joint_names("coco23")
    assert wb[23:91] == jn.get_joint_names("face68")
    assert wb[91:112] == jn.get_joint_names("lhand21")
    assert wb[112:] == jn.get_joint_names("rhand21")
    assert jn.get_joint_names("coco23")[17:] == [
        "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel"
    ]  # fmt: skip
    hand = jn.get_joint_names("hand21")
    assert (
        hand[0] == "wrist" and hand[1:5] == ["thumb1", "thumb2", "thumb3", "thumb4"] and hand[-1] == "pinky4"
    )
    ih = jn.get_joint_names("interhand21")
    assert ih[0] == "thumb4" and ih[-1] == "wrist"
    assert [ih[i] for i in jn.INTERHAND21_TO_HAND21] == hand
    mpi = jn.get_joint_names("mpi_inf_3dhp17")
    assert mpi[0] == "head_top" and mpi[14] == "pelvis" and mpi[16] == "head"


def test_face68_mirror_pairs():
    face = jn.get_joint_names("face68")
    p = jn.flip_permutation("face68")
    assert face[p[0]] == "jaw_16" and p[8] == 8
    assert p[36] == 45 and p[39] == 42 and p[40] == 47  # eye corners / lower lids
    assert p[17] == 26 and p[30] == 30 and p[48] == 54 and p[62] == 62
    # inside the whole-body set the face uses the same explicit pairs, the body swaps by name
    wb = jn.get_joint_names("coco_wholebody133")
    pw = jn.flip_permutation("coco_wholebody133")
    assert wb[pw[wb.index("right_eye_0")]] == "left_eye_3"
    assert wb[pw[wb.index("right_eye")]] == "left_eye"
    assert wb[pw[wb.index("left_hand_thumb4")]] == "right_hand_thumb4"


def test_hand_sets_are_self_mapped():
    assert jn.flip_permutation("hand21") == list(range(21))
    assert jn.flip_permutation("lhand21") == list(range(21))


def test_flip_name_conventions():
    assert jn.flip_name("hip.L") == "hip.R"
    assert jn.flip_name("LeftArm") == "RightArm"
    assert jn.flip_name("l_knee") == "r_knee"
    assert jn.flip_name("spine") == "spine"
    assert jn.flip_permutation(["a.L", "b", "a.R"]) == [2, 1, 0]


def test_unknown_set_lists_known_sets():
    with pytest.raises(ValueError, match="known sets") as exc:
        jn.get_joint_names("smpl_99")
    assert "coco17" in str(exc.value)


def test_convert_h36m_to_coco_and_back():
    h36m = jn.get_joint_names("h36m17")
    x = np.arange(17 * 3, dtype=np.float32).reshape(17, 3)
    out, valid = jn.convert_joints(x, "h36m17", "coco17")
    coco = jn.get_joint_names("coco17")
    assert out.shape == (17, 3) and valid.dtype == bool
    assert valid.sum() == 12  # shoulders, elbows, wrists, hips, knees, ankles
    np.testing.assert_array_equal(out[coco.index("right_ankle")], x[h36m.index("right_foot")])
    assert not valid[coco.index("nose")] and (out[~valid] == 0).all()


def test_convert_mpi_h36m_roundtrip_and_root_alias():
    x = np.random.default_rng(0).normal(size=(2, 5, 17, 3))
    to_mpi, v1 = jn.convert_joints(x, "h36m17", "mpi_inf_3dhp17")
    back, v2 = jn.convert_joints(to_mpi, "mpi_inf_3dhp17", "h36m17")
    assert v1.all() and v2.all()
    np.testing.assert_array_equal(back, x)
    mpi = jn.get_joint_names("mpi_inf_3dhp17")
    np.testing.assert_array_equal(to_mpi[..., mpi.index("pelvis"), :], x[..., 0, :])  # root ↔ pelvis
    np.testing.assert_array_equal(to_mpi[..., mpi.index("head_top"), :], x[..., 10, :])


def test_convert_hands_and_explicit_names():
    x = np.arange(133 * 2, dtype=np.float64).reshape(133, 2)
    lh, valid = jn.convert_joints(x, "coco_wholebody133", "lhand21")
    assert valid.all()
    np.testing.assert_array_equal(lh, x[91:112])
    ih = np.arange(42 * 3).reshape(42, 3)
    rh, valid = jn.convert_joints(ih, "interhand42", "rhand21")
    assert valid.all() and (rh[0] == ih[20]).all()  # wrist last in InterHand order
    one = np.arange(21 * 3).reshape(21, 3)
    h, valid = jn.convert_joints(one, "interhand21", "hand21")
    np.testing.assert_array_equal(h, one[jn.INTERHAND21_TO_HAND21])
    sub, valid = jn.convert_joints(one, "hand21", ["wrist", "nope"])
    assert valid.tolist() == [True, False] and (sub[0] == one[0]).all()
    with pytest.raises(ValueError, match="joints"):
        jn.convert_joints(one, "coco17", "hand21")


def test_convert_torch_tensor():
    torch = pytest.importorskip("torch")
    x = torch.full((3, 17, 2), float("nan"))
    x[:, 11] = 1.0
    out, valid = jn.convert_joints(x, "coco17", "h36m17")
    assert out.shape == (3, 17, 2) and not torch.isnan(out[:, ~torch.as_tensor(valid)]).any()
    assert (out[:, jn.get_joint_names("h36m17").index("left_hip")] == 1).all()


def test_real_files_match_a_joint_set():
    if not REAL.is_dir():
        pytest.skip("tests/data/real is absent")
    want = {"h36m": "h36m17", "coco": "coco17", "coco_wholebody": "coco_wholebody133",
            "interhand2.6m": "interhand42", "freihand": "hand21", "300w": "face68"}  # fmt: skip
    for stem, set_name in want.items():
        with open(REAL / f"{stem}.json") as f:
            names = json.load(f)["joint_names"]
        assert jn.match_joint_set(names) == set_name, stem
