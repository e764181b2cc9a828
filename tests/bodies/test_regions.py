"""Body regions of mesh vertices (bodies/regions.py)."""

import pytest
import torch

from neuralannot.bodies.regions import REGIONS, region_of, vertex_regions


@pytest.mark.parametrize(
    ("name", "region"),
    [
        ("wrist.L", "hands"),
        ("finger3-2.R", "hands"),
        ("left_index1", "hands"),
        ("metacarpal2.L", "hands"),
        ("toe2-1.R", "feet"),
        ("left_ankle", "feet"),
        ("foot.L", "feet"),
        ("lowerarm01.L", "arms"),
        ("forearm", "arms"),
        ("right_collar", "arms"),
        ("clavicle.R", "arms"),
        ("head", "head"),
        ("neck02", "head"),
        ("jaw", "head"),
        ("eye.L", "head"),
        ("upperleg01.R", "legs"),
        ("left_knee", "legs"),
        ("right_hip", "legs"),
        ("spine03", "torso"),
        ("pelvis", "torso"),
        ("root", "torso"),
    ],
)
def test_region_of_names(name, region):
    assert region_of(name) == region


def test_anny_regions_partition_the_mesh(anny_body):
    regions = vertex_regions(anny_body)
    assert set(regions) == set(REGIONS)
    ids = torch.cat(list(regions.values()))
    assert len(ids) == anny_body.num_vertices == len(torch.unique(ids))
    # Anny's mesh is dense at its ends: head, hands and feet hold most of its vertices
    assert len(regions["head"]) + len(regions["hands"]) + len(regions["feet"]) > 0.6 * len(ids)


def test_smpl_regions_from_its_skinning_weights(tmp_path):
    from neuralannot.bodies import load_body_model
    from smplx_fixtures import write_smpl

    path, _ = write_smpl(tmp_path)
    smpl = load_body_model(path)
    regions = vertex_regions(smpl)
    ids = torch.cat(list(regions.values()))
    assert len(ids) == smpl.smplx_layer.v_template.shape[0] == len(torch.unique(ids))
    dominant = smpl.smplx_layer.lbs_weights.argmax(1)
    wrist = smpl.joint_names.index("left_wrist")
    assert set((dominant == wrist).nonzero()[:, 0].tolist()) <= set(regions["hands"].tolist())


def test_models_without_known_skinning_have_no_regions():
    assert vertex_regions(torch.nn.Linear(2, 2)) == {}
