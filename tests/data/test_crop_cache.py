"""The disk crop cache (data/crop_cache.py) and CropDataset reading it (data/crops.py)."""

import json
import logging
import os

import numpy as np
import pytest
from PIL import Image

from neuralannot.data import crop_cache
from neuralannot.data.crop_cache import crop_key, ensure_crop_cache, open_crops
from neuralannot.data.crops import CropDataset
from neuralannot.data.sample import Sample
from neuralannot.data.transforms import crop_affine, load_image, warp_affine

SIZE = 32


def _dataset(folder, n=5):
    """Noise images of varied sizes with hand boxes; odd samples are left hands (mirrored crops)."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        w, h = 60 + 7 * i, 50 + 5 * i
        path = folder / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        j2 = np.concatenate([rng.uniform(5, 40, (21, 2)), np.ones((21, 1))], 1)
        bbox = [3.0 + i, 4.0, w / 2 + i, h / 3]
        part = "lhand" if i % 2 else "rhand"
        samples.append(Sample(f"s{i}", str(path), bbox, part, "hand21", j2, None, None, (w, h)))
    return samples


def _direct(s):
    """The crop computed from the image file, without the cache code."""
    crop = warp_affine(load_image(s.image), crop_affine(s.bbox, (SIZE, SIZE)), (SIZE, SIZE))
    return crop[:, ::-1] if s.part == "lhand" else crop


def test_cached_crops_equal_the_direct_crops_and_feed_the_dataset(tmp_path):
    samples = _dataset(tmp_path)
    path = ensure_crop_cache(samples, SIZE, tmp_path / "crops", progress=False)
    crops = open_crops(path)
    assert crops.shape == (len(samples), SIZE, SIZE, 3) and crops.dtype == np.uint8
    for s, row in zip(samples, crops, strict=True):
        np.testing.assert_array_equal(row, _direct(s))
    cached = CropDataset(samples, SIZE, crop_cache=path)
    plain = CropDataset(samples, SIZE, cache_images=False)
    for i in range(len(samples)):
        a, b = cached[i], plain[i]
        assert a.keys() == b.keys() and a["image"].dtype == b["image"].dtype
        for k in a:
            assert a[k].equal(b[k]), k


def test_a_second_run_reuses_the_file(tmp_path, monkeypatch):
    samples = _dataset(tmp_path)
    path = ensure_crop_cache(samples, SIZE, tmp_path / "crops", progress=False)
    before = path.stat()
    built = []
    monkeypatch.setattr(crop_cache, "_build", lambda *a: built.append(a))
    assert ensure_crop_cache(samples, SIZE, tmp_path / "crops", progress=False) == path
    assert not built and (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_changed_box_or_image_makes_a_new_cache(tmp_path):
    samples = _dataset(tmp_path)
    first = ensure_crop_cache(samples, SIZE, tmp_path / "crops", progress=False)
    samples[2].bbox = samples[2].bbox + np.float32(1.0)
    moved = ensure_crop_cache(samples, SIZE, tmp_path / "crops", progress=False)
    assert moved != first
    np.testing.assert_array_equal(open_crops(moved)[2], _direct(samples[2]))
    w, h = samples[3].image_size
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(samples[3].image)  # same size, new pixels
    os.utime(samples[3].image, ns=(1, 1))
    redrawn = ensure_crop_cache(samples, SIZE, tmp_path / "crops", progress=False)
    assert redrawn not in (first, moved)
    np.testing.assert_array_equal(open_crops(redrawn)[3], 0)


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "index"])
def test_a_damaged_cache_is_rebuilt_with_a_warning(tmp_path, caplog, damage):
    samples = _dataset(tmp_path)
    path = ensure_crop_cache(samples, SIZE, tmp_path / "crops", progress=False)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(data[: len(data) - 100])
    elif damage == "flip_byte":
        data[-SIZE * SIZE] ^= 0xFF
        path.write_bytes(data)
    else:
        path.with_suffix(".json").write_text('{"key": ')
    with caplog.at_level(logging.WARNING, logger="neuralannot.data.crop_cache"):
        again = ensure_crop_cache(samples, SIZE, tmp_path / "crops", progress=False)
    assert again == path and "rebuilding" in caplog.text
    for s, row in zip(samples, open_crops(again), strict=True):
        np.testing.assert_array_equal(row, _direct(s))


def test_a_killed_build_resumes_from_its_last_commit(tmp_path, monkeypatch):
    samples = _dataset(tmp_path, n=7)
    monkeypatch.setattr(crop_cache, "COMMIT_ROWS", 2)
    monkeypatch.setattr(crop_cache, "_RENDER_BATCH", 1)
    calls, real = [], crop_cache.render_crop

    def render(s, size):
        calls.append(s.id)
        if len(calls) == 6 and not os.environ.get("_RESUMED"):
            raise KeyboardInterrupt  # killed while rendering the 6th crop: rows 0-3 are committed
        return real(s, size)

    monkeypatch.setattr(crop_cache, "render_crop", render)
    with pytest.raises(KeyboardInterrupt):
        ensure_crop_cache(samples, SIZE, tmp_path / "crops", progress=False)
    key = crop_key(samples, SIZE)
    assert json.loads((tmp_path / "crops" / f".{key}.progress.json").read_text())["done"] == 4
    monkeypatch.setenv("_RESUMED", "1")
    calls.clear()
    path = ensure_crop_cache(samples, SIZE, tmp_path / "crops", progress=False)
    assert calls == [s.id for s in samples[4:]]
    for s, row in zip(samples, open_crops(path), strict=True):
        np.testing.assert_array_equal(row, _direct(s))
    assert sorted(p.name for p in (tmp_path / "crops").iterdir()) == sorted([f".{key}.lock", path.name,
                                                                            f"{key}.json"])  # fmt: skip


def test_no_cache_without_images(tmp_path):
    samples = _dataset(tmp_path, n=2)
    samples[1].image = None
    assert ensure_crop_cache(samples, SIZE, tmp_path / "crops", progress=False) is None
