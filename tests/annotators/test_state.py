"""Resumable state is keyed by content: other samples or another checkpoint never reuse it."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from conftest import REAL, TINY
from neuralannot.annotators.state import samples_digest, weights_digest
from neuralannot.data import load_dataset

TINY1 = dict(TINY, epochs=1)  # one epoch


@pytest.mark.skipif(not REAL.is_dir(), reason="tests/data/real is absent")
def test_samples_digest_follows_the_content_not_the_ids(tmp_path):
    shutil.copy(REAL / "h36m.json", tmp_path / "h36m.json")
    for name in json.loads((REAL / "h36m.json").read_text())["samples"]:
        shutil.copy(REAL / name["image"], tmp_path / name["image"])
    samples = list(load_dataset(tmp_path / "h36m.json"))
    base = samples_digest(samples)
    assert samples_digest(list(load_dataset(tmp_path / "h36m.json"))) == base  # same content: same key
    samples[1].joints_3d[3, 0] += 0.01
    assert samples_digest(samples) != base  # same ids, other joints
    samples[1].joints_3d[3, 0] -= 0.01
    assert samples_digest(samples) == base
    samples[2].bbox[0] += 1
    assert samples_digest(samples) != base
    samples[2].bbox[0] -= 1
    image = Path(samples[0].image)
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the image was replaced
    assert samples_digest(samples) != base
    assert samples_digest(samples, images=False) == samples_digest(samples, images=False)
    targets = {"shape": torch.zeros(4, 10)}
    assert samples_digest(samples, targets=targets) != samples_digest(samples)
    assert samples_digest(samples[::-1]) != samples_digest(samples)


def test_weights_digest_changes_with_any_weight():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    d = weights_digest(net)
    assert weights_digest(net) == d
    with torch.no_grad():
        net[0].weight[0, 0] += 1e-6
    assert weights_digest(net) != d
    net[1].running_mean += 1.0
    assert weights_digest(net) != d


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory):
    """A synthetic MoCap set and a copy with the same ids and images but other 3D joints."""
    from neuralannot.data.synthetic.generator import generate

    root = tmp_path_factory.mktemp("state")
    first = root / "first"
    generate("mocap", 12, first, seed=3, shard_size=12, image_size=64, masks=False, progress=False)
    second = root / "second"
    shutil.copytree(first, second)
    shard = second / "shard-00000.jsonl"
    lines = []
    for line in shard.read_text().splitlines():
        raw = json.loads(line)
        raw["joints_3d"] = [[x * 1.05, y * 1.05, z] for x, y, z in raw["joints_3d"]]
        lines.append(json.dumps(raw))
    shard.write_text("\n".join(lines) + "\n")
    return first, second


@pytest.mark.anny
def test_annotate_on_other_samples_with_the_same_ids_is_not_stale(two_sets, tmp_path):
    from neuralannot.annotators.config import AnnotatorConfig
    from neuralannot.annotators.pipeline import run_annotate

    first, second = two_sets
    cfg = AnnotatorConfig(mode="mocap", inputs="joints", **TINY1)
    work = tmp_path / "work"
    run_annotate(first, tmp_path / "a.json", cfg, work, progress=False)
    s = run_annotate(second, tmp_path / "b.json", cfg, work, progress=False)
    assert s["train"]["samples_seen"] > 0 and s["annotate"]["skipped_done"] == 0  # nothing reused
    fresh = run_annotate(second, tmp_path / "fresh.json", cfg, tmp_path / "other_work", progress=False)
    assert fresh["annotate"]["annotated"] == 12
    assert (tmp_path / "b.json").read_bytes() == (tmp_path / "fresh.json").read_bytes()
    assert (tmp_path / "a.json").read_bytes() != (tmp_path / "b.json").read_bytes()
    again = run_annotate(second, tmp_path / "c.json", cfg, work, progress=False)
    assert again["train"]["samples_seen"] == 0 and again["annotate"]["skipped_done"] == 12  # same: resumed
    nores = run_annotate(second, tmp_path / "d.json", cfg, work, progress=False, resume=False)
    assert nores["train"]["samples_seen"] > 0 and nores["annotate"]["skipped_done"] == 0


@pytest.mark.anny
def test_predict_with_another_checkpoint_is_not_stale(two_sets, tmp_path):
    from neuralannot.annotators.config import AnnotatorConfig
    from neuralannot.annotators.pipeline import build_annotator, load_samples
    from neuralannot.annotators.predict import predict
    from neuralannot.annotators.training import train
    from neuralannot.io.pseudo_gt import read_pseudo_gt

    first, _ = two_sets
    samples, _ = load_samples(first, "body", needs_3d=True)
    cfg = AnnotatorConfig(mode="mocap", inputs="joints", **TINY1)
    early = build_annotator(cfg, samples[0].joint_set)
    full = build_annotator(cfg, samples[0].joint_set)
    train(early, samples[:8], tmp_path / "early", progress=False)  # same config, another checkpoint
    train(full, samples, tmp_path / "full", progress=False)
    work = tmp_path / "predict_work"
    predict(early, samples, tmp_path / "early.json", work, progress=False)
    res = predict(full, samples, tmp_path / "full.json", work, progress=False)
    assert res["annotated"] == 12 and res["skipped_done"] == 0
    a, meta_a = read_pseudo_gt(tmp_path / "early.json")
    b, meta_b = read_pseudo_gt(tmp_path / "full.json")
    assert a != b and meta_a["prediction_key"] != meta_b["prediction_key"]
    # both files name the samples they were made from (eval/report/export warn on another set)
    from neuralannot.data.fingerprint import FINGERPRINT_KEY, other_samples

    assert meta_a[FINGERPRINT_KEY] == meta_b[FINGERPRINT_KEY]
    assert other_samples(meta_a, [r.sample_id for r in a], samples) is None
    assert predict(full, samples, tmp_path / "x.json", work, progress=False)["skipped_done"] == 12
    res = predict(full, samples, tmp_path / "y.json", work, progress=False, resume=False)
    assert res["annotated"] == 12 and res["skipped_done"] == 0
    assert read_pseudo_gt(tmp_path / "y.json")[0] == b
