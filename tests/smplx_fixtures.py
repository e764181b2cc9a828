"""Tiny synthetic SMPL / SMPL-X / MANO / FLAME model files in the official on-disk formats.

The real models are license-gated, so tests generate stand-ins with the same keys and array layouts
that smplx's loaders read (a few dozen vertices, the real kinematic trees):

- SMPL ``SMPL_NEUTRAL.pkl`` (pickle, scipy-sparse ``J_regressor`` as in the official file),
- SMPL-X ``SMPLX_NEUTRAL.npz`` (10 shape + 10 expression components, hand PCA, landmark embedding),
- MANO ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (``hands_components``, ``hands_mean``; the left file
  reproduces the official un-mirrored ``shapedirs`` bug),
- FLAME ``generic_model.pkl`` (FLAME 2020 release name) + ``flame_static_embedding.pkl`` (51
  landmarks) + ``flame_dynamic_embedding.npy`` (17 contour landmarks): ``face68``.

Layouts: ``v_template`` (V, 3), ``f`` (F, 3) uint32, ``J_regressor`` (J, V) rows summing to 1,
``kintree_table`` (2, J) with the root's parent stored as 2**32 - 1, ``weights`` (V, J) rows summing
to 1, ``shapedirs`` (V, 3, K), ``posedirs`` (V, 3, 9 (J - 1)).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# SMPL-X: 22 body joints, jaw + eyes on the head (15), 3-joint fingers on the wrists (20 / 21)
SMPLX_PARENTS = SMPL_PARENTS[:22] + [15, 15, 15] + [
    p for wrist, first in ((20, 25), (21, 40)) for f in range(5)
    for p in (wrist, first + 3 * f, first + 3 * f + 1)
]
MANO_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
FLAME_PARENTS = [-1, 0, 1, 1, 1]
ROOT_PARENT = 2**32 - 1  # as stored in the official kintree tables


def make_model_arrays(parents: list[int], n_verts: int, n_shape: int, seed: int) -> dict[str, np.ndarray]:
    """Random but well-formed LBS model: vertices near joints, each vertex skinned to its joint."""
    rng = np.random.default_rng(seed)
    J = len(parents)
    joints = np.zeros((J, 3))
    for j in range(1, J):
        joints[j] = joints[parents[j]] + rng.normal(0.0, 0.1, 3)
    owner = np.arange(n_verts) % J  # every joint owns at least one vertex (n_verts >= J)
    v_template = joints[owner] + rng.normal(0.0, 0.02, (n_verts, 3))
    J_regressor = np.zeros((J, n_verts))
    J_regressor[owner, np.arange(n_verts)] = 1.0
    J_regressor /= J_regressor.sum(1, keepdims=True)
    weights = np.zeros((n_verts, J))
    for v, j in enumerate(owner):
        if parents[j] < 0:
            weights[v, j] = 1.0
        else:
            weights[v, j], weights[v, parents[j]] = 0.7, 0.3
    faces = np.array([[i, i + 1, i + 2] for i in range(n_verts - 2)], dtype=np.uint32)
    kintree = np.array([[ROOT_PARENT if p < 0 else p for p in parents], list(range(J))], dtype=np.int64)
    return {
        "v_template": v_template,
        "f": faces,
        "J_regressor": J_regressor,
        "kintree_table": kintree,
        "weights": weights,
        "shapedirs": rng.normal(0.0, 0.01, (n_verts, 3, n_shape)),
        "posedirs": rng.normal(0.0, 0.002, (n_verts, 3, 9 * (J - 1))),
    }


def _random_rotation(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def _dump(obj, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)
    return path


def write_smpl(folder: Path, seed: int = 0) -> tuple[Path, dict]:
    data = make_model_arrays(SMPL_PARENTS, 48, 10, seed)
    try:  # the official file stores J_regressor as a scipy sparse matrix
        import scipy.sparse

        data = dict(data, J_regressor=scipy.sparse.csc_matrix(data["J_regressor"]))
    except ImportError:
        pass
    data.update(bs_style="lbs", bs_type="lrotmin")
    return _dump(data, folder / "SMPL_NEUTRAL.pkl"), data


def write_smplx(folder: Path, seed: int = 1, n_landmarks: int = 7) -> tuple[Path, dict]:
    rng = np.random.default_rng(seed + 100)
    data = make_model_arrays(SMPLX_PARENTS, 64, 20, seed)
    n_faces = data["f"].shape[0]
    data.update(
        hands_componentsl=_random_rotation(rng, 45), hands_componentsr=_random_rotation(rng, 45),
        hands_meanl=rng.normal(0.0, 0.2, 45), hands_meanr=rng.normal(0.0, 0.2, 45),
        lmk_faces_idx=rng.integers(0, n_faces, n_landmarks).astype(np.int64),
        lmk_bary_coords=rng.dirichlet(np.ones(3), n_landmarks),
        dynamic_lmk_faces_idx=rng.integers(0, n_faces, (79, 3)).astype(np.int64),
        dynamic_lmk_bary_coords=rng.dirichlet(np.ones(3), (79, 3)),
    )
    path = folder / "SMPLX_NEUTRAL.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return path, data


def write_mano(folder: Path, seed: int = 2) -> tuple[dict[str, Path], dict[str, dict]]:
    rng = np.random.default_rng(seed + 100)
    right = make_model_arrays(MANO_PARENTS, 40, 10, seed)
    right.update(hands_components=_random_rotation(rng, 45), hands_mean=rng.normal(0.0, 0.2, 45),
                 hands_coeffs=rng.normal(size=(5, 45)))
    try:
        import scipy.sparse

        right["J_regressor"] = scipy.sparse.csc_matrix(right["J_regressor"])
    except ImportError:
        pass
    mirror = np.array([-1.0, 1.0, 1.0])
    left = dict(right)
    left["v_template"] = right["v_template"] * mirror
    left["shapedirs"] = right["shapedirs"].copy()  # the official bug: x not mirrored
    left["hands_mean"] = right["hands_mean"] * np.tile(np.array([1.0, -1.0, -1.0]), 15)
    return ({"right": _dump(right, folder / "MANO_RIGHT.pkl"), "left": _dump(left, folder / "MANO_LEFT.pkl")},
            {"right": right, "left": left})


def write_flame(folder: Path, seed: int = 3, n_landmarks: int = 51, embedding: bool = True,
                contour: int = 17) -> tuple[Path, dict]:
    """FLAME 2020 ``generic_model.pkl``; with ``embedding`` also ``flame_static_embedding.pkl``
    (``n_landmarks`` static landmarks, 51 as in the real file) and, with ``contour`` > 0,
    ``flame_dynamic_embedding.npy`` (smplx's format: a pickled dict, ``lmk_face_idx`` (79, contour) and
    ``lmk_b_coords`` (79, contour, 3), one row per neck-yaw bin from -39 to +39 degrees)."""
    rng = np.random.default_rng(seed + 100)
    data = make_model_arrays(FLAME_PARENTS, 30, 20, seed)
    path = _dump(data, folder / "generic_model.pkl")
    if embedding:
        n_faces = data["f"].shape[0]
        emb = {"lmk_face_idx": rng.integers(0, n_faces, n_landmarks).astype(np.uint32),
               "lmk_b_coords": rng.dirichlet(np.ones(3), n_landmarks)}
        data["_embedding"] = emb
        _dump(emb, folder / "flame_static_embedding.pkl")
        if contour:
            dyn = {"lmk_face_idx": rng.integers(0, n_faces, (79, contour)).astype(np.int64),
                   "lmk_b_coords": rng.dirichlet(np.ones(3), (79, contour))}
            data["_dynamic_embedding"] = dyn
            np.save(folder / "flame_dynamic_embedding.npy", np.array(dyn, dtype=object), allow_pickle=True)
    return path, data


def write_all(root: Path) -> dict:
    """Write all models under ``root/<type>/`` (the NEURALANNOT_MODELS layout); return paths + arrays."""
    smpl, smpl_d = write_smpl(root / "smpl")
    smplx, smplx_d = write_smplx(root / "smplx")
    mano, mano_d = write_mano(root / "mano")
    flame, flame_d = write_flame(root / "flame")
    return {
        "root": root,
        "smpl": (smpl, smpl_d),
        "smplx": (smplx, smplx_d),
        "mano": (mano["right"], mano_d["right"]),
        "mano_left": (mano["left"], mano_d["left"]),
        "flame": (flame, flame_d),
    }


def dense(x) -> np.ndarray:
    return np.asarray(x.todense()) if hasattr(x, "todense") else np.asarray(x)


def chumpy_pickle(data: dict, keys: tuple[str, ...] = ("shapedirs", "v_template"),
                  protocol: int = 2) -> bytes:
    """``data`` pickled as the official files are: ``keys`` as ``chumpy.ch.Ch`` objects (state: ``x``
    plus chumpy's bookkeeping), without chumpy installed (a stand-in module is registered meanwhile)."""
    import sys
    import types

    mod = types.ModuleType("chumpy.ch")
    pkg = types.ModuleType("chumpy")

    class Ch:
        def __getstate__(self):
            return self.__dict__

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    mod.Ch, pkg.ch = Ch, mod
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": pkg, "chumpy.ch": mod})
    try:
        out = dict(data)
        for k in keys:
            ch = Ch()
            ch.__dict__.update(x=np.asarray(data[k]), _dirty_vars={"x"}, _itr=None, _make_dense=False,
                               _make_sparse=False, _depends_on_deps={})
            out[k] = ch
        return pickle.dumps(out, protocol=protocol)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
