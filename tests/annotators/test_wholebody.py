"""Whole-body annotation: body, hand and face annotators on a tiny synthetic whole-body set, integrated
into one Anny record per sample (valid flags, release layout), then evaluated, exported, reported."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from conftest import TINY, synth_set
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.pipeline import run_annotate
from neuralannot.annotators.wholebody import integrate_records, part_configs
from neuralannot.data.loading import load_samples
from neuralannot.data.part_samples import split_samples
from neuralannot.io.pseudo_gt import PseudoGT, read_pseudo_gt

pytestmark = pytest.mark.anny


@pytest.fixture(scope="module")
def wb_set(tmp_path_factory):
    return synth_set(tmp_path_factory, "wholebody", 8, seed=3)


def test_part_configs():
    cfg = AnnotatorConfig.from_dict(dict(TINY, mode="wild", part="wholebody"))
    cfgs = part_configs(cfg)
    assert {k: c.part for k, c in cfgs.items()} == {"body": "body", "hand": "hand", "face": "face"}
    assert cfgs["hand"].outputs == "embedding" and cfgs["face"].outputs == "rotations"
    assert cfgs["body"].outputs == "rotations"  # each part's own default
    explicit = dict(TINY, mode="wild", part="wholebody", outputs="embedding")
    given = part_configs(AnnotatorConfig.from_dict(explicit))
    assert given["body"].outputs == given["hand"].outputs == "embedding"  # an explicit choice is kept
    assert (cfgs["body"].root_hypotheses, cfgs["hand"].root_hypotheses) == (4, 2)  # per part
    one = part_configs(AnnotatorConfig(**TINY, mode="wild", part="wholebody", root_hypotheses=1))
    assert one["body"].root_hypotheses == one["hand"].root_hypotheses == 1
    # inputs and the output camera: each part's default unless the whole-body config chose one
    assert (cfgs["hand"].inputs, cfgs["hand"].joint_input) == ("image+joints", "coordinates")
    # the body reads its 2D joints as coordinates beside its embedded 3D set (aux_data), the face its image
    assert (cfgs["body"].inputs, cfgs["body"].joint_input) == ("joints", "coordinates")
    assert cfgs["face"].inputs == "image"
    assert (cfgs["body"].output_camera, cfgs["hand"].output_camera, cfgs["face"].output_camera) == (
        "sample", "sample", "crop")  # fmt: skip
    crop = part_configs(AnnotatorConfig(**TINY, mode="wild", part="wholebody", output_camera="crop"))
    assert {c.output_camera for c in crop.values()} == {"crop"}
    img = part_configs(AnnotatorConfig(**TINY, mode="wild", part="wholebody", inputs="image+joints"))
    assert img["body"].inputs == img["hand"].inputs == "image+joints"


def test_annotate_wholebody_end_to_end(wb_set, tmp_path):
    from neuralannot.evaluation import evaluate
    from neuralannot.io.export import read_humandata, write_humandata

    cfg = AnnotatorConfig.from_dict(dict(TINY, mode="wild", part="wholebody", epochs=1))
    out = tmp_path / "wb.json"
    summary = run_annotate(wb_set, out, cfg, tmp_path / "work", progress=False)
    samples, _ = load_samples(wb_set, "wholebody")
    splits, by_part = split_samples(samples)
    assert summary["annotate"]["annotated"] == len(samples) == 8
    assert summary["train"]["parts"]["hand"]["samples"] == len(by_part["lhand"]) + len(by_part["rhand"])
    records, _ = read_pseudo_gt(out, as_dict=True)
    for s, sp in zip(samples, splits, strict=True):
        r = records[s.id]
        assert (r.model, r.part) == ("anny", "wholebody")
        for part, group in (("lhand", "lhand_pose"), ("rhand", "rhand_pose"), ("face", "expression")):
            has = sp.get(part) is not None
            assert r.quality[f"{part}_valid"] is has and (group in r.params) is has
            assert (part in r.quality["parts"]) is has
    raw = json.loads(out.read_text())
    entry = next(iter(raw.values()))["anny_param"]
    assert {"lhand_valid", "rhand_valid", "face_valid"} <= set(entry)
    rows, summ = evaluate(records, load_samples(wb_set, "wholebody")[0])
    assert summ["n"] == 8 and summ["mpvpe_mm"] is not None and math.isfinite(summ["mpvpe_mm"])
    back, _ = read_humandata(write_humandata(tmp_path / "wb_hd.npz", list(records.values())))
    assert [sorted(r.params) for r in back] == [sorted(r.params) for r in records.values()]


def test_integrate_records_needs_a_body_record(wb_set, anny_wholebody):
    samples, _ = load_samples(wb_set, "wholebody")
    splits, _ = split_samples(samples[:2])
    rec = PseudoGT(splits[0].body.id, "anny", "body", {
        "root_pose": np.zeros(3, np.float32), "body_pose": np.zeros((21, 3), np.float32),
        "phenotype": np.full(6, 0.5, np.float32), "trans": np.array([0, 0, 3], np.float32)})  # fmt: skip
    parts = {"body": {rec.sample_id: rec}, "lhand": {}, "rhand": {}, "face": {}}
    with pytest.raises(ValueError, match=samples[1].id):
        integrate_records(samples[:2], splits, parts, anny_wholebody)
    out = integrate_records(samples[:1], splits[:1], parts, anny_wholebody)
    assert out[0].params["body_pose"].shape == (21, 3) and not out[0].quality["lhand_valid"]
    assert "lhand_pose" not in out[0].params and "expression" not in out[0].params


def test_integrated_head_takes_the_face_annotators_rotation(wb_set, anny_wholebody, anny_head):
    """head_from "face": the whole body's head bone ends with the face record's head rotation;
    "body": the body record's head is kept (the paper); an unknown choice fails."""
    import roma
    import torch

    from neuralannot.bodies.integrate import HEAD_SLOT, _anny_frames, anny_head_rotation

    samples, _ = load_samples(wb_set, "wholebody")
    splits, _ = split_samples(samples[:1])
    assert splits[0].get("face") is not None
    rng = np.random.default_rng(0)
    body = PseudoGT(splits[0].body.id, "anny", "body", {
        "root_pose": rng.normal(size=3).astype(np.float32),
        "body_pose": (0.2 * rng.normal(size=(21, 3))).astype(np.float32),
        "phenotype": np.full(6, 0.5, np.float32), "trans": np.array([0, 0, 3], np.float32)})  # fmt: skip
    face = PseudoGT(splits[0].get("face").id, "anny", "face", {
        "root_pose": rng.normal(size=3).astype(np.float32), "head_pose": np.array([0.3, 0, 0], np.float32),
        "expression": np.full(52, 0.1, np.float32), "phenotype": np.full(6, 0.5, np.float32),
        "trans": np.zeros(3, np.float32)})  # fmt: skip
    parts = {"body": {body.sample_id: body}, "lhand": {}, "rhand": {}, "face": {face.sample_id: face}}
    turned = integrate_records(samples[:1], splits, parts, anny_wholebody)[0]
    kept = integrate_records(samples[:1], splits, parts, anny_wholebody, head_from="body")[0]
    np.testing.assert_array_equal(kept.params["body_pose"], body.params["body_pose"])
    assert turned.quality["face_valid"] and kept.params["expression"][0] == np.float32(0.1)
    t = lambda p: {k: torch.from_numpy(np.asarray(v))[None] for k, v in p.items()}  # noqa: E731
    with torch.no_grad():
        W, _, G = _anny_frames(anny_wholebody, t(turned.params))
        want = anny_head_rotation(anny_head, t(face.params))
    torch.testing.assert_close(G @ W[:, anny_wholebody.bone_index("head")], want, atol=1e-5, rtol=0)
    other = [i for i in range(21) if i != HEAD_SLOT]
    np.testing.assert_array_equal(turned.params["body_pose"][other], body.params["body_pose"][other])
    assert roma.rotvec_to_rotmat(torch.from_numpy(turned.params["body_pose"][HEAD_SLOT])).trace() < 2.99
    with pytest.raises(ValueError, match="head_from"):
        integrate_records(samples[:1], splits, parts, anny_wholebody, head_from="neck")


def test_hand_rotation_moves_from_its_crop_frame_to_the_bodys():
    """Each crop camera looks along the real ray through its crop centre: a hand seen head-on in a
    crop one focal length right of the body crop's centre is turned 45 degrees about +y in the body's
    frame; the same crop centre or a sample without intrinsics leave it as it is."""
    from types import SimpleNamespace

    from neuralannot.annotators.wholebody import _in_body_frame

    K = np.array([[1000.0, 0.0, 500.0], [0.0, 1000.0, 500.0], [0.0, 0.0, 1.0]])
    sample = SimpleNamespace(intrinsics={"focal": [1000.0, 1000.0], "princpt": [500.0, 500.0]}, K=K)
    cam = lambda x: {"focal": [8000.0, 8000.0], "princpt": [x, 500.0]}  # noqa: E731
    zeros = {"root_pose": np.zeros(3, np.float32), "phenotype": np.full(6, 0.5, np.float32),
             "trans": np.zeros(3, np.float32)}  # fmt: skip
    hand = PseudoGT("s/rhand", "anny", "hand", {**zeros, "hand_pose": np.zeros((15, 3), np.float32)},
                    cam(1500.0), {})  # fmt: skip
    body = PseudoGT("s/body", "anny", "body", {**zeros, "body_pose": np.zeros((21, 3), np.float32)},
                    cam(500.0), {})  # fmt: skip
    moved = _in_body_frame(hand, body, sample)
    np.testing.assert_allclose(moved.params["root_pose"], [0.0, np.pi / 4, 0.0], atol=1e-6)
    same = _in_body_frame(hand, replace(body, camera=cam(1500.0)), sample)
    np.testing.assert_allclose(same.params["root_pose"], np.zeros(3), atol=1e-7)
    assert _in_body_frame(hand, body, SimpleNamespace(intrinsics=None)) is hand
    assert _in_body_frame(None, body, sample) is None


# --- SMPL-X with MANO hands and a FLAME face (tiny generated model files) ----------------------------
@pytest.fixture()
def smplx_files(tmp_path, monkeypatch):
    """Tiny SMPL-X / MANO / FLAME files as $NEURALANNOT_MODELS; the shared model cache cleared after."""
    import smplx_fixtures as fx
    from neuralannot.bodies import get_body_model

    root = fx.write_all(tmp_path / "models")["root"]
    monkeypatch.setenv("NEURALANNOT_MODELS", str(root))
    get_body_model.cache_clear()
    yield root
    get_body_model.cache_clear()


def _smplx_part_record(part_sample, rng):
    """A random pseudo-GT of one part sample on its SMPL-X-family part model (SMPL-X, MANO, FLAME)."""
    r = lambda *s: (0.3 * rng.normal(size=s)).astype(np.float32)  # noqa: E731
    part = part_sample.id.rsplit("/", 1)[1]
    common = {"root_pose": r(3), "shape": r(10), "trans": r(3)}
    if part == "body":
        return PseudoGT(part_sample.id, "smplx", "body", {**common, "body_pose": r(21, 3)})
    if part in ("lhand", "rhand"):
        return PseudoGT(part_sample.id, "mano", part, {**common, "hand_pose": r(15, 3)})
    face = {**common, "neck_pose": r(3), "jaw_pose": r(3), "expr": r(10)}
    return PseudoGT(part_sample.id, "flame", "face", face)


def test_smplx_wholebody_from_mano_and_flame(wb_set, smplx_files, tmp_path, monkeypatch):
    """--body-model smplx: the parts run on SMPL-X, MANO and FLAME, and integrate into SMPL-X records:
    each wrist's global rotation is its MANO hand's, the head's is FLAME's root · neck, fingers, jaw and
    expression are copied; a sample without a face is flagged and keeps no face groups; the release
    JSON is the SMPL-X layout with the valid flags."""
    import roma
    import torch

    import neuralannot.annotators.two_stage as two_stage
    from neuralannot.annotators.wholebody import run_wholebody
    from neuralannot.bodies import get_body_model
    from neuralannot.bodies.integrate import HEAD_SLOT, WRIST_SLOT

    samples, _ = load_samples(wb_set, "wholebody")
    splits, by_part = split_samples(samples)
    no_face = splits[0].get("face").id
    rng = np.random.default_rng(0)
    seen, made = {}, {}

    def fake_train_and_annotate(cfg, part_samples, work_dir, **kw):
        seen[cfg.part] = cfg.body_model
        recs = [_smplx_part_record(ps, rng) for ps in part_samples if ps.id != no_face]
        made.update({r.sample_id: r for r in recs})
        return recs, {"train": {}, "run_dir": str(work_dir)}

    monkeypatch.setattr(two_stage, "train_and_annotate", fake_train_and_annotate)
    cfg = AnnotatorConfig.from_dict(dict(TINY, mode="wild", part="wholebody", body_model="smplx"))
    out = tmp_path / "wb.json"
    summary = run_wholebody(samples, out, cfg, tmp_path / "work", progress=False)
    assert seen == {"body": "smplx", "hand": "mano", "face": "flame"}
    assert summary["valid"]["face_valid"] == len(by_part["face"]) - 1
    records, _ = read_pseudo_gt(out, as_dict=True)
    body = get_body_model("smplx", "wholebody")
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32))  # noqa: E731
    for s in samples:
        r = records[s.id]
        assert (r.model, r.part) == ("smplx", "wholebody")
        rots = roma.rotvec_to_rotmat(torch.cat([t(r.params["root_pose"])[None], t(r.params["body_pose"])]))
        glob = [rots[0]]
        for j in range(1, 22):
            glob.append(glob[body.parents[j]] @ rots[j])
        for side in ("left", "right"):
            hand = made.get(f"{s.id}/{side[0]}hand")
            assert r.quality[f"{side[0]}hand_valid"] is (hand is not None)
            if hand is not None:
                want = roma.rotvec_to_rotmat(t(hand.params["root_pose"]))
                torch.testing.assert_close(glob[WRIST_SLOT[side] + 1], want, atol=1e-5, rtol=0)
                np.testing.assert_array_equal(r.params[f"{side[0]}hand_pose"], hand.params["hand_pose"])
        face = made.get(f"{s.id}/face")
        assert r.quality["face_valid"] is (face is not None)
        if face is None:
            assert "jaw_pose" not in r.params and "expr" not in r.params
            np.testing.assert_array_equal(r.params["body_pose"][HEAD_SLOT],
                                          made[f"{s.id}/body"].params["body_pose"][HEAD_SLOT])  # fmt: skip
            continue
        want = roma.rotvec_to_rotmat(t(face.params["root_pose"])) @ roma.rotvec_to_rotmat(
            t(face.params["neck_pose"]))  # fmt: skip
        torch.testing.assert_close(glob[HEAD_SLOT + 1], want, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(r.params["jaw_pose"], face.params["jaw_pose"])
        np.testing.assert_array_equal(r.params["expr"], face.params["expr"][: len(r.params["expr"])])
    entry = json.loads(out.read_text())[no_face.rsplit("/", 1)[0]]["smplx_param"]
    assert entry["face_valid"] is False and {"lhand_valid", "rhand_valid"} <= set(entry)


def test_wholebody_rejects_other_body_models(wb_set, tmp_path):
    from neuralannot.annotators.wholebody import run_wholebody

    samples, _ = load_samples(wb_set, "wholebody")
    cfg = AnnotatorConfig.from_dict(dict(TINY, mode="wild", part="wholebody", body_model="smpl"))
    with pytest.raises(ValueError, match="--body-model smpl is not supported"):
        run_wholebody(samples, tmp_path / "wb.json", cfg, tmp_path / "work", progress=False)
