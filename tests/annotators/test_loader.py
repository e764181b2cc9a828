"""The training DataLoader (annotators/loader.py): built once, persistent workers, the crop cache."""

from pathlib import Path

import pytest
import torch

from conftest import TINY
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.loader import crop_cache_dir, epoch_loader, loader_options
from neuralannot.annotators.pipeline import build_annotator, load_samples
from neuralannot.annotators.predict import predict
from neuralannot.annotators.training import DistInfo, epoch_batches, make_dataset, train
from neuralannot.data import crop_cache

pytestmark = pytest.mark.anny


def test_loader_options_and_cache_folder():
    assert loader_options(0, torch.device("cpu")) == {"num_workers": 0, "persistent_workers": False,
                                                      "pin_memory": False}  # fmt: skip
    cuda = loader_options(3, torch.device("cuda", 1))
    assert cuda["persistent_workers"] and cuda["pin_memory"]
    assert crop_cache_dir("auto", Path("w/run")) == Path("w/crops") and crop_cache_dir("auto", None) is None
    assert crop_cache_dir("off", Path("w/run")) is None and crop_cache_dir("/x/c", None) == Path("/x/c")
    with pytest.raises(ValueError, match="crop_cache"):
        AnnotatorConfig(crop_cache="")


def _epochs(loader, dataset_len, cfg, resume_at=0):
    """Every batch of two epochs, the first resumed at batch ``resume_at``."""
    out = []
    for epoch in range(2):
        batches = epoch_batches(dataset_len, cfg.batch_size, cfg.seed, epoch, DistInfo())
        loader.batch_sampler.set(batches[resume_at if epoch == 0 else 0 :])
        out += [dict(b) for b in loader]
    return out


def test_persistent_workers_serve_the_same_batches(mocap_set, tmp_path):
    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    model = build_annotator(AnnotatorConfig(mode="mocap", **TINY), samples[0].joint_set)
    dataset = make_dataset(model, samples, work_dir=tmp_path / "run", progress=False)
    assert dataset.crop_cache is not None and (tmp_path / "crops" / dataset.crop_cache.name).is_file()
    plain = _epochs(epoch_loader(dataset, 0, torch.device("cpu"), 0), len(dataset), model.cfg, resume_at=1)
    workers = epoch_loader(dataset, 2, torch.device("cpu"), 0)
    first = iter(workers)
    pooled = _epochs(workers, len(dataset), model.cfg, resume_at=1)
    assert workers._iterator is first  # the same worker processes served both epochs
    assert len(pooled) == len(plain) == 2 * len(dataset) // model.cfg.batch_size - 1
    for a, b in zip(plain, pooled, strict=True):
        assert a.keys() == b.keys() and a["image"].dtype == torch.uint8
        for k in a:
            assert a[k].equal(b[k]), k


def test_training_with_the_crop_cache_and_workers_matches_plain_training(mocap_set, tmp_path, monkeypatch):
    samples, _ = load_samples(mocap_set, "body", needs_3d=True)
    runs = {}
    for name, extra in {"plain": {"crop_cache": "off"}, "cached": {"num_workers": 2}}.items():
        model = build_annotator(AnnotatorConfig(mode="mocap", **TINY, **extra), samples[0].joint_set)
        runs[name] = (model, train(model, samples, tmp_path / name / "run", progress=False))
    assert not (tmp_path / "plain" / "crops").exists() and any((tmp_path / "cached" / "crops").glob("*.npy"))
    assert runs["plain"][1]["history"] == runs["cached"][1]["history"]
    plain, cached = runs["plain"][0].state_dict(), runs["cached"][0].state_dict()
    for k, v in plain.items():
        torch.testing.assert_close(v, cached[k], rtol=0, atol=0, msg=k)

    def no_build(*args):
        raise AssertionError("predict rebuilt the crop cache that training wrote")

    monkeypatch.setattr(crop_cache, "_build", no_build)
    model = runs["cached"][0]
    out = predict(model, samples, tmp_path / "p.json", tmp_path / "cached" / "run", progress=False)
    assert out["annotated"] == len(samples)
