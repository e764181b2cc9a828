"""Body models behind one interface: Anny (embedded default) and the SMPL family (user files).

``load_body_model(name_or_path, part=...)`` builds a model; ``get_body_model(name, part)`` is the one
process-wide cache of them (shared and read-only) used by evaluation, the report, the comparison and
the synthetic-data generator.
"""

from __future__ import annotations

import functools
from pathlib import Path

from neuralannot.bodies.base import BodyModel, BodyModelError, BodyOutput, ModelFileError, ParamSpec
from neuralannot.bodies.parts import MODEL_NAMES, MODEL_PARTS, PARTS

__all__ = [
    "BodyModel",
    "BodyModelError",
    "BodyOutput",
    "ModelFileError",
    "ParamSpec",
    "get_body_model",
    "load_body_model",
    "MODEL_NAMES",
    "PARTS",
]

_SMPLX_DEFAULT_PART = {"smpl": "body", "smplx": "body", "mano": "hand", "flame": "face"}


def load_body_model(name_or_path: str | Path = "anny", part: str = "body", **kwargs) -> BodyModel:
    """Build a body model.

    Args:
        name_or_path: ``"anny"`` (default, no files needed), ``"smpl" | "smplx" | "mano" | "flame"``
            (files looked up as documented in :mod:`neuralannot.bodies.smplx_family`), or a path to an
            official SMPL-family model file/folder (type inferred from the file name).
        part: ``body | wholebody | hand | rhand | lhand | face``. Anny serves every part; ``hand``
            means the right hand (left hands are flipped to right, as in the paper).
        **kwargs: model options (Anny: ``skinning``, ``local_changes``; SMPL family: ``gender``,
            ``num_betas``, ...).

    Raises:
        BodyModelError: unknown name/part or a part the model does not provide.
        ModelFileError: a license-gated model file is missing or unreadable (says where to get it).
    """
    if part not in PARTS:
        raise BodyModelError(f"unknown part {part!r}; expected one of {PARTS}")
    name = str(name_or_path)
    key = name.lower()
    if key == "anny":
        from neuralannot.bodies.anny import AnnyBody, AnnyHand, AnnyHead

        if part in ("body", "wholebody"):
            whole = part == "wholebody"
            return AnnyBody(hands=whole, face=whole, **kwargs)
        if part in ("hand", "rhand", "lhand"):
            return AnnyHand(side="left" if part == "lhand" else "right", **kwargs)
        return AnnyHead(**kwargs)
    from neuralannot.bodies.smplx_family import infer_model_type, load_smplx_family

    path = None
    if key in _SMPLX_DEFAULT_PART:
        model_type = key
    elif Path(name).exists():
        path, model_type = Path(name), infer_model_type(Path(name))
    else:
        raise BodyModelError(
            f"unknown body model {name!r}: expected one of {MODEL_NAMES} or an existing model file/folder"
        )
    allowed = MODEL_PARTS[model_type]
    if part not in allowed:
        raise BodyModelError(f"{model_type} provides part(s) {allowed}, not {part!r}")
    if model_type == "mano":
        kwargs.setdefault("side", "left" if part == "lhand" else "right")
    return load_smplx_family(model_type, path, **kwargs)


@functools.cache
def get_body_model(name: str = "anny", part: str = "body") -> BodyModel:
    """The body model ``(name, part)`` built once per process by :func:`load_body_model` (eval mode).

    Shared and read-only: every caller gets the same object, so never move, cast, train or modify it
    (its parameters, buffers or attributes); build a private one with :func:`load_body_model` for that.
    """
    return load_body_model(name, part=part).eval()
