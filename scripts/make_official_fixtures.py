"""Write small fixtures in the OFFICIAL annotation layouts from the real samples in tests/data/real.

    python scripts/make_official_fixtures.py [--real tests/data/real] [--out tests/data/official]

Each dataset's real folder-format samples are converted back into that dataset's official files
(see tests/data/official/README.md for what is real and what is derived). Images are not copied:
each official image path is a relative symlink to the real image (a copy where symlinks fail).
The output is deterministic, so re-running it reproduces the committed fixtures.
The writers live in ``scripts/official_fixtures/`` (one module per dataset family).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from official_fixtures.coco import make_coco
from official_fixtures.h36m import make_h36m
from official_fixtures.hands import make_freihand, make_interhand
from official_fixtures.mpi_inf_3dhp import make_mpi_inf_3dhp
from official_fixtures.pw3d import make_3dpw

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, default=ROOT / "tests" / "data" / "real")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "official")
    args = ap.parse_args()
    for make in (make_h36m, make_coco, make_freihand, make_interhand, make_mpi_inf_3dhp, make_3dpw):
        make(args.real, args.out)
        print(f"wrote {make.__name__.removeprefix('make_')}")


if __name__ == "__main__":
    main()
