"""Shared helpers of the fixture writers: real-sample loading, JSON / MAT output, image links, rotations."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import roma
import scipy.io
import torch


def load_real(real: Path, name: str) -> dict:
    with open(real / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, separators=(",", ":"))
        f.write("\n")


def link_image(src: Path, dst: Path) -> None:
    """A relative symlink ``dst`` → ``src`` (a copy if the file system refuses symlinks)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        os.symlink(os.path.relpath(src, dst.parent), dst)
    except OSError:
        shutil.copyfile(src, dst)


def save_mat(path: Path, variables: dict) -> None:
    """``scipy.io.savemat`` with a fixed header text (scipy writes the creation time there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, variables)
    data = bytearray(path.read_bytes())
    data[:116] = b"MATLAB 5.0 MAT-file, written by scripts/make_official_fixtures.py".ljust(116)
    path.write_bytes(bytes(data))


def rotvec_premul(R: np.ndarray, rotvec) -> list[float]:
    """Axis-angle of ``R @ rotmat(rotvec)``."""
    m = torch.from_numpy(np.asarray(R, np.float64)) @ roma.rotvec_to_rotmat(
        torch.tensor(rotvec, dtype=torch.float64)
    )
    return roma.rotmat_to_rotvec(m).tolist()

