"""scripts/gpu_bundle.py: packing the host's missing packages and unpacking them (no Anny needed)."""

import gzip
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpu_bundle():
    spec = importlib.util.spec_from_file_location("gpu_bundle", ROOT / "scripts" / "gpu_bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pack_then_unpack_restores_files_and_trims_anny_data(gpu_bundle, tmp_path, monkeypatch):
    src = tmp_path / "site-packages"
    files = {
        "anny/__init__.py": b"x = 1\n",
        "anny/data/kept.target.gz": gzip.compress(b"v 1 2 3\n" * 100),
        "anny/data/dropped.json": b"{}",
        "roma/__init__.py": b"",
    }
    for rel, blob in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(blob)
    by_dist = {"anny": ["anny/__init__.py", "anny/data/kept.target.gz", "anny/data/dropped.json"],
               "roma": ["roma/__init__.py"]}  # fmt: skip
    monkeypatch.setattr(gpu_bundle, "PACKAGES", [("anny", "anny"), ("roma", "roma")])
    monkeypatch.setattr(gpu_bundle, "_dist_files", lambda d: [((src / r).resolve(), r) for r in by_dist[d]])
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    keep = {str((src / "anny/data/kept.target.gz").resolve())}
    stats = gpu_bundle.pack_site(bundle / "site.tar.xz", keep)
    assert stats == {"anny": {"files": 2, "bytes": 6 + 800}, "roma": {"files": 1, "bytes": 0}}
    out = tmp_path / "site"
    assert gpu_bundle.unpack(bundle, out) == 3
    got = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert got == {"anny/__init__.py", "anny/data/kept.target.gz", "roma/__init__.py"}  # no .raw left
    assert gzip.decompress((out / "anny/data/kept.target.gz").read_bytes()) == b"v 1 2 3\n" * 100
    assert (out / "anny/__init__.py").read_bytes() == files["anny/__init__.py"]


def test_dist_files_lists_installed_sources_without_bytecode(gpu_bundle):
    listed = gpu_bundle._dist_files("roma")
    rels = [rel for _, rel in listed]
    assert "roma/__init__.py" in rels and all(p.is_file() for p, _ in listed)
    assert not any(r.endswith(".pyc") or "__pycache__" in r for r in rels)


def test_unpack_without_bundle_names_the_file(gpu_bundle, tmp_path):
    with pytest.raises(FileNotFoundError, match="site.tar.xz"):
        gpu_bundle.unpack(tmp_path, tmp_path / "site")
