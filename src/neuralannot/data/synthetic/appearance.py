"""Procedural appearance for synthetic renders: backgrounds, skin/clothing colours, light, occluders.

Everything random takes a ``numpy.random.Generator`` so a sample's look is a pure function of the
generator state. Costly things are built once per process: :class:`BackgroundPool` pre-renders a pool
of backgrounds (gradients, low-frequency blobs, stripes / checkers, random rectangles, wall + floor)
that each sample then crops, flips and tints; :class:`BodyPaint` labels every vertex of a model with
a body segment once, so a per-sample outfit is a (segments, 3) colour table lookup.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = [
    "BackgroundPool",
    "BodyPaint",
    "sample_light",
    "sample_occluders",
    "skin_color",
    "cloth_color",
]

#: sRGB skin tones (0-1) from light to dark; samples interpolate neighbours and jitter.
SKIN_TONES = np.array(
    [[0.96, 0.80, 0.69], [0.92, 0.72, 0.58], [0.84, 0.62, 0.48], [0.76, 0.54, 0.40],
     [0.62, 0.42, 0.30], [0.48, 0.32, 0.22], [0.36, 0.23, 0.16], [0.27, 0.17, 0.12]],
    np.float32,
)  # fmt: skip
NEUTRALS = np.array(
    [[0.08, 0.08, 0.09], [0.9, 0.9, 0.88], [0.5, 0.5, 0.5], [0.12, 0.16, 0.32], [0.22, 0.32, 0.5],
     [0.62, 0.55, 0.4], [0.3, 0.22, 0.15], [0.25, 0.3, 0.2]],
    np.float32,
)  # fmt: skip
HAIR = np.array(
    [[0.05, 0.04, 0.03], [0.18, 0.11, 0.06], [0.35, 0.22, 0.12], [0.7, 0.55, 0.3], [0.55, 0.25, 0.12],
     [0.6, 0.6, 0.6]],
    np.float32,
)  # fmt: skip
SEGMENTS = ["skin", "hair", "sclera", "iris", "chest", "belly", "hips", "upperarm", "upperarm2",
            "forearm", "hand", "thigh", "shin", "shin2", "foot"]  # fmt: skip
_BONE_SEGMENT = {
    "spine01": "chest", "spine02": "chest", "clavicle": "chest", "shoulder01": "chest",
    "spine03": "belly", "spine04": "belly", "spine05": "hips", "root": "hips", "pelvis": "hips",
    "upperarm01": "upperarm", "upperarm02": "upperarm2", "lowerarm01": "forearm", "lowerarm02": "forearm",
    "wrist": "hand", "finger": "hand", "metacarpal": "hand", "upperleg01": "thigh", "upperleg02": "thigh",
    "lowerleg01": "shin", "lowerleg02": "shin2", "foot": "foot", "toe": "foot", "eye": "sclera",
}  # fmt: skip


# --- colours ---------------------------------------------------------------------------------------
def skin_color(rng: np.random.Generator) -> np.ndarray:
    """(3,) float32 skin tone: a point between two neighbouring palette tones, slightly jittered."""
    i = int(rng.integers(len(SKIN_TONES) - 1))
    c = SKIN_TONES[i] + rng.random() * (SKIN_TONES[i + 1] - SKIN_TONES[i])
    return np.clip(c * rng.uniform(0.94, 1.06) + rng.normal(0, 0.015, 3), 0, 1).astype(np.float32)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return (v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)).astype(np.float32)


def cloth_color(rng: np.random.Generator) -> np.ndarray:
    """(3,) float32 clothing colour: a common neutral (40%) or a random hue."""
    if rng.random() < 0.4:
        return np.clip(NEUTRALS[rng.integers(len(NEUTRALS))] + rng.normal(0, 0.03, 3), 0, 1).astype(
            np.float32
        )
    return _hsv(rng.random(), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.95))


class BodyPaint:
    """Per-vertex colours for one Anny model from per-sample outfits.

    Vertices get a segment (:data:`SEGMENTS`) from their dominant skinning bone; the head is split
    into skin and a hair cap, the eyes into sclera and iris, from the rest-pose geometry (canonical
    frame: Y up, face toward +Z). A fixed per-vertex brightness texture (±6%) breaks flat colours.
    """

    def __init__(self, model: torch.nn.Module):
        a = model.anny
        w, idx = a.vertex_bone_weights, a.vertex_bone_indices
        dom = idx.gather(1, w.argmax(1, keepdim=True))[:, 0].tolist()
        seg = [self._segment(model.bone_labels[b]) for b in dom]
        self.segment = np.array([SEGMENTS.index(s) for s in seg], np.int64)
        with torch.no_grad():
            out = model(model.default_params(1))
        v = out.vertices[0].numpy()
        heads = out.extras["bone_heads"][0].numpy()
        labels = model.bone_labels
        if "eye.L" in labels and "head" in labels:
            eyes = heads[[labels.index("eye.L"), labels.index("eye.R")]]
            ey, ez = eyes[:, 1].mean(), eyes[:, 2].mean()
            skin = self.segment == SEGMENTS.index("skin")
            head_v = np.isin(np.array(dom), [labels.index("head")])
            hair = head_v & ((v[:, 1] > ey + 0.045) | ((v[:, 1] > ey - 0.1) & (v[:, 2] < ez - 0.075)))
            self.segment[skin & hair] = SEGMENTS.index("hair")
            sclera = self.segment == SEGMENTS.index("sclera")
            for e in eyes:
                side = sclera & (np.linalg.norm(v - e, axis=1) < 0.03)
                front = v[:, 2] - e[2]
                if side.any():
                    self.segment[side & (front > 0.75 * front[side].max())] = SEGMENTS.index("iris")
        tex_rng = np.random.default_rng(1234)
        self.texture = tex_rng.uniform(0.94, 1.06, len(self.segment)).astype(np.float32)[:, None]

    @staticmethod
    def _segment(bone: str) -> str:
        stem = bone.split(".")[0]
        for key, seg in _BONE_SEGMENT.items():
            if stem == key or (stem.startswith(key) and key in ("finger", "metacarpal", "toe")):
                return seg
        return "skin"  # head, neck

    def outfit(self, rng: np.random.Generator, style: str = "wild") -> np.ndarray:
        """(len(SEGMENTS), 3) colour table. ``style``: ``wild`` (varied clothes) or ``studio`` (a dark
        mocap suit, long sleeves and trousers)."""
        skin = skin_color(rng)
        hair = HAIR[rng.integers(len(HAIR))] * rng.uniform(0.85, 1.15)
        if rng.random() < 0.06:
            hair = skin * 0.95  # bald
        iris = _hsv(rng.uniform(0.05, 0.6), 0.5, rng.uniform(0.15, 0.45))
        table = {
            "skin": skin,
            "hair": hair,
            "sclera": np.array([0.85, 0.85, 0.82]),
            "iris": iris,
            "hand": skin,
        }
        if style == "studio":
            suit = NEUTRALS[rng.integers(2)] * 0.6 + 0.1 * rng.random()
            top = bottom = suit
            shoes, sleeves, legs = suit * 0.7, 2, 2
        else:
            top, bottom, shoes = cloth_color(rng), cloth_color(rng), cloth_color(rng) * 0.6
            sleeves = int(rng.choice(3, p=[0.1, 0.45, 0.45]))  # none, short, long
            legs = int(rng.choice(3, p=[0.15, 0.1, 0.75]))  # shorts, knee, long
        table |= {"chest": top, "belly": top, "hips": bottom, "thigh": bottom, "foot": shoes}
        table["upperarm"] = top if sleeves >= 1 else skin
        table["upperarm2"] = table["forearm"] = top if sleeves == 2 else skin
        table["shin"] = bottom if legs >= 1 else skin
        table["shin2"] = bottom if legs == 2 else skin
        return np.clip(np.stack([np.asarray(table[s], np.float32) for s in SEGMENTS]), 0, 1)

    def colors(self, rng: np.random.Generator, style: str = "wild") -> np.ndarray:
        """(V, 3) float32 per-vertex colours of one random outfit."""
        return self.outfit(rng, style)[self.segment] * self.texture


# --- light -----------------------------------------------------------------------------------------
def sample_light(rng: np.random.Generator, style: str = "wild") -> tuple[np.ndarray, float]:
    """(direction the light travels in the OpenCV camera frame (3,), ambient in [0, 1]).

    Wild: from the camera's side of the scene within ±70° azimuth, 0-60° above; studio: a fixed
    soft key light from above the camera."""
    if style == "studio":
        az, el, ambient = 0.2, 0.5, 0.45
    else:
        az, el, ambient = rng.uniform(-1.2, 1.2), rng.uniform(0.0, 1.05), rng.uniform(0.25, 0.55)
    to_light = np.array([np.sin(az) * np.cos(el), -np.sin(el), -np.cos(az) * np.cos(el)])
    return (-to_light).astype(np.float32), float(ambient)


# --- backgrounds -----------------------------------------------------------------------------------
def _grid(S: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:S, 0:S].astype(np.float32) / S
    return x, y


def _resize(img: np.ndarray, S: int) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8))
    return np.asarray(im.resize((S, S), Image.Resampling.BICUBIC), np.float32) / 255


def _bg_gradient(rng: np.random.Generator, S: int) -> np.ndarray:
    x, y = _grid(S)
    a = rng.uniform(0, 2 * np.pi)
    t = np.clip((np.cos(a) * (x - 0.5) + np.sin(a) * (y - 0.5)) * rng.uniform(0.7, 1.6) + 0.5, 0, 1)
    c0, c1 = cloth_color(rng), cloth_color(rng)
    return c0 + (c1 - c0) * t[..., None]


def _bg_blobs(rng: np.random.Generator, S: int) -> np.ndarray:
    img = _resize(rng.random((int(rng.integers(2, 6)),) * 2 + (3,)), S) * 0.75
    return img + 0.25 * _resize(rng.random((int(rng.integers(8, 24)),) * 2 + (3,)), S)


def _bg_stripes(rng: np.random.Generator, S: int) -> np.ndarray:
    x, y = _grid(S)
    a, period = rng.uniform(0, np.pi), rng.uniform(0.04, 0.25)
    u, v = np.cos(a) * x + np.sin(a) * y, -np.sin(a) * x + np.cos(a) * y
    if rng.random() < 0.5:
        t = (np.floor(u / period) % 2).astype(np.float32)
    else:
        t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    c0, c1 = cloth_color(rng), cloth_color(rng)
    return c0 + (c1 - c0) * t[..., None]


def _bg_rects(rng: np.random.Generator, S: int) -> np.ndarray:
    img = np.empty((S, S, 3), np.float32)
    img[:] = cloth_color(rng)
    for _ in range(int(rng.integers(6, 24))):
        x0, y0 = rng.integers(0, S, 2)
        w, h = rng.integers(S // 16, S // 2, 2)
        img[y0 : y0 + h, x0 : x0 + w] = cloth_color(rng)
    return img


def _bg_room(rng: np.random.Generator, S: int, studio: bool = False) -> np.ndarray:
    x, y = _grid(S)
    horizon = rng.uniform(0.45, 0.8)
    wall = np.full(3, rng.uniform(0.55, 0.8), np.float32) if studio else cloth_color(rng)
    floor = wall * rng.uniform(0.55, 0.8) if studio else cloth_color(rng)
    img = wall * (1 - 0.25 * y[..., None])
    below = (y > horizon)[..., None]
    shade = 0.8 + 0.35 * ((y - horizon) / (1 - horizon))[..., None]
    if not studio and rng.random() < 0.5:  # floorboards / tiles converging to the horizon
        shade = shade * (0.9 + 0.1 * (np.floor((x - 0.5) / np.maximum(y - horizon, 0.02) * 2) % 2)[..., None])
    return np.where(below, floor * shade, img)


_BACKGROUNDS: list[Callable[[np.random.Generator, int], np.ndarray]] = [
    _bg_gradient, _bg_blobs, _bg_stripes, _bg_rects, _bg_room,
]  # fmt: skip


class BackgroundPool:
    """A pool of ``n`` pre-rendered (S, S, 3) uint8 backgrounds, sampled with crop/flip/tint.

    Args:
        seed: pool seed (the same pool in every worker process).
        n: pool size.
        size: side of the pool images; samples are random crops of them (>= the output size).
        style: ``wild`` (all generators) or ``studio`` (plain grey walls and floors, mocap).
    """

    def __init__(self, seed: int, n: int = 64, size: int = 320, style: str = "wild"):
        rng = np.random.default_rng([seed, 7919])
        self.style = style
        imgs = np.empty((n, size, size, 3), np.uint8)
        for i in range(n):
            if style == "studio":
                img = _bg_room(rng, size, studio=True)
            else:
                img = _BACKGROUNDS[i % len(_BACKGROUNDS)](rng, size)
            img = img + rng.normal(0, rng.uniform(0.005, 0.03), img.shape)  # sensor-like grain
            imgs[i] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
        self.images = imgs

    def sample(self, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        """(height, width, 3) uint8: a random crop, mirrored half the time, with a random colour gain."""
        n, S = self.images.shape[:2]
        if width > S or height > S:
            raise ValueError(f"background pool size {S} is smaller than the image {width}x{height}")
        i = int(rng.integers(n))
        ox, oy = int(rng.integers(S - width + 1)), int(rng.integers(S - height + 1))
        img = self.images[i, oy : oy + height, ox : ox + width]
        if rng.random() < 0.5:
            img = img[:, ::-1]
        tint = 0.04 if self.style == "studio" else 0.15
        gain = rng.uniform(1 - tint, 1 + tint, 3) * rng.uniform(1 - 2 * tint, 1 + tint)
        lut = np.clip(np.arange(256, dtype=np.float32)[None] * gain[:, None] + 0.5, 0, 255).astype(np.uint8)
        out = np.empty((height, width, 3), np.uint8)
        for c in range(3):
            np.take(lut[c], img[..., c], out=out[..., c])
        return out


# --- occluders -------------------------------------------------------------------------------------
_CUBE_V = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], np.float32)
_CUBE_F = np.array(
    [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
     [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]],
    np.int32,
)  # fmt: skip


def _unit_sphere(levels: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Icosahedron subdivided ``levels`` times (162 vertices for 2), radius 1."""
    t = (1 + 5**0.5) / 2
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
         [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]  # fmt: skip
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
         [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5],
         [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]  # fmt: skip
    verts = [np.array(p, np.float64) / np.linalg.norm(p) for p in v]
    for _ in range(levels):
        mids: dict[tuple[int, int], int] = {}
        new = []
        for a, b, c in f:
            ab, bc, ca = (_midpoint(verts, mids, i, j) for i, j in ((a, b), (b, c), (c, a)))
            new += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        f = new
    return np.array(verts, np.float32), np.array(f, np.int32)


def _midpoint(verts: list, mids: dict, a: int, b: int) -> int:
    """Index of the unit-sphere midpoint of edge (a, b), appended to ``verts`` on first use."""
    key = (min(a, b), max(a, b))
    if key not in mids:
        m = verts[a] + verts[b]
        verts.append(m / np.linalg.norm(m))
        mids[key] = len(verts) - 1
    return mids[key]


_SPHERE_V, _SPHERE_F = _unit_sphere()


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return (q * np.linalg.det(q)).astype(np.float32)


def sample_occluders(
    rng: np.random.Generator,
    K: np.ndarray,
    box: np.ndarray,
    depth: float,
    nearest: float,
    max_count: int = 2,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """1..``max_count`` boxes / spheres between the camera and a subject.

    Args:
        K: (3, 3) intrinsics; box: the subject's (x0, y0, x1, y1) pixel box; depth: the subject's
            distance (m); nearest: depth of the subject's nearest point. Each occluder is centred on a
            random pixel of the box's central 80%, at 35-85% of the subject's depth, spanning 12-35%
            of the box's larger side, and pulled toward the camera (keeping its image size) until it
            lies entirely in front of ``nearest`` - 2 cm, so a depth threshold separates it.
    Returns:
        ``(vertices (V, 3), faces (F, 3), color (3,))`` meshes in the camera frame.
    """
    meshes = []
    f = float(K[0, 0])
    size_px = float(max(box[2] - box[0], box[3] - box[1]))
    for _ in range(int(rng.integers(1, max_count + 1))):
        u = box[0] + (box[2] - box[0]) * rng.uniform(0.1, 0.9)
        v = box[1] + (box[3] - box[1]) * rng.uniform(0.1, 0.9)
        k = size_px * rng.uniform(0.12, 0.35) / f  # size / depth
        if rng.random() < 0.5:
            dims = rng.uniform(0.4, 1.4, 3).astype(np.float32)
            shape, faces = (_CUBE_V * dims) @ _random_rotation(rng).T, _CUBE_F
        else:
            shape, faces = _SPHERE_V / 2, _SPHERE_F
        reach = float(np.linalg.norm(shape, axis=1).max())  # farthest vertex per unit size
        z = min(depth * rng.uniform(0.35, 0.85), (nearest - 0.02) / (1 + reach * k))
        centre = np.array([(u - K[0, 2]) * z / f, (v - K[1, 2]) * z / K[1, 1], z], np.float32)
        meshes.append((shape * (k * z) + centre, faces, cloth_color(rng)))
    return meshes
