"""Failure-proof operation: SIGKILL mid-run then resume (same result, no partial files), and bad
inputs through the CLI (one-line error naming file and sample, exit code 2, no traceback; --skip-bad)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from neuralannot.cli import app
from neuralannot.data.crop_cache import check_crop_cache
from neuralannot.io.pseudo_gt import PseudoGT, read_pseudo_gt

pytestmark = pytest.mark.anny

#: Frozen ImageNet EfficientNet-Lite0 on 64-px crops: ~30 steps/s on one core, a 14 MB checkpoint.
TINY = """backbone: efficientnet_lite0
backbone_weights: imagenet
freeze_backbone: true
input_size: 64
batch_size: 8
epochs: {epochs}
head_hidden: [32]
joint_encoder_dim: 32
checkpoint_every: 1
plateau_period: 1
lr: 1.0e-3
"""
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
BAD_ID = "synth_mocap/0000001"  # the sample (line 2 of shard 0) every bad variant breaks


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from neuralannot.data.synthetic.generator import generate

    root = tmp_path_factory.mktemp("reliability")
    generate("mocap", 24, root / "mocap", seed=5, workers=1, shard_size=12, image_size=64, masks=False,
             progress=False)  # fmt: skip
    for name, epochs in (("long", 30), ("short", 1)):
        (root / f"{name}.yaml").write_text(TINY.format(epochs=epochs))
    return root


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "neuralannot.cli", *map(str, args)]


@pytest.fixture(scope="module")
def trained(synth):
    """An uninterrupted `train` run: the reference for the kill test and the model for `predict`."""
    work = synth / "work_straight"
    cmd = cli("train", "--data", synth / "mocap", "--config", synth / "long.yaml", "--work-dir", work)
    subprocess.run(cmd, check=True, env=ENV, capture_output=True, timeout=300)
    (ckpt,) = work.glob("*/checkpoint.pt")
    return ckpt


def kill_when(cmd: list[str], ready, timeout: float = 120.0) -> None:
    """Start ``cmd``, SIGKILL it as soon as ``ready()`` is true; fail if it ended on its own first."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_end = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < t_end, "timed out waiting for the kill point"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def assert_no_partial_files(root: Path) -> int:
    """Every file under ``root`` except atomic-write temp files (``.<name>.*.tmp``), the crop cache's
    lock files and its resumable build (``.<key>.npy.partial``) parses fully."""
    n = 0
    for p in sorted(root.rglob("*")):
        if not p.is_file() or (p.name.startswith(".") and p.name.endswith((".tmp", ".lock", ".partial"))):
            continue
        if p.suffix == ".pt":
            assert "model" in torch.load(p, map_location="cpu", weights_only=True)
        elif p.suffix == ".jsonl":
            lines = p.read_text().splitlines()
            assert lines and all(PseudoGT.from_dict(json.loads(line)) for line in lines)
        elif p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".npy":  # a crop cache: complete and matching its index's checksums
            index = json.loads(p.with_suffix(".json").read_text())
            assert check_crop_cache(p, p.with_suffix(".json"), p.stem, index["n"], index["size"]) is None
        else:
            raise AssertionError(f"unexpected file {p}")
        n += 1
    return n


def test_train_killed_mid_run_resumes_to_identical_weights(synth, trained):
    work = synth / "work_killed"
    cmd = cli("train", "--data", synth / "mocap", "--config", synth / "long.yaml", "--work-dir", work)
    ckpt = work / trained.parent.name / "checkpoint.pt"
    kill_when(cmd, ckpt.exists)
    assert assert_no_partial_files(work) == 3  # the checkpoint, the crop cache and its index
    total = torch.load(trained, map_location="cpu", weights_only=True)
    mid = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert 0 < mid["state"]["global_step"] < total["state"]["global_step"]  # killed mid-training
    subprocess.run(cmd, check=True, env=ENV, capture_output=True, timeout=300)
    resumed = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert resumed["state"] == total["state"]  # same steps and the same loss history
    assert resumed["model"].keys() == total["model"].keys()
    for k, v in total["model"].items():
        torch.testing.assert_close(resumed["model"][k], v, rtol=0, atol=0, msg=k)


def enlarge(src: Path, dst: Path, copies: int) -> int:
    """A shard folder with ``copies`` x the samples of ``src`` (same images and joints, fresh ids)."""
    meta = json.loads((src / "meta.json").read_text())
    dst.mkdir()
    n = 0
    with open(dst / "shard-00000.jsonl", "w") as f:
        for k in range(copies):
            for shard in meta["shards"]:
                for line in (src / shard).read_text().splitlines():
                    raw = json.loads(line)
                    raw.update(id=f"{raw['id']}-{k}", image=str(src / raw["image"]))
                    f.write(json.dumps(raw) + "\n")
                    n += 1
    (dst / "meta.json").write_text(json.dumps(dict(meta, num_samples=n, shards=["shard-00000.jsonl"])))
    return n


def test_predict_killed_mid_run_resumes_to_identical_output(synth, trained, tmp_path):
    data = tmp_path / "x10"
    n = enlarge(synth / "mocap", data, 10)

    def cmd(work: Path, out: Path) -> list[str]:
        return cli("predict", "--data", data, "--checkpoint", trained, "--out", out, "--work-dir", work,
                   "--batch-size", 4, "--chunk-size", 6, "--allow-outside-root")  # fmt: skip

    straight = tmp_path / "straight"
    subprocess.run(cmd(straight, straight / "out.json"), check=True, env=ENV, capture_output=True,
                   timeout=300)  # fmt: skip
    work, out = tmp_path / "killed", tmp_path / "killed" / "out.json"
    config_dir = work / trained.parent.name.split("-")[0]  # predict: <config digest>/parts/<key>/rank0

    def parts_written() -> list[Path]:
        return list(config_dir.glob("parts/*/rank0/part-*.jsonl"))

    kill_when(cmd(work, out), lambda: len(parts_written()) >= 3)
    assert assert_no_partial_files(work) >= 3
    assert not out.exists()
    subprocess.run(cmd(work, out), check=True, env=ENV, capture_output=True, timeout=300)
    ids = [json.loads(line)["sample_id"] for p in parts_written() for line in p.open()]
    assert len(ids) == len(set(ids)) == n  # every sample annotated exactly once
    got, _ = read_pseudo_gt(out)
    want, _ = read_pseudo_gt(straight / "out.json")
    assert got == want  # same records in the same order, bit-identical values
    assert out.read_bytes() == (straight / "out.json").read_bytes()
    assert assert_no_partial_files(work) >= 3


def test_part_writer_removes_the_temp_chunk_of_a_killed_run(tmp_path):
    from neuralannot.io.pseudo_gt import PartWriter

    stale = tmp_path / ".part-00002.jsonl.x1y2z3.tmp"
    stale.write_text('{"sample_id": "a", "par')
    other = tmp_path / ".notes.txt.abc.tmp"
    other.write_text("not ours")
    PartWriter(tmp_path, chunk_size=2)
    assert not stale.exists() and other.exists()


# --- bad inputs through the CLI -------------------------------------------------------------------
def _edit_line(d: Path, fn, shard: int = 0, line: int = 1) -> None:
    """Replace one sample line of a shard by ``fn(sample dict)`` (a JSON string)."""
    p = d / f"shard-{shard:05d}.jsonl"
    lines = p.read_text().splitlines()
    lines[line] = fn(json.loads(lines[line]))
    p.write_text("\n".join(lines) + "\n")


def _set(key, i, j, value):
    def fn(raw):
        raw[key][i][j] = value
        return json.dumps(raw)  # NaN/Infinity literals, as Python writes them

    return fn


def _image(d: Path) -> Path:
    return d / "images" / "00000" / "0000001.jpg"


BAD = {  # name → (make the variant, text the error names, skip kind)
    "nan_joints_2d": (lambda d: _edit_line(d, _set("joints_2d", 0, 0, float("nan"))), "NaN/inf", "nonfinite"),
    "inf_joints_3d": (lambda d: _edit_line(d, _set("joints_3d", 3, 2, float("inf"))), "NaN/inf", "nonfinite"),
    "joint_count": (
        lambda d: _edit_line(d, lambda r: json.dumps(dict(r, joints_2d=r["joints_2d"][:-1]))),
        "shape (16, 3)",
        "shape",
    ),
    "corrupt_image": (lambda d: _image(d).write_bytes(b"not a jpeg" * 20), "0000001.jpg", "image"),
    "truncated_image": (
        lambda d: _image(d).write_bytes(_image(d).read_bytes()[:300]),
        "0000001.jpg",
        "image",
    ),
    "missing_image": (lambda d: _image(d).unlink(), "0000001.jpg", "image"),
}


@pytest.fixture
def variant(synth, tmp_path, request):
    make, text, kind = BAD[request.param]
    d = tmp_path / request.param
    shutil.copytree(synth / "mocap", d)
    make(d)
    return d, text, kind


def run_cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    out = result.output
    assert "Traceback" not in out and (result.exception is None or isinstance(result.exception, SystemExit))
    return result.exit_code, out


def error_line(out: str) -> str:
    (line,) = [ln for ln in out.splitlines() if ln.startswith("error:")]
    return line


@pytest.mark.parametrize("variant", sorted(BAD), indirect=True)
def test_bad_sample_fails_with_one_line_naming_sample_and_file(variant, synth, tmp_path):
    d, text, _ = variant
    code, out = run_cli("train", "--data", d, "--config", synth / "short.yaml", "--work-dir", tmp_path / "w")
    assert code == 2, out
    line = error_line(out)
    assert BAD_ID in line and text in line and str(d.name) in line


@pytest.mark.parametrize("variant", sorted(BAD), indirect=True)
def test_skip_bad_skips_and_counts_the_bad_sample(variant, synth, tmp_path):
    d, _, kind = variant
    code, out = run_cli("train", "--data", d, "--config", synth / "short.yaml", "--work-dir", tmp_path / "w",
                        "--skip-bad")  # fmt: skip
    assert code == 0, out
    assert f"skipped 1 bad sample(s) ({kind} 1)" in out and BAD_ID in out


def test_predict_skip_bad_annotates_all_the_rest(synth, trained, tmp_path):
    d = tmp_path / "two_bad"
    shutil.copytree(synth / "mocap", d)
    BAD["corrupt_image"][0](d)
    _edit_line(d, _set("joints_2d", 2, 1, float("nan")), shard=1, line=0)
    code, out = run_cli("predict", "--data", d, "--checkpoint", trained, "--out", tmp_path / "o.npz",
                        "--work-dir", tmp_path / "w", "--skip-bad")  # fmt: skip
    assert code == 0, out
    assert "annotated 22 samples" in out and "skipped 2 bad sample(s) (image 1, nonfinite 1)" in out
    records, _ = read_pseudo_gt(tmp_path / "o.npz")
    assert len(records) == 22 and BAD_ID not in {r.sample_id for r in records}


def test_unreadable_images_are_dropped_and_counted(synth, tmp_path):
    from neuralannot.data.crops import drop_unreadable_images
    from neuralannot.data.loading import load_samples

    d = tmp_path / "d"
    shutil.copytree(synth / "mocap", d)
    samples, report = load_samples(d, "body")
    _image(d).write_bytes(b"garbage")
    samples[5].image = None
    kept = drop_unreadable_images(samples, report)
    assert [s.id for s in kept] == [s.id for i, s in enumerate(samples) if i not in (1, 5)]
    assert report.skipped == {"image": 2}


@pytest.mark.parametrize(
    "make, names",
    [
        (lambda d: (d / "empty.json").write_text(""), "empty.json"),
        (lambda d: (d / "bad.json").write_text('{"dataset": "x", "samples": [{"id": '), "bad.json"),
        (lambda d: (d / "list.json").write_text("[1, 2]"), "list.json"),
    ],
    ids=["empty", "malformed", "not_an_object"],
)
def test_bad_dataset_file_fails_with_one_line(make, names, synth, tmp_path):
    make(tmp_path)
    (path,) = [p for p in tmp_path.iterdir() if p.name == names]
    code, out = run_cli("annotate", "--data", path, "--out", tmp_path / "o.json",
                        "--config", synth / "short.yaml", "--work-dir", tmp_path / "w")  # fmt: skip
    assert code == 2, out
    assert names in error_line(out)


def test_malformed_shard_line_names_file_and_line_or_is_skipped(synth, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(synth / "mocap", d)
    p = d / "shard-00000.jsonl"
    lines = p.read_text().splitlines()
    p.write_text("\n".join([lines[0], lines[1][:70], *lines[2:]]) + "\n")
    args = ["train", "--data", d, "--config", synth / "short.yaml", "--work-dir", tmp_path / "w"]
    code, out = run_cli(*args)
    assert code == 2 and "shard-00000.jsonl" in error_line(out) and "line 2" in error_line(out)
    code, out = run_cli(*args, "--skip-bad")
    assert code == 0 and "skipped 1 bad sample(s) (malformed_json 1)" in out


@pytest.mark.parametrize("model", ["missing", "garbage"])
def test_bad_body_model_file_fails_with_one_line(model, synth, tmp_path):
    path = tmp_path / "nonexistent.pkl"
    if model == "garbage":
        path = tmp_path / "SMPL_NEUTRAL.pkl"
        path.write_bytes(b"\x80\x04garbage, not a pickle")
    common = ["--data", synth / "mocap", "--out", tmp_path / "o.json", "--body-model", path]
    for args in (["annotate", "--config", synth / "short.yaml", "--work-dir", tmp_path / "w"], ["fit"]):
        code, out = run_cli(*args, *common)
        assert code == 2, out
        assert path.name in error_line(out)


def test_bad_checkpoint_fails_with_one_line(synth, tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    out_file = tmp_path / "o.npz"
    code, out = run_cli("predict", "--data", synth / "mocap", "--checkpoint", ckpt, "--out", out_file)
    assert code == 2 and "checkpoint.pt" in error_line(out)
