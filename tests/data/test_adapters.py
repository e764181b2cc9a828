"""Official-layout adapters, on fixtures rebuilt from the real samples (tests/data/official/README.md)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import OFFICIAL, REAL
from neuralannot.bodies.joint_names import conversion_indices
from neuralannot.data.adapters import DatasetFormatError, SkipReport, detect_format, load_any, load_dataset
from neuralannot.data.adapters.common import project
from neuralannot.data.adapters.safe_pickle import UnsafePickleError, safe_load
from neuralannot.data.sample import SampleError

COCO_FILE = OFFICIAL / "coco" / "annotations" / "person_keypoints_val2017.json"
WHOLEBODY_FILE = OFFICIAL / "coco" / "annotations" / "coco_wholebody_val_v1.0.json"
#: SMPL-24 rows and the coco17 rows of the same anatomical joints (shoulders ... ankles).
SMPL_LIMBS, COCO_LIMBS = [16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8], list(range(5, 17))


def real(name: str) -> list:
    return list(load_dataset(REAL / f"{name}.json"))


def load(path, **kw) -> tuple[list, SkipReport]:
    report = SkipReport()
    return list(load_any(path, report=report, **kw)), report


def reprojection_px(s, joints_3d=None) -> np.ndarray:
    xyz = s.joints_3d[:, :3] if joints_3d is None else joints_3d
    return np.linalg.norm(
        project(xyz, s.intrinsics["focal"], s.intrinsics["princpt"]) - s.joints_2d[:, :2], axis=1
    )


def h36m_distort(xyz: np.ndarray, cam: dict) -> np.ndarray:
    """Human3.6M toolkit projection with radial (k1..k3) and tangential (p1, p2) distortion."""
    k, p = cam["distortion"]["k"], cam["distortion"]["p"]
    x = xyz[:, :2] / xyz[:, 2:3]
    r2 = (x**2).sum(1, keepdims=True)
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tan = p[0] * x[:, 1:2] + p[1] * x[:, 0:1]
    xd = x * (radial + tan) + np.array([p[1], p[0]]) * r2
    return xd * np.array(cam["focal"]) + np.array(cam["princpt"])


def same_image(a: str, b: str) -> bool:
    return Path(a).read_bytes() == Path(b).read_bytes()


# --- Human3.6M ---------------------------------------------------------------------------------------
def test_h36m_matches_real_samples():
    samples, report = load(OFFICIAL / "h36m")
    ref = {r.extra["subject"]: r for r in real("h36m")}
    assert len(samples) == 4 and report.num_skipped == 0
    assert [s.id for s in samples] == [
        "s_01_act_02_subact_02_ca_01_000001",
        "s_05_act_10_subact_01_ca_01_002061",
        "s_07_act_05_subact_01_ca_02_000396",
        "s_08_act_15_subact_02_ca_02_000026",
    ]
    for s in samples:
        r = ref[s.extra["subject"]]
        assert (s.part, s.joint_set) == ("body", "h36m17")
        np.testing.assert_allclose(s.joints_3d, r.joints_3d, atol=1e-6)
        np.testing.assert_allclose(s.bbox, r.bbox, atol=1e-3)
        assert same_image(s.image, r.image) and s.image_size == r.image_size
        # 2D = pinhole projection; the real 2D labels include lens distortion (< 4 px, README)
        assert reprojection_px(s).max() < 1e-3
        assert np.abs(s.joints_2d[:, :2] - r.joints_2d[:, :2]).max() < 4.0
        distorted = h36m_distort(s.joints_3d[:, :3].astype(np.float64), r.extra["camera"] | r.intrinsics)
        np.testing.assert_allclose(distorted, r.joints_2d[:, :2], atol=1e-3)
        np.testing.assert_allclose(s.gt["params"]["pose"], r.gt["params"]["pose"], atol=1e-5)
        np.testing.assert_allclose(s.gt["params"]["betas"], r.gt["params"]["betas"], atol=1e-6)
        assert s.gt["model"] == "smpl" and s.gt["params"]["transl"] is None and len(s.gt["world_trans"]) == 3


@pytest.mark.parametrize(
    ("options", "count"),
    [({"stride": 5}, 4), ({"stride": 64}, 1), ({"subjects": ["S1", 5]}, 2), ({"cameras": [2]}, 2)],
)
def test_h36m_options(options, count):
    assert len(load(OFFICIAL / "h36m", **options)[0]) == count


def test_h36m_single_file_and_missing_camera_file(tmp_path):
    one = OFFICIAL / "h36m" / "annotations" / "Human36M_subject7_data.json"
    assert [s.extra["subject"] for s in load(one)[0]] == ["S7"]
    shutil.copytree(OFFICIAL / "h36m", tmp_path / "h36m", symlinks=True)
    (tmp_path / "h36m" / "annotations" / "Human36M_subject5_camera.json").unlink()
    with pytest.raises(DatasetFormatError, match="Human36M_subject5_camera.json"):
        load(tmp_path / "h36m", check_images=None)
    samples, report = load(tmp_path / "h36m", check_images=None, skip_bad=True)
    assert len(samples) == 3 and "subject5_camera" in report.failed_files[0][0]


def test_h36m_wrong_joint_shape_names_file_and_sample(tmp_path):
    shutil.copytree(OFFICIAL / "h36m", tmp_path / "h36m", symlinks=True)
    path = tmp_path / "h36m" / "annotations" / "Human36M_subject1_joint_3d.json"
    joints = json.loads(path.read_text())
    joints["2"]["2"]["0"] = joints["2"]["2"]["0"][:16]
    path.write_text(json.dumps(joints))
    with pytest.raises(
        SampleError, match=r"s_01_act_02_subact_02_ca_01_000001.*subject1_data\.json.*\(17, 3\)"
    ):
        load(tmp_path / "h36m", check_images=None)
    samples, report = load(tmp_path / "h36m", check_images=None, skip_bad=True)
    assert len(samples) == 3 and report.skipped["shape"] == 1


# --- COCO and COCO-WholeBody ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "name", "part", "joint_set"),
    [
        (COCO_FILE, "coco", "body", "coco17"),
        (WHOLEBODY_FILE, "coco_wholebody", "wholebody", "coco_wholebody133"),
    ],
)
def test_coco_matches_real_samples(path, name, part, joint_set):
    samples, _ = load(path)
    ref = real(name)
    assert [s.id for s in samples] == [str(r.extra["coco_ann_id"]) for r in ref]
    for s, r in zip(samples, ref, strict=True):
        assert (s.part, s.joint_set) == (part, joint_set)
        np.testing.assert_allclose(s.joints_2d, r.joints_2d, atol=1e-3)
        np.testing.assert_allclose(s.bbox, r.bbox, atol=1e-3)
        keys = set(r.extra) - {"license", "bbox_source", "split"}  # added by the folder reader
        assert {k: s.extra[k] for k in keys} == {k: r.extra[k] for k in keys}
        assert same_image(s.image, r.image) and s.image_size == r.image_size


def test_coco_drops_crowd_and_counts_bad_annotations(tmp_path):
    d = json.loads(COCO_FILE.read_text())
    d["annotations"][0]["iscrowd"] = 1
    del d["annotations"][1]["keypoints"]
    d["annotations"][2]["image_id"] = 123
    path = tmp_path / "annotations" / "person_keypoints_val2017.json"
    path.parent.mkdir()
    path.write_text(json.dumps(d))
    with pytest.raises(SampleError, match=r"sample '460541' in .*person_keypoints_val2017\.json"):
        load(path, check_images=None)
    samples, report = load(path, check_images=None, skip_bad=True)
    assert [s.id for s in samples] == ["1717641", "1724673"]
    assert report.dropped["crowd annotation"] == 1 and report.num_skipped == 2
    assert "image_id 123" in report.examples["missing_key"][0]


def test_coco_malformed_json_names_file(tmp_path):
    path = tmp_path / "person_keypoints_val2017.json"
    path.write_text(COCO_FILE.read_text()[:1500])
    with pytest.raises(DatasetFormatError, match="person_keypoints_val2017.json: malformed JSON"):
        load(path, check_images=None)
    samples, report = load(path, check_images=None, skip_bad=True)
    assert samples == [] and report.failed_files[0][0] == str(path)


# --- FreiHAND ----------------------------------------------------------------------------------------
def test_freihand_matches_real_samples():
    samples, _ = load(OFFICIAL / "freihand")
    ref = sorted(real("freihand"), key=lambda r: r.image)
    assert [s.id for s in samples] == [f"{i:08d}" for i in range(8)]
    for s, r in zip(samples, ref, strict=True):
        assert (s.part, s.joint_set) == ("rhand", "hand21")
        np.testing.assert_allclose(s.joints_2d, r.joints_2d, atol=1e-3)
        assert reprojection_px(s).max() < 1e-3 and same_image(s.image, r.image)
        lo, hi = s.joints_2d[:, :2].min(0), s.joints_2d[:, :2].max(0)
        np.testing.assert_allclose(s.bbox[2:], 1.2 * (hi - lo), rtol=1e-5)
        np.testing.assert_allclose(s.bbox[:2] + s.bbox[2:] / 2, (lo + hi) / 2, atol=1e-3)
        assert s.gt["model"] == "mano" and np.asarray(s.gt["params"]["pose"]).shape == (48,)
    assert samples[2].extra["annotation_index"] == 0 and samples[3].extra["version"] == 1


def test_freihand_count_mismatch(tmp_path):
    shutil.copytree(OFFICIAL / "freihand", tmp_path / "fh", symlinks=True)
    (tmp_path / "fh" / "training_K.json").write_text("[[[500, 0, 112], [0, 500, 112], [0, 0, 1]]]")
    with pytest.raises(DatasetFormatError, match="training_K.json: 1 K matrices for 2 xyz"):
        load(tmp_path / "fh")


# --- InterHand2.6M -----------------------------------------------------------------------------------
def test_interhand_matches_real_samples():
    samples, report = load(OFFICIAL / "interhand2.6m")
    ref = {f"{r.extra['frame_idx']}_{r.id[-1]}": r for r in real("interhand2.6m")}
    assert [s.id for s in samples] == ["69148_r", "69148_l", "44669_r", "44669_l", "29590_l", "2017_r"]
    assert dict(report.dropped) == {"right hand without valid joints": 1, "left hand without valid joints": 1}
    for s in samples:
        r = ref[s.id]
        assert (s.part, s.joint_set) == (r.part, "hand21") and s.extra["side"] == r.extra["side"]
        np.testing.assert_allclose(s.joints_2d, r.joints_2d, atol=1e-3)
        np.testing.assert_allclose(s.joints_3d, r.joints_3d, atol=1e-6)
        np.testing.assert_allclose(s.bbox, r.bbox, atol=2e-3)
        assert reprojection_px(s)[s.valid_2d].max() < 1e-3 and same_image(s.image, r.image)


def test_interhand_keep_empty_hands_and_bad_shape(tmp_path):
    assert len(load(OFFICIAL / "interhand2.6m", drop_empty_hands=False)[0]) == 8
    shutil.copytree(OFFICIAL / "interhand2.6m", tmp_path / "ih", symlinks=True)
    path = tmp_path / "ih" / "annotations" / "test" / "InterHand2.6M_test_joint_3d.json"
    d = json.loads(path.read_text())
    d["2"]["44669"]["world_coord"].pop()
    path.write_text(json.dumps(d))
    with pytest.raises(SampleError, match=r"sample '44669' in .*InterHand2.6M_test_data\.json.*world_coord"):
        load(tmp_path / "ih", check_images=None)
    samples, report = load(tmp_path / "ih", check_images=None, skip_bad=True)
    assert len(samples) == 4 and report.skipped["shape"] == 1


# --- MPI-INF-3DHP (fixture built from the real H36M joints) ---------------------------------------------
def test_mpi_inf_3dhp_matches_mapped_h36m():
    samples, report = load(OFFICIAL / "mpi_inf_3dhp")
    idx, _ = conversion_indices("h36m17", "mpi_inf_3dhp17")
    ref = sorted(real("h36m"), key=lambda r: (r.extra["camera"]["camera_id"], r.extra["subject"]))
    ref += ref[:2]  # TS1 = the two camera-54138969 frames
    assert [s.id for s in samples] == [
        "S1_Seq1_cam0_000001", "S1_Seq1_cam0_000002", "S1_Seq1_cam1_000001", "S1_Seq1_cam1_000002",
        "TS1_000001", "TS1_000002",
    ]  # fmt: skip
    assert report.dropped["invalid test frame (valid_frame = 0)"] == 1
    for s, r in zip(samples, ref, strict=True):
        assert (s.part, s.joint_set) == ("body", "mpi_inf_3dhp17")
        np.testing.assert_allclose(s.joints_3d[:, :3], r.joints_3d[idx, :3], atol=1e-6)
        np.testing.assert_allclose(s.joints_2d[:, :2], r.joints_2d[idx, :2], atol=1e-3)
        np.testing.assert_allclose(s.bbox, r.bbox, atol=1e-3)
        np.testing.assert_allclose(s.intrinsics["focal"], r.intrinsics["focal"])
        assert reprojection_px(s).max() < 4.0 and same_image(s.image, r.image)  # H36M lens distortion


@pytest.mark.parametrize(
    ("options", "count"), [({"subjects": ["S1"]}, 4), ({"cameras": [1]}, 4), ({"stride": 2}, 3)]
)
def test_mpi_inf_3dhp_options(options, count):
    assert len(load(OFFICIAL / "mpi_inf_3dhp", **options)[0]) == count


def test_mpi_inf_3dhp_test_intrinsics_option_and_bad_mat(tmp_path):
    ts = OFFICIAL / "mpi_inf_3dhp" / "mpi_inf_3dhp_test_set" / "TS1" / "annot_data.mat"
    s = load(ts, intrinsics={"focal": [1000, 1000], "princpt": [500, 500]})[0][0]
    np.testing.assert_allclose(s.intrinsics["focal"], [1000, 1000])
    bad = tmp_path / "S1" / "Seq1" / "annot.mat"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a MATLAB file" * 20)
    with pytest.raises(DatasetFormatError, match=str(bad)):
        load(tmp_path, check_images=None)
    assert load(tmp_path, check_images=None, skip_bad=True)[1].failed_files[0][0] == str(bad)


# --- 3DPW (fixture built from the real H36M joints) -----------------------------------------------------
def test_3dpw_matches_mapped_h36m():
    samples, report = load(OFFICIAL / "3dpw")
    idx, _ = conversion_indices("h36m17", "coco17")
    ref = sorted(real("h36m"), key=lambda r: (r.extra["camera"]["camera_id"], r.extra["subject"]))
    assert [s.id for s in samples] == [
        "h36m_cam54138969_00000_0", "h36m_cam54138969_00001_0",
        "h36m_cam55011271_00000_0", "h36m_cam55011271_00001_0",
    ]  # fmt: skip
    assert report.dropped["campose_valid = 0"] == 2
    for s, r in zip(samples, ref, strict=True):
        assert (s.part, s.joint_set, s.joints_3d) == ("body", "coco17", None)
        found = np.array(idx) >= 0
        np.testing.assert_allclose(s.joints_2d[found, :2], r.joints_2d[np.array(idx)[found], :2], atol=1e-3)
        assert not s.valid_2d[:5].any()  # face keypoints are not annotated in the fixture
        uv = project(s.gt["joints_smpl24"][SMPL_LIMBS], s.intrinsics["focal"], s.intrinsics["princpt"])
        assert np.abs(uv - s.joints_2d[COCO_LIMBS, :2]).max() < 4.0  # H36M lens distortion
        np.testing.assert_allclose(s.gt["params"]["pose"], r.gt["params"]["pose"], atol=1e-5)
        np.testing.assert_allclose(s.gt["params"]["transl"], r.joints_3d[0, :3], atol=1e-6)
        assert s.gt["gender"] == "male" and same_image(s.image, r.image)


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "seq" / "evil.pkl"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps({"sequence": "evil", "x": Evil()}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"refusing to load global (posix|nt|os)\.system"):
        safe_load(path)
    with pytest.raises(DatasetFormatError, match=r"evil\.pkl: cannot load the sequence pickle: refusing"):
        load(path)
    assert load(path.parent, skip_bad=True)[1].failed_files[0][0] == str(path)
    assert not marker.exists()


def test_restricted_unpickler_reads_numpy_pickles(tmp_path):
    value = {"a": np.arange(6.0).reshape(2, 3), "b": [np.array([1, 2], np.uint8)], "s": "x"}
    path = tmp_path / "ok.pkl"
    for protocol in (0, 2, 3, 4, 5):  # 0-2 store bytes via _codecs.encode, 5 via numpy's _frombuffer
        path.write_bytes(pickle.dumps(value, protocol=protocol))
        out = safe_load(path)
        np.testing.assert_array_equal(out["a"], value["a"])
        assert out["b"][0].dtype == np.uint8 and out["s"] == "x"


def test_3dpw_missing_key(tmp_path):
    path = tmp_path / "seq.pkl"
    path.write_bytes(pickle.dumps({"sequence": "seq", "poses": [np.zeros((1, 72))]}, protocol=4))
    with pytest.raises(DatasetFormatError, match=r"seq\.pkl: missing key\(s\) \['img_frame_ids'"):
        load(path)


# --- detection and dispatch ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        (OFFICIAL / "h36m", "h36m"),
        (OFFICIAL / "h36m" / "annotations" / "Human36M_subject1_data.json", "h36m"),
        (OFFICIAL / "mpi_inf_3dhp", "mpi_inf_3dhp"),
        (OFFICIAL / "mpi_inf_3dhp" / "S1" / "Seq1", "mpi_inf_3dhp"),
        (OFFICIAL / "3dpw", "3dpw"),
        (OFFICIAL / "3dpw" / "sequenceFiles" / "test" / "h36m_cam54138969.pkl", "3dpw"),
        (COCO_FILE, "coco"),
        (WHOLEBODY_FILE, "coco_wholebody"),
        (OFFICIAL / "freihand", "freihand"),
        (OFFICIAL / "freihand" / "training_xyz.json", "freihand"),
        (OFFICIAL / "interhand2.6m", "interhand2.6m"),
        (OFFICIAL / "interhand2.6m" / "annotations" / "test", "interhand2.6m"),
        (REAL, "folder"),
        (REAL / "coco.json", "folder"),
    ],
)
def test_detect_format(path, fmt):
    assert detect_format(path) == fmt


def test_detect_format_by_keys_and_errors(tmp_path):
    renamed = tmp_path / "my_wholebody.json"
    shutil.copyfile(WHOLEBODY_FILE, renamed)
    assert detect_format(renamed) == "coco_wholebody"
    assert [s.joint_set for s in load(renamed, image_dir=OFFICIAL / "coco" / "val2017")[0]] == [
        "coco_wholebody133"
    ] * 5
    with pytest.raises(DatasetFormatError, match="several dataset layouts found"):
        detect_format(OFFICIAL / "coco")
    with pytest.raises(DatasetFormatError, match="no such file"):
        detect_format(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown dataset format 'h36'"):
        load_any(OFFICIAL / "h36m", format="h36")
    with pytest.raises(ValueError, match=r"format 'h36m' has no option\(s\) \['subject'\]"):
        load_any(OFFICIAL / "h36m", subject=[1])
    assert len(load(OFFICIAL / "coco", format="coco")[0]) == 5


def test_pipeline_load_samples_reads_official_layouts():
    from neuralannot.data.loading import load_samples

    samples, _ = load_samples(OFFICIAL / "h36m", needs_3d=True)
    assert len(samples) == 4 and samples[0].joint_set == "h36m17"
    hands, report = load_samples(OFFICIAL / "interhand2.6m", part="hand")
    assert len(hands) == 6 and sum(report.dropped.values()) == 2
