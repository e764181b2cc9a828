import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REAL
from neuralannot.data import (
    DatasetFormatError,
    FolderDataset,
    SampleError,
    ShardWriter,
    SkipReport,
    load_dataset,
)
from neuralannot.data.adapters.folder import _JsonObjectStream

FILES = {"h36m": 4, "coco": 5, "coco_wholebody": 5, "interhand2.6m": 6, "freihand": 8, "300w": 2}
PARTS = {"h36m": {"body"}, "coco": {"body"}, "coco_wholebody": {"wholebody"},
         "interhand2.6m": {"lhand", "rhand"}, "freihand": {"rhand"}, "300w": {"face"}}  # fmt: skip

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="tests/data/real is absent")


def project(j3, s):
    (fx, fy), (cx, cy) = s.intrinsics["focal"], s.intrinsics["princpt"]
    return np.stack([fx * j3[:, 0] / j3[:, 2] + cx, fy * j3[:, 1] / j3[:, 2] + cy], 1)


@pytest.mark.parametrize("stem", sorted(FILES))
def test_every_real_file_loads(stem):
    samples = list(load_dataset(REAL / f"{stem}.json", check_images="verify"))
    assert len(samples) == FILES[stem]
    assert len({s.id for s in samples}) == len(samples)
    for s in samples:
        s.validate()
        assert {s.part} <= PARTS[stem] and s.extra["dataset"] == stem
        assert Path(s.image).is_file() and s.image_size is not None
        assert s.valid_2d.any()


def test_directory_loads_all_and_summarises():
    ds = FolderDataset(REAL)
    summary = ds.summary()
    assert summary["num_samples"] == sum(FILES.values())
    assert summary["by_dataset"] == FILES
    assert summary["with_gt"] == 4 and summary["with_joints_3d"] == 4 + 6
    assert summary["report"]["dropped"] == {
        "right hand without valid joints": 1,
        "left hand without valid joints": 1,
    }
    assert len(list(ds)) == summary["num_samples"]  # iterable more than once


def test_h36m_projection_matches_2d_and_gt():
    samples = list(load_dataset(REAL / "h36m.json"))
    for s in samples:
        assert s.joint_set == "h36m17" and s.joints_3d.shape == (17, 4)
        err = np.linalg.norm(project(s.joints_3d, s) - s.joints_2d[:, :2], axis=1)
        assert err.max() < 4.0 and err.mean() < 1.5
        assert (
            s.gt["model"] == "smpl"
            and len(s.gt["params"]["pose"]) == 72
            and len(s.gt["params"]["betas"]) == 10
        )
        assert "distortion" in s.extra["camera"]
    assert samples[0].id == "h36m/S1_Directions_1.54138969_000001/0"


def test_interhand_is_split_into_hand21_samples():
    all_hands = list(load_dataset(REAL / "interhand2.6m.json", drop_empty_hands=False))
    assert len(all_hands) == 8
    assert [s.id[-2:] for s in all_hands] == ["_r", "_l"] * 4
    assert {s.part for s in all_hands[0::2]} == {"rhand"} and {s.part for s in all_hands[1::2]} == {"lhand"}
    report = SkipReport()
    hands = list(load_dataset(REAL / "interhand2.6m.json", report=report))
    assert len(hands) == 6 and sum(report.dropped.values()) == 2 and report.seen == 4
    raw = json.loads((REAL / "interhand2.6m.json").read_text())["samples"][0]
    for s in hands:
        assert s.joint_set == "hand21" and s.joints_2d.shape == (21, 3) and s.valid_2d.all()
        # 2D is the projection of 3D in InterHand: the split must reorder both the same way
        assert np.abs(project(s.joints_3d, s) - s.joints_2d[:, :2]).max() < 0.05
        x, y, w, h = s.bbox
        assert (s.joints_2d[:, 0] >= x).all() and (s.joints_2d[:, 0] <= x + w).all()
        assert (s.joints_2d[:, 1] >= y).all() and (s.joints_2d[:, 1] <= y + h).all()
    np.testing.assert_allclose(hands[0].joints_2d[0], raw["joints_2d"][20], atol=1e-4)  # right wrist
    np.testing.assert_allclose(hands[1].joints_2d[0], raw["joints_2d"][41], atol=1e-4)  # left wrist
    np.testing.assert_allclose(hands[1].joints_2d[4], raw["joints_2d"][21], atol=1e-4)  # left thumb tip


def test_wholebody_and_face():
    wb = list(load_dataset(REAL / "coco_wholebody.json"))
    assert wb[0].joint_set == "coco_wholebody133" and wb[0].joints_2d.shape == (133, 3)
    assert wb[0].extra["coco_ann_id"] == 442619
    face = list(load_dataset(REAL / "300w.json"))
    assert face[0].joint_set == "face68" and face[0].part == "face"


# --- bad inputs ----------------------------------------------------------------------------------
def write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_nan_valid_joint_and_zero_bbox_raise_or_are_counted(h36m_copy):
    d, data = h36m_copy
    data["samples"][1]["joints_2d"][2][0] = None  # null → NaN, joint marked valid
    data["samples"][2]["bbox"] = [10, 10, 0, 50]
    data["samples"][3]["joints_2d"][5] = [float("nan"), float("nan"), 0.0]  # invalid joint: fine
    path = write(d / "bad.json", data)
    with pytest.raises(SampleError, match=r"S5_SittingDown.*bad\.json.*right_knee"):
        list(load_dataset(path))
    report = SkipReport()
    good = list(load_dataset(path, skip_bad=True, report=report))
    assert len(good) == 2 and report.num_skipped == 2 and report.seen == 4 and report.yielded == 2
    assert report.skipped == {"nonfinite": 1, "bbox": 1}
    assert "S7_Greeting" in report.examples["bbox"][0]
    assert (good[1].joints_2d[5] == 0).all()


def test_missing_and_corrupt_images(h36m_copy):
    d, data = h36m_copy
    (d / data["samples"][0]["image"]).unlink()
    (d / data["samples"][1]["image"]).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    path = write(d / "h.json", data)
    with pytest.raises(SampleError, match=r"S1_Directions.*not found"):
        list(load_dataset(path))
    report = SkipReport()
    assert len(list(load_dataset(path, check_images="verify", skip_bad=True, report=report))) == 2
    assert report.skipped == {"image": 2}
    assert "S5_SittingDown" in report.examples["image"][1] and "corrupt" in report.examples["image"][1]
    assert len(list(load_dataset(path, check_images=None))) == 4
    shutil.copy(REAL / data["samples"][0]["image"], d)
    assert len(list(load_dataset(path))) == 4  # "exists" does not decode
    with pytest.raises(SampleError, match=r"S5_SittingDown.*h\.json.*corrupt image .*S5_SittingDown"):
        list(load_dataset(path, check_images="verify"))


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda t, d: t[: len(t) // 2], "malformed JSON"),
        (lambda t, d: t.replace('"schema_version": 1', '"schema_version": 2'), "schema_version 2"),
        (lambda t, d: t.replace('"joint_names"', '"joint_namez"'), r"missing top-level key.*joint_names"),
        (lambda t, d: t.replace('"samples"', '"samplez"'), "missing top-level key 'samples'"),
        (lambda t, d: t.replace('"left_hip"', '"huefte"'), r"missing \['left_hip'\], which a h36m17 dataset"),
        (lambda t, d: json.dumps({**d, "joint_names": [f"j{i}" for i in range(17)]}), "match no known joint"),
        (lambda t, d: t.replace('"num_samples": 4', '"num_samples": 5'), "num_samples=5"),
        (lambda t, d: "[1, 2]", "one JSON object"),
    ],
)
def test_file_level_errors_name_the_file(h36m_copy, mutate, pattern):
    d, data = h36m_copy
    text = json.dumps(data)
    path = d / "broken.json"
    path.write_text(mutate(text, data))
    with pytest.raises(DatasetFormatError, match=pattern) as exc:
        list(load_dataset(path))
    assert "broken.json" in str(exc.value)
    report = SkipReport()
    list(load_dataset(d, skip_bad=True, report=report))  # the directory: the bad file is counted, not raised
    assert len(report.failed_files) == 1 and "broken.json" in report.failed_files[0][0]


def test_truncated_file_streams_samples_before_the_error(h36m_copy):
    d, data = h36m_copy
    text = json.dumps(data)
    path = d / "trunc.json"
    path.write_text(text[: text.index("S8_WalkDog") - 200])
    it = load_dataset(path)
    assert next(it).id.startswith("h36m/S1")
    with pytest.raises(DatasetFormatError, match="malformed JSON"):
        list(it)


def test_stream_parser_small_chunks_and_key_order(h36m_copy):
    d, data = h36m_copy
    text = json.dumps(data, indent=2)
    stream = _JsonObjectStream(io.StringIO(text), Path("x.json"), chunk=7)
    got = {k: (list(v) if k == "samples" else v) for k, v in stream.items()}
    assert got == json.loads(text)
    reordered = {"samples": data["samples"], **{k: v for k, v in data.items() if k != "samples"}}
    path = write(d / "late_meta.json", reordered)
    assert [s.id for s in load_dataset(path)] == [s.id for s in load_dataset(REAL / "h36m.json")]


def test_sample_ids_prefer_explicit_id(h36m_copy):
    d, data = h36m_copy
    data["samples"][0]["id"] = "my-id"
    assert next(load_dataset(write(d / "x.json", data))).id == "my-id"


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink"])
def test_images_outside_the_dataset_folder_are_refused(h36m_copy, tmp_path_factory, where):
    d, data = h36m_copy
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.jpg"
    shutil.copy(d / data["samples"][1]["image"], outside)
    dotdot = f"../{outside.parent.name}/secret.jpg"
    image = {"absolute": str(outside), "dotdot": dotdot, "symlink": "link.jpg"}
    if where == "symlink":
        (d / "link.jpg").symlink_to(outside)
    data["samples"][1]["image"] = image[where]
    path = write(d / "x.json", data)
    pattern = r"sample 'h36m/(secret|link)/0'.*outside the dataset folder.*--allow-outside-root"
    with pytest.raises(SampleError, match=pattern):
        list(load_dataset(path))
    report = SkipReport()
    assert len(list(load_dataset(path, skip_bad=True, report=report))) == 3
    assert report.skipped == {"outside_root": 1}
    assert len(list(load_dataset(path, allow_outside_root=True))) == 4


def test_absolute_image_paths_inside_the_folder_are_fine(h36m_copy):
    d, data = h36m_copy
    data["samples"][0]["image"] = str(d / data["samples"][0]["image"])
    assert len(list(load_dataset(write(d / "x.json", data)))) == 4


def test_unfinished_synthetic_folder_is_refused_with_the_command_to_finish_it(tmp_path):
    out = tmp_path / "synth"
    with ShardWriter(out, "coco", "coco17") as w:
        w.write_all(load_dataset(REAL / "coco.json"))
    meta = json.loads((out / "meta.json").read_text())
    gen = {"kind": "wild", "n": 40, "seed": 3, "shard_size": 20, "image_size": 256, "masks": False}
    (out / "meta.json").write_text(json.dumps(dict(meta, complete=False, generator=gen)))
    pattern = r"meta\.json.*complete.*false.*re-run the same synth command"
    with pytest.raises(DatasetFormatError, match=pattern) as e:
        list(load_dataset(out, allow_outside_root=True))
    cmd = f"neuralannot synth --kind wild --n 40 --out {out} --seed 3 --shard-size 20 --no-masks"
    assert cmd in str(e.value)
    (out / "meta.json").write_text(json.dumps(dict(meta, complete=True, generator=gen)))
    assert len(list(load_dataset(out, allow_outside_root=True))) == 5


# --- shards --------------------------------------------------------------------------------------
def test_shard_roundtrip(tmp_path):
    src = list(load_dataset(REAL / "h36m.json"))
    out = tmp_path / "synth"
    with ShardWriter(out, "h36m", "h36m17", shard_size=3, meta={"split": "train"}) as w:
        w.write_all(src)
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "shard-00000.jsonl", "shard-00001.jsonl"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["num_samples"] == 4 and meta["joint_set"] == "h36m17" and "samples" not in meta
    with pytest.raises(SampleError, match="outside the dataset folder"):  # images stay in REAL
        list(load_dataset(out))
    back = list(load_dataset(out, allow_outside_root=True))
    assert [s.id for s in back] == [s.id for s in src]
    for a, b in zip(src, back, strict=True):
        np.testing.assert_allclose(a.joints_2d, b.joints_2d)
        np.testing.assert_allclose(a.joints_3d, b.joints_3d)
        assert a.gt == b.gt and a.image == b.image and a.part == b.part
    # a directory holding a JSON file and a shard directory reads both
    shutil.copy(REAL / "300w.json", tmp_path / "300w.json")
    for name in ("300w__indoor_020.png", "300w__indoor_029.png"):
        shutil.copy(REAL / name, tmp_path / name)
    assert len(list(load_dataset(tmp_path, allow_outside_root=True))) == 2 + 4


def test_shard_bad_line_is_skipped(tmp_path):
    src = list(load_dataset(REAL / "coco.json"))
    out = tmp_path / "s"
    with ShardWriter(out, "coco", "coco17") as w:
        w.write_all(src)
    shard = out / "shard-00000.jsonl"
    lines = shard.read_text().splitlines()
    lines[2] = lines[2][:40]
    shard.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=r"shard-00000\.jsonl.*line 3"):
        list(load_dataset(out, allow_outside_root=True))
    report = SkipReport()
    assert len(list(load_dataset(out, skip_bad=True, report=report, allow_outside_root=True))) == 4
    assert report.skipped == {"malformed_json": 1}


def test_missing_path():
    with pytest.raises(DatasetFormatError, match="no such file"):
        load_dataset(REAL / "nope.json")


DEEP = "[" * 100_000 + "]" * 100_000  # json's recursive decoder raises RecursionError on this


@pytest.mark.parametrize("where", ["sample", "header"])
def test_deeply_nested_json_is_a_malformed_file_not_a_crash(h36m_copy, where):
    d, data = h36m_copy
    text = json.dumps(data)
    if where == "sample":
        text = text.replace('"joints_2d": [', f'"joints_2d": [{DEEP}, ', 1)
    else:
        text = text.replace('"split": "dev"', f'"split": {DEEP}')
    path = d / "deep.json"
    path.write_text(text)
    with pytest.raises(DatasetFormatError, match=r"deep\.json.*nested too deeply"):
        list(load_dataset(path))
    report = SkipReport()
    list(load_dataset(d, skip_bad=True, report=report))
    assert [p for p, _ in report.failed_files] == [str(path)]


def test_deeply_nested_shard_line_and_meta(tmp_path):
    out = tmp_path / "s"
    with ShardWriter(out, "coco", "coco17") as w:
        w.write_all(list(load_dataset(REAL / "coco.json")))
    shard = out / "shard-00000.jsonl"
    lines = shard.read_text().splitlines()
    lines[1] = DEEP
    shard.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=r"shard-00000\.jsonl.*line 2.*nested too deeply"):
        list(load_dataset(out, allow_outside_root=True))
    report = SkipReport()
    kept = list(load_dataset(out, skip_bad=True, report=report, allow_outside_root=True))
    assert len(kept) == len(lines) - 1
    assert report.skipped == {"malformed_json": 1}
    (out / "meta.json").write_text(DEEP)
    with pytest.raises(DatasetFormatError, match=r"meta\.json.*malformed JSON"):
        list(load_dataset(out, allow_outside_root=True))
