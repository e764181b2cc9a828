"""The part and model-name tables, defined once for every layer (bodies, data, io, annotators).

No imports from the project: ``data.sample``, ``io.pseudo_gt`` and the annotators read these.
"""

from __future__ import annotations

__all__ = [
    "HAND_PARTS", "MODEL_NAMES", "MODEL_PART", "MODEL_PARTS", "PARTS", "PART_EXTENT", "record_model_part",
]

#: Sample / pseudo-GT / model parts. A sample's ``hand`` is a hand of unknown side; a model's, the right hand.
PARTS = ("body", "hand", "lhand", "rhand", "face", "wholebody")
HAND_PARTS = ("hand", "lhand", "rhand")
#: Body-model names accepted by ``load_body_model`` and written as pseudo-GT model keys.
MODEL_NAMES = ("anny", "smpl", "smplx", "mano", "flame")
#: Parts each model provides (and a pseudo-GT record of that model may carry).
MODEL_PARTS: dict[str, tuple[str, ...]] = {
    "anny": ("body", "wholebody", "hand", "lhand", "rhand", "face"),
    "smpl": ("body",),
    "smplx": ("body", "wholebody"),
    "mano": ("hand", "lhand", "rhand"),
    "flame": ("face",),
}
#: Sample part → body-model part annotators fit (hands with the right-hand model, left ones flipped).
MODEL_PART = {
    "body": "body",
    "wholebody": "wholebody",
    "face": "face",
    "hand": "hand",
    "lhand": "hand",
    "rhand": "hand",
}
#: Rough size of each part in metres (initial depth of a fit, output scale of the networks).
PART_EXTENT = {"body": 1.7, "wholebody": 1.7, "hand": 0.2, "lhand": 0.2, "rhand": 0.2, "face": 0.25}


def record_model_part(part: str, side: str | None = None) -> str:
    """The body-model part that poses a pseudo-GT record or a GT of ``part``: left hands keep the
    left-hand model (``lhand``), every other hand the right-hand one (``hand``)."""
    if part in HAND_PARTS:
        return "lhand" if (side == "left" or part == "lhand") else "hand"
    return part
