"""The 68 iBUG face landmark vertices of the rest body (:func:`face68`)."""

from __future__ import annotations

import numpy as np

from .mesh import PIXEL, Raster, Rest, column_extent, largest_blob, load_mask, mirror_point, nearest

#: Eyebrow points relative to the eye of the same side, from the 300W/iBUG mean shape (OpenFace's
#: alignment template): x in eye widths from the outer corner toward the inner corner, height above
#: the corner line in eye widths (points 17..21 for the right brow, outer → inner).
BROW_TEMPLATE = [(-0.585, 0.57), (-0.228, 0.86), (0.258, 0.94), (0.762, 0.87), (1.237, 0.67)]


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

