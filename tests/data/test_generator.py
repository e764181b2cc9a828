"""Synthetic benchmark generator: format, GT consistency, determinism, resume and crash safety."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REAL
from neuralannot.bodies.joint_names import num_joints
from neuralannot.data.adapters.folder import DatasetFormatError, load_dataset
from neuralannot.data.synthetic import generator, shard_maker
from neuralannot.data.synthetic.generator import SynthError, generate
from neuralannot.data.synthetic.scene import KINDS

pytestmark = pytest.mark.anny

N, SHARD = 16, 8


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return {k: (root / k, generate(k, N, root / k, seed=5, shard_size=SHARD, progress=False)) for k in KINDS}


def files(d: Path) -> dict[str, bytes]:
    """Every file of a dataset folder (relative path → bytes), meta.json without its timing-free keys."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def project(x: np.ndarray, K: np.ndarray) -> np.ndarray:
    return x[:, :2] / x[:, 2:] * K[[0, 1], [0, 1]] + K[:2, 2]


@pytest.mark.parametrize("kind", list(KINDS))
def test_format_and_noise_model(datasets, kind):
    out, summary = datasets[kind]
    spec = KINDS[kind]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and meta["num_samples"] == N and meta["joint_set"] == spec.joint_set
    assert summary["generated"] == N and summary["shards"] == 2
    samples = list(load_dataset(out, check_images="verify"))
    assert len(samples) == N and len({s.id for s in samples}) == N
    J = num_joints(spec.joint_set)
    for s in samples:
        assert s.joints_2d.shape == (J, 3) and s.image_size == (256, 256)
        assert s.gt["model"] == "anny" and s.gt["joint_set"] == spec.joint_set
        gt3 = np.array(s.gt["joints_3d"])
        uv_gt = project(gt3, s.K)
        vis = s.valid_2d
        assert vis.sum() >= 1
        if spec.with_3d:
            assert s.joints_3d.shape == (J, 4)
            v3 = s.valid_3d
            assert np.abs(s.joints_3d[v3, :3] - gt3[v3]).max() < 6 * spec.noise_3d_m
            # 2D = projection of the (noisy) 3D joints, exactly up to rounding
            assert (
                np.abs(s.joints_2d[vis, :2] - project(s.joints_3d[vis, :3].astype(float), s.K)).max() < 0.01
            )
            assert not (vis & ~v3).any()
        else:
            assert s.joints_3d is None
            ok = vis.copy()
            if "swapped" in s.extra:
                ok[s.extra["swapped"]] = False
            err = np.linalg.norm(s.joints_2d[ok, :2] - uv_gt[ok], axis=1)
            assert err.max() <= 5 * s.extra["sigma_px"] + 0.01
        assert (s.joints_2d[~vis] == 0).all()
        x, y, w, h = s.bbox
        assert 0 <= x and 0 <= y and x + w <= 256.01 and y + h <= 256.01 and w > 1 and h > 1
    if kind == "hand":
        assert {s.part for s in samples} <= {"rhand", "lhand"}
        assert all(s.extra["hand_type"] == ("left" if s.part == "lhand" else "right") for s in samples)


@pytest.mark.parametrize("kind", list(KINDS))
def test_gt_params_reproduce_render(datasets, kind):
    """The stored GT parameters recompute the GT joints and a silhouette that matches the mask."""
    from PIL import Image

    from neuralannot.bodies import load_body_model
    from neuralannot.render import MeshRenderer

    out, _ = datasets[kind]
    samples = list(load_dataset(out))[:4]
    renderer = MeshRenderer(256, 256)
    models = {}
    for s in samples:
        part = s.gt["part"]
        model = models.setdefault(part, load_body_model("anny", part=part))
        params = {k: torch.tensor([v], dtype=torch.float32) for k, v in s.gt["params"].items()}
        with torch.no_grad():
            o = model(params)
            kp = model.keypoints(o, s.joint_set)[0].numpy()
        assert np.abs(kp - np.array(s.gt["joints_3d"])).max() < 2e-4
        sil = renderer.render(o.vertices[0].numpy(), model.faces.numpy(), s.K).mask
        mask = np.asarray(Image.open(out / s.extra["mask"])).astype(bool)
        assert mask.any()
        assert (mask & sil).sum() >= 0.99 * mask.sum()  # visible subject pixels lie on the GT silhouette
        if s.extra["occluders"] == 0:
            assert (mask & sil).sum() / (mask | sil).sum() > 0.99
    renderer.release()


def test_deterministic_across_runs(datasets, tmp_path):
    generator._maker.cache_clear()  # a fresh model, renderer and background pool
    generate("wild", N, tmp_path / "again", seed=5, shard_size=SHARD, progress=False)
    assert files(tmp_path / "again") == files(datasets["wild"][0])
    generate("wild", N, tmp_path / "other", seed=6, shard_size=SHARD, progress=False)
    assert (tmp_path / "other" / "shard-00000.jsonl").read_bytes() != (
        datasets["wild"][0] / "shard-00000.jsonl"
    ).read_bytes()


def test_resume_regenerates_incomplete_shard(datasets, tmp_path):
    ref = datasets["wild"][0]
    out = tmp_path / "resumed"
    shutil.copytree(ref, out)
    (out / "shard-00001.done").unlink()
    jsonl = out / "shard-00001.jsonl"
    jsonl.write_text(jsonl.read_text().splitlines()[0] + "\n")  # a partial file
    for p in (out / "images" / "00001").iterdir():
        p.unlink()
    summary = generate("wild", N, out, seed=5, shard_size=SHARD, progress=False)
    assert summary["shards_skipped"] == 1 and summary["generated"] == SHARD
    assert files(out) == files(ref)
    with pytest.raises(SynthError, match="different synthetic dataset"):
        generate("wild", N, out, seed=7, shard_size=SHARD, progress=False)


def test_complete_set_needs_no_renderer(datasets, tmp_path, monkeypatch):
    """Re-running a finished set builds no model or GL context (a host without a renderer reads it)."""
    out = tmp_path / "done"
    shutil.copytree(datasets["wild"][0], out)

    def no_maker(*args):
        raise AssertionError("a complete set built a shard maker")

    monkeypatch.setattr(generator, "_maker", no_maker)
    summary = generate("wild", N, out, seed=5, shard_size=SHARD, progress=False)
    assert summary["generated"] == 0 and summary["shards_skipped"] == 2
    assert files(out) == files(datasets["wild"][0])


def test_crash_leaves_no_partial_shard(datasets, tmp_path, monkeypatch):
    """A failure while writing shard 1 leaves shard 0 complete and shard 1 invisible; a rerun finishes."""
    out = tmp_path / "crash"
    real, calls = shard_maker._sample_line, []

    def failing(raw):
        calls.append(1)
        if len(calls) == SHARD + 3:  # three lines into shard 1's temporary file
            raise RuntimeError("simulated kill")
        return real(raw)

    monkeypatch.setattr(shard_maker, "_sample_line", failing)
    with pytest.raises(RuntimeError, match="simulated kill"):
        generate("wild", N, out, seed=5, shard_size=SHARD, progress=False)
    names = sorted(p.name for p in out.iterdir())
    assert "shard-00000.jsonl" in names and "shard-00000.done" in names
    assert not any(n.startswith("shard-00001") or n.startswith(".") for n in names)
    assert not json.loads((out / "meta.json").read_text())["complete"]
    with pytest.raises(DatasetFormatError, match="re-run the same synth command"):  # not a smaller set
        list(load_dataset(out))
    monkeypatch.setattr(shard_maker, "_sample_line", real)
    generate("wild", N, out, seed=5, shard_size=SHARD, progress=False)
    assert files(out) == files(datasets["wild"][0])


def test_bad_arguments(tmp_path):
    with pytest.raises(SynthError, match="unknown kind"):
        generate("nope", 4, tmp_path)
    with pytest.raises(SynthError):
        generate("wild", 0, tmp_path)


def test_out_must_be_empty_or_a_synth_folder_of_the_same_settings(tmp_path):
    shutil.copy(REAL / "300w.json", tmp_path / "300w.json")
    with pytest.raises(SynthError, match="not empty and is not a synth folder"):
        generate("wild", 4, tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["300w.json"]  # no meta.json hiding the dataset
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "meta.json").write_text(json.dumps({"schema_version": 1, "dataset": "x"}))
    with pytest.raises(SynthError, match="synth did not write"):
        generate("wild", 4, tmp_path / "shards", progress=False)
    with pytest.raises(SynthError, match="is a file"):
        generate("wild", 4, tmp_path / "300w.json", progress=False)


def test_kind_seed_streams_are_fixed_ids_not_the_order_of_kinds():
    """A set is a function of (seed, kind id, shard): the ids of the kinds whose sets BENCHMARKS.md
    quotes must never move (inserting a kind into ``KINDS`` once regenerated every later kind's sets)."""
    assert set(shard_maker.KIND_IDS) == set(KINDS)
    assert len(set(shard_maker.KIND_IDS.values())) == len(KINDS)
    historical = {"mocap": 0, "wild": 1, "hand": 2, "face": 3, "wholebody": 4, "face3d": 5}
    assert {k: shard_maker.KIND_IDS[k] for k in historical} == historical
