"""Network heads (models/heads.py): the joint encoder's inputs."""

import torch

from neuralannot.models.heads import JointEncoder


def test_joint_encoder_reads_pairwise_distances_of_valid_joints():
    joints = torch.tensor([[[0.0, 0, 0, 1], [3.0, 4, 0, 1], [0.0, 0, 2, 1], [9.0, 9, 9, 0]]])
    enc = JointEncoder(4, dim=8, distances=True)
    x = enc.inputs(joints)
    assert x.shape == (1, 4 * 4 + 6) and enc(joints).shape == (1, 8)
    # pairs in triu order: (0,1) (0,2) (0,3) (1,2) (1,3) (2,3); joint 3 is invalid
    expected = torch.tensor([5.0, 2.0, 0.0, 29.0**0.5, 0.0, 0.0])
    assert torch.allclose(x[0, 16:], expected)
    assert torch.equal(x[0, 12:15], torch.zeros(3))  # the invalid joint's coordinates are zeroed
    plain = JointEncoder(4, dim=8)
    assert plain.inputs(joints).shape == (1, 16)
