"""Pose library, pose/shape/hand/face samplers and the CMU → Anny pose fit."""

import math

import pytest
import roma
import torch

from neuralannot.data.synthetic.pose_fit import (
    HINGE_AXES,
    JOINT_NAMES,
    SLOT_NAMES,
    PoseFitter,
    forward_kinematics,
    hinge_angles,
    limit_violations,
)
from neuralannot.data.synthetic.poses import (
    LIBRARY_PATH,
    MIRROR_PERM,
    WRIST_R_REFERENCE,
    BodyPoseSampler,
    FaceSampler,
    HandPoseSampler,
    load_pose_library,
    mirror_body_pose,
    pose_library_stats,
    sample_global_orientation,
    sample_phenotypes,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def library():
    return load_pose_library()


def test_library_loads(library):
    tensors, meta = library
    pose = tensors["body_pose"]
    assert pose.dtype == torch.float32 and pose.ndim == 3 and pose.shape[1:] == (21, 3)
    assert len(pose) >= 4000 and torch.isfinite(pose).all()
    assert LIBRARY_PATH.stat().st_size < 5e6
    assert int(meta["frame_count"]) == len(pose)
    assert float(meta["fit_mpjpe_median_mm"]) < 10 and "command" in meta and "source" in meta
    for key in ("root_tilt", "activity", "source_frame", "fit_mpjpe_mm"):
        assert len(tensors[key]) == len(pose)
    assert not limit_violations(pose).any()  # hinge knees/elbows, limits respected
    assert (pose.norm(dim=-1) < math.pi).all()


def test_sampling_is_deterministic():
    s1, s2 = BodyPoseSampler(seed=3), BodyPoseSampler(seed=3)
    assert torch.equal(s1.sample(16), s2.sample(16))
    assert torch.equal(s1.sample(8, gen(1)), s2.sample(8, gen(1)))
    assert not torch.equal(s1.sample(8, gen(1)), s1.sample(8, gen(2)))
    hands, face = HandPoseSampler(), FaceSampler()
    for fn in (sample_global_orientation, sample_phenotypes, hands.sample, face.sample):
        assert torch.equal(fn(32, gen(5)), fn(32, gen(5)))
        assert not torch.equal(fn(32, gen(5)), fn(32, gen(6)))


def test_body_samples_within_limits():
    pose, info = BodyPoseSampler(seed=0).sample(2000, return_info=True)
    assert pose.shape == (2000, 21, 3) and torch.isfinite(pose).all()
    assert not limit_violations(pose, tol_deg=0.5).any()
    assert 0.4 < info["mirrored"].float().mean() < 0.6
    # unobserved slots (wrists, head) get variation, observed ones stay close to the library
    assert pose[:, SLOT_NAMES.index("left_wrist")].norm(dim=-1).mean() > math.radians(10)


def test_mirror_is_an_involution(library):
    pose = library[0]["body_pose"][:64]
    assert sorted(MIRROR_PERM) == list(range(21))
    assert [MIRROR_PERM[i] for i in MIRROR_PERM] == list(range(21))
    assert SLOT_NAMES[MIRROR_PERM[SLOT_NAMES.index("left_knee")]] == "right_knee"
    torch.testing.assert_close(mirror_body_pose(mirror_body_pose(pose)), pose)
    # hinge angles swap sides
    torch.testing.assert_close(hinge_angles(mirror_body_pose(pose)), hinge_angles(pose)[:, [1, 0, 3, 2]])


def test_phenotypes_span_range():
    ph = sample_phenotypes(20000, gen(0))
    assert ph.shape == (20000, 6) and (ph >= 0).all() and (ph <= 1).all()
    assert (ph.min(0).values < 0.02).all() and (ph.max(0).values > 0.98).all()
    age = ph[:, 1]
    assert (age > 0.62).float().mean() > 0.6  # adults dominate
    assert 0.05 < (age < 0.45).float().mean() < 0.25  # children appear
    assert 0.05 < (age > 0.9).float().mean() < 0.3  # and elderly


def test_global_orientations_are_valid():
    rv = sample_global_orientation(5000, gen(0))
    R = roma.rotvec_to_rotmat(rv)
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(5000, 3, 3), atol=1e-5, rtol=0)
    assert torch.allclose(torch.linalg.det(R), torch.ones(5000), atol=1e-5)
    up = R[:, 1, 1]  # body up (+Y) · world up
    assert 0.7 < (up > math.cos(math.radians(20))).float().mean() < 0.9  # mostly upright
    assert (up.abs() < 0.4).float().mean() > 0.05  # some lying
    yaw = torch.atan2(R[:, 0, 2], R[:, 2, 2])
    assert torch.histc(yaw, 8, -math.pi, math.pi).min() > 400  # heading over 360°
    upright = sample_global_orientation(5000, gen(0), tilt=torch.zeros(5000, 3), lying_frac=0, bending_frac=0)
    R0 = roma.rotvec_to_rotmat(upright)
    torch.testing.assert_close(R0[:, 1], torch.tensor([0.0, 1.0, 0.0]).expand(5000, 3), atol=1e-5, rtol=0)


def test_hand_families_within_limits():
    sampler = HandPoseSampler()
    pose, fam = sampler.sample(3000, gen(0), return_family=True)
    assert pose.shape == (3000, 15, 3) and set(fam.tolist()) == set(range(len(sampler.families)))
    assert sampler.within_limits(pose).all()
    left = sampler.sample(100, gen(0), side="left")
    assert sampler.within_limits(left * torch.tensor([1.0, -1.0, -1.0])).all()
    flex, _, _ = sampler.flex_abd(pose)
    fist, opened = fam == sampler.families.index("fist"), fam == sampler.families.index("open")
    assert (flex[fist][:, 3:].mean() - flex[opened][:, 3:].mean()) > math.radians(60)
    assert not sampler.within_limits(sampler.compose(torch.full((15,), 2.5), torch.zeros(15)))


def test_face_sampler():
    face = FaceSampler()
    x = face.sample(4000, gen(0))
    assert x.shape == (4000, 52) and (x >= 0).all() and (x <= 1).all()
    jaw = x[:, face.labels.index("jawOpen")]
    assert 0.3 < (jaw > 0).float().mean() < 0.7
    active = (x > 0).sum(1).float()
    assert active.max() <= 9 and 1.5 < active[active > 0].mean() < 6
    assert (active == 0).float().mean() > 0.05  # some neutral faces


def test_pose_library_stats():
    st = pose_library_stats(n_samples=1000)
    assert st["count"] > 4000 and set(st["mean_angle_deg"]) == set(SLOT_NAMES)
    assert 0.4 < st["sampled_fraction_mirrored"] < 0.6
    assert st["fit_mpjpe_median_mm"] < 10


# -- with the Anny model -------------------------------------------------------------------------------
@pytest.mark.anny
def test_fk_and_hinge_axes_match_anny(anny_body, library):
    fitter = PoseFitter(anny_body)
    q = fitter.zero_pose_joints(torch.full((6,), 0.5))
    pose = library[0]["body_pose"][:4]
    x, _ = forward_kinematics(roma.rotvec_to_rotmat(pose), q)
    p = anny_body.default_params(4)
    p["body_pose"] = pose
    ref = anny_body(p, return_vertices=False).joints @ fitter.F  # canonical → native
    torch.testing.assert_close(x, ref, atol=1e-5, rtol=0)
    j = {n: q[0, i] for i, n in enumerate(JOINT_NAMES)}
    for name, axis in HINGE_AXES.items():
        side, kind = name.split("_")
        a, b, c = (("hip", "knee", "ankle") if kind == "knee" else ("shoulder", "elbow", "wrist"))
        u, f = j[f"{side}_{b}"] - j[f"{side}_{a}"], j[f"{side}_{c}"] - j[f"{side}_{b}"]
        n = torch.nn.functional.normalize(torch.linalg.cross(u, f), dim=0)
        assert (n @ torch.tensor(axis)) > math.cos(math.radians(1))


@pytest.mark.anny
def test_mirrored_pose_mirrors_joints(anny_body):
    pose = BodyPoseSampler(seed=1).sample(6)
    p = anny_body.default_params(6)
    p["body_pose"] = pose
    heads = anny_body(p, return_vertices=False).extras["bone_heads"]
    p["body_pose"] = mirror_body_pose(pose)
    mirrored = anny_body(p, return_vertices=False).extras["bone_heads"]
    labels = anny_body.bone_labels
    perm = [labels.index(b.replace(".L", ".@").replace(".R", ".L").replace(".@", ".R")) for b in labels]
    err = (mirrored[:, perm] * torch.tensor([-1.0, 1.0, 1.0]) - heads).norm(dim=-1)
    assert err.max() < 3e-3  # canonical X is left-right; Anny's rest is symmetric to ~1 mm


@pytest.mark.anny
def test_hand_axes_and_fist(anny_hand, anny_body):
    U = anny_body.anny.reference_bone_orientations[anny_body.bone_labels.index("wrist.R")]
    torch.testing.assert_close(U.float(), torch.tensor(WRIST_R_REFERENCE), atol=1e-5, rtol=0)
    sampler = HandPoseSampler(noise_deg=0.0)
    pose, fam = sampler.sample(120, gen(0), return_family=True)
    p = anny_hand.default_params(120)
    p["hand_pose"] = pose
    J = anny_hand(p, return_vertices=False).joints
    names = anny_hand.joint_names
    palm = 0.5 * J[:, names.index("wrist")] + 0.5 * J[:, names.index("middle1")]
    tips = [names.index(f"{f}3") for f in ("index", "middle", "ring", "pinky")]
    dist = (J[:, tips] - palm[:, None]).norm(dim=-1).mean(-1)
    fist, opened = fam == sampler.families.index("fist"), fam == sampler.families.index("open")
    assert dist[fist].max() < dist[opened].min() - 0.03
    thumb = (J[:, names.index("thumb3")] - palm).norm(dim=-1)
    assert thumb[fist].max() < thumb[opened].min()
    # a positive flexion moves the fingers toward the palm side (−X in the right hand's frame)
    flex = torch.zeros(15)
    flex[3::3] = math.radians(30)  # knuckles (finger2-1 .. finger5-1)
    p = anny_hand.default_params(2)
    p["hand_pose"] = torch.stack([torch.zeros(15, 3), sampler.compose(flex, torch.zeros(15))])
    J = anny_hand(p, return_vertices=False).joints
    assert (J[1, tips, 0] < J[0, tips, 0] - 0.005).all()


@pytest.mark.anny
def test_fit_recovers_synthetic_joints(anny_body, library):
    pose = library[0]["body_pose"][torch.tensor([0, 500, 2000, 4000])]
    p = anny_body.default_params(4)
    p["body_pose"] = pose
    p["root_pose"] = torch.tensor([[0.0, 2.0, 0.0], [0.3, -1.0, 0.1], [0.0, 0.0, 0.0], [-0.2, 3.0, 0.0]])
    p["trans"] = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.9, 2.0], [0.0, 0.0, 0.0], [-1.0, 1.1, 0.5]])
    targets = anny_body(p, return_vertices=False).joints
    fitter = PoseFitter(anny_body, target_joints=JOINT_NAMES)
    res = fitter.fit(targets, iters=1500)
    assert res.mpjpe.max() < 5e-3
    assert not limit_violations(res.body_pose).any()
