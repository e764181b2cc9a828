"""`neuralannot export`: json ↔ npz ↔ HumanData round trips, foreign HumanData, and clear errors."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REAL
from neuralannot.cli import app
from neuralannot.io.export import export, read_any, read_humandata, write_humandata
from neuralannot.io.pseudo_gt import PseudoGT, PseudoGTError, read_pseudo_gt, write_pseudo_gt

H36M = REAL / "h36m.json"
CAM = {"focal": [500.0, 501.0], "princpt": [320.0, 240.0]}


def _rand(shape, seed):
    return np.random.default_rng(seed).normal(0, 0.3, shape).astype(np.float32)


def anny_records():
    q = {"joint_err_mm": 12.5, "confidence": 0.7, "num_valid_joints": 17, "flags": ["x"], "method": "m"}
    phen = np.full(6, 0.5, np.float32)
    body = {"root_pose": _rand(3, 0), "body_pose": _rand((21, 3), 1), "phenotype": phen, "trans": _rand(3, 2)}
    hand = {"root_pose": _rand(3, 3), "hand_pose": _rand((15, 3), 4), "phenotype": phen, "trans": _rand(3, 5)}
    face = {"root_pose": _rand(3, 6), "head_pose": _rand(3, 7), "eye_pose": _rand((2, 3), 8),
            "expression": np.abs(_rand(52, 9)), "phenotype": phen, "trans": _rand(3, 10)}
    return [
        PseudoGT("set/body0", "anny", "body", body, CAM, q),
        PseudoGT("set/hand0", "anny", "lhand", hand, None, {"confidence": 0.1}, "left"),
        PseudoGT("set/face0", "anny", "face", face, CAM, {}),
    ]


def smpl_family_records():
    smplx = {"root_pose": _rand(3, 11), "body_pose": _rand((21, 3), 12), "rhand_pose": _rand((15, 3), 13),
             "jaw_pose": _rand(3, 14), "expr": _rand(10, 15), "shape": _rand(10, 16), "trans": _rand(3, 17)}
    smpl = {"root_pose": _rand(3, 18), "body_pose": _rand((23, 3), 19), "shape": _rand(10, 20),
            "trans": _rand(3, 21)}  # fmt: skip
    mano = {"root_pose": _rand(3, 22), "hand_pose": _rand((15, 3), 23), "shape": _rand(10, 24),
            "trans": _rand(3, 25)}  # fmt: skip
    return [
        PseudoGT("img1", "smplx", "wholebody", smplx, CAM, {"confidence": 0.9, "flags": []}),
        PseudoGT("img2", "smpl", "body", smpl, CAM, {"joint_err_px": 3.0}),
        PseudoGT("img3_r", "mano", "hand", mano, CAM, {}, "right"),
    ]


def _same(a, b, int_quality=True):
    """Equal records; with ``int_quality`` integer quality values must stay integers."""
    assert [r.sample_id for r in a] == [r.sample_id for r in b]
    for x, y in zip(a, b, strict=True):
        assert x == y, x.sample_id
        if int_quality:
            assert [type(v) for v in x.quality.values()] == [type(y.quality[k]) for k in x.quality]


@pytest.mark.parametrize("make", [anny_records, smpl_family_records], ids=["anny", "smpl-family"])
def test_json_to_humandata_to_json_gives_identical_records(tmp_path, make):
    src = write_pseudo_gt(tmp_path / "a.json", make(), {"method": "test"})
    hd, n = export(src, "humandata", tmp_path / "a_hd.npz")
    back, _ = export(hd, "json", tmp_path / "b.json")
    assert n == len(make())
    _same(read_pseudo_gt(src)[0], read_pseudo_gt(back)[0])
    assert read_pseudo_gt(back)[1]["method"] == "test"  # sidecar metadata travels inside HumanData meta
    assert json.loads(src.read_text()) == json.loads(back.read_text())


def test_humandata_uses_mmhuman3d_keys(tmp_path):
    path = write_humandata(tmp_path / "hd.npz", smpl_family_records())
    with np.load(path, allow_pickle=True) as z:  # as mmhuman3d's HumanData.load reads it
        d = {k: z[k] for k in z.files}
    assert int(d["__data_len__"]) == 3 and not bool(d["__keypoints_compressed__"])
    smplx = d["smplx"].item()
    want = {"global_orient", "body_pose", "right_hand_pose", "jaw_pose", "expression", "betas", "transl"}
    assert want <= set(smplx)
    assert "left_hand_pose" not in smplx  # no record has it
    assert smplx["body_pose"].shape == (3, 21, 3) and d["smpl"].item()["body_pose"].shape == (3, 23, 3)
    assert bool(d["__key_strict__"]) is False  # the mano dict is our extension
    assert d["meta"].item()["gender"] == ["neutral"] * 3
    assert str(d["config"]) == "neuralannot"


def test_npz_and_json_round_trip(tmp_path):
    records = anny_records() + smpl_family_records()[:1]  # compact npz stacks equal shapes only
    src = write_pseudo_gt(tmp_path / "a.json", records)
    npz, _ = export(src, "npz", tmp_path / "a.npz")
    back, _ = export(npz, "json", tmp_path / "b.json")
    _same(records, read_any(npz)[0], int_quality=False)  # the compact npz stores numeric quality as float
    assert json.loads(src.read_text()) == json.loads(back.read_text())


def test_humandata_with_dataset_adds_boxes_and_keypoints(tmp_path):
    from neuralannot.data.loading import load_samples

    samples, _ = load_samples(H36M)
    recs = [PseudoGT(s.id, "smpl", "body", smpl_family_records()[1].params, CAM) for s in samples[:3]]
    by_id = {s.id: s for s in samples}
    path = write_humandata(tmp_path / "hd.npz", recs, samples=by_id, data_root=H36M.parent)
    with np.load(path, allow_pickle=True) as z:
        assert z["bbox_xywh"].shape == (3, 5)
        assert np.allclose(z["bbox_xywh"][:, :4], [s.bbox for s in samples[:3]])
        assert z["keypoints2d"].shape == (3, 17, 3) and z["keypoints3d"].shape == (3, 17, 4)
        assert str(z["keypoints3d_convention"]) == "h36m17" and z["keypoints2d_mask"].tolist() == [1] * 17
        assert list(z["image_path"]) == [Path(s.image).name for s in samples[:3]]
    assert [r.sample_id for r in read_humandata(path)[0]] == [s.id for s in samples[:3]]


def test_foreign_humandata_reads_as_smplx_records_named_by_image(tmp_path):
    n = 2
    smplx = {"global_orient": _rand((n, 3), 1), "body_pose": _rand((n, 21, 3), 2), "betas": _rand((n, 10), 3),
             "transl": _rand((n, 3), 4), "left_hand_pose": _rand((n, 15, 3), 5)}  # fmt: skip
    np.savez_compressed(tmp_path / "mm.npz", smplx=smplx, image_path=["a.jpg", "b.jpg"], __data_len__=n,
                        __key_strict__=False, meta={"gender": ["neutral"] * n})  # fmt: skip
    records, meta = read_any(tmp_path / "mm.npz")
    assert [r.sample_id for r in records] == ["a.jpg", "b.jpg"] and meta == {}
    assert records[1].model == "smplx"
    assert np.allclose(records[1].params["lhand_pose"], smplx["left_hand_pose"][1])


def test_humandata_refuses_pickled_code(tmp_path):
    np.savez(tmp_path / "evil.npz", smpl=np.array(print, dtype=object), __data_len__=1)
    with pytest.raises(PseudoGTError, match=r"evil\.npz.*refusing to load global builtins\.print"):
        read_any(tmp_path / "evil.npz")


def _run(*args):
    return CliRunner().invoke(app, ["export", *map(str, args)])


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("missing", r"missing\.json: no such file"),
        ("format", r"--to must be one of json, npz, humandata, got 'yaml'"),
        ("corrupt", r"corrupt\.npz: not an npz file"),
        ("not_pgt", r"other\.npz: not a HumanData npz"),
        ("suffix", r"out\.txt: --to json writes a \.json file"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line_naming_the_file(tmp_path, case, pattern):
    good = write_pseudo_gt(tmp_path / "good.json", anny_records())
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    args = {
        "missing": ("--pred", tmp_path / "missing.json", "--to", "npz", "--out", tmp_path / "o.npz"),
        "format": ("--pred", good, "--to", "yaml", "--out", tmp_path / "o.yaml"),
        "corrupt": ("--pred", tmp_path / "corrupt.npz", "--to", "json", "--out", tmp_path / "o.json"),
        "not_pgt": ("--pred", tmp_path / "other.npz", "--to", "json", "--out", tmp_path / "o.json"),
        "suffix": ("--pred", good, "--to", "json", "--out", tmp_path / "out.txt"),
    }[case]
    result = _run(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert __import__("re").search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.output and not (tmp_path / "o.json").exists()


def test_cli_converts_and_reports(tmp_path):
    good = write_pseudo_gt(tmp_path / "good.json", smpl_family_records())
    result = _run("--pred", good, "--to", "humandata", "--out", tmp_path / "hd.npz")
    assert result.exit_code == 0, result.output
    assert "wrote 3 records as humandata" in result.stdout
    assert zipfile.is_zipfile(tmp_path / "hd.npz")
