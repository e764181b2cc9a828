"""Network heads (models/heads.py): the joint encoder's inputs, the joint feature sampler."""

import torch

from neuralannot.models.heads import JointEncoder, JointFeatureSampler


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


def test_joint_feature_sampler_reads_the_cell_under_each_joint():
    C, h, S = 4, 4, 128  # a 4×4 map over a 128-px crop: cell (r, c) covers [32c, 32c+32) × [32r, 32r+32)
    fmap = torch.arange(C * h * h, dtype=torch.float32).reshape(1, C, h, h)
    sampler = JointFeatureSampler(C, num_joints=3, dim=C)
    with torch.no_grad():
        sampler.proj.weight.copy_(torch.eye(C))
        sampler.proj.bias.zero_()
    # the centres of cells (0, 0) and (1, 2); the third joint is invalid
    joints = torch.tensor([[[16.0, 16.0, 1.0], [80.0, 48.0, 1.0], [80.0, 48.0, 0.0]]])
    out = sampler(fmap, joints, S).reshape(1, 3, C + 1)
    torch.testing.assert_close(out[0, 0, :C], fmap[0, :, 0, 0])
    torch.testing.assert_close(out[0, 1, :C], fmap[0, :, 1, 2])
    assert out[0, 2].abs().sum() == 0  # an invalid joint gives zeros and a zero flag
    assert out[0, :2, C].tolist() == [1.0, 1.0]
    outside = sampler(fmap, torch.tensor([[[-5.0, 16.0, 1.0]] * 3]), S).reshape(1, 3, C + 1)
    assert outside.abs().sum() == 0  # outside the crop counts as unseen
    assert sampler.out_dim == 3 * (C + 1)
