"""Keypoint regressors (neuralannot.bodies.joints) on the Anny models and small SMPL-family stand-ins."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import smplx_fixtures as fx
from neuralannot.bodies.base import BodyModelError
from neuralannot.bodies.joint_names import JOINT_SETS, flip_permutation, get_joint_names
from neuralannot.bodies.joints import (
    ANNY_FEET,
    JointRegressor,
    anny_landmarks,
    get_regressor,
    joint_sets_for,
    posed_vertices,
    regress_keypoints,
)


def expected_names(model, name):
    if name in JOINT_SETS:
        return get_joint_names(name)
    return list(model.joint_names[: 24 if name == "smpl24" else 22])


def random_params(model, batch, seed=0, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    p = model.default_params(batch, include_optional=True)
    for name, spec in model.param_specs.items():
        if spec.kind == "rotation":
            p[name] = scale * torch.randn(batch, *spec.shape, generator=g)
        elif spec.bounds is not None:
            lo, hi = spec.bounds
            p[name] = lo + (hi - lo) * torch.rand(batch, *spec.shape, generator=g)
        elif name == "trans":
            p[name] = torch.randn(batch, 3, generator=g)
    return p


def mirrored(kp: torch.Tensor, names: list[str]) -> torch.Tensor:
    """Keypoints of the mirror image (x → −x) relabelled with the set's flip permutation."""
    out = kp[:, flip_permutation(names)].clone()
    out[..., 0] = -out[..., 0]
    return out


# ---------------------------------------------------------------------------------------------
# Anny
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(anny_body, anny_hand, anny_head):
    return {"body": anny_body, "hand": anny_hand, "head": anny_head}


@pytest.fixture(scope="module")
def left_hand():
    from neuralannot.bodies import load_body_model

    return load_body_model("anny", part="lhand")


@pytest.fixture(scope="module")
def rest_out(anny_body):
    with torch.no_grad():
        return anny_body(anny_body.default_params(1))


@pytest.mark.anny
@pytest.mark.parametrize("key", ["body", "hand", "head"])
def test_every_listed_set_has_the_right_shape(models, key):
    model = models[key]
    sets = model.joint_sets
    assert sets == joint_sets_for(model) and sets
    p = random_params(model, 2)
    with torch.no_grad():
        out = model(p)
    for name in sets:
        reg = get_regressor(model, name)
        assert isinstance(reg, JointRegressor)
        kp = model.keypoints(out, name)
        names = expected_names(model, name)
        assert reg.names == names
        assert kp.shape == (2, len(names), 3), name
        assert torch.isfinite(kp).all()


@pytest.mark.anny
def test_listed_sets(anny_body, anny_hand, anny_head, left_hand):
    assert {"coco17", "coco23", "h36m17", "mpi_inf_3dhp17", "body22", "lhand21", "rhand21", "face68",
            "coco_wholebody133"} <= set(anny_body.joint_sets)
    assert set(anny_hand.joint_sets) == {"hand21", "interhand21", "rhand21"}
    assert set(left_hand.joint_sets) == {"hand21", "interhand21", "lhand21"}
    assert anny_head.joint_sets == ["face68"]


@pytest.mark.anny
def test_regressors_are_cached(anny_body):
    assert get_regressor(anny_body, "coco17") is get_regressor(anny_body, "coco17")


@pytest.mark.anny
def test_unknown_set_lists_available(anny_body, anny_head):
    with pytest.raises(BodyModelError, match="available") as err:
        get_regressor(anny_body, "smpl24")
    assert "coco17" in str(err.value) and "face68" in str(err.value)
    with pytest.raises(BodyModelError, match="face68"):
        anny_head.keypoints(anny_head(anny_head.default_params(1)), "coco17")


@pytest.mark.anny
def test_coco23_matches_anny_regressor(anny_body):
    import anny

    p = random_params(anny_body, 4, seed=1, scale=0.5)
    with torch.no_grad():
        out = anny_body(p)
        ref = anny.KeypointsRegressor.coco(anny_body.anny)({"vertices": out.vertices})
        kp = anny_body.keypoints(out, "coco23")
    labels = anny.KeypointsRegressor.coco(anny_body.anny).labels
    order = [labels.index(n) for n in get_joint_names("coco23")]
    assert labels[17:] == ANNY_FEET
    err = (kp - ref[:, order]).norm(dim=-1).max()
    assert err < 5e-4, f"pruned COCO regressor differs by {err * 1e3:.3f} mm"  # pruning: ~0.3 mm at most
    torch.testing.assert_close(anny_body.keypoints(out, "coco17"), kp[:, :17])


@pytest.mark.anny
@pytest.mark.parametrize("key", ["body", "hand", "head"])
def test_vertex_subset_fast_path_equals_full(models, key):
    model = models[key]
    p = random_params(model, 3, seed=2)
    with torch.no_grad():
        full = model(p)
        for name in model.joint_sets:
            reg = get_regressor(model, name)
            sub = model(p, vertex_ids=reg.vertex_ids)
            assert sub.vertices.shape[1] == reg.vertex_ids.numel()
            torch.testing.assert_close(reg(sub), reg(full), atol=2e-5, rtol=0, msg=name)
            torch.testing.assert_close(regress_keypoints(model, p, name), reg(full), atol=2e-5, rtol=0)
    # the subset path is actually small for the vertex-based sets
    assert get_regressor(model, model.joint_sets[-1]).vertex_ids.numel() < model.num_vertices // 4


@pytest.mark.anny
def test_joints_only_sets_need_no_vertices(anny_body):
    p = random_params(anny_body, 2, seed=3)
    with torch.no_grad():
        out = anny_body(p, return_vertices=False)
        kp = anny_body.keypoints(out, "body22")
    torch.testing.assert_close(kp, out.joints)
    with pytest.raises(BodyModelError, match="vertices"):
        anny_body.keypoints(out, "coco17")


@pytest.mark.anny
@pytest.mark.parametrize("name", ["coco23", "h36m17", "mpi_inf_3dhp17", "body22", "face68", "interhand42",
                                  "coco_wholebody133"])
def test_rest_body_keypoints_are_left_right_symmetric(anny_body, rest_out, name):
    kp = anny_body.keypoints(rest_out, name)
    err = (mirrored(kp, expected_names(anny_body, name)) - kp).norm(dim=-1).max()
    assert err < 0.01, f"{name}: mirror mismatch {err * 1e3:.1f} mm"


@pytest.mark.anny
def test_hands_of_the_body_mirror_each_other(anny_body, rest_out):
    left = anny_body.keypoints(rest_out, "lhand21")
    right = anny_body.keypoints(rest_out, "rhand21")
    right[..., 0] = -right[..., 0]
    assert (left - right).norm(dim=-1).max() < 0.005


@pytest.mark.anny
def test_hand_model_matches_the_body_hand(anny_body, anny_hand, left_hand, rest_out):
    """Same rest hand geometry, different frames: compare pairwise distances."""
    with torch.no_grad():
        for model, set_name in ((anny_hand, "rhand21"), (left_hand, "lhand21")):
            own = model.keypoints(model(model.default_params(1)), "hand21")[0]
            body = anny_body.keypoints(rest_out, set_name)[0]
            assert (torch.cdist(own, own) - torch.cdist(body, body)).abs().max() < 2e-3


@pytest.mark.anny
def test_hand21_structure(anny_hand):
    with torch.no_grad():
        out = anny_hand(anny_hand.default_params(1))
    kp = anny_hand.keypoints(out, "hand21")[0]
    names = get_joint_names("hand21")
    wrist = kp[0]
    for finger in ("thumb", "index", "middle", "ring", "pinky"):
        d = [(kp[names.index(f"{finger}{k}")] - wrist).norm() for k in range(1, 5)]
        assert d[0] < d[1] < d[2] < d[3], finger  # joints move away from the wrist, tip last
        tip, dip = kp[names.index(f"{finger}4")], kp[names.index(f"{finger}3")]
        assert 0.008 < (tip - dip).norm() < 0.04
    inter = anny_hand.keypoints(out, "interhand21")[0]
    torch.testing.assert_close(inter, kp[[names.index(n) for n in get_joint_names("interhand21")]])


@pytest.mark.anny
def test_wholebody_is_the_concatenation(anny_body, rest_out):
    whole = anny_body.keypoints(rest_out, "coco_wholebody133")
    parts = [anny_body.keypoints(rest_out, s) for s in ("coco23", "face68", "lhand21", "rhand21")]
    torch.testing.assert_close(whole, torch.cat(parts, 1))


def _check_face68(f: torch.Tensor) -> None:
    """Semantic checks in a Y-up, +Z-forward frame (tolerances cover Anny's phenotype range)."""
    nose = f[27:36]
    assert nose[:, 2].argmax() == 30 - 27  # the nose tip is the most forward nose point
    eyes, mouth, jaw, brows = f[36:48], f[48:68], f[0:17], f[17:27]
    assert eyes[:, 1].min() > mouth[:, 1].max()  # eyes above the mouth
    assert brows[:, 1].min() > eyes[:, 1].max()  # brows above the eyes
    assert jaw[1:16, 1].max() < eyes[:, 1].min()  # the jaw contour below the eyes
    assert jaw[[0, 16], 1].max() < eyes[:, 1].max() + 0.003  # it starts at eye-corner height
    assert jaw[8, 1] < jaw[:, 1].min() + 0.006  # chin (nearly) lowest: a fixed vertex, flat chins vary
    assert mouth[:, 1].min() > jaw[8, 1] and nose[:, 1].min() > mouth[:, 1].max()
    # subject's right (−x) comes first in each mirrored pair
    assert f[0, 0] < f[16, 0] and f[36, 0] < f[45, 0] and f[48, 0] < f[54, 0]
    assert (f[39, 0] - f[36, 0]) > 0.015  # eye width
    # outer/inner lips top to bottom (the closed inner lips may cross by a fraction of a mm)
    assert f[51, 1] > f[62, 1] > f[57, 1] and f[51, 1] > f[66, 1] > f[57, 1]
    assert f[62, 1] > f[66, 1] - 0.001


@pytest.mark.anny
def test_face68_semantics_body_and_head(anny_body, anny_head, rest_out):
    import roma

    body = anny_body.keypoints(rest_out, "face68")[0]
    _check_face68(body)
    with torch.no_grad():
        head = anny_head.keypoints(anny_head(anny_head.default_params(1)), "face68")[0]
    # same vertices on the same face geometry; the head model's frame (Anny's neck01 rest frame) is
    # pitched by about 20 degrees relative to the body's world frame
    R, t = roma.rigid_points_registration(head[None], body[None])
    assert ((head @ R[0].T + t[0]) - body).norm(dim=-1).max() < 1e-3
    assert roma.rotmat_to_rotvec(R)[0].norm() < 0.5


@pytest.mark.anny
def test_face68_semantics_over_phenotypes(anny_body):
    reg = get_regressor(anny_body, "face68")
    p = anny_body.default_params(24)
    p["phenotype"] = torch.rand(24, 6, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        faces = reg(anny_body(p, vertex_ids=reg.vertex_ids))
    for f in faces:
        _check_face68(f)


@pytest.mark.anny
def test_face68_follows_expressions():
    from neuralannot.bodies import load_body_model

    head = load_body_model("anny", part="face")
    labels = head.anny.facial_action_labels
    p = head.default_params(1)
    with torch.no_grad():
        rest = head.keypoints(head(p), "face68")[0]
        p["expression"][0, labels.index("jawOpen")] = 1.0
        opened = head.keypoints(head(p), "face68")[0]
    gap_rest = rest[62, 1] - rest[66, 1]
    gap_open = opened[62, 1] - opened[66, 1]
    assert gap_rest < 0.003 and gap_open > gap_rest + 0.01  # inner lips part
    assert opened[8, 1] < rest[8, 1] - 0.01  # the chin drops


@pytest.mark.anny
def test_h36m_and_3dhp_definitions(anny_body, rest_out):
    h36 = anny_body.keypoints(rest_out, "h36m17")[0]
    hp = anny_body.keypoints(rest_out, "mpi_inf_3dhp17")[0]
    hn, pn = get_joint_names("h36m17"), get_joint_names("mpi_inf_3dhp17")
    J = rest_out.joints[0]
    jn = anny_body.joint_names
    torch.testing.assert_close(h36[hn.index("root")], J[jn.index("pelvis")])
    torch.testing.assert_close(h36[hn.index("left_foot")], J[jn.index("left_ankle")])
    torch.testing.assert_close(h36[hn.index("thorax")], J[jn.index("neck")])
    # head top = top of the rest mesh
    assert abs(h36[hn.index("head")][1] - rest_out.vertices[0, :, 1].max()) < 1e-3
    order = [h36[hn.index(a)] for a in ("root", "spine", "thorax", "neck_base", "head")]
    assert all(a[1] < b[1] for a, b in zip(order, order[1:], strict=False))
    for a, b in (("head_top", "head"), ("neck", "thorax"), ("head", "neck_base"), ("pelvis", "root"),
                 ("left_ankle", "left_foot"), ("right_wrist", "right_wrist"), ("spine", "spine")):
        torch.testing.assert_close(hp[pn.index(a)], h36[hn.index(b)])


@pytest.mark.anny
def test_landmark_asset_matches_topologies(anny_body, anny_head, anny_hand, left_hand):
    data = anny_landmarks()
    cases = ((anny_body, "anny"), (anny_head, "head"), (anny_hand, "hand.R"), (left_hand, "hand.L"))
    for model, key in cases:
        topo = data["topologies"][key]
        assert topo["vertex_count"] == model.num_vertices
        bmi = model.anny.base_mesh_vertex_indices.tolist()
        for k in ("face68", "head_top", "fingertips"):
            if k not in topo:
                continue
            ids, base = topo[k], data["base"][k]
            if k == "fingertips" and key.startswith("hand"):
                base = base["right" if key == "hand.R" else "left"]
            pairs = [(ids, base)] if not isinstance(ids, dict) else [(ids[s], base[s]) for s in ids]
            for i, b in pairs:
                assert ([bmi[x] for x in i] if isinstance(i, list) else bmi[i]) == b, (key, k)


@pytest.mark.anny
def test_regressor_follows_model_dtype_and_device(anny_hand):
    reg = get_regressor(anny_hand, "hand21")
    assert reg.vertex_weights.dtype == anny_hand.dtype
    p = random_params(anny_hand, 1)
    with torch.no_grad():
        out = anny_hand(p)
    kp64 = reg(type(out)(joints=out.joints.double(), vertices=out.vertices.double(),
                         extras={k: v.double() for k, v in out.extras.items()}))
    assert kp64.dtype == torch.float64


# ---------------------------------------------------------------------------------------------
# SMPL family (tiny stand-in model files)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smplx_models(tmp_path_factory):
    from neuralannot.bodies.smplx_family import load_smplx_family

    root = tmp_path_factory.mktemp("joint_models")
    rng = np.random.default_rng(5)
    files = fx.write_all(root)
    path, data = fx.write_smplx(root / "smplx51", n_landmarks=51)
    n_faces = data["f"].shape[0]  # 17 contour landmarks, as in the official file
    data.update(dynamic_lmk_faces_idx=rng.integers(0, n_faces, (79, 17)).astype(np.int64),
                dynamic_lmk_bary_coords=rng.dirichlet(np.ones(3), (79, 17)))
    np.savez(path, **data)
    # a MANO stand-in with the official vertex count, so the smplx fingertip ids exist
    mano = fx.make_model_arrays(fx.MANO_PARENTS, 778, 10, 5)
    mano.update(hands_components=fx._random_rotation(rng, 45), hands_mean=rng.normal(0.0, 0.2, 45))
    fx._dump(mano, root / "mano778" / "MANO_RIGHT.pkl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "smpl": load_smplx_family("smpl", files["root"] / "smpl"),
            "smplx": load_smplx_family("smplx", files["root"] / "smplx"),
            "smplx68": load_smplx_family("smplx", root / "smplx51", use_face_contour=True),
            "mano": load_smplx_family("mano", files["root"] / "mano"),
            "mano778": load_smplx_family("mano", root / "mano778"),
            "flame": load_smplx_family("flame", files["root"] / "flame"),
        }


def test_smplx_family_sets(smplx_models):
    m = smplx_models
    assert joint_sets_for(m["smpl"]) == ["smpl24", "body22"]  # stand-ins: no vertex-picked extra joints
    assert joint_sets_for(m["smplx"]) == ["body22"]
    assert joint_sets_for(m["smplx68"]) == ["body22", "face68"]
    assert joint_sets_for(m["mano"]) == []  # fingertip ids need the official 778-vertex MANO
    assert joint_sets_for(m["mano778"]) == ["hand21", "interhand21"]
    assert joint_sets_for(m["flame"]) == ["face68"]  # 51 static + 17 contour stand-in landmarks
    with pytest.raises(BodyModelError, match="available"):
        get_regressor(m["smpl"], "coco17")


def test_smplx_family_values(smplx_models):
    m = smplx_models
    with torch.no_grad():
        out = m["smpl"](random_params(m["smpl"], 2, scale=0.4))
        torch.testing.assert_close(m["smpl"].keypoints(out, "smpl24"), out.joints)
        torch.testing.assert_close(m["smpl"].keypoints(out, "body22"), out.joints[:, :22])
        model = m["smplx68"]
        out = model(random_params(model, 2))
        face = model.keypoints(out, "face68")
        lm = out.extras["landmarks"]
        assert lm.shape[1] == 68 and face.shape == (2, 68, 3)
        torch.testing.assert_close(face, torch.cat([lm[:, 51:], lm[:, :51]], 1))
        model = m["mano778"]
        p = random_params(model, 2)
        out = model(p)
        hand = model.keypoints(out, "hand21")
        names = get_joint_names("hand21")
        torch.testing.assert_close(hand[:, names.index("index4")], out.vertices[:, 320])
        thumb1 = out.joints[:, model.joint_names.index("thumb1")]
        torch.testing.assert_close(hand[:, names.index("thumb1")], thumb1)
        torch.testing.assert_close(regress_keypoints(model, p, "hand21"), hand)


def test_posed_vertices_of_anny_and_smpl(anny_body, tmp_path):
    """A vertex subset, posed: Anny skins only those vertices, SMPL-family models index their mesh
    (their forward takes no vertex ids: the silhouette term and the masked fit pose through this)."""
    from neuralannot.bodies import load_body_model

    smpl = load_body_model(fx.write_smpl(tmp_path)[0])
    for model in (anny_body, smpl):
        p = random_params(model, 2)
        ids = torch.tensor([0, 5, model.num_vertices - 1])
        with torch.no_grad():
            full = model(p).vertices
            torch.testing.assert_close(posed_vertices(model, p, ids), full[:, ids], atol=1e-5, rtol=0)
    assert anny_body.is_anny and not smpl.is_anny


@pytest.mark.anny
def test_untranslated_keypoints_drop_the_translation_and_foreign_keys(anny_hand):
    from neuralannot.bodies.joints import get_regressor, posed_keypoints, untranslated_keypoints

    reg = get_regressor(anny_hand, "hand21")
    params = anny_hand.default_params(batch_size=2)
    params["hand_pose"] = 0.2 * torch.ones(2, 15, 3)
    at_origin = posed_keypoints(anny_hand, reg, {**params, "trans": torch.zeros(2, 3)})
    moved = {**params, "trans": torch.tensor([[0.1, 0.2, 3.0], [0.0, 0.0, 1.0]]), "latent": torch.ones(2, 8)}
    torch.testing.assert_close(untranslated_keypoints(anny_hand, reg, moved), at_origin)
