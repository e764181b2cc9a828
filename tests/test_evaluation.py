"""evaluate(): GT-parameter pseudo-GTs score zero; a known offset and rotation give known errors."""

import math

import numpy as np
import pytest
import roma
import torch

from conftest import synth_set
from neuralannot.bodies.regions import vertex_regions
from neuralannot.data.loading import load_samples
from neuralannot.evaluation import ModelCache, evaluate
from neuralannot.io.pseudo_gt import PseudoGT

pytestmark = pytest.mark.anny


@pytest.fixture(scope="module")
def mocap_set(tmp_path_factory):
    """Replaces conftest's ``mocap_set`` here with 6 samples."""
    return synth_set(tmp_path_factory, "mocap", 6, seed=7)


def _records(samples, change=None, part="body"):
    """GT-parameter records of ``samples`` (``part=None``: each sample's own, hands with their side)."""
    recs = {}
    for s in samples:
        params = {k: np.asarray(v, np.float32) for k, v in s.gt["params"].items() if v is not None}
        if change:
            change(params)
        side = {"lhand": "left", "hand": "right", "rhand": "right"}.get(s.part)
        recs[s.id] = PseudoGT(
            s.id,
            "anny",
            s.part if part is None else part,
            params,
            {"focal": list(s.intrinsics["focal"]), "princpt": list(s.intrinsics["princpt"])},
            side=side,
        )
    return recs


def test_gt_parameters_have_zero_error(mocap_set):
    samples, _ = load_samples(mocap_set, "body")
    rows, summary = evaluate(_records(samples), samples, ModelCache())
    assert summary["n"] == len(samples) and summary["missing"] == 0
    for k in ("mpjpe_mm", "pa_mpjpe_mm", "mpvpe_mm", "pa_mpvpe_mm"):
        assert summary[k] < 1e-3, k
    assert summary["reproj_px"] < 2.0  # vs noisy-free projected 2D labels up to rounding


def test_translation_is_removed_by_root_alignment_but_not_by_reprojection(mocap_set):
    samples, _ = load_samples(mocap_set, "body")

    def shift(p):
        p["trans"] = p["trans"] + np.array([0.05, 0.0, 0.0], np.float32)

    _, summary = evaluate(_records(samples, shift), samples)
    assert summary["mpvpe_mm"] < 1e-3 and summary["mpjpe_mm"] < 1e-3
    assert summary["reproj_px"] > 1.0


def test_bent_knee_gives_error_and_missing_records_are_counted(mocap_set):
    samples, _ = load_samples(mocap_set, "body")

    def bend(p):
        p["body_pose"] = p["body_pose"].copy()
        p["body_pose"][3] += np.array([0.5, 0.0, 0.0], np.float32)  # left knee

    recs = _records(samples, bend)
    recs.pop(samples[0].id)
    rows, summary = evaluate(recs, samples)
    assert summary["missing"] == 1 and summary["n"] == len(samples) - 1
    assert 3.0 < summary["mpvpe_mm"] < 100.0
    assert summary["pa_mpvpe_mm"] > 3.0  # L2 (Procrustes) alignment spreads a local error: may exceed MPVPE
    assert all(not math.isnan(r["mpjpe_mm"]) for r in rows)


def test_gt_params_maps_the_folder_smpl_layout(tmp_path):
    from neuralannot.bodies import load_body_model
    from neuralannot.evaluation import gt_params
    from smplx_fixtures import write_smpl

    path, _ = write_smpl(tmp_path)
    smpl = load_body_model(path)
    pose = np.arange(72, dtype=np.float32) / 100
    gt = {"model": "smpl", "params": {"pose": pose, "betas": np.ones(8), "transl": None}}
    p = gt_params(gt, smpl)
    assert set(p) == {"root_pose", "body_pose", "shape"}  # transl None → model default
    np.testing.assert_array_equal(p["root_pose"], pose[:3])
    np.testing.assert_array_equal(p["body_pose"], pose[3:].reshape(23, 3))
    assert p["shape"].shape == (10,) and p["shape"][:8].tolist() == [1.0] * 8 and p["shape"][8:].sum() == 0
    p = gt_params({"params": {"pose": pose, "betas": np.ones(12), "transl": [0, 0, 3]}}, smpl)
    assert p["shape"].shape == (10,) and p["trans"].tolist() == [0, 0, 3]


def test_decomposition_puts_a_pose_error_in_pose_only_and_a_shape_error_in_shape_only(mocap_set):
    samples, _ = load_samples(mocap_set, "body")

    def bend(p):
        p["body_pose"] = p["body_pose"].copy()
        p["body_pose"][3] += np.array([0.5, 0.0, 0.0], np.float32)

    def heavier(p):
        p["phenotype"] = np.clip(p["phenotype"] + np.float32(0.3), 0, 1)

    cache = ModelCache()
    _, pose = evaluate(_records(samples, bend), samples, cache, decompose=True)
    _, shape = evaluate(_records(samples, heavier), samples, cache, decompose=True)
    assert pose["mpvpe_pose_only_mm"] == pytest.approx(pose["mpvpe_mm"], rel=1e-4)
    assert pose["mpvpe_shape_only_mm"] < 1e-3 and pose["shape_mae"] < 1e-6
    assert shape["mpvpe_shape_only_mm"] == pytest.approx(shape["mpvpe_mm"], rel=1e-4)
    assert shape["mpvpe_pose_only_mm"] < 1e-3 and 0.1 < shape["shape_mae"] <= 0.3 + 1e-6
    assert len(shape["shape_mae_per_dim"]) == 6 and shape["shape_mae_constant_guess"] > 0
    _, plain = evaluate(_records(samples, bend), samples, cache)
    assert "mpvpe_pose_only_mm" not in plain


def test_pose_only_regions_place_a_wrist_error_on_the_hands(mocap_set):
    samples, _ = load_samples(mocap_set, "body")

    def wrist(p):  # slot 20: right wrist (BODY_SLOTS)
        p["body_pose"] = p["body_pose"].copy()
        p["body_pose"][20] += np.array([0.0, 0.0, 0.6], np.float32)

    rows, summary = evaluate(_records(samples, wrist), samples, ModelCache(), decompose=True)
    assert summary["mpvpe_pose_only_hands_mm"] > 20.0
    for region in ("legs", "feet", "torso", "head"):
        assert summary[f"mpvpe_pose_only_{region}_mm"] < 1e-3, region
    # the regions partition the mesh: their vertex-weighted mean is the total
    sizes = {r: len(ids) for r, ids in vertex_regions(ModelCache().get("anny", "body")).items()}
    total = sum(rows[0][f"mpvpe_pose_only_{r}_mm"] * n for r, n in sizes.items()) / sum(sizes.values())
    assert total == pytest.approx(rows[0]["mpvpe_pose_only_mm"], rel=1e-4)


def test_root_error_measures_a_known_turn_and_counts_flipped_facings(mocap_set):
    samples, _ = load_samples(mocap_set, "body")
    half = len(samples) // 2

    def turn(angle):
        def edit(p):  # the root turned about the camera's y axis by ``angle``
            R = roma.rotvec_to_rotmat(torch.tensor([0.0, angle, 0.0])) @ roma.rotvec_to_rotmat(
                torch.as_tensor(p["root_pose"], dtype=torch.float32)
            )
            p["root_pose"] = roma.rotmat_to_rotvec(R).numpy()

        return edit

    recs = {**_records(samples[:half], turn(0.5)), **_records(samples[half:], turn(3.0))}
    rows, summary = evaluate(recs, samples, ModelCache(), decompose=True)
    errs = sorted(r["root_err_deg"] for r in rows)
    assert errs[0] == pytest.approx(np.degrees(0.5), abs=1e-3)
    assert errs[-1] == pytest.approx(np.degrees(3.0), abs=1e-3)
    assert summary["root_flip_pct"] == pytest.approx(100.0 * (len(samples) - half) / len(samples))


def test_hand_sets_report_freihand_aucs(tmp_path_factory, mocap_set):
    hands = synth_set(tmp_path_factory, "hand", 6, seed=5)
    samples, _ = load_samples(hands, "hand")

    def recs(change=None):
        return _records(samples, change, part=None)

    _, exact = evaluate(recs(), samples)
    for k in ("auc_j", "pa_auc_j", "auc_v", "pa_auc_v"):
        # the first threshold is 0 mm: a rounding-size error (Procrustes) loses at most half a step
        assert exact[k] == pytest.approx(1.0, abs=0.5 / 99 + 1e-9), k

    def curl(p):
        p["hand_pose"] = p["hand_pose"] + np.float32(0.5)  # every finger joint turned by ~50 degrees

    _, bent = evaluate(recs(curl), samples)
    assert 0.0 < bent["auc_j"] < 0.9 and 0.0 < bent["auc_v"] < 0.9
    assert bent["pa_auc_j"] > bent["auc_j"]  # alignment removes part of the error
    _, body = evaluate(_records(load_samples(mocap_set, "body")[0]), load_samples(mocap_set, "body")[0])
    assert "auc_j" not in body  # bodies: no hand AUC


def test_wholebody_records_report_per_part_mesh_errors(tmp_path_factory, mocap_set):
    wb = synth_set(tmp_path_factory, "wholebody", 3, seed=3)
    samples, _ = load_samples(wb, "wholebody")

    def recs(change=None):
        return _records(samples, change, part="wholebody")

    _, exact = evaluate(recs(), samples)
    for k in ("mpvpe_lhand_mm", "mpvpe_rhand_mm", "mpvpe_face_mm"):
        assert exact[k] == pytest.approx(0.0, abs=1e-3), k

    def curl_left(p):
        p["lhand_pose"] = p["lhand_pose"] + np.float32(0.5)

    _, bent = evaluate(recs(curl_left), samples)
    assert bent["mpvpe_lhand_mm"] > 5.0  # the curled fingers
    assert bent["mpvpe_rhand_mm"] < 1e-3 and bent["mpvpe_face_mm"] < 1e-3
    assert bent["mpvpe_mm"] < bent["mpvpe_lhand_mm"]  # diluted over the whole mesh
    _, body = evaluate(_records(load_samples(mocap_set, "body")[0]), load_samples(mocap_set, "body")[0])
    assert "mpvpe_face_mm" not in body


def test_face_surface_error_ignores_a_rigid_move_and_measures_an_expression(tmp_path_factory, mocap_set):
    samples, _ = load_samples(synth_set(tmp_path_factory, "face", 3, seed=2), "face")
    _, summary = evaluate(_records(samples, part="face"), samples)
    assert summary["surface_mm"] < 1e-3 and summary["n_surface_mm"] == 3

    def turn(p):  # the whole head turned and moved: rigid alignment removes it
        p["root_pose"] = roma.rotvec_composition([torch.tensor([0.0, 0.3, 0.0]), torch.tensor(p["root_pose"])]
                                                 ).numpy()  # fmt: skip
        p["trans"] = p["trans"] + 0.1

    _, moved = evaluate(_records(samples, turn, part="face"), samples)
    assert moved["surface_mm"] < 1e-3 < moved["mpvpe_mm"]

    def open_mouth(p):
        p["expression"] = np.maximum(p["expression"], 0).astype(np.float32)
        p["expression"][24] = 1.0 - p["expression"][24]  # jawOpen flipped
        p["phenotype"] = p["phenotype"] * 1.2

    _, changed = evaluate(_records(samples, open_mouth, part="face"), samples)
    assert 0.3 < changed["surface_mm"] < changed["mpvpe_mm"]
    assert changed["pa_surface_mm"] <= changed["surface_mm"] + 1e-6
    bodies, _ = load_samples(mocap_set, "body")
    assert evaluate(_records(bodies), bodies)[1]["surface_mm"] is None  # bodies: no surface error
