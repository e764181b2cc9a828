"""SMPL-family model files: where they are looked up, how their type is inferred, how they are read
and checked before a layer is built (see :mod:`neuralannot.bodies.smplx_family` for the conventions).
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import logging
import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralannot.bodies.base import (
    BodyModelError,
    ModelFileError,
)
from neuralannot.bodies.model_files import read_model_file
from neuralannot.bodies.parts import MODEL_NAMES
from neuralannot.utils.safe_pickle import UnsafePickleError

log = logging.getLogger("neuralannot.bodies.smplx_family")

MODEL_TYPES = tuple(m for m in MODEL_NAMES if m != "anny")  # ("smpl", "smplx", "mano", "flame")
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


def _flame_embeddings(model_file: Path, tmp: Path, use_face_contour: bool | None,
                      landmarks: bool | None) -> tuple[bool, bool]:
    """Place the landmark embedding(s) smplx's FLAME expects into ``tmp``.

    Returns ``(real landmarks, contour on)``; ``use_face_contour=None`` turns the contour on when its
    embedding is next to the model file (else off, with a warning naming the missing file).
    """
    folder = model_file.parent
    if landmarks is False:
        _write_dummy_embedding(tmp)
        return False, False
    static = _find_in_dir(folder, [_FLAME_STATIC])
    deca = _find_in_dir(folder, [_DECA_EMBEDDING])
    dynamic = _find_in_dir(folder, [_FLAME_DYNAMIC])
    if use_face_contour is None:
        use_face_contour = dynamic is not None or deca is not None
        if not use_face_contour and static is not None:
            warnings.warn(f"FLAME: {flame_contour_note(model_file)}", stacklevel=3)
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
        return False, False
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
    return True, bool(use_face_contour)


def flame_contour_note(model_file: Path) -> str:
    """Why a FLAME model has no contour landmarks (hence no ``face68``): the missing file, where to get it."""
    return (f"no {_FLAME_DYNAMIC} (or DECA's {_DECA_EMBEDDING}) next to {model_file.name} in "
            f"{model_file.parent}: the 17 face-contour landmarks, hence the face68 keypoint set, are "
            "unavailable; get the file from https://github.com/soubhiksanyal/FLAME_PyTorch (folder model/)")


SMPLX_CONTOUR_KEYS = ("dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords")


def smplx_contour_note(model_file: Path) -> str:
    """Why an SMPL-X model has no contour landmarks (hence no ``face68`` / ``coco_wholebody133``)."""
    return (f"{model_file} has no face-contour embedding ({', '.join(SMPLX_CONTOUR_KEYS)}): the 17 "
            "face-contour landmarks, hence face68 and coco_wholebody133, are unavailable; use the "
            f"official SMPL-X files ({MODEL_URLS['smplx']})")


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
