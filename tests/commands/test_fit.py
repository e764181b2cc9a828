"""`neuralannot fit` end to end: SMPLify-X, EFT, hybrid, two-stage, SPIN and the stages write readable
pseudo-GTs."""

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from conftest import TINY
from neuralannot.cli import app
from neuralannot.io.pseudo_gt import read_pseudo_gt

pytestmark = pytest.mark.anny


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(dict(TINY, epochs=1)))
    return path


def _fit(*args):
    res = CliRunner().invoke(app, ["fit", *map(str, args)])
    assert res.exit_code == 0, res.output
    return res


def test_fit_methods_chain(mocap_set, tiny_config, tmp_path):  # noqa: F811
    common = ["--data", mocap_set, "--config", tiny_config, "--work-dir", tmp_path / "work", "--threads", 1]
    sx = ["--method", "smplifyx3d", "--data", mocap_set, "--iterations", 2, "--work-dir", tmp_path / "w"]
    _fit(*sx, "--out", tmp_path / "sx.npz")
    base, _ = read_pseudo_gt(tmp_path / "sx.npz")
    n = len(base)
    # the same command again reads the saved batches back (fits/ under --work-dir), fitting nothing
    (saved,) = (tmp_path / "w" / "fits").iterdir()
    assert saved.name.startswith("smplifyx3d-") and sorted(saved.glob("part-*.jsonl"))
    _fit(*sx, "--out", tmp_path / "sx2.npz")
    again, _ = read_pseudo_gt(tmp_path / "sx2.npz")
    assert [r.sample_id for r in again] == [r.sample_id for r in base]
    for a, b in zip(base, again, strict=True):
        assert all(np.allclose(a.params[k], b.params[k], atol=1e-6) for k in a.params), a.sample_id
    res = _fit("--method", "hybrid", "--out", tmp_path / "hy.json", "--iterations", 2, *common)
    assert "refined" in res.output
    hybrid, meta = read_pseudo_gt(tmp_path / "hy.json")
    assert len(hybrid) == n and meta["method"] == "hybrid"
    assert all(r.quality["method"] == "hybrid" and "hybrid" in r.quality for r in hybrid)
    assert meta["summary"]["scratch"] is False  # from 3D joints the hybrid refines only
    res = _fit("--method", "hybrid", "--out", tmp_path / "hs.json", "--iterations", 2, "--scratch", *common)
    _, meta = read_pseudo_gt(tmp_path / "hs.json")
    assert meta["summary"]["scratch"] is True and "own fit kept for" in res.output
    # the same one-stage network again from its pseudo-GT (--init) and its checkpoint (eft)
    run = next((tmp_path / "work").glob("*/checkpoint.pt"))
    _fit("--method", "eft", "--out", tmp_path / "eft.npz", "--checkpoint", run, "--iterations", 2, *common)
    eft, _ = read_pseudo_gt(tmp_path / "eft.npz")
    assert len(eft) == n and all(r.quality["method"] == "eft-mocap" for r in eft)
    _fit("--method", "two-stage", "--out", tmp_path / "two.npz", "--init", tmp_path / "hy.json", *common)
    two, _ = read_pseudo_gt(tmp_path / "two.npz")
    assert sorted(r.sample_id for r in two) == sorted(r.sample_id for r in base)
    # the wrist stage over any pseudo-GT (SMPLify-X's here); this set has no masks: records unchanged
    _fit(
        "--method",
        "wrists",
        "--out",
        tmp_path / "wr.json",
        "--init",
        tmp_path / "sx.npz",
        "--iterations",
        2,
        *common,
    )
    wrists, meta = read_pseudo_gt(tmp_path / "wr.json", as_dict=True)
    assert meta["method"] == "wrists" and meta["summary"]["refined"] == 0
    assert all((wrists[r.sample_id].params["body_pose"] == r.params["body_pose"]).all() for r in base)
    # the joint refit over any pseudo-GT from 3D joints (SMPLify-X's here): closer to the joints
    jr = tmp_path / "jr.json"
    _fit("--method", "joints", "--out", jr, "--init", tmp_path / "sx.npz", "--iterations", 20, *common)
    refit, meta = read_pseudo_gt(tmp_path / "jr.json")
    assert meta["method"] == "joints" and meta["summary"]["refined"] > 0
    for r in refit:
        if "joint_refine" in r.quality:
            assert r.quality["joint_refine"]["err_mm"] < r.quality["joint_refine"]["err0_mm"]
    # without --init the annotator's records (its network reused here) are refitted once: the refit
    # starts from the network's own joint error, not from records that already ended with it
    _fit("--method", "joints", "--out", tmp_path / "jn.json", "--iterations", 20, *common)
    own, meta = read_pseudo_gt(tmp_path / "jn.json")
    assert meta["method"] == "joints" and len(own) == n and meta["summary"]["refined"] > 0
    for r in own:
        if "joint_refine" in r.quality:
            assert r.quality["joint_refine"]["err0_mm"] == pytest.approx(r.quality["joint_err_mm"], rel=1e-3)


def test_fit_rejects_unknown_method_and_missing_init(mocap_set, tmp_path):  # noqa: F811
    res = CliRunner().invoke(app, ["fit", "--method", "magic", "--data", str(mocap_set), "--out", "x.npz"])
    assert res.exit_code == 2 and "--method must be one of" in res.output
    bad = tmp_path / "none.json"
    res = CliRunner().invoke(app, ["fit", "--method", "hybrid", "--data", str(mocap_set), "--out",
                                   str(tmp_path / "o.npz"), "--init", str(bad)])  # fmt: skip
    assert res.exit_code == 2 and "none.json" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["fit", "--method", "smplifyx", "--data", str(mocap_set), "--out",
                                   str(tmp_path / "o.npz"), "--no-scratch"])  # fmt: skip
    assert res.exit_code == 2 and "belongs to the hybrid" in res.output
    # the mask term belongs to the 3D fits: SMPLify-X from 3D joints and the hybrid
    res = CliRunner().invoke(app, ["fit", "--method", "smplifyx", "--data", str(mocap_set), "--out",
                                   str(tmp_path / "o.npz"), "--silhouette", "10"])  # fmt: skip
    assert res.exit_code == 2 and "--silhouette" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["fit", "--method", "hybrid", "--data", str(mocap_set), "--out",
                                   str(tmp_path / "o.npz"), "--silhouette", "-1"])  # fmt: skip
    assert res.exit_code == 2 and "--silhouette must be >= 0" in res.output
    # from 2D joints the hybrid has no mask term: refused before any network is trained
    work = tmp_path / "work2d"
    res = CliRunner().invoke(app, ["fit", "--method", "hybrid", "--joints", "2d", "--data", str(mocap_set),
                                   "--out", str(tmp_path / "o.npz"), "--work-dir", str(work),
                                   "--silhouette", "10"])  # fmt: skip
    assert res.exit_code == 2 and "needs 3D joints" in res.output and not list(work.glob("*/checkpoint.pt"))


def test_fit_face_size_refines_any_face_pseudo_gt(tmp_path_factory, tmp_path):
    from conftest import synth_set

    faces = synth_set(tmp_path_factory, "face", 4, seed=2)
    common = ["--data", faces, "--part", "face", "--threads", 1, "--work-dir", tmp_path / "w"]
    _fit("--method", "smplifyx", "--out", tmp_path / "sx.npz", "--iterations", 5, *common)
    _fit("--method", "face-size", "--init", tmp_path / "sx.npz", "--out", tmp_path / "fs.json",
         "--iterations", 30, *common)  # fmt: skip
    base, _ = read_pseudo_gt(tmp_path / "sx.npz", as_dict=True)
    staged, meta = read_pseudo_gt(tmp_path / "fs.json", as_dict=True)
    assert meta["method"] == "face-size" and sorted(staged) == sorted(base)
    assert meta["summary"]["refined"] > 0
    for sid, r in staged.items():
        # only the size (phenotypes) and the rigid head move
        assert np.array_equal(r.params["expression"], base[sid].params["expression"])
        if "face_refine" in r.quality:
            assert r.quality["face_refine"]["err_px"] < r.quality["face_refine"]["err0_px"]
            assert not np.allclose(r.params["phenotype"], base[sid].params["phenotype"])


def test_fit_face_size_needs_faces(mocap_set, tmp_path):  # noqa: F811
    res = CliRunner().invoke(app, ["fit", "--method", "face-size", "--data", str(mocap_set), "--out",
                                   str(tmp_path / "o.npz")])  # fmt: skip
    assert res.exit_code == 2 and "use --part face" in res.output and "Traceback" not in res.output
