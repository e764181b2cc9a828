"""Pseudo-GT files: release JSON and npz round trips, MANO side merging, sidecar meta, chunked writing."""

import json
import os

import numpy as np
import pytest
import torch

from neuralannot.bodies.base import ParamSpec
from neuralannot.io.pseudo_gt import (
    PartWriter,
    PseudoGT,
    PseudoGTError,
    config_hash,
    done_ids,
    merge_parts,
    meta_path,
    read_pseudo_gt,
    to_body_params,
    write_pseudo_gt,
)

# per-sample parameter shapes, hard-coded per model/part (no body models are built here)
SHAPES = {
    ("smpl", "body"): {"root_pose": (3,), "body_pose": (23, 3), "shape": (10,), "trans": (3,)},
    ("smplx", "wholebody"): {
        "root_pose": (3,), "body_pose": (21, 3), "lhand_pose": (15, 3), "rhand_pose": (15, 3),
        "jaw_pose": (3,), "leye_pose": (3,), "reye_pose": (3,), "shape": (10,), "expr": (10,), "trans": (3,),
    },
    ("mano", "hand"): {"root_pose": (3,), "hand_pose": (15, 3), "shape": (10,), "trans": (3,)},
    ("flame", "face"): {
        "root_pose": (3,), "neck_pose": (3,), "jaw_pose": (3,), "eye_pose": (2, 3), "shape": (100,),
        "expr": (50,), "trans": (3,),
    },
    ("anny", "body"): {"root_pose": (3,), "body_pose": (21, 3), "phenotype": (6,), "trans": (3,)},
    ("anny", "wholebody"): {
        "root_pose": (3,), "body_pose": (21, 3), "lhand_pose": (15, 3), "rhand_pose": (15, 3),
        "expression": (52,), "phenotype": (6,), "trans": (3,),
    },
    ("anny", "hand"): {"root_pose": (3,), "hand_pose": (15, 3), "phenotype": (6,), "trans": (3,)},
    ("anny", "face"): {
        "root_pose": (3,), "head_pose": (3,), "expression": (52,), "eye_pose": (2, 3), "phenotype": (6,),
        "trans": (3,),
    },
}


def make(sid, model, part, rng, side=None, drop=(), camera=True, **quality):
    params = {}
    for name, shape in SHAPES[(model, "hand" if part in ("lhand", "rhand") else part)].items():
        if name in drop:
            continue
        v = rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, 2, shape)  # many magnitudes
        unit = name in ("phenotype", "expression")
        params[name] = (rng.uniform(0, 1, shape) if unit else v).astype(np.float32)
    if part in ("hand", "lhand", "rhand"):
        side = side or ("left" if part == "lhand" else "right")
    cam = {"focal": [float(rng.uniform(500, 5000))] * 2, "princpt": [320.25, 240.125]} if camera else None
    q = {"joint_err_mm": float(rng.uniform(0, 50)), "confidence": float(rng.uniform()), "method": "neural",
         "flags": ["ok"], **quality}
    return PseudoGT(sid, model, part, params, cam, q, side)


def records_for(model, part, n=4, seed=0):
    rng = np.random.default_rng(seed)
    if model == "mano":
        return [make(f"img{i // 2}_{'rl'[i % 2]}", "mano", "hand", rng, side=("right", "left")[i % 2])
                for i in range(n)]
    return [make(f"s{i}", model, part, rng, camera=i % 2 == 0) for i in range(n)]


def assert_close(a, b, exact):
    assert [r.sample_id for r in a] == [r.sample_id for r in b]
    for x, y in zip(a, b, strict=True):
        assert (x.model, x.part, x.side, x.camera, x.params.keys()) == (y.model, y.part, y.side, y.camera,
                                                                      y.params.keys())
        assert x.quality.keys() == y.quality.keys()
        for k, v in x.params.items():
            assert y.params[k].dtype == np.float32 and y.params[k].shape == v.shape
            if exact:
                assert np.array_equal(v.view(np.uint32), y.params[k].view(np.uint32)), k
            else:
                np.testing.assert_allclose(y.params[k], v, rtol=1e-6, atol=0)
        if exact:
            assert x == y


@pytest.mark.parametrize("suffix", [".json", ".npz"])
@pytest.mark.parametrize("model,part", list(SHAPES))
def test_round_trip(tmp_path, suffix, model, part):
    recs = records_for(model, part)
    path = write_pseudo_gt(tmp_path / f"out{suffix}", recs, {"method": "neural"})
    back, meta = read_pseudo_gt(path)
    assert_close(recs, back, exact=suffix == ".npz")
    assert meta["model"] == model and meta["num_samples"] == len(recs)
    by_id, _ = read_pseudo_gt(path, as_dict=True)
    assert list(by_id) == [r.sample_id for r in recs]


def test_json_float32_is_exact_too(tmp_path):
    recs = records_for("smplx", "wholebody", n=8)
    back, _ = read_pseudo_gt(write_pseudo_gt(tmp_path / "x.json", recs))
    assert back == recs


def test_release_layouts(tmp_path):
    rng = np.random.default_rng(1)
    smpl = make("a", "smpl", "body", rng)
    no_face = ("lhand_pose", "jaw_pose", "expr", "leye_pose", "reye_pose")
    smplx = make("b", "smplx", "wholebody", rng, drop=no_face)
    flame = make("c", "flame", "face", rng)
    body = make("d", "anny", "wholebody", rng)
    head = make("e", "anny", "face", rng)
    hand = make("f", "anny", "lhand", rng)
    path = write_pseudo_gt(tmp_path / "rel.json", [smpl, smplx, flame, body, head, hand])
    obj = json.loads(path.read_text())
    assert list(obj) == list("abcdef")  # exactly {id: entry}
    s = obj["a"]["smpl_param"]
    assert set(s) == {"pose", "shape", "trans"} and len(s["pose"]) == 72
    np.testing.assert_allclose(s["pose"][3:6], smpl.params["body_pose"][0], rtol=1e-6)
    assert obj["a"]["cam_param"] == smpl.camera and obj["a"]["quality"]["method"] == "neural"
    x = obj["b"]["smplx_param"]
    assert set(x) == {"root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "shape", "expr",
                      "trans", "lhand_valid", "rhand_valid", "face_valid"}
    assert len(x["body_pose"]) == 63 and len(x["lhand_pose"]) == 45
    assert (x["lhand_valid"], x["rhand_valid"], x["face_valid"]) == (False, True, False)
    f = obj["c"]["flame_param"]
    assert set(f) == set(SHAPES[("flame", "face")]) and len(f["eye_pose"]) == 6
    a = obj["d"]["anny_param"]
    assert list(a["pose"])[:3] == ["left_hip", "right_hip", "spine1"] and len(a["pose"]) == 21
    assert list(a["phenotype"]) == ["gender", "age", "muscle", "weight", "height", "proportions"]
    assert list(a["lhand_pose"])[:4] == ["thumb1", "thumb2", "thumb3", "index1"]
    assert "jawOpen" in a["expression"] and len(a["expression"]) == 52
    h = obj["e"]["anny_param"]
    assert len(h["head_pose"]) == 3 and list(h["eye_pose"]) == ["left_eye", "right_eye"]
    assert obj["f"]["side"] == "left" and list(obj["f"]["anny_param"]["pose"])[0] == "thumb1"
    back, _ = read_pseudo_gt(path, as_dict=True)
    # invalid groups are dropped on read
    assert set(back["b"].params) == {"root_pose", "body_pose", "rhand_pose", "shape", "trans"}
    assert back["f"].side == "left" and back["f"].part == "lhand"


def test_anny_wholebody_valid_flags(tmp_path):
    rng = np.random.default_rng(3)
    full = make("a", "anny", "wholebody", rng)
    partial = make("b", "anny", "wholebody", rng, drop=("lhand_pose", "expression"))
    path = write_pseudo_gt(tmp_path / "wb.json", [full, partial])
    obj = json.loads(path.read_text())
    flags = ("lhand_valid", "rhand_valid", "face_valid")
    assert tuple(obj["a"]["anny_param"][k] for k in flags) == (True, True, True)
    b = obj["b"]["anny_param"]
    assert tuple(b[k] for k in flags) == (False, True, False)
    assert np.all(np.array(list(b["lhand_pose"].values())) == 0) and len(b["expression"]) == 52
    back, _ = read_pseudo_gt(path)
    assert back == [full, partial]  # invalid groups dropped on read


def test_mano_merge_and_split(tmp_path):
    rng = np.random.default_rng(2)
    recs = [make("img1_r", "mano", "hand", rng, side="right"),
            make("img1_l", "mano", "hand", rng, side="left"),
            make("img2", "mano", "rhand", rng), make("img3_l", "mano", "lhand", rng)]
    path = write_pseudo_gt(tmp_path / "mano.json", recs)
    obj = json.loads(path.read_text())
    assert list(obj) == ["img1", "img2", "img3"]
    assert set(obj["img1"]) == {"right", "left"} and obj["img3"]["right"] is None
    assert len(obj["img1"]["right"]["pose"]) == 48 and obj["img1"]["left"]["id"] == "img1_l"
    back, _ = read_pseudo_gt(path)
    assert sorted(back, key=lambda r: r.sample_id) == sorted(recs, key=lambda r: r.sample_id)
    # an original release file (no "id"): entries split into <key>_r / <key>_l
    for side in obj["img1"].values():
        side.pop("id"), side.pop("part"), side.pop("quality"), side.pop("cam_param")
    (tmp_path / "release.json").write_text(json.dumps({"img1": obj["img1"]}))
    rel, meta = read_pseudo_gt(tmp_path / "release.json", as_dict=True)
    assert meta == {} and set(rel) == {"img1_r", "img1_l"}
    assert rel["img1_l"].side == "left" and rel["img1_l"].part == "hand"
    np.testing.assert_allclose(rel["img1_l"].params["hand_pose"], recs[1].params["hand_pose"], rtol=1e-6)
    # two samples on the same key and side
    clash = [make("x_r", "mano", "hand", rng, side="right"), make("x", "mano", "hand", rng, side="right")]
    with pytest.raises(PseudoGTError, match="'x_r' and 'x'"):
        write_pseudo_gt(tmp_path / "clash.json", clash)


def test_sidecar_meta(tmp_path):
    recs = records_for("smpl", "body", n=2)
    h = config_hash({"lr": 1e-4, "epochs": 10})
    assert h == config_hash({"epochs": 10, "lr": 1e-4}) and len(h) == 16
    path = write_pseudo_gt(tmp_path / "p.json", recs, {"method": "neuralannot", "config_hash": h})
    assert meta_path(path).name == "p.json.meta.json"
    meta = json.loads(meta_path(path).read_text())
    assert meta["model"] == "smpl" and meta["part"] == "body" and meta["method"] == "neuralannot"
    assert meta["config_hash"] == h and meta["created"] and meta["version"] and meta["num_samples"] == 2
    assert set(json.loads(path.read_text())) == {"s0", "s1"}  # no metadata inside the main file
    assert read_pseudo_gt(path)[1] == meta
    npz = write_pseudo_gt(tmp_path / "p.npz", recs, {"method": "x"})
    assert read_pseudo_gt(npz)[1]["method"] == "x"


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_a_kill_between_file_and_sidecar_never_pairs_new_records_with_old_meta(tmp_path, monkeypatch, suffix):
    import neuralannot.io.sidecar as sidecar

    path = write_pseudo_gt(tmp_path / f"p{suffix}", records_for("smpl", "body", n=2), {"method": "old"})
    assert read_pseudo_gt(path)[1]["method"] == "old"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before the sidecar was committed")

    monkeypatch.setattr(sidecar, "atomic_write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        write_pseudo_gt(path, records_for("smpl", "body", n=3, seed=1), {"method": "new"})
    monkeypatch.undo()
    records, meta = read_pseudo_gt(path)
    assert len(records) == 3 and json.loads(meta_path(path).read_text())["num_samples"] == 2
    assert meta == {}  # the stale sidecar (2 samples, method "old") is not returned with the new records
    write_pseudo_gt(path, records, {"method": "new"})
    assert read_pseudo_gt(path)[1]["method"] == "new" and read_pseudo_gt(path)[1]["num_samples"] == 3


def test_sidecars_without_a_digest_are_still_read(tmp_path):
    path = write_pseudo_gt(tmp_path / "p.json", records_for("smpl", "body", n=2), {"method": "m"})
    meta = json.loads(meta_path(path).read_text())
    del meta["data_sha256"]
    meta_path(path).write_text(json.dumps(meta))
    assert read_pseudo_gt(path)[1]["method"] == "m"


def test_part_writer_crash_resume_merge(tmp_path):
    parts = tmp_path / "parts"
    recs = records_for("anny", "body", n=10)
    w = PartWriter(parts, chunk_size=3, meta={"method": "neural"})
    for r in recs[:7]:
        w.write(r)
    # crash: record 7 is still buffered; a half-written temp chunk is left behind
    (parts / ".part-00002.jsonl.abc123.tmp").write_text('{"sample_id": "s6", "mod')
    del w
    assert sorted(os.listdir(parts)) == [".part-00002.jsonl.abc123.tmp", "meta.json", "part-00000.jsonl",
                                         "part-00001.jsonl"]
    assert done_ids(parts) == {f"s{i}" for i in range(6)}
    with PartWriter(parts, chunk_size=3) as w:  # resume
        assert w.done == done_ids(parts)
        for r in recs:
            if r.sample_id not in w.done:
                w.write(r)
        w.write(recs[0])  # an identical duplicate is fine
    assert (parts / "part-00003.jsonl").exists()
    out = merge_parts(parts, tmp_path / "all.npz")
    back, meta = read_pseudo_gt(out)
    assert back == recs and meta["method"] == "neural"
    # a conflicting duplicate names the id
    bad = make("s4", "anny", "body", np.random.default_rng(9))
    with PartWriter(parts) as w:
        w.write(bad)
    with pytest.raises(PseudoGTError, match="'s4' differs"):
        merge_parts(parts, tmp_path / "all.json")


def test_malformed_inputs(tmp_path):
    good = records_for("smpl", "body", n=1)[0]
    entry = json.loads(write_pseudo_gt(tmp_path / "g.json", [good]).read_text())["s0"]

    def bad(name, text):
        p = tmp_path / name
        p.write_text(text)
        return p

    cases = [
        (bad("trunc.json", '{"s0": {"smpl_param": '), ["trunc.json", "malformed JSON"]),
        (bad("deep.json", '{"s0": ' + "[" * 100_000 + "]" * 100_000 + "}"), ["deep.json", "malformed JSON"]),
        (bad("list.json", "[1, 2]"), ["list.json", "expected an object"]),
        (bad("nan.json", json.dumps({"s0": {**entry, "smpl_param": {**entry["smpl_param"],
                                                                   "trans": [0, float("nan"), 0]}}})),
         ["nan.json", "'s0'", "NaN"]),
        (bad("unk.json", json.dumps({"s7": {"smplh_param": entry["smpl_param"]}})),
         ["unk.json", "'s7'", "unknown model key"]),
        (bad("short.json", json.dumps({"s8": {"smpl_param": {**entry["smpl_param"], "pose": [0.0] * 69}}})),
         ["short.json", "'s8'", "72"]),
        (bad("miss.json", json.dumps({"s9": {"smpl_param": {"pose": [0.0] * 72}}})),
         ["miss.json", "'s9'", "shape"]),
        (bad("str.json", json.dumps({"s1": "oops"})), ["str.json", "'s1'", "object"]),
        (bad("conf.json", json.dumps({"s2": {**entry, "quality": {"confidence": 3}}})),
         ["conf.json", "'s2'", "confidence"]),
        (bad("cam.json", json.dumps({"s3": {**entry, "cam_param": {"focal": [1, 2, 3]}}})),
         ["cam.json", "'s3'", "camera"]),
        (bad("mano.json", json.dumps({"k": {"right": {"pose": [0.0] * 48, "trans": [0, 0, 0]}}})),
         ["mano.json", "'k_r'", "shape"]),
        (bad("junk.npz", "not a zip"), ["junk.npz", "not a pseudo-GT npz"]),
    ]
    for path, words in cases:
        with pytest.raises(PseudoGTError) as info:
            read_pseudo_gt(path)
        for w in words:
            assert w in str(info.value), (path.name, str(info.value))
    # a deeply nested sidecar is a malformed file too, not a RecursionError
    meta_path(tmp_path / "g.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PseudoGTError, match=r"g\.json\.meta\.json: malformed JSON"):
        read_pseudo_gt(tmp_path / "g.json")
    # NaN in an npz names the sample
    arrays = dict(np.load(write_pseudo_gt(tmp_path / "n.npz", records_for("smpl", "body", n=2))))
    arrays["param.trans"][1, 0] = np.nan
    np.savez(tmp_path / "n.npz", **arrays)
    with pytest.raises(PseudoGTError, match=r"n\.npz: sample 's1'.*NaN"):
        read_pseudo_gt(tmp_path / "n.npz")
    # a broken chunk file names the file and line
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "part-00000.jsonl").write_text(json.dumps(good.to_dict()) + "\n{bad\n")
    with pytest.raises(PseudoGTError, match=r"part-00000\.jsonl:2"):
        done_ids(parts)
    # bad records are refused when built
    with pytest.raises(PseudoGTError, match="'z'.*NaN"):
        PseudoGT("z", "smpl", "body", {**good.params, "shape": np.full(10, np.nan)})
    with pytest.raises(PseudoGTError, match="'z'.*body_pose"):
        PseudoGT("z", "smpl", "body", {**good.params, "body_pose": np.zeros((21, 3))})
    with pytest.raises(PseudoGTError, match="unknown model"):
        PseudoGT("z", "smplh", "body", good.params)
    with pytest.raises(PseudoGTError, match="suffix"):
        write_pseudo_gt(tmp_path / "x.pkl", [good])
    with pytest.raises(PseudoGTError, match="'s0' appears more than once"):
        write_pseudo_gt(tmp_path / "d.json", [good, good])


def test_to_body_params(tmp_path):
    recs = records_for("smplx", "wholebody", n=3)
    no_lhand = {k: v for k, v in recs[1].params.items() if k != "lhand_pose"}
    recs[1] = PseudoGT("s1", "smplx", "wholebody", no_lhand)
    p = to_body_params(recs, "smplx")
    assert p["body_pose"].shape == (3, 21, 3) and p["body_pose"].dtype == torch.float32
    assert torch.equal(p["lhand_pose"][1], torch.zeros(15, 3))
    assert torch.equal(p["trans"][2], torch.from_numpy(recs[2].params["trans"]))

    class Stub:  # what to_body_params reads from a BodyModel
        name, dtype, device = "smplx", torch.float64, torch.device("cpu")
        param_specs = {s.name: s for s in [
            ParamSpec("root_pose", (3,), "rotation"), ParamSpec("body_pose", (21, 3), "rotation"),
            ParamSpec("lhand_pose", (15, 3), "rotation", optional=True),
            ParamSpec("rhand_pose", (15, 3), "rotation", optional=True),
            ParamSpec("jaw_pose", (3,), "rotation", optional=True),
            ParamSpec("leye_pose", (3,), "rotation", optional=True),
            ParamSpec("reye_pose", (3,), "rotation", optional=True),
            ParamSpec("shape", (16,), "shape"), ParamSpec("expr", (10,), "expression", optional=True),
            ParamSpec("trans", (3,), "translation"),
        ]}

    q = to_body_params(recs, Stub())
    assert q["shape"].shape == (3, 16) and q["shape"].dtype == torch.float64
    assert torch.equal(q["shape"][0, 10:], torch.zeros(6, dtype=torch.float64))  # zero-padded betas
    with pytest.raises(PseudoGTError, match="not smpl records"):
        to_body_params(recs, "smpl")
    back, _ = read_pseudo_gt(write_pseudo_gt(tmp_path / "r.npz", recs))
    assert torch.equal(to_body_params(back)["lhand_pose"], p["lhand_pose"])
