"""Fingerprint of the pipeline's numbers, through the CLI only, to show that a refactor changed none.

``--src CHECKOUT/src`` goes on PYTHONPATH, so the script runs unchanged against older commits::

    python scripts/pipeline_fingerprint.py --src SRC --data /tmp/fp-data --work /tmp/fp-X --out X.json

synthesizes the sets into ``--data`` when missing (MoCap 48, wild 32 samples, fixed seeds; reuse one
``--data`` for every checkout so that only annotate/fit/eval vary), annotates both with a tiny config
(frozen EfficientNet-Lite0, 150 steps), fits 3D SMPLify-X on MoCap and 2D SMPLify-X on wild (30
iterations a stage, 1 thread), evaluates each pseudo-GT against the GT and writes one JSON: the digest
of the sets this checkout's ``synth`` makes (the generator, checked apart), every metric, the pseudo-GT
metadata (timings, paths left out), the SHA-256 of every pseudo-GT array and per-sample eval column,
and the npz paths. ``--compare A.json B.json [--report pair.json]`` prints the metric differences and
the max abs difference of every array (both npz loaded); exit 1 beyond ``--rtol``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

SETS = {"mocap": ("mocap", 48, 7), "wild": ("wild", 32, 8)}  # name: (kind, samples, seed)
TINY = """backbone: efficientnet_lite0
backbone_weights: imagenet
freeze_backbone: true
input_size: 128
batch_size: 16
lr: 1.0e-3
epochs: 1
min_steps: 150
plateau_period: 50
checkpoint_every: 1000
head_hidden: [64]
"""
#: pseudo-GT name: (set, CLI arguments after the command)
RUNS = {
    "annotate_mocap": ("mocap", ["annotate", "--mode", "mocap", "--no-resume"]),
    "annotate_wild": ("wild", ["annotate", "--mode", "wild", "--no-resume"]),
    "fit_smplifyx3d": ("mocap", ["fit", "--method", "smplifyx3d", "--iterations", "30", "--threads", "1"]),
    "fit_smplifyx2d": ("wild", ["fit", "--method", "smplifyx", "--iterations", "30", "--threads", "1"]),
}
#: keys that change from run to run (timings, paths, file digests of zip timestamps)
VOLATILE = {"created", "data", "pred", "wall_s", "samples_per_s", "seconds", "data_sha256", "work_dir"}
MARK = ".pipeline_fingerprint"


def _cli(src: Path, args: list[str], log: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(log, "w") as f:
        rc = subprocess.run(
            [sys.executable, "-m", "neuralannot.cli", *args], env=env, stdout=f, stderr=subprocess.STDOUT
        ).returncode
    if rc:
        sys.exit(f"{' '.join(args)} failed ({rc}); last lines of {log}:\n" + log.read_text()[-2000:])


def _out(cmd: list[str], **env) -> str:
    return subprocess.run(
        cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout.strip()


def _sha(a: np.ndarray) -> str:
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _set_sha(folder: Path) -> str:
    """SHA-256 of a synthetic set: meta, shards, images and masks (not the ``.done`` markers)."""
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file() and q.suffix not in (".done", ".log")):
        h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def _strip(d):
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if k not in VOLATILE}
    return d


def _csv_npz(path: Path, out: Path) -> None:
    """The per-sample eval table as arrays (ids as strings, every other column as float)."""
    rows = list(csv.DictReader(open(path)))
    cols = {k: [r[k] for r in rows] for k in (rows[0] if rows else {})}
    np.savez(
        out,
        **{
            k: np.array(v) if k == "id" else np.array([float(x or "nan") for x in v]) for k, v in cols.items()
        },
    )


def run(src: Path, data: Path, work: Path, out: Path) -> None:
    src, data, work = src.resolve(), data.resolve(), work.resolve()
    if work.exists() and any(work.iterdir()) and not (work / MARK).exists():
        sys.exit(f"{work} is not empty and not a fingerprint work folder")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / MARK).touch()
    data.mkdir(parents=True, exist_ok=True)
    where = _out(
        [sys.executable, "-c", "import neuralannot; print(neuralannot.__file__)"], PYTHONPATH=str(src)
    )
    if not Path(where).resolve().is_relative_to(src):
        sys.exit(f"PYTHONPATH={src} imports neuralannot from {where}, not from that checkout")
    commit = _out(["git", "-C", str(src), "rev-parse", "HEAD"])
    dirty = bool(_out(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"]))
    fp = {
        "commit": commit,
        "dirty": dirty,
        "src": str(src),
        **{k: {} for k in ("data", "synth", "metrics", "meta", "arrays")},
    }
    for name, (kind, n, seed) in SETS.items():
        for folder, key in ((data / name, "data"), (work / "synth" / name, "synth")):  # shared, own
            if not (folder / "meta.json").exists():
                folder.parent.mkdir(exist_ok=True)
                args = ["synth", "--kind", kind, "--n", str(n), "--seed", str(seed), "--out", str(folder)]
                _cli(src, args, folder.parent / f"synth_{name}.log")
            fp[key][name] = _set_sha(folder)
    (work / "tiny.yaml").write_text(TINY)
    for name, (set_name, args) in RUNS.items():
        pred, folder = work / f"{name}.npz", data / set_name
        _cli(
            src,
            [
                *args,
                "--data",
                str(folder),
                "--out",
                str(pred),
                "--work-dir",
                str(work / "work"),
                "--config",
                str(work / "tiny.yaml"),
            ],
            work / f"{name}.log",
        )
        ev, table = work / f"{name}.eval.json", work / f"{name}.eval.csv"
        _cli(
            src,
            ["eval", "--pred", str(pred), "--data", str(folder), "--json", str(ev), "--csv", str(table)],
            work / f"{name}.eval.log",
        )
        _csv_npz(table, work / f"{name}.eval.npz")
        fp["metrics"][name] = _strip(json.loads(ev.read_text()))
        fp["meta"][name] = _strip(json.loads(Path(f"{pred}.meta.json").read_text()))
        for label, path in ((name, pred), (f"{name}.eval", work / f"{name}.eval.npz")):
            with np.load(path, allow_pickle=False) as z:
                fp["arrays"][label] = {"npz": str(path), "sha256": {k: _sha(z[k]) for k in z.files}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fp, indent=1) + "\n")
    print(f"{commit[:9]}{' (dirty)' if dirty else ''}: {len(fp['arrays'])} files → {out}")


def _leaves(d, prefix=""):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, d


def _num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _rel(a: float, b: float) -> float:
    if a == b or (a != a and b != b):  # equal, or both NaN
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def _array_diff(pa: str, pb: str, key: str) -> tuple[float, float]:
    """(max abs, max relative) difference of one array in two npz files; inf when not comparable."""
    with np.load(pa, allow_pickle=False) as za, np.load(pb, allow_pickle=False) as zb:
        a, b = za[key], zb[key]
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return float("inf"), float("inf")
    if a.dtype.kind in "USO":
        return (0.0, 0.0) if np.array_equal(a, b) else (float("inf"), float("inf"))
    a, b = a.astype(np.float64), b.astype(np.float64)
    d = np.abs(a - b)
    d[np.isnan(a) & np.isnan(b)] = 0.0
    scale = np.maximum(np.abs(a), np.abs(b))
    rel = np.where(d > 0, d / np.where(scale > 0, scale, 1.0), 0.0)
    return float(np.nanmax(d, initial=0.0)), float(np.nanmax(rel, initial=0.0))


def compare(pa: Path, pb: Path, rtol: float) -> dict:
    A, B = json.loads(pa.read_text()), json.loads(pb.read_text())
    bad, rows = [], []
    for section in ("data", "synth", "metrics", "meta"):
        la, lb = dict(_leaves(A[section])), dict(_leaves(B[section]))
        for k in sorted(set(la) | set(lb)):
            a, b = la.get(k, "<missing>"), lb.get(k, "<missing>")
            if _num(a) and _num(b):
                r = _rel(float(a), float(b))
                if section == "metrics":
                    rows.append((k, a, b, abs(a - b), r))
                if r > rtol:
                    bad.append(f"{section}.{k}: {a} vs {b} (rel {r:.2e})")
            elif a != b:
                bad.append(f"{section}.{k}: {a!r} vs {b!r}")
    arrays = {}
    for name in sorted(set(A["arrays"]) | set(B["arrays"])):
        fa, fb = A["arrays"].get(name), B["arrays"].get(name)
        if fa is None or fb is None:
            bad.append(f"arrays.{name}: only in {'B' if fa is None else 'A'}")
            continue
        for key in sorted(set(fa["sha256"]) | set(fb["sha256"])):
            if key not in fa["sha256"] or key not in fb["sha256"]:
                bad.append(f"arrays.{name}.{key}: in one file only")
                continue
            same = fa["sha256"][key] == fb["sha256"][key]
            diff, r = (0.0, 0.0) if same else _array_diff(fa["npz"], fb["npz"], key)
            arrays[f"{name}:{key}"] = {"identical": same, "max_abs": diff, "max_rel": r}
            if r > rtol:
                bad.append(f"arrays.{name}.{key}: max abs diff {diff:.3g} (rel {r:.2e})")
    print(
        f"A {A['commit'][:9]}{' (dirty)' if A.get('dirty') else ''}  vs  "
        f"B {B['commit'][:9]}{' (dirty)' if B.get('dirty') else ''}"
    )
    print(f"{'metric':58} {'A':>14} {'B':>14} {'|A-B|':>10} {'rel':>9}")
    for k, a, b, d, r in rows:
        if d or k.split(".")[-1] in ("mpjpe_mm", "pa_mpjpe_mm", "mpvpe_mm", "reproj_px"):
            print(f"{k:58} {a:14.6f} {b:14.6f} {d:10.3g} {r:9.2e}")
    print(f"{'arrays (one row per file; differing arrays listed)':58} {'bit-identical':>14} {'max|A-B|':>14}")
    for name in sorted({k.split(":")[0] for k in arrays}):
        group = {k: v for k, v in arrays.items() if k.split(":")[0] == name}
        same = sum(v["identical"] for v in group.values())
        top = max(v["max_abs"] for v in group.values())
        print(f"{name:58} {f'{same}/{len(group)}':>14} {top:14.3g}")
        for k, v in group.items():
            if not v["identical"]:
                print(f"  {k:56} {'differs':>14} {v['max_abs']:14.3g}")
    m_abs = max((d for *_, d, _ in rows), default=0.0)
    a_abs = max((v["max_abs"] for v in arrays.values()), default=0.0)
    verdict = "same" if not bad else "differs"
    same = sum(v["identical"] for v in arrays.values())
    print(
        f"{len(rows)} metric values (max |A-B| {m_abs:.3g}), {len(arrays)} arrays ({same} bit-identical, "
        f"max |A-B| {a_abs:.3g}): {verdict.upper()}"
    )
    for line in bad:
        print("  " + line)
    return {
        "a": A["commit"],
        "b": B["commit"],
        "verdict": verdict,
        "metric_values": len(rows),
        "metric_max_abs": m_abs,
        "arrays": len(arrays),
        "arrays_identical": same,
        "array_max_abs": a_abs,
        "differences": bad,
        "fingerprints": {"a": A, "b": B},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two fingerprint JSONs")
    p.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance of --compare")
    p.add_argument("--report", type=Path, help="--compare: also write the comparison (and both runs) here")
    p.add_argument("--src", type=Path, help="the checkout's src folder (put on PYTHONPATH)")
    p.add_argument("--data", type=Path, help="the synthetic sets (made here when missing)")
    p.add_argument("--work", type=Path, help="scratch folder of this run (emptied first)")
    p.add_argument("--out", type=Path, help="fingerprint JSON to write")
    a = p.parse_args(argv)
    if a.compare:
        result = compare(*a.compare, a.rtol)
        if a.report:
            a.report.write_text(json.dumps(result, indent=1) + "\n")
        return 0 if result["verdict"] == "same" else 1
    if not (a.src and a.data and a.work and a.out):
        p.error("--src, --data, --work and --out are needed (or --compare A B)")
    run(a.src, a.data, a.work, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
