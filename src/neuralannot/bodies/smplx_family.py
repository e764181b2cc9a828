"""SMPL, SMPL-X, MANO (right/left) and FLAME from user-supplied model files, as :class:`BodyModel`.

The models are license-gated and never shipped with neuralannot: register on the model's website,
accept its license and download the files yourself (see :data:`MODEL_URLS`). Posing goes through
the ``*Layer`` classes of the ``smplx`` package (rotation-matrix inputs); axis-angle parameters are
converted with :func:`~neuralannot.bodies.base.as_rotmat`, matrices pass straight through.

Parameters follow the NeuralAnnot release schema (axis-angle, per-sample shapes):

- ``smpl``  (part ``body``): ``root_pose`` (3), ``body_pose`` (23, 3), ``shape`` (num_betas), ``trans`` (3).
- ``smplx`` (part ``wholebody``, also serves ``body``): ``root_pose``, ``body_pose`` (21, 3),
  ``shape`` (num_betas), ``trans``; optional (default 0): ``lhand_pose``/``rhand_pose`` (15, 3),
  ``jaw_pose``, ``leye_pose``, ``reye_pose`` (3), ``expr`` (num_expression_coeffs).
- ``mano``  (part ``hand``, ``side`` right/left): ``root_pose``, ``hand_pose`` (15, 3), ``shape`` (10),
  ``trans``.
- ``flame`` (part ``face``): ``root_pose``, ``jaw_pose``, ``shape``, ``expr``, ``trans``; optional
  ``neck_pose`` (3) and ``eye_pose`` (2, 3) = (left eye, right eye).

**Hand mean.** Like NeuralAnnot (and ``smplx.create``'s default), SMPL-X and MANO hand poses are
*offsets from the model's mean hand pose* (``flat_hand_mean=False``, the default): the joint
rotations used are ``hand_pose + hands_mean`` in axis-angle, so an all-zero ``hand_pose`` is the
relaxed mean hand, not a flat hand. Pass ``flat_hand_mean=True`` to use the hand pose as is.
(smplx's ``*Layer`` classes silently ignore the mean; this module adds it.) Rotation-matrix hand
poses are converted to axis-angle, offset and converted back, so both input forms agree.
MANO's PCA basis is exposed as ``hand_components`` (rows = components, full 45) with the raw mean
``hand_mean``: ``hand_pose`` (non-flat) ``= pca_coeffs @ hand_components``.

**Outputs.** ``BodyOutput.joints`` are the kinematic joints (24 SMPL, 55 SMPL-X, 16 MANO, 5 FLAME)
in ``joint_names`` order; ``extras["smplx_joints"]`` is smplx's full joint output (kinematic joints,
then vertex-picked extra joints — nose/eyes/ears/feet/finger tips, official topologies only — then
face landmarks for SMPL-X/FLAME; names in ``model.smplx_joint_names``); ``extras["landmarks"]`` is
the face-landmark part alone (SMPL-X and FLAME with a landmark embedding). Units: meters, in the
model's own frame (SMPL family: Y up, facing +Z).

**File search order** (:func:`resolve_model_file`): a ``path`` naming a file is used as is. A
``path`` naming a folder ``D`` is searched as ``D/<name>`` then ``D/<type>/<name>`` (``<type>`` =
``smpl | smplx | mano | flame``, smplx's folder convention) for each accepted file name, in order:

- smpl:  ``SMPL_<GENDER>.pkl``, ``SMPL_<GENDER>.npz``, ``basic[mM]odel_<neutral|f|m>_lbs_*.pkl``
  (the names inside the official download)
- smplx: ``SMPLX_<GENDER>.npz``, ``SMPLX_<GENDER>.pkl``
- mano:  ``MANO_<RIGHT|LEFT>.pkl``, ``MANO_<RIGHT|LEFT>.npz``
- flame: ``FLAME_<GENDER>.pkl``, ``FLAME_<GENDER>.npz``, then FLAME 2020/2023 release names
  (``generic_model.pkl``/``flame2023.pkl`` neutral, ``female_model.pkl``, ``male_model.pkl``)

(names match case-insensitively). With ``path=None`` the folder is ``$NEURALANNOT_MODELS``
(see :mod:`neuralannot.paths`); without it a :class:`ModelFileError` explains what to do.
FLAME's landmark embedding is looked up next to the model file: ``flame_static_embedding.pkl``
(smplx / FLAME_PyTorch format) or DECA's ``landmark_embedding.npy``; ``use_face_contour=True``
also needs ``flame_dynamic_embedding.npy`` (or DECA's file). Without an embedding FLAME still
works, without landmarks (a warning says so; ``landmarks=True`` makes it an error).

**File formats.** Model files never run code: ``.pkl`` files (latin1) are read with a restricted
unpickler that only builds numpy arrays, scipy sparse matrices and chumpy arrays (shims, so
neither chumpy nor scipy is needed), ``.npz`` files with ``allow_pickle=False`` (object members
through the same reader); see :mod:`neuralannot.bodies.model_files`. smplx's layers get the cleaned
arrays (``data_struct``, or a plain ``.npz`` staged in a temporary folder), never the original file,
and the same holds for FLAME's landmark embeddings.

Official ``MANO_LEFT.pkl`` has the x-component of ``shapedirs`` un-mirrored
(https://github.com/vchoutas/smplx/issues/48); like NeuralAnnot we flip it when the right model next
to it shows the bug (``fix_left_shapedirs=True``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import logging
import os
import pickle
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from neuralannot.bodies.base import (
    BodyModel,
    BodyModelError,
    BodyOutput,
    ModelFileError,
    ParamSpec,
    as_rotmat,
    as_rotvec,
)
from neuralannot.bodies.model_files import read_model_file, write_clean_npz
from neuralannot.utils.safe_pickle import UnsafePickleError

__all__ = [
    "FLAMEHead",
    "MANOHand",
    "MODEL_TYPES",
    "MODEL_URLS",
    "SMPLBody",
    "SMPLXBody",
    "SmplxFamilyModel",
    "candidate_file_names",
    "infer_model_type",
    "load_smplx_family",
    "resolve_model_file",
]

log = logging.getLogger(__name__)

MODEL_TYPES = ("smpl", "smplx", "mano", "flame")
MODEL_URLS = {
    "smpl": "https://smpl.is.tue.mpg.de",
    "smplx": "https://smpl-x.is.tue.mpg.de",
    "mano": "https://mano.is.tue.mpg.de",
    "flame": "https://flame.is.tue.mpg.de",
}
_DISPLAY = {"smpl": "SMPL", "smplx": "SMPL-X", "mano": "MANO", "flame": "FLAME"}
_DOWNLOAD_HINT = {
    "smpl": "'SMPL for Python' (v1.1.0, e.g. basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl; keep the name "
            "or rename it to SMPL_NEUTRAL.pkl)",
    "smplx": "'SMPL-X v1.1' (models_smplx_v1_1.zip, contains models/smplx/SMPLX_NEUTRAL.npz)",
    "mano": "'Models & Code' (mano_v1_2.zip, contains models/MANO_RIGHT.pkl and MANO_LEFT.pkl)",
    "flame": "'FLAME 2020' (generic_model.pkl) or 'FLAME 2023' (flame2023.pkl), plus the landmark "
             "embedding flame_static_embedding.pkl (also in https://github.com/soubhiksanyal/FLAME_PyTorch, "
             "folder model/)",
}
#: Number of kinematic joints per model type (rows of J_regressor).
NUM_JOINTS = {"smpl": 24, "smplx": 55, "mano": 16, "flame": 5}
_KNOWN_JOINT_COUNTS = {24: "SMPL", 52: "SMPL+H", 55: "SMPL-X", 16: "MANO", 5: "FLAME"}
_REQUIRED_KEYS = ("v_template", "f", "J_regressor", "kintree_table", "weights", "shapedirs", "posedirs")
_EXTRA_KEYS = {
    "smpl": (),
    "smplx": ("hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr",
              "lmk_faces_idx", "lmk_bary_coords"),
    "mano": ("hands_components", "hands_mean"),
    "flame": (),
}
_GENDERS = ("neutral", "male", "female")
_FLAME_STATIC = "flame_static_embedding.pkl"
_FLAME_DYNAMIC = "flame_dynamic_embedding.npy"
_DECA_EMBEDDING = "landmark_embedding.npy"


# ---------------------------------------------------------------------------------------------
# joint names
# ---------------------------------------------------------------------------------------------
def _smplx_names() -> tuple[list[str], list[str]]:
    from smplx.joint_names import JOINT_NAMES, SMPLH_JOINT_NAMES

    return list(JOINT_NAMES), list(SMPLH_JOINT_NAMES)


def _kinematic_joint_names(model_type: str) -> list[str]:
    smplx_names, smplh_names = _smplx_names()
    if model_type == "smpl":
        return smplh_names[:22] + ["left_hand", "right_hand"]
    if model_type == "smplx":
        return smplx_names[:55]
    if model_type == "mano":  # smplh order: wrist, index, middle, pinky, ring, thumb (3 each)
        return ["wrist"] + [n.removeprefix("right_") for n in smplh_names[37:52]]
    return ["root", "neck", "jaw", "left_eye", "right_eye"]


def _extra_joint_names(model_type: str) -> list[str]:
    """Names of smplx's vertex-picked extra joints, in smplx's order."""
    smplx_names, smplh_names = _smplx_names()
    if model_type == "smpl":
        return smplh_names[52:73]
    if model_type == "smplx":
        return smplx_names[55:76]
    return []


def _landmark_names(n_static: int, n_dynamic: int) -> list[str]:
    """iBUG-68 based names (SMPL-X's), generic names when the counts differ from 51 / 17."""
    smplx_names, _ = _smplx_names()
    static = smplx_names[76:127] if n_static == 51 else [f"landmark_{i}" for i in range(n_static)]
    dynamic = smplx_names[127:144] if n_dynamic == 17 else [f"contour_{i}" for i in range(n_dynamic)]
    return static + dynamic


# ---------------------------------------------------------------------------------------------
# file resolution
# ---------------------------------------------------------------------------------------------
def _norm_type(model_type: str) -> str:
    key = str(model_type).lower().replace("-", "").replace("_", "")
    if key not in MODEL_TYPES:
        raise BodyModelError(f"unknown SMPL-family model type {model_type!r}; expected one of {MODEL_TYPES}")
    return key


def _norm_gender(gender: str) -> str:
    g = str(gender).lower()
    if g not in _GENDERS:
        raise BodyModelError(f"unknown gender {gender!r}; expected one of {_GENDERS}")
    return g


def candidate_file_names(model_type: str, gender: str = "neutral", side: str = "right") -> list[str]:
    """Accepted model file names (fnmatch patterns, matched case-insensitively), in priority order."""
    t, g = _norm_type(model_type), _norm_gender(gender)
    G = g.upper()
    if t == "smpl":
        short = {"neutral": "neutral", "female": "f", "male": "m"}[g]
        return [f"SMPL_{G}.pkl", f"SMPL_{G}.npz", f"basicmodel_{short}_lbs_*.pkl"]
    if t == "smplx":
        return [f"SMPLX_{G}.npz", f"SMPLX_{G}.pkl"]
    if t == "mano":
        S = _norm_side(side).upper()
        return [f"MANO_{S}.pkl", f"MANO_{S}.npz"]
    release = {"neutral": ["generic_model.pkl", "flame2023.pkl"], "female": ["female_model.pkl"],
               "male": ["male_model.pkl"]}[g]
    return [f"FLAME_{G}.pkl", f"FLAME_{G}.npz", *release]


def _norm_side(side: str) -> str:
    s = str(side).lower()
    if s not in ("right", "left"):
        raise BodyModelError(f"unknown MANO side {side!r}; expected 'right' or 'left'")
    return s


def _find_in_dir(folder: Path, patterns: list[str]) -> Path | None:
    if not folder.is_dir():
        return None
    entries = sorted(p for p in folder.iterdir() if p.is_file())
    for pat in patterns:
        hits = [p for p in entries if fnmatch.fnmatchcase(p.name.lower(), pat.lower())]
        if hits:
            return hits[-1]  # glob patterns: the highest version sorts last
    return None


def _missing_message(model_type: str, names: list[str], searched: list[Path], why: str = "") -> str:
    t = model_type
    searched_txt = ", ".join(str(p) for p in searched) if searched else "(nowhere)"
    return (
        f"{_DISPLAY[t]} model file not found{why}: expected {' or '.join(names)}; searched {searched_txt}. "
        f"{_DISPLAY[t]} is license-gated and not shipped with neuralannot: register at {MODEL_URLS[t]}, "
        f"accept the license, download {_DOWNLOAD_HINT[t]}, and put the file into a folder passed as "
        f"path=..., or into $NEURALANNOT_MODELS/{t}/ (NEURALANNOT_MODELS = a folder with smpl/, smplx/, "
        f"mano/, flame/ subfolders)."
    )


def resolve_model_file(model_type: str, path: str | os.PathLike | None = None, gender: str = "neutral",
                       side: str = "right") -> Path:
    """Find the model file for ``model_type`` (search order in the module docstring).

    Raises :class:`ModelFileError` naming the expected file(s), the folders searched and where to
    download the model.
    """
    from neuralannot.paths import models_dir

    t = _norm_type(model_type)
    names = candidate_file_names(t, gender, side)
    if path is None:
        root = models_dir()
        if root is None:
            raise ModelFileError(_missing_message(
                t, names, [], " (no path given and the environment variable NEURALANNOT_MODELS is not set)"))
        why = f" (path=None, looked in $NEURALANNOT_MODELS={root})"
    else:
        root = Path(path).expanduser()
        why = ""
        if root.is_file():
            return root
        if not root.exists():
            raise ModelFileError(_missing_message(t, names, [root], f" ({root} does not exist)"))
    searched = [root, root / t]
    for folder in searched:
        hit = _find_in_dir(folder, names)
        if hit is not None:
            return hit
    raise ModelFileError(_missing_message(t, names, searched, why))


def infer_model_type(path: str | os.PathLike) -> str:
    """Model type from a model file name (``SMPLX_NEUTRAL.npz`` → ``"smplx"``) or a folder's content."""
    p = Path(path)
    if p.is_dir():
        name = p.name.lower()
        if name in MODEL_TYPES:
            return name
        found = set()
        for t in MODEL_TYPES:
            for g in _GENDERS:
                for side in ("right", "left"):
                    if _find_in_dir(p, candidate_file_names(t, g, side)):
                        found.add(t)
            if (p / t).is_dir():
                found.add(t)
        if len(found) == 1:
            return found.pop()
        raise BodyModelError(
            f"cannot tell the SMPL-family model type of folder {p}: "
            + (f"it holds several ({sorted(found)}); " if found else "no known model file in it; ")
            + f"name the model type explicitly (one of {MODEL_TYPES})")
    name = p.name.lower()
    if name.startswith("smplx"):
        return "smplx"
    if name.startswith("smplh"):
        raise BodyModelError(f"{p.name}: SMPL+H is not supported; use SMPL, SMPL-X, MANO or FLAME")
    if name.startswith(("smpl", "basicmodel")):
        return "smpl"
    if name.startswith("mano"):
        return "mano"
    if "flame" in name or name in ("generic_model.pkl", "female_model.pkl", "male_model.pkl"):
        return "flame"
    raise BodyModelError(
        f"cannot tell the SMPL-family model type of {p.name}: expected a name like SMPL_NEUTRAL.pkl, "
        "SMPLX_NEUTRAL.npz, MANO_RIGHT.pkl, FLAME_NEUTRAL.pkl or generic_model.pkl")


# ---------------------------------------------------------------------------------------------
# reading and checking model files
# ---------------------------------------------------------------------------------------------
def _read_model_data(file: Path, display: str) -> Mapping[str, Any]:
    """Read a .pkl/.npz model file without running code from it; wrap every failure in ModelFileError."""
    suffix = file.suffix.lower()
    if suffix not in (".pkl", ".npz"):
        raise ModelFileError(f"{file}: unsupported {display} model file extension {file.suffix!r}; "
                             "expected .pkl or .npz")
    try:
        data = read_model_file(file)
    except UnsafePickleError as e:
        raise ModelFileError(f"{file}: refusing this {display} model file: {e}") from None
    except OSError as e:
        raise ModelFileError(f"{file}: cannot read the {display} model file: {e}") from e
    except Exception as e:  # UnpicklingError, EOFError, BadZipFile, ValueError, ...
        raise ModelFileError(
            f"{file}: not a valid {display} model file (corrupt, truncated or not a {suffix} file): "
            f"{type(e).__name__}: {e}") from e
    if not isinstance(data, Mapping):
        raise ModelFileError(f"{file}: a {display} model file must hold a dict of arrays, "
                             f"found {type(data).__name__}")
    return data


def _shape(x: Any) -> tuple[int, ...]:
    s = getattr(x, "shape", None)
    return tuple(int(d) for d in (s if s is not None else np.shape(x)))


def _check_model_data(t: str, data: Mapping[str, Any], file: Path, use_face_contour: bool) -> None:
    """Key and shape checks before smplx sees the data."""
    display = _DISPLAY[t]
    keys = set(data.files) if hasattr(data, "files") else set(data.keys())
    need = [*_REQUIRED_KEYS, *_EXTRA_KEYS[t]]
    if t == "smplx" and use_face_contour:
        need += ["dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords"]
    missing = [k for k in need if k not in keys]

    def bad(msg: str) -> ModelFileError:
        return ModelFileError(f"{file}: not a usable {display} model file: {msg}")

    if missing:
        guess = ""
        if "J_regressor" in keys:
            with contextlib.suppress(Exception):
                guess = _KNOWN_JOINT_COUNTS.get(_shape(data["J_regressor"])[0], "")
        raise bad(f"missing key(s) {missing}" + (f" (it looks like a {guess} file)" if guess else ""))
    try:
        n_joints = _shape(data["J_regressor"])
        v_template = _shape(data["v_template"])
        kintree = _shape(data["kintree_table"])
        weights = _shape(data["weights"])
        faces = np.asarray(data["f"])
    except Exception as e:
        raise bad(f"cannot read its arrays ({type(e).__name__}: {e})") from e
    J = NUM_JOINTS[t]
    if len(n_joints) != 2 or n_joints[0] != J:
        what = _KNOWN_JOINT_COUNTS.get(n_joints[0] if n_joints else -1)
        raise bad(f"J_regressor has shape {n_joints}, expected {J} joints"
                  + (f" (this looks like a {what} file)" if what else ""))
    if len(v_template) != 2 or v_template[1] != 3:
        raise bad(f"v_template has shape {v_template}, expected (V, 3)")
    V = v_template[0]
    if n_joints[1] != V:
        raise bad(f"J_regressor has shape {n_joints}, expected ({J}, {V})")
    if kintree != (2, J):
        raise bad(f"kintree_table has shape {kintree}, expected (2, {J})")
    if weights != (V, J):
        raise bad(f"weights have shape {weights}, expected ({V}, {J})")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.size == 0 or faces.min() < 0 or faces.max() >= V:
        raise bad(f"faces 'f' must be (F, 3) vertex indices in [0, {V}), got shape {faces.shape}")
    sd, pd = _shape(data["shapedirs"]), _shape(data["posedirs"])
    if len(sd) not in (2, 3) or sd[:2] != (V, 3):
        raise bad(f"shapedirs have shape {sd}, expected ({V}, 3, K)")
    if int(np.prod(pd)) != V * 3 * 9 * (J - 1):
        raise bad(f"posedirs have shape {pd}, expected ({V}, 3, {9 * (J - 1)})")


def _check_layer(t: str, layer: torch.nn.Module, file: Path) -> None:
    """Shape checks of the built smplx layer."""
    J = NUM_JOINTS[t]
    V = int(layer.v_template.shape[0])
    problems = []
    if tuple(layer.posedirs.shape) != (9 * (J - 1), 3 * V):
        problems.append(f"posedirs give {tuple(layer.posedirs.shape)}, expected ({9 * (J - 1)}, {3 * V})")
    if layer.shapedirs.ndim != 3 or tuple(layer.shapedirs.shape[:2]) != (V, 3):
        problems.append(f"shapedirs have shape {tuple(layer.shapedirs.shape)}, expected ({V}, 3, K)")
    expr = getattr(layer, "expr_dirs", None)
    if expr is not None and (expr.ndim != 3 or tuple(expr.shape[:2]) != (V, 3)
                             or expr.shape[2] != layer.num_expression_coeffs):
        problems.append(f"expression directions have shape {tuple(expr.shape)}, expected ({V}, 3, "
                        f"{layer.num_expression_coeffs}); shapedirs need 10 shape + 10 expression "
                        "components (or 300 + 100)")
    lmk = getattr(layer, "lmk_faces_idx", None)
    n_faces = int(layer.faces_tensor.shape[0])
    if lmk is not None and lmk.numel() and (int(lmk.max()) >= n_faces or int(lmk.min()) < 0):
        problems.append(f"landmark face indices must lie in [0, {n_faces}) (embedding of another topology?)")
    if int(layer.parents.shape[0]) != J or any(int(p) >= i for i, p in enumerate(layer.parents[1:], 1)):
        problems.append(f"kintree_table parents {layer.parents.tolist()} are not a tree in joint order")
    if problems:
        raise ModelFileError(f"{file}: not a usable {_DISPLAY[t]} model file: " + "; ".join(problems))


@contextlib.contextmanager
def _quiet_smplx():
    """smplx prints warnings such as 'You are using a SMPL model, with only 10 shape coefficients'."""
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        yield
    for line in buf.getvalue().splitlines():
        if line.strip():
            log.debug("smplx: %s", line.strip())


def _build_layer(factory, file: Path, display: str, **kwargs) -> torch.nn.Module:
    try:
        with _quiet_smplx():
            return factory(**kwargs)
    except ModelFileError:
        raise
    except AttributeError as e:  # smplx's Struct lacks a key
        raise ModelFileError(f"{file}: not a usable {display} model file: {e}") from e
    except Exception as e:
        raise ModelFileError(
            f"{file}: smplx could not build the {display} model from this file: {type(e).__name__}: {e}"
        ) from e


def _flame_embeddings(model_file: Path, tmp: Path, use_face_contour: bool,
                      landmarks: bool | None) -> bool:
    """Place the landmark embedding(s) smplx's FLAME expects into ``tmp``; return whether real."""
    folder = model_file.parent
    if landmarks is False:
        _write_dummy_embedding(tmp)
        return False
    static = _find_in_dir(folder, [_FLAME_STATIC])
    deca = _find_in_dir(folder, [_DECA_EMBEDDING])
    dynamic = _find_in_dir(folder, [_FLAME_DYNAMIC])
    deca_data = None
    if deca is not None and (static is None or (use_face_contour and dynamic is None)):
        try:
            deca_data = read_model_file(deca)
            static_d = {"lmk_face_idx": np.asarray(deca_data["static_lmk_faces_idx"], dtype=np.int64),
                        "lmk_b_coords": np.asarray(deca_data["static_lmk_bary_coords"], dtype=np.float64)}
        except Exception as e:
            raise ModelFileError(
                f"{deca}: not a usable DECA landmark embedding: {type(e).__name__}: {e}") from e
    if static is not None:
        static_d = _read_embedding(static, ("lmk_face_idx", "lmk_b_coords"))
    if static is not None or deca_data is not None:
        with open(tmp / _FLAME_STATIC, "wb") as fh:  # our own clean copy: smplx unpickles it
            pickle.dump(static_d, fh)
    else:
        msg = (f"FLAME landmark embedding not found: expected {_FLAME_STATIC} (or DECA's {_DECA_EMBEDDING}) "
               f"next to {model_file.name} in {folder}. It comes with the FLAME downloads at "
               f"{MODEL_URLS['flame']} and with https://github.com/soubhiksanyal/FLAME_PyTorch "
               "(folder model/)")
        if landmarks or use_face_contour:
            raise ModelFileError(msg + ".")
        if landmarks is None:
            warnings.warn(msg + "; FLAME runs without face landmarks.", stacklevel=3)
        _write_dummy_embedding(tmp)
        return False
    if use_face_contour:
        dyn = None
        if dynamic is not None:
            dyn = _read_embedding(dynamic, ("lmk_face_idx", "lmk_b_coords"))
        elif deca_data is not None:
            dyn = {"lmk_face_idx": np.asarray(deca_data["dynamic_lmk_faces_idx"], dtype=np.int64),
                   "lmk_b_coords": np.asarray(deca_data["dynamic_lmk_bary_coords"], dtype=np.float64)}
        if dyn is not None:  # our own clean copy: smplx unpickles it
            np.save(tmp / _FLAME_DYNAMIC, np.array(dyn, dtype=object), allow_pickle=True)
        else:
            raise ModelFileError(
                f"use_face_contour=True needs {_FLAME_DYNAMIC} (or DECA's {_DECA_EMBEDDING}) next to "
                f"{model_file.name} in {folder}; get it from https://github.com/soubhiksanyal/FLAME_PyTorch "
                "(folder model/) or use use_face_contour=False.")
    return True


def _read_embedding(file: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """A landmark embedding file (restricted read) as a dict of the numpy arrays ``keys``."""
    try:
        data = read_model_file(file)
        return {k: np.asarray(data[k]) for k in keys}
    except UnsafePickleError as e:
        raise ModelFileError(f"{file}: refusing this landmark embedding: {e}") from None
    except Exception as e:  # noqa: BLE001 - corrupt, truncated, wrong content
        raise ModelFileError(f"{file}: not a usable landmark embedding: {type(e).__name__}: {e}") from None


def _write_dummy_embedding(tmp: Path) -> None:
    """smplx's FLAME cannot run without an embedding: one dummy landmark, dropped from the outputs."""
    with open(tmp / _FLAME_STATIC, "wb") as fh:
        pickle.dump({"lmk_face_idx": np.zeros(1, np.int64), "lmk_b_coords": np.full((1, 3), 1 / 3)}, fh)


def _maybe_fix_left_mano(layer: torch.nn.Module, left_file: Path) -> None:
    """Flip x of the left MANO shapedirs when they equal the right model's (smplx issue #48)."""
    right = _find_in_dir(left_file.parent, candidate_file_names("mano", side="right"))
    if right is None or right.resolve() == left_file.resolve():
        log.info("MANO left: no MANO_RIGHT file next to %s, shapedirs left as they are", left_file)
        return
    try:
        data = _read_model_data(right, "MANO")
        from smplx.utils import to_np

        rd = torch.from_numpy(to_np(data["shapedirs"]))[..., : layer.shapedirs.shape[-1]]
    except Exception as e:  # the right model is only a reference here
        log.warning("MANO left: cannot read %s to check the shapedirs bug (%s)", right, e)
        return
    if rd.shape != layer.shapedirs.shape:
        return
    left_x, right_x = layer.shapedirs[:, 0, :], rd[:, 0, :].to(layer.shapedirs)
    # the bug: identical x components (correct files have left_x = -right_x)
    if (left_x - right_x).abs().mean() < 1e-3 * right_x.abs().mean().clamp_min(1e-12):
        log.info("MANO left: flipping x of shapedirs (https://github.com/vchoutas/smplx/issues/48)")
        with torch.no_grad():
            layer.shapedirs[:, 0, :] *= -1


# ---------------------------------------------------------------------------------------------
# BodyModel wrappers
# ---------------------------------------------------------------------------------------------
def _rot(name: str, shape: tuple[int, ...], desc: str, optional: bool = False) -> ParamSpec:
    return ParamSpec(name, shape, "rotation", 0.0, desc, optional)


def _shape_spec(n: int, what: str = "shape (beta) coefficients") -> ParamSpec:
    return ParamSpec("shape", (n,), "shape", 0.0, what)


_TRANS = ParamSpec("trans", (3,), "translation", 0.0, "translation added to all vertices and joints (m)")


class SmplxFamilyModel(BodyModel):
    """Shared wrapper around an ``smplx`` ``*Layer``: file bookkeeping, joints, extras, hand means.

    Attributes: ``smplx_layer`` (the smplx module), ``model_type``, ``model_file``, ``gender``,
    ``num_betas``, ``num_expression_coeffs``, ``parts`` (parts it can serve), ``smplx_joint_names``.
    """

    model_type: str = ""
    parts: tuple[str, ...] = ()

    def __init__(self, layer: torch.nn.Module, model_file: Path, gender: str = "neutral",
                 has_landmarks: bool = False):
        super().__init__()
        t = self.model_type
        self.smplx_layer = layer
        self.model_file = Path(model_file)
        self.gender = gender
        self.num_betas = int(layer.num_betas)
        self.num_expression_coeffs = int(getattr(layer, "num_expression_coeffs", 0))
        self.register_buffer("faces", layer.faces_tensor.detach().clone().long(), persistent=False)
        self.parents = [int(p) for p in layer.parents.tolist()]
        self.parents[0] = -1
        self.joint_names = _kinematic_joint_names(t)
        self.num_joints = len(self.parents)
        # vertex-picked extra joints exist only for the official topology
        V = int(layer.v_template.shape[0])
        sel = getattr(layer, "vertex_joint_selector", None)
        n_extra = 0
        if sel is not None and t in ("smpl", "smplx"):
            idx = sel.extra_joints_idxs
            if idx.numel() and int(idx.max()) >= V:
                log.warning("%s: %d-vertex mesh is not the official topology; no vertex-picked extra joints",
                            _DISPLAY[t], V)
                sel.extra_joints_idxs = idx.new_zeros(0)
            n_extra = int(sel.extra_joints_idxs.numel())
        self._n_extra = n_extra
        self.has_landmarks = has_landmarks
        n_static = int(layer.lmk_faces_idx.shape[0]) if hasattr(layer, "lmk_faces_idx") else 0
        n_dyn = 0
        if getattr(layer, "use_face_contour", False) and hasattr(layer, "dynamic_lmk_faces_idx"):
            n_dyn = int(layer.dynamic_lmk_faces_idx.shape[-1])
        self._n_landmarks = n_static + n_dyn if has_landmarks else 0
        self._n_dummy = n_static + n_dyn if (hasattr(layer, "lmk_faces_idx") and not has_landmarks) else 0
        extra_names = _extra_joint_names(t) if n_extra else []
        if len(extra_names) != n_extra:
            extra_names = [f"vertex_joint_{i}" for i in range(n_extra)]
        self.smplx_joint_names = (self.joint_names + extra_names
                                  + (_landmark_names(n_static, n_dyn) if has_landmarks else []))

    # -- helpers for subclasses ------------------------------------------------------------------
    def _rotmats(self, p: dict[str, Tensor], name: str, batch: int) -> Tensor:
        """Rotation group ``name`` → (B, n, 3, 3) matrices (n = 1 for a single rotation)."""
        spec = self.param_specs[name].shape
        return as_rotmat(p[name], spec).reshape(batch, -1, 3, 3)

    def _hand_rotmats(self, p: dict[str, Tensor], name: str, mean: Tensor, batch: int) -> Tensor:
        """Hand pose (offset from ``mean`` in axis-angle unless flat_hand_mean) → (B, 15, 3, 3)."""
        pose = p[name]
        if not self.flat_hand_mean:
            pose = as_rotvec(pose, (15, 3)) + mean.reshape(15, 3)
        return as_rotmat(pose, (15, 3))

    def _call_layer(self, p: dict[str, Tensor], batch: int):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- forward ------------------------------------------------------------------------------
    def forward(self, params: dict[str, Tensor], return_vertices: bool = True) -> BodyOutput:
        """Pose the model. Parameters are cast to the model's dtype and device."""
        full, batch = self.complete_params(params)
        dtype, device = self.dtype, self.device
        if batch == 0:
            V = int(self.smplx_layer.v_template.shape[0])
            return BodyOutput(
                joints=torch.zeros(0, self.num_joints, 3, dtype=dtype, device=device),
                vertices=torch.zeros(0, V, 3, dtype=dtype, device=device) if return_vertices else None,
                extras={"smplx_joints": torch.zeros(0, len(self.smplx_joint_names), 3, dtype=dtype,
                                                    device=device)})
        full = {k: v.to(dtype=dtype, device=device) for k, v in full.items()}
        out = self._call_layer(full, batch)
        all_joints = out.joints
        if self._n_dummy:
            all_joints = all_joints[:, : all_joints.shape[1] - self._n_dummy]
        extras = {"smplx_joints": all_joints}
        if self._n_landmarks:
            extras["landmarks"] = all_joints[:, all_joints.shape[1] - self._n_landmarks:]
        return BodyOutput(joints=all_joints[:, : self.num_joints],
                          vertices=out.vertices if return_vertices else None, extras=extras)

    @property
    def num_vertices(self) -> int:
        return int(self.smplx_layer.v_template.shape[0])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, file={self.model_file.name}, gender={self.gender}"


class SMPLBody(SmplxFamilyModel):
    """SMPL: ``root_pose`` (3), ``body_pose`` (23, 3), ``shape`` (num_betas), ``trans`` (3)."""

    name = "smpl"
    model_type = "smpl"
    part = "body"
    parts = ("body",)

    def __init__(self, layer, model_file, gender="neutral"):
        super().__init__(layer, model_file, gender)
        self.param_specs = {s.name: s for s in [
            _rot("root_pose", (3,), "global rotation about the pelvis joint (axis-angle)"),
            _rot("body_pose", (23, 3), "rotations of SMPL joints 1..23 relative to their parents"),
            _shape_spec(self.num_betas),
            _TRANS,
        ]}

    def _call_layer(self, p, batch):
        return self.smplx_layer(
            betas=p["shape"], global_orient=self._rotmats(p, "root_pose", batch),
            body_pose=self._rotmats(p, "body_pose", batch), transl=p["trans"], return_verts=True)


class SMPLXBody(SmplxFamilyModel):
    """SMPL-X: body as SMPL (21 body joints) plus optional hands, jaw, eyes and expression."""

    name = "smplx"
    model_type = "smplx"
    part = "wholebody"
    parts = ("body", "wholebody")

    def __init__(self, layer, model_file, gender="neutral", flat_hand_mean=False):
        super().__init__(layer, model_file, gender, has_landmarks=True)
        self.flat_hand_mean = bool(flat_hand_mean)
        # raw (official) PCA bases and means of both hands; the means apply unless flat_hand_mean
        for name, value in (("lhand_components", _as_buffer(layer.np_left_hand_components, self)),
                            ("rhand_components", _as_buffer(layer.np_right_hand_components, self)),
                            ("lhand_mean", layer.left_hand_mean.detach().clone().reshape(-1)),
                            ("rhand_mean", layer.right_hand_mean.detach().clone().reshape(-1))):
            self.register_buffer(name, value, persistent=False)
        mean_note = "flat hand = 0" if self.flat_hand_mean else "offset from the mean hand pose"
        self.param_specs = {s.name: s for s in [
            _rot("root_pose", (3,), "global rotation about the pelvis joint (axis-angle)"),
            _rot("body_pose", (21, 3), "rotations of SMPL-X body joints 1..21"),
            _rot("lhand_pose", (15, 3), f"left-hand finger rotations ({mean_note})", optional=True),
            _rot("rhand_pose", (15, 3), f"right-hand finger rotations ({mean_note})", optional=True),
            _rot("jaw_pose", (3,), "jaw rotation", optional=True),
            _rot("leye_pose", (3,), "left eyeball rotation", optional=True),
            _rot("reye_pose", (3,), "right eyeball rotation", optional=True),
            _shape_spec(self.num_betas),
            ParamSpec("expr", (self.num_expression_coeffs,), "expression", 0.0, "expression coefficients",
                      optional=True),
            _TRANS,
        ]}

    def _call_layer(self, p, batch):
        return self.smplx_layer(
            betas=p["shape"], expression=p["expr"],
            global_orient=self._rotmats(p, "root_pose", batch),
            body_pose=self._rotmats(p, "body_pose", batch),
            left_hand_pose=self._hand_rotmats(p, "lhand_pose", self.lhand_mean, batch),
            right_hand_pose=self._hand_rotmats(p, "rhand_pose", self.rhand_mean, batch),
            jaw_pose=self._rotmats(p, "jaw_pose", batch),
            leye_pose=self._rotmats(p, "leye_pose", batch),
            reye_pose=self._rotmats(p, "reye_pose", batch),
            transl=p["trans"], return_verts=True)


class MANOHand(SmplxFamilyModel):
    """MANO (one side): ``root_pose`` (3), ``hand_pose`` (15, 3), ``shape`` (10), ``trans`` (3)."""

    name = "mano"
    model_type = "mano"
    part = "hand"
    parts = ("hand",)

    def __init__(self, layer, model_file, side="right", flat_hand_mean=False):
        super().__init__(layer, model_file, "neutral")
        self.side = side
        self.flat_hand_mean = bool(flat_hand_mean)
        self.parts = ("hand", "rhand" if side == "right" else "lhand")
        #: MANO's own PCA basis (rows = components over the 45 finger axis-angles) and raw mean.
        self.register_buffer("hand_components", _as_buffer(layer.np_hand_components, self), persistent=False)
        self.register_buffer("hand_mean", layer.hand_mean.detach().clone().reshape(-1), persistent=False)
        mean_note = "flat hand = 0" if self.flat_hand_mean else "offset from the mean hand pose"
        self.param_specs = {s.name: s for s in [
            _rot("root_pose", (3,), "global rotation about the wrist joint (axis-angle)"),
            _rot("hand_pose", (15, 3), f"finger joint rotations, MANO order ({mean_note})"),
            _shape_spec(self.num_betas),
            _TRANS,
        ]}

    def _call_layer(self, p, batch):
        return self.smplx_layer(
            betas=p["shape"], global_orient=self._rotmats(p, "root_pose", batch),
            hand_pose=self._hand_rotmats(p, "hand_pose", self.hand_mean, batch),
            transl=p["trans"], return_verts=True)  # MANOLayer drops joints when return_verts=False


class FLAMEHead(SmplxFamilyModel):
    """FLAME: ``root_pose``, ``jaw_pose`` (3), ``shape``, ``expr``, ``trans``; optional ``neck_pose`` (3),
    ``eye_pose`` (2, 3) = (left eye, right eye)."""

    name = "flame"
    model_type = "flame"
    part = "face"
    parts = ("face",)

    def __init__(self, layer, model_file, gender="neutral", has_landmarks=True):
        super().__init__(layer, model_file, gender, has_landmarks=has_landmarks)
        self.param_specs = {s.name: s for s in [
            _rot("root_pose", (3,), "global rotation about the root joint (axis-angle)"),
            _rot("neck_pose", (3,), "neck rotation", optional=True),
            _rot("jaw_pose", (3,), "jaw rotation"),
            _rot("eye_pose", (2, 3), "eyeball rotations (left, right)", optional=True),
            _shape_spec(self.num_betas),
            ParamSpec("expr", (self.num_expression_coeffs,), "expression", 0.0, "expression coefficients"),
            _TRANS,
        ]}

    def _call_layer(self, p, batch):
        eyes = self._rotmats(p, "eye_pose", batch)
        return self.smplx_layer(
            betas=p["shape"], expression=p["expr"],
            global_orient=self._rotmats(p, "root_pose", batch),
            neck_pose=self._rotmats(p, "neck_pose", batch),
            jaw_pose=self._rotmats(p, "jaw_pose", batch),
            leye_pose=eyes[:, :1], reye_pose=eyes[:, 1:], transl=p["trans"], return_verts=True)


def _as_buffer(array: Any, model: SmplxFamilyModel) -> Tensor:
    from smplx.utils import to_np

    ref = model.smplx_layer.shapedirs
    return torch.as_tensor(to_np(array), dtype=ref.dtype, device=ref.device).clone()


# ---------------------------------------------------------------------------------------------
# loader
# ---------------------------------------------------------------------------------------------
def load_smplx_family(
    model_type: str,
    path: str | os.PathLike | None = None,
    gender: str = "neutral",
    side: str | None = None,
    num_betas: int = 10,
    num_expression_coeffs: int = 10,
    flat_hand_mean: bool = False,
    use_face_contour: bool = False,
    landmarks: bool | None = None,
    fix_left_shapedirs: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> SmplxFamilyModel:
    """Load an SMPL-family model from official files as a :class:`BodyModel`.

    Args:
        model_type: ``smpl | smplx | mano | flame`` (``smpl-x`` etc. accepted).
        path: model file, or folder searched as in the module docstring; ``None`` = ``$NEURALANNOT_MODELS``.
        gender: ``neutral | male | female`` (ignored by MANO; with a file ``path`` only recorded).
        side: MANO hand ``right | left``; ``None`` = from the file name (``MANO_LEFT.pkl``), else right.
        num_betas: shape coefficients (smplx caps it at 10 for 10-component files, at 300 otherwise).
        num_expression_coeffs: SMPL-X/FLAME expression coefficients (same capping: 10 or 100).
        flat_hand_mean: SMPL-X/MANO: ``False`` (NeuralAnnot) = hand poses are offsets from the mean hand.
        use_face_contour: SMPL-X/FLAME: add the 17 pose-dependent contour landmarks.
        landmarks: FLAME only: ``None`` = use the embedding if present (warn if not), ``True`` = require
            it, ``False`` = no landmarks.
        fix_left_shapedirs: MANO left: flip x of ``shapedirs`` if they show smplx issue #48.
        dtype, device: of the model buffers (float32 default).

    Raises:
        ModelFileError: a file is missing (message names the file, folders searched and the download
            site) or unreadable / corrupt / of the wrong model type (message names the file and problem).
        BodyModelError: bad arguments.
    """
    import smplx

    t = _norm_type(model_type)
    gender = _norm_gender(gender)
    display = _DISPLAY[t]
    if t == "mano":
        if side is not None:
            side = _norm_side(side)
        if path is not None and Path(path).is_file():
            stem = Path(path).name.upper()
            file_side = "left" if "LEFT" in stem else "right" if "RIGHT" in stem else None
            if side is not None and file_side is not None and side != file_side:
                raise BodyModelError(f"side={side!r} but {Path(path).name} is a {file_side} MANO hand "
                                     f"(use side={file_side!r}, or part='{file_side[0]}hand')")
            side = side or file_side
        side = side or "right"
    file = resolve_model_file(t, path, gender, side or "right")

    data = _read_model_data(file, display)
    staging = tempfile.TemporaryDirectory(prefix="neuralannot_model_")
    try:
        _check_model_data(t, data, file, use_face_contour)
        common = dict(num_betas=num_betas, dtype=dtype)
        if t == "smpl":
            from smplx.utils import Struct

            layer = _build_layer(smplx.SMPLLayer, file, display, model_path=str(file), gender=gender,
                                 data_struct=Struct(**dict(data)), **common)
            _check_layer(t, layer, file)
            model: SmplxFamilyModel = SMPLBody(layer, file, gender)
        elif t == "mano":
            from smplx.utils import Struct

            layer = _build_layer(smplx.MANOLayer, file, display, model_path=str(file),
                                 data_struct=Struct(**dict(data)), is_rhand=side == "right", use_pca=False,
                                 num_pca_comps=45, flat_hand_mean=False, **common)
            layer.is_rhand = side == "right"
            _check_layer(t, layer, file)
            if side == "left" and fix_left_shapedirs:
                _maybe_fix_left_mano(layer, file)
            model = MANOHand(layer, file, side, flat_hand_mean)
        elif t == "smplx":  # smplx reads the file itself: hand it the cleaned arrays
            clean = write_clean_npz(data, Path(staging.name) / f"SMPLX_{gender.upper()}.npz")
            layer = _build_layer(smplx.SMPLXLayer, file, display, model_path=str(clean), gender=gender,
                                 ext="npz", num_expression_coeffs=num_expression_coeffs,
                                 use_pca=False, num_pca_comps=45, flat_hand_mean=False,
                                 use_face_contour=use_face_contour, **common)
            _check_layer(t, layer, file)
            model = SMPLXBody(layer, file, gender, flat_hand_mean)
        else:
            # smplx's FLAME only reads <folder>/FLAME_<GENDER>.<ext> + flame_static_embedding.pkl:
            # stage clean copies under those names in a temporary folder.
            if landmarks is False and use_face_contour:
                raise BodyModelError("use_face_contour=True needs landmarks; do not pass landmarks=False")
            tmp = Path(staging.name)
            write_clean_npz(data, tmp / f"FLAME_{gender.upper()}.npz")
            real = _flame_embeddings(file, tmp, use_face_contour, landmarks)
            layer = _build_layer(smplx.FLAMELayer, file, display, model_path=str(tmp), gender=gender,
                                 ext="npz", num_expression_coeffs=num_expression_coeffs,
                                 use_face_contour=use_face_contour, **common)
            _check_layer(t, layer, file)
            model = FLAMEHead(layer, file, gender, has_landmarks=real)
    finally:
        staging.cleanup()
    if model.num_betas != num_betas:
        warnings.warn(f"{display} file {file.name} provides {model.num_betas} shape coefficients, "
                      f"not the {num_betas} asked for", stacklevel=2)
    if t in ("smplx", "flame") and model.num_expression_coeffs != num_expression_coeffs:
        warnings.warn(f"{display} file {file.name} provides {model.num_expression_coeffs} expression "
                      f"coefficients, not the {num_expression_coeffs} asked for", stacklevel=2)
    if device is not None:
        model = model.to(device)
    return model.eval()
