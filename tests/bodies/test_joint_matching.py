"""Matching a dataset's own joint names to a known joint set: order, subsets, supersets, aliases."""

import numpy as np
import pytest

from neuralannot.bodies.joint_matching import (
    JointMatch,
    match_joint_names,
    normalize_name,
    required_joints,
    resolve_name,
)
from neuralannot.bodies.joint_names import (
    COCO17,
    FACE68,
    H36M17,
    HAND21,
    INTERHAND21,
    JOINT_SETS,
    SOURCE_NAMES,
)

OPENPOSE_BODY25 = [
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
    "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe",
    "LHeel", "RBigToe", "RSmallToe", "RHeel", "Background",
]  # fmt: skip
H36M_OFFICIAL = [
    "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck/Nose", "Head",
    "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
]  # fmt: skip
H36M_MOON = [  # I2L-MeshNet / Pose2Pose: "Neck" is the thorax, "Nose" the neck base
    "Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Neck", "Nose",
    "Head_top", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist",
]  # fmt: skip
MMHUMAN3D_H36M = [  # mmhuman3d keypoint convention "h36m" (left leg first)
    "pelvis_extra", "left_hip_extra", "left_knee", "left_ankle", "right_hip_extra", "right_knee",
    "right_ankle", "spine_extra", "neck_extra", "head_extra", "headtop", "left_shoulder", "left_elbow",
    "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
]  # fmt: skip
MPI_INF_3DHP28 = [  # the official 28-joint annot.mat order
    "spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top", "left_clavicle",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand", "right_clavicle", "right_shoulder",
    "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle", "left_foot",
    "left_toe", "right_hip", "right_knee", "right_ankle", "right_foot", "right_toe",
]  # fmt: skip
CROWDPOSE = [  # mmpose crowdpose.py: no pelvis, so mpi_inf_3dhp17 (more joints covered) cannot take it
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "top_head", "neck",
]  # fmt: skip
MEDIAPIPE_HAND = ["WRIST"] + [
    f"{f}_{j}"
    for f, joints in [("THUMB", ["CMC", "MCP", "IP", "TIP"])]
    + [(f, ["MCP", "PIP", "DIP", "TIP"]) for f in ("INDEX_FINGER", "MIDDLE_FINGER", "RING_FINGER", "PINKY")]
    for j in joints
]


def _names_of(m: JointMatch, names):
    """Dataset name read into each joint of the matched set (None = absent)."""
    return [names[i] if i >= 0 else None for i in m.index]


@pytest.mark.parametrize(
    "raw, norm",
    [("LShoulder", "left_shoulder"), ("Neck/Nose", "neck_nose"), ("hip.R", "right_hip"),
     ("R_Hip", "right_hip"), ("HeadTop", "head_top"), ("RBigToe", "right_big_toe"),
     ("rShoulder", "right_shoulder"), ("knee_l", "left_knee"), ("INDEX_FINGER_MCP", "index_finger_mcp")],
)  # fmt: skip
def test_normalize_name(raw, norm):
    assert normalize_name(raw) == norm


@pytest.mark.parametrize("set_name", sorted(JOINT_SETS))
def test_exact_lists_keep_their_set_and_order(set_name):
    m = match_joint_names(JOINT_SETS[set_name])
    assert (m.joint_set, m.identity, m.unknown) == (set_name, True, ())
    for alt in SOURCE_NAMES.get(set_name, []):
        assert match_joint_names(alt).identity


@pytest.mark.parametrize("set_name", ["coco17", "coco23", "h36m17", "mpi_inf_3dhp17", "hand21", "face68",
                                      "interhand42", "coco_wholebody133", "lhand21"])  # fmt: skip
def test_any_permutation_is_read_back_into_the_set(set_name):
    names = JOINT_SETS[set_name]
    perm = np.random.default_rng(0).permutation(len(names))
    shuffled = [names[i] for i in perm]
    m = match_joint_names(shuffled)
    assert m.joint_set == set_name and not m.identity
    assert _names_of(m, shuffled) == names
    cols = np.arange(len(names))[perm][:, None].astype(np.float32)  # column j holds joint perm[j]
    np.testing.assert_array_equal(m.take(cols)[:, 0], np.arange(len(names)))


def test_permuted_interhand_hand_is_read_as_hand21():
    assert match_joint_names(INTERHAND21).joint_set == "interhand21"  # the exact native order stays
    m = match_joint_names(INTERHAND21[::-1])
    assert m.joint_set == "hand21" and _names_of(m, INTERHAND21[::-1]) == HAND21


@pytest.mark.parametrize(
    "names, set_name, unknown",
    [
        (H36M_OFFICIAL, "h36m17", ()),
        (H36M_MOON, "h36m17", ()),
        (MMHUMAN3D_H36M, "h36m17", ()),
        (MPI_INF_3DHP28, "mpi_inf_3dhp17", ("spine3", "spine4", "spine2", "left_clavicle", "left_hand",
                                            "right_clavicle", "right_hand", "left_toe", "right_toe")),
        (OPENPOSE_BODY25, "coco23", ("Neck", "MidHip", "Background")),
        (CROWDPOSE, "coco17", ("top_head", "neck")),
        (MEDIAPIPE_HAND, "hand21", ()),
    ],
)  # fmt: skip
def test_conventions_resolve_to_the_right_joints(names, set_name, unknown):
    m = match_joint_names(names)
    assert m.joint_set == set_name and m.unknown == unknown
    face = ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
    assert m.missing == (face if names == CROWDPOSE else [])
    assert m.passed_over == ("mpi_inf_3dhp17" if names == CROWDPOSE else None)
    got = dict(zip(JOINT_SETS[set_name], _names_of(m, names), strict=True))
    if set_name == "h36m17":  # the joints whose names differ most between conventions
        keys = ("root", "thorax", "neck_base", "head", "right_foot", "spine", "left_hip")
        expect = {
            "Hip": ["Hip", "Thorax", "Neck/Nose", "Head", "RFoot", "Spine", "LHip"],
            "Pelvis": ["Pelvis", "Neck", "Nose", "Head_top", "R_Ankle", "Torso", "L_Hip"],
            "pelvis_extra": ["pelvis_extra", "neck_extra", "head_extra", "headtop", "right_ankle",
                             "spine_extra", "left_hip_extra"],
        }[names[0]]  # fmt: skip
        assert [got[k] for k in keys] == expect
    if set_name == "mpi_inf_3dhp17":
        assert got["head"] == "head" and got["head_top"] == "head_top" and got["neck"] == "neck"
        assert got["left_ankle"] == "left_ankle" and m.shadowed == ("left_foot", "right_foot")
    if set_name == "coco23":
        assert got["right_big_toe"] == "RBigToe" and got["left_heel"] == "LHeel" and got["nose"] == "Nose"
    if set_name == "hand21":
        assert (got["thumb1"], got["index1"], got["pinky4"]) == ("THUMB_CMC", "INDEX_FINGER_MCP", "PINKY_TIP")


def test_finger_numbering_conventions():
    fingers = ("thumb", "index", "middle", "ring", "pinky")
    base = ["wrist"] + [f"{f}{i}" for f in fingers for i in (1, 2, 3, 4)]
    tip_first = match_joint_names(base, finger_numbering="tip_first")
    assert _names_of(tip_first, base)[1:5] == ["thumb4", "thumb3", "thumb2", "thumb1"]
    zero = ["wrist"] + [f"{f}_{i}" for f in fingers for i in (0, 1, 2, 3)]
    assert _names_of(match_joint_names(zero), zero)[1:5] == ["thumb_0", "thumb_1", "thumb_2", "thumb_3"]
    # SMPL-X / mmhuman3d: 1..3 from the base, the bare finger name is the tip; mmpose "forefinger"
    smplx = ["left_hand_root"] + [f"left_{f}{s}" for f in ("thumb", "forefinger", "middle", "ring", "pinky")
                                  for s in ("_1", "_2", "_3", "")]  # fmt: skip
    m = match_joint_names(smplx)
    assert m.joint_set == "lhand21" and m.identity
    assert resolve_name("right_index_tip", "rhand21") == ("right_hand_index4", 1)


def test_subset_marks_absent_joints_and_superset_ignores_unknown():
    names = [n for n in H36M17 if n not in ("spine", "neck_base")][::-1] + ["nose_tip", "tail"]
    m = match_joint_names(names)
    assert (m.joint_set, m.missing, m.unknown) == ("h36m17", ["spine", "neck_base"], ("nose_tip", "tail"))
    j = np.arange(len(names) * 3, dtype=np.float32).reshape(-1, 3) + 1  # no zero row in the input
    out = m.take(j)
    assert out.shape == (17, 3)
    assert (out[[7, 9]] == 0).all() and (out[np.r_[0:7, 8, 10:17]] != 0).all()


def test_a_set_lacking_needed_joints_gives_way_to_one_that_has_them():
    names = H36M17[1:]  # no root: h36m17 cannot be fitted, coco17 (hip midpoint as root) can
    m = match_joint_names(names)
    assert (m.joint_set, m.passed_over) == ("coco17", "h36m17")
    assert _names_of(m, names)[COCO17.index("left_ankle")] == "left_foot"
    assert m.unknown == ("spine", "thorax", "neck_base", "head")


def test_joint_map_wins_and_can_drop_joints():
    names = ["A", "B", "C", "D", "E", "F", "junk"]
    targets = ["left_hip", "right_hip", "left_shoulder", "right_shoulder", "nose", "LAnkle"]
    m = match_joint_names(names, joint_map={**dict(zip(names, targets, strict=False)), "junk": None})
    assert m.joint_set == "coco17" and m.unknown == ()  # a joint mapped to null is not "unknown"
    assert _names_of(m, names)[COCO17.index("left_ankle")] == "F"
    # the map overrides the automatic reading of a name
    m = match_joint_names(COCO17, joint_map={"left_eye": "right_eye", "right_eye": "left_eye"})
    assert _names_of(m, COCO17)[1:3] == ["right_eye", "left_eye"]
    with pytest.raises(ValueError, match="'A' → 'elbow_of_doom'"):
        match_joint_names(names[:6], joint_map={"A": "elbow_of_doom", "B": "left_hip"})


def test_declared_set_keeps_positional_reading_of_unknown_names():
    names = [f"joint{i}" for i in range(17)]
    m = match_joint_names(names, joint_set="h36m17")
    assert m.joint_set == "h36m17" and m.identity
    m = match_joint_names(H36M17[::-1], joint_set="h36m17")  # names that resolve win over positions
    assert _names_of(m, H36M17[::-1]) == H36M17


def test_two_names_for_one_joint_is_an_error():
    with pytest.raises(ValueError, match="'Hip' and 'pelvis' both name the h36m17 joint 'root'"):
        match_joint_names([*H36M17[1:], "Hip", "pelvis"])
    m = match_joint_names(["pelvis", *H36M17])  # an exact name beats an alias
    assert m.index[0] == 1 and m.unknown == () and m.shadowed == ("pelvis",)
    m = match_joint_names([*H36M17, "pelvis"])
    assert m.index[0] == 0 and m.shadowed == ("pelvis",)


def test_required_joints_per_part():
    assert required_joints("h36m17") == ["root", "left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    assert required_joints("coco17") == ["left_hip", "right_hip", "left_shoulder", "right_shoulder"]
    assert required_joints("hand21") == ["wrist", "index1", "middle1", "pinky1"]
    assert set(required_joints("interhand42")) >= {"right_hand_wrist", "left_hand_wrist"}
    assert required_joints("face68") == [FACE68[30], FACE68[36], FACE68[45]]


def test_no_match_and_bad_options_are_errors():
    with pytest.raises(ValueError, match="match no known joint set"):
        match_joint_names(["foo", "bar"])
    with pytest.raises(ValueError, match=r"unknown joint set \['h36m17'\]"):
        match_joint_names(H36M17, joint_set=["h36m17"])
    with pytest.raises(ValueError, match="finger_numbering must be one of"):
        match_joint_names(HAND21, finger_numbering="middle_out")
