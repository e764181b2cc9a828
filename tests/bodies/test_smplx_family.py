"""SMPL / SMPL-X / MANO / FLAME through smplx's layers, on tiny generated model files (smplx_fixtures)."""

from __future__ import annotations

import os
import pickle
import sys
import warnings

import numpy as np
import pytest
import roma
import smplx
import torch

import smplx_fixtures as fx
from neuralannot.bodies.base import BodyModelError, ModelFileError
from neuralannot.bodies.smplx_family import (
    MODEL_URLS,
    infer_model_type,
    load_smplx_family,
    resolve_model_file,
)

TYPES = ["smpl", "smplx", "mano", "flame"]
B = 3


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return fx.write_all(tmp_path_factory.mktemp("body_models"))


@pytest.fixture(scope="module")
def models(files):
    """Flat-hand-mean models (zero pose = template), loaded from the type subfolders."""
    root = files["root"]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loading the fixtures must be warning-free
        for t in TYPES:
            out[t] = load_smplx_family(t, root / t, flat_hand_mean=True)
    return out


def random_params(model, batch=B, seed=0, scale=0.4):
    g = torch.Generator().manual_seed(seed)
    p = {}
    for name, spec in model.param_specs.items():
        std = scale if spec.kind == "rotation" else 0.5
        p[name] = torch.randn((batch, *spec.shape), generator=g) * std
    return p


def to_matrices(model, params):
    return {n: roma.rotvec_to_rotmat(v) if model.param_specs[n].kind == "rotation" else v
            for n, v in params.items()}


# --- loading & interface -----------------------------------------------------------------------
@pytest.mark.parametrize("t", TYPES)
def test_forward_batch3_through_env_var(files, monkeypatch, t):
    monkeypatch.setenv("NEURALANNOT_MODELS", str(files["root"]))
    model = load_smplx_family(t)  # path=None -> $NEURALANNOT_MODELS/<type>/
    arrays = files[t][1]
    V, J = arrays["v_template"].shape[0], len(model.parents)
    out = model(random_params(model))
    assert out.joints.shape == (B, J, 3) and out.vertices.shape == (B, V, 3)
    assert out.joints.dtype == torch.float32 and torch.isfinite(out.vertices).all()
    assert J == {"smpl": 24, "smplx": 55, "mano": 16, "flame": 5}[t] == len(model.joint_names)
    assert model.parents == [-1] + [int(p) for p in arrays["kintree_table"][0, 1:]]
    assert model.faces.dtype == torch.long and model.num_vertices == V
    assert torch.equal(model.faces, torch.as_tensor(arrays["f"].astype(np.int64)))
    assert model.part == {"smpl": "body", "smplx": "wholebody", "mano": "hand", "flame": "face"}[t]
    sj = out.extras["smplx_joints"]
    assert sj.shape[1] == len(model.smplx_joint_names) and torch.equal(sj[:, :J], out.joints)
    if t in ("smplx", "flame"):
        # static + contour landmarks (the contour is on by default when its embedding exists)
        n_lmk = (len(arrays["lmk_faces_idx"]) + arrays["dynamic_lmk_faces_idx"].shape[1] if t == "smplx"
                 else len(arrays["_embedding"]["lmk_face_idx"]) + 17)
        assert out.extras["landmarks"].shape == (B, n_lmk, 3)
    assert model(random_params(model), return_vertices=False).vertices is None


def test_names_and_specs(models):
    smpl, sx, mano, flame = (models[t] for t in TYPES)
    assert smpl.joint_names[0] == "pelvis" and smpl.joint_names[-2:] == ["left_hand", "right_hand"]
    assert sx.joint_names[22:25] == ["jaw", "left_eye_smplhf", "right_eye_smplhf"]
    assert sx.joint_names[-1] == "right_thumb3"
    assert mano.joint_names[:4] == ["wrist", "index1", "index2", "index3"]
    assert flame.joint_names == ["root", "neck", "jaw", "left_eye", "right_eye"]
    assert {n: s.shape for n, s in smpl.param_specs.items()} == {
        "root_pose": (3,), "body_pose": (23, 3), "shape": (10,), "trans": (3,)}
    assert sx.required_params() == ["root_pose", "body_pose", "shape", "trans"]
    assert sx.param_specs["lhand_pose"].shape == (15, 3) and sx.param_specs["expr"].shape == (10,)
    assert mano.required_params() == ["root_pose", "hand_pose", "shape", "trans"]
    assert flame.required_params() == ["root_pose", "jaw_pose", "shape", "expr", "trans"]
    assert flame.param_specs["eye_pose"].shape == (2, 3) and flame.param_specs["eye_pose"].optional
    assert sx.parts == ("body", "wholebody") and mano.side == "right"


def test_file_and_folder_paths(files):
    smplx_file = files["smplx"][0]
    a = load_smplx_family("smplx", smplx_file)  # a file
    b = load_smplx_family("SMPL-X", files["root"])  # the root folder -> <root>/smplx/
    assert a.model_file == b.model_file == smplx_file
    assert infer_model_type(smplx_file) == "smplx" and infer_model_type(files["mano"][0]) == "mano"
    assert infer_model_type(files["flame"][0]) == "flame"
    assert infer_model_type(files["root"] / "smpl") == "smpl"
    with pytest.raises(BodyModelError):
        infer_model_type(files["root"])  # holds several types


def test_official_download_names(tmp_path):
    path, _ = fx.write_smpl(tmp_path)
    official = tmp_path / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"
    path.rename(official)
    assert resolve_model_file("smpl", tmp_path) == official
    assert load_smplx_family("smpl", tmp_path).model_file == official


# --- geometry ------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", TYPES)
def test_zero_pose_is_template(files, models, t):
    model, arrays = models[t], files[t][1]
    params = model.default_params(B, include_optional=True)
    params["trans"] = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [0.1, 0.2, 0.3]])
    out = model(params)
    template = torch.as_tensor(arrays["v_template"], dtype=torch.float32)
    joints = torch.as_tensor(fx.dense(arrays["J_regressor"]), dtype=torch.float32) @ template
    shift = params["trans"][:, None]
    torch.testing.assert_close(out.vertices, template + shift, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.joints, joints + shift, atol=1e-5, rtol=0)


@pytest.mark.parametrize("t", TYPES)
def test_shape_and_expression_blendshapes(files, models, t):
    model, arrays = models[t], files[t][1]
    params = model.default_params(2, include_optional=True)
    params["shape"] = torch.randn(2, model.num_betas)
    sd = torch.as_tensor(arrays["shapedirs"], dtype=torch.float32)
    expected = torch.as_tensor(arrays["v_template"], dtype=torch.float32) + torch.einsum(
        "vck,bk->bvc", sd[..., : model.num_betas], params["shape"])
    if "expr" in params:  # 10 shape + 10 expression components in the fixture files
        params["expr"] = torch.randn(2, model.num_expression_coeffs)
        expected = expected + torch.einsum("vck,bk->bvc", sd[..., 10:20], params["expr"])
    torch.testing.assert_close(model(params).vertices, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("t", TYPES)
def test_axis_angle_equals_rotmat(models, t):
    model = models[t]
    params = random_params(model, seed=1)
    a, b = model(params), model(to_matrices(model, params))
    torch.testing.assert_close(a.vertices, b.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.extras["smplx_joints"], b.extras["smplx_joints"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("t", TYPES)
def test_root_rotation_rotates_about_root_joint(models, t):
    model = models[t]
    params = random_params(model, seed=2)
    params["trans"] = torch.zeros(B, 3)
    params["root_pose"] = torch.zeros(B, 3)
    base = model(params)
    R = roma.rotvec_to_rotmat(torch.tensor([[0.0, 0.0, np.pi / 2], [0.3, -0.2, 0.1], [1.0, 2.0, -0.5]]))
    rotated = model(dict(params, root_pose=R))  # matrices straight in
    j0 = base.joints[:, :1]
    torch.testing.assert_close(rotated.vertices, (base.vertices - j0) @ R.transpose(1, 2) + j0,
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(rotated.joints, (base.joints - j0) @ R.transpose(1, 2) + j0, atol=1e-5, rtol=0)


def test_gradients_reach_rotation_matrices(models):
    model = models["smplx"]
    params = to_matrices(model, random_params(model, seed=3))
    params["body_pose"].requires_grad_(True)
    model(params).vertices.square().sum().backward()
    assert params["body_pose"].grad is not None and params["body_pose"].grad.abs().sum() > 0


def test_float64_and_empty_batch(files):
    model = load_smplx_family("smpl", files["smpl"][0], dtype=torch.float64)
    out = model(random_params(model, batch=2))  # float32 params are cast
    assert out.vertices.dtype == torch.float64 and model.dtype == torch.float64
    empty = model({n: torch.zeros(0, *s.shape) for n, s in model.param_specs.items()})
    assert empty.joints.shape == (0, 24, 3) and empty.vertices.shape[0] == 0


# --- hand mean (NeuralAnnot convention) ---------------------------------------------------------------
def test_smplx_hand_mean_matches_smplx_reference(files):
    path, arrays = files["smplx"]
    model = load_smplx_family("smplx", path)  # flat_hand_mean=False (default)
    assert not model.flat_hand_mean
    torch.testing.assert_close(model.lhand_mean, torch.as_tensor(arrays["hands_meanl"], dtype=torch.float32))
    assert model.rhand_components.shape == (45, 45)
    params = random_params(model, seed=4)
    ref = smplx.SMPLX(str(path), ext="npz", use_pca=False, flat_hand_mean=False, batch_size=B)
    ref.vertex_joint_selector.extra_joints_idxs = torch.zeros(0, dtype=torch.long)  # tiny mesh
    expected = ref(
        betas=params["shape"], expression=params["expr"], global_orient=params["root_pose"],
        body_pose=params["body_pose"].reshape(B, -1), left_hand_pose=params["lhand_pose"].reshape(B, -1),
        right_hand_pose=params["rhand_pose"].reshape(B, -1), jaw_pose=params["jaw_pose"],
        leye_pose=params["leye_pose"], reye_pose=params["reye_pose"], transl=params["trans"])
    out = model(params)
    torch.testing.assert_close(out.vertices, expected.vertices, atol=1e-5, rtol=0)
    from_mats = model(to_matrices(model, params)).vertices
    torch.testing.assert_close(from_mats, expected.vertices, atol=1e-5, rtol=0)
    # zero hand pose = the mean hand = flat model posed with the mean
    flat = load_smplx_family("smplx", path, flat_hand_mean=True)
    zero = model.default_params(1)
    posed = dict(zero, lhand_pose=model.lhand_mean.reshape(1, 15, 3),
                 rhand_pose=model.rhand_mean.reshape(1, 15, 3))
    torch.testing.assert_close(model(zero).vertices, flat(posed).vertices, atol=1e-6, rtol=0)


def test_mano_hand_mean_and_pca(files):
    path, arrays = files["mano"]
    model = load_smplx_family("mano", path)
    params = random_params(model, seed=5)
    ref = smplx.MANO(str(path), is_rhand=True, use_pca=False, flat_hand_mean=False, batch_size=B)
    expected = ref(betas=params["shape"], global_orient=params["root_pose"],
                   hand_pose=params["hand_pose"].reshape(B, -1), transl=params["trans"])
    torch.testing.assert_close(model(params).vertices, expected.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(model(params).joints, expected.joints, atol=1e-5, rtol=0)
    comps = torch.as_tensor(arrays["hands_components"], dtype=torch.float32)
    torch.testing.assert_close(model.hand_components, comps)
    torch.testing.assert_close(model.hand_mean, torch.as_tensor(arrays["hands_mean"], dtype=torch.float32))


def test_mano_left(files):
    left_path = files["mano_left"][0]
    right = load_smplx_family("mano", files["mano"][0])
    left = load_smplx_family("mano", left_path)  # side from the file name
    assert left.side == "left" and left.parts == ("hand", "lhand")
    # the fixture reproduces the official bug (x of shapedirs not mirrored): fixed on load
    torch.testing.assert_close(left.smplx_layer.shapedirs[:, 0], -right.smplx_layer.shapedirs[:, 0])
    torch.testing.assert_close(left.smplx_layer.shapedirs[:, 1:], right.smplx_layer.shapedirs[:, 1:])
    unfixed = load_smplx_family("mano", files["root"], side="left", fix_left_shapedirs=False)
    torch.testing.assert_close(unfixed.smplx_layer.shapedirs, right.smplx_layer.shapedirs)
    with pytest.raises(BodyModelError, match="left"):
        load_smplx_family("mano", left_path, side="right")


def test_body_model_entry_point(files, monkeypatch):
    from neuralannot.bodies import load_body_model

    monkeypatch.setenv("NEURALANNOT_MODELS", str(files["root"]))
    assert load_body_model("smplx", part="wholebody").name == "smplx"
    assert load_body_model("mano", part="lhand").side == "left"
    assert load_body_model(str(files["flame"][0]), part="face").name == "flame"


# --- FLAME specifics ---------------------------------------------------------------------------------
def test_flame_eye_pose_order(files):
    model = load_smplx_family("flame", files["flame"][0])
    model.smplx_layer.posedirs.zero_()  # pose correctives would move every vertex a little
    params = model.default_params(B)
    assert "eye_pose" not in params and "neck_pose" not in params
    base = model(params)
    eyes = torch.zeros(B, 2, 3)
    eyes[:, 1, 0] = 0.5  # right eye only: moves the vertices skinned to joint 4
    moved = model(dict(params, eye_pose=eyes)).vertices
    changed = (moved - base.vertices).norm(dim=-1).amax(0) > 1e-6
    owners = np.arange(model.num_vertices) % 5
    assert changed.numpy().tolist() == (owners == 4).tolist()


def test_flame_without_embedding(tmp_path):
    path, _ = fx.write_flame(tmp_path, embedding=False)
    with pytest.warns(UserWarning, match="flame_static_embedding.pkl"):
        model = load_smplx_family("flame", tmp_path)
    out = model(model.default_params(2))
    assert "landmarks" not in out.extras and out.extras["smplx_joints"].shape == (2, 5, 3)
    with pytest.raises(ModelFileError, match="flame_static_embedding.pkl"):
        load_smplx_family("flame", path, landmarks=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not load_smplx_family("flame", path, landmarks=False).has_landmarks


def test_flame_deca_embedding_with_contour(tmp_path):
    _, arrays = fx.write_flame(tmp_path, embedding=False)
    rng = np.random.default_rng(0)
    n_faces = arrays["f"].shape[0]
    np.save(tmp_path / "landmark_embedding.npy", np.array({
        "static_lmk_faces_idx": rng.integers(0, n_faces, 4),
        "static_lmk_bary_coords": rng.dirichlet(np.ones(3), 4),
        "dynamic_lmk_faces_idx": rng.integers(0, n_faces, (79, 2)),
        "dynamic_lmk_bary_coords": rng.dirichlet(np.ones(3), (79, 2)),
    }, dtype=object), allow_pickle=True)
    model = load_smplx_family("flame", tmp_path, use_face_contour=True)
    assert model(model.default_params(2)).extras["landmarks"].shape == (2, 6, 3)


def test_smplx_face_contour(files):
    model = load_smplx_family("smplx", files["smplx"][0], use_face_contour=True)
    assert model(random_params(model)).extras["landmarks"].shape == (B, 7 + 3, 3)


def _on_mesh(vertices, faces, face_idx, bary):
    """Points at barycentric coordinates ``bary`` (L, 3) of faces ``face_idx`` (L,) of each mesh."""
    tri = vertices[:, faces[torch.as_tensor(face_idx, dtype=torch.long)]]  # (B, L, 3, 3)
    return (tri * torch.as_tensor(bary, dtype=vertices.dtype)[None, :, :, None]).sum(2)


def test_flame_face68_from_user_file(tmp_path):
    """generic_model.pkl + static (51) + dynamic (17) embeddings: face68 by default (issue 15)."""
    from neuralannot.bodies import load_body_model
    from neuralannot.bodies.joints import joint_sets_for

    path, arrays = fx.write_flame(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_body_model(str(path), part="face")
    assert "face68" in joint_sets_for(model)
    # frontal; neck turned 0.5 rad (~29 deg, left); the same in a camera frame (root: half turn about X,
    # the face towards -Z); root turned instead of the neck; turned the other way
    half = [np.pi, 0.0, 0.0]
    roots = [[0, 0, 0], [0, 0, 0], half, half, [0, 0.5, 0], [0, -0.5, 0]]
    necks = [[0, 0, 0], [0, 0.5, 0], [0, 0, 0], [0, 0.5, 0], [0, 0, 0], [0, 0, 0]]
    rows = [0, 68, 0, 68, 68, 29]  # smplx's bins: yaw 0..-39 deg -> rows 0..39, yaw 1..39 -> 40..78
    params = model.default_params(len(rows))
    params["root_pose"], params["neck_pose"] = torch.tensor(roots).float(), torch.tensor(necks).float()
    with torch.no_grad():
        out = model(params)
    face = model.keypoints(out, "face68")
    lm = out.extras["landmarks"]
    assert face.shape == (len(rows), 68, 3) and lm.shape == (len(rows), 68, 3)
    torch.testing.assert_close(face, torch.cat([lm[:, 51:], lm[:, :51]], 1))  # iBUG: contour 0-16 first
    static, dyn = arrays["_embedding"], arrays["_dynamic_embedding"]
    torch.testing.assert_close(face[:, 17:], _on_mesh(out.vertices, model.faces, static["lmk_face_idx"],
                                                      static["lmk_b_coords"]))
    for i, r in enumerate(rows):  # the contour follows the head's yaw towards the camera
        expect = _on_mesh(out.vertices[i : i + 1], model.faces, dyn["lmk_face_idx"][r],
                          dyn["lmk_b_coords"][r])
        torch.testing.assert_close(face[i, :17], expect[0], msg=f"sample {i}: expected row {r}")
    frontal = _on_mesh(out.vertices[1:2], model.faces, dyn["lmk_face_idx"][0], dyn["lmk_b_coords"][0])
    assert (face[1, :17] - frontal[0]).norm(dim=-1).amax() > 1e-4  # turning the neck moves the contour


def test_flame_without_contour_embedding(tmp_path):
    from neuralannot.bodies import load_body_model
    from neuralannot.bodies.joints import get_regressor, joint_sets_for

    path, _ = fx.write_flame(tmp_path, contour=0)
    with pytest.warns(UserWarning, match="flame_dynamic_embedding.npy"):
        model = load_body_model(str(path), part="face")
    assert model.has_landmarks and model(model.default_params(1)).extras["landmarks"].shape == (1, 51, 3)
    assert "face68" not in joint_sets_for(model)
    with pytest.raises(BodyModelError, match="face68.*flame_dynamic_embedding.npy"):
        get_regressor(model, "face68")
    with pytest.raises(ModelFileError, match="flame_dynamic_embedding.npy"):
        load_smplx_family("flame", path, use_face_contour=True)


def test_smplx_contour_matches_smplx_and_survives_a_camera_frame(files):
    """Facing +Z: smplx's own contour; a half turn about X (camera frame, Z forward): the same look-up
    rows, so the contour moves rigidly with the mesh (smplx's yaw would mirror the rows)."""
    model = load_smplx_family("smplx", files["smplx"][0])
    p = random_params(model, scale=0.2)
    with torch.no_grad():
        ours = model(p)
        model._contour, model.smplx_layer.use_face_contour = False, True
        try:
            ref = model(p)
        finally:
            model._contour, model.smplx_layer.use_face_contour = True, False
        torch.testing.assert_close(ours.extras["smplx_joints"], ref.extras["smplx_joints"])
        flip = roma.rotvec_to_rotmat(torch.tensor([np.pi, 0.0, 0.0]))
        turned = model(dict(p, root_pose=roma.rotmat_to_rotvec(flip @ roma.rotvec_to_rotmat(p["root_pose"]))))
    j0 = ours.joints[:, :1]
    moved = (ours.extras["landmarks"] - j0) @ flip.T + j0
    torch.testing.assert_close(turned.extras["landmarks"], moved, atol=1e-5, rtol=0)


def test_smplx_contour_by_default(files, tmp_path):
    from neuralannot.bodies.joints import get_regressor

    model = load_smplx_family("smplx", files["smplx"][0])
    assert model(random_params(model)).extras["landmarks"].shape == (B, 7 + 3, 3)
    arrays = {k: v for k, v in files["smplx"][1].items() if not k.startswith("dynamic_lmk")}
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **arrays)
    with pytest.warns(UserWarning, match="dynamic_lmk_faces_idx"):
        model = load_smplx_family("smplx", tmp_path)
    assert model(random_params(model)).extras["landmarks"].shape == (B, 7, 3)
    with pytest.raises(BodyModelError, match="coco_wholebody133.*dynamic_lmk_faces_idx"):
        get_regressor(model, "coco_wholebody133")


# --- bad inputs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", TYPES)
def test_bad_params(models, t):
    model = models[t]
    good = random_params(model)
    with pytest.raises(BodyModelError, match="body_pose|hand_pose|jaw_pose"):
        name = {"smpl": "body_pose", "smplx": "body_pose", "mano": "hand_pose", "flame": "jaw_pose"}[t]
        model(dict(good, **{name: torch.zeros(B, 7, 3)}))
    nan = dict(good, shape=good["shape"].clone())
    nan["shape"][1, 0] = float("nan")
    with pytest.raises(BodyModelError, match="NaN"):
        model(nan)
    with pytest.raises(BodyModelError, match="missing"):
        model({k: v for k, v in good.items() if k != "trans"})
    with pytest.raises(BodyModelError, match="unknown"):
        model(dict(good, betas=good["shape"]))
    with pytest.raises(BodyModelError, match="batch"):
        model(dict(good, trans=torch.zeros(B + 1, 3)))


# --- missing / bad files ----------------------------------------------------------------------------
@pytest.mark.parametrize("t,name", [("smpl", "SMPL_NEUTRAL.pkl"), ("smplx", "SMPLX_NEUTRAL.npz"),
                                    ("mano", "MANO_RIGHT.pkl"), ("flame", "FLAME_NEUTRAL.pkl")])
def test_missing_file_message(tmp_path, t, name):
    with pytest.raises(ModelFileError) as err:
        load_smplx_family(t, tmp_path)
    msg = str(err.value)
    assert name in msg and MODEL_URLS[t] in msg and str(tmp_path) in msg and "license" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_missing_without_env_var(monkeypatch):
    monkeypatch.delenv("NEURALANNOT_MODELS", raising=False)
    with pytest.raises(ModelFileError, match="NEURALANNOT_MODELS") as err:
        load_smplx_family("smplx")
    assert "SMPLX_NEUTRAL.npz" in str(err.value) and "https://smpl-x.is.tue.mpg.de" in str(err.value)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_smplx_family("smpl", "/nonexistent/models")


@pytest.mark.parametrize("name", ["SMPL_NEUTRAL.pkl", "SMPLX_NEUTRAL.npz", "MANO_RIGHT.pkl",
                                  "FLAME_NEUTRAL.pkl"])
def test_corrupt_file(tmp_path, name):
    bad = tmp_path / name
    bad.write_bytes(np.random.default_rng(0).bytes(2000))
    t = infer_model_type(bad)
    with pytest.raises(ModelFileError, match=name):
        load_smplx_family(t, tmp_path)


def test_truncated_and_wrong_files(files, tmp_path):
    data = files["smpl"][0].read_bytes()
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="SMPL_NEUTRAL.pkl"):
        load_smplx_family("smpl", tmp_path)
    # an SMPL file handed over as MANO: says which keys are missing and what it looks like
    with pytest.raises(ModelFileError, match=r"missing key.*hands_components.*SMPL file"):
        load_smplx_family("mano", files["smpl"][0])
    # an SMPL-X file handed over as SMPL: wrong joint count
    with pytest.raises(ModelFileError, match="55.*SMPL-X"):
        load_smplx_family("smpl", files["smplx"][0])
    # not a dict
    with open(tmp_path / "MANO_RIGHT.pkl", "wb") as fh:
        pickle.dump([1, 2, 3], fh)
    with pytest.raises(ModelFileError, match="dict"):
        load_smplx_family("mano", tmp_path)


@pytest.mark.parametrize("protocol", [0, 2])
def test_chumpy_pickle_loads_without_chumpy(files, tmp_path, protocol):
    # official .pkl files store some arrays as chumpy objects: read through shims, chumpy not needed
    _, arrays = files["smpl"]
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(fx.chumpy_pickle(arrays, protocol=protocol))
    assert "chumpy" not in sys.modules
    model = load_smplx_family("smpl", tmp_path, flat_hand_mean=True)
    ref = load_smplx_family("smpl", files["smpl"][0], flat_hand_mean=True)
    p = random_params(ref)
    torch.testing.assert_close(model(p).vertices, ref(p).vertices)
    assert "chumpy" not in sys.modules


def test_chumpy_expressions_are_inert_and_dropped(files, tmp_path):
    # {"a": chumpy.ch.Ch without a value x, "J": chumpy.ch_ops.add(...)} + the real arrays: the
    # expressions are dropped (never imported, never run) and the model loads from the arrays
    _, arrays = files["smpl"]
    body = pickle.dumps(arrays, protocol=2)[2:-2]  # the dict's items, without PROTO / SETITEMS + STOP
    expr = (b"X\x01\x00\x00\x00acchumpy.ch\nCh\n)\x81}X\x01\x00\x00\x00bK\x01sb"
            b"X\x01\x00\x00\x00Jcchumpy.ch_ops\nadd.__init__.__globals__\n)\x81}b")
    assert body.startswith(b"}q\x00(")
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(b"\x80\x02" + body + expr + b"u.")
    model = load_smplx_family("smpl", tmp_path)
    assert model.num_vertices == arrays["v_template"].shape[0]
    # a required key that is only an expression: reported as missing, naming the file
    only = {k: v for k, v in arrays.items() if k != "v_template"}
    body = pickle.dumps(only, protocol=2)[2:-2]
    expr = b"X\n\x00\x00\x00v_templatecchumpy.ch_ops\nadd\n)\x81}b"
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(b"\x80\x02" + body + expr + b"u.")
    with pytest.raises(ModelFileError, match=r"SMPL_NEUTRAL.pkl.*missing key.*v_template"):
        load_smplx_family("smpl", tmp_path)


def test_env_var_is_not_required_with_path(files, monkeypatch):
    monkeypatch.delenv("NEURALANNOT_MODELS", raising=False)
    assert os.environ.get("NEURALANNOT_MODELS") is None
    assert load_smplx_family("flame", files["flame"][0]).has_landmarks
