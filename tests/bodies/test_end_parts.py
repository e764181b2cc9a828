"""End parts (bodies/end_parts.py): rules by joint name, centres and limb directions from 2D joints."""

import pytest
import torch

from neuralannot.bodies.end_parts import end_part_frames, end_part_rules
from neuralannot.bodies.joint_names import COCO17, H36M17


def test_rules_follow_the_joint_names_of_each_set():
    parts, idx, offsets = end_part_rules("h36m17")
    assert parts == ["left_hand", "right_hand", "left_foot", "right_foot", "head"]
    named = [(H36M17[a], H36M17[t]) for a, t in idx.tolist()]
    assert named[0] == ("left_elbow", "left_wrist") and named[3] == ("right_knee", "right_foot")
    assert named[4] == ("neck_base", "head") and offsets[4] == -0.5  # between the head's joints
    parts, idx, _ = end_part_rules("coco17")
    assert parts[2] == "left_foot" and COCO17[idx[2, 1]] == "left_ankle"
    assert COCO17[idx[4, 0]] == COCO17[idx[4, 1]] == "nose"
    with pytest.raises(ValueError, match="hand21.*elbow"):
        end_part_rules("hand21")
    with pytest.raises(ValueError, match="unknown joint set"):
        end_part_rules("nope")


def test_frames_sit_beyond_the_tip_along_the_limb_and_missing_joints_are_invalid():
    # joints: 0 = elbow (10, 10), 1 = wrist (30, 10), 2 = missing
    j = torch.tensor([[[10.0, 10.0, 1.0], [30.0, 10.0, 1.0], [0.0, 0.0, 0.0]]])
    idx = torch.tensor([[0, 1], [1, 1], [0, 2]])
    centre, direction, valid = end_part_frames(j, idx, torch.tensor([0.5, 0.0, 0.5]))
    assert torch.allclose(centre[0, 0], torch.tensor([40.0, 10.0]))  # 30 + 0.5 * 20
    assert torch.allclose(centre[0, 1], torch.tensor([30.0, 10.0]))  # at the tip
    assert torch.allclose(direction[0, 0], torch.tensor([1.0, 0.0]))  # elbow → wrist: +x
    assert torch.allclose(direction[0, 1:], torch.tensor([0.0, 1.0]))  # no limb: image down
    assert valid.tolist() == [[True, True, False]]
