"""Image / keypoint transforms for crops, flips and heatmaps (numpy; PIL for image I/O and fast warps).

Pixel convention (as OpenCV's ``warpAffine``): pixel ``(col, row)`` has its center at the integer
point ``(x=col, y=row)``; an affine ``A`` (2, 3) maps source image points to crop points, and crop
pixel ``(c, r)`` takes the bilinear source value at ``A^-1 (c, r)``. Sizes are ``(w, h)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from neuralannot.bodies.joint_names import flip_permutation
from neuralannot.data.sample import SampleError

__all__ = [
    "load_image",
    "check_image",
    "crop_affine",
    "crop_to_bbox",
    "warp_affine",
    "invert_affine",
    "apply_affine_2d",
    "intrinsics_matrix",
    "update_intrinsics_for_affine",
    "hflip",
    "hflip_bbox",
    "hflip_joints_3d",
    "hflip_intrinsics",
    "joints_to_heatmaps",
    "visibility_in_crop",
    "scale_jitter",
]

_IMAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, SyntaxError, ValueError)


def _pil():
    from PIL import Image

    return Image


def check_image(path: str, sample_id: str | None = None) -> tuple[int, int]:
    """Open and ``verify()`` an image without decoding the pixels; return its ``(w, h)``.

    Raises :class:`SampleError` naming the file (and the sample) when it is missing or corrupt.
    """
    Image = _pil()
    try:
        with Image.open(path) as im:
            size = im.size
            im.verify()
    except FileNotFoundError:
        raise SampleError(f"image file not found: {path}", sample_id, str(path), kind="image") from None
    except (*_IMAGE_ERRORS, Image.DecompressionBombError) as exc:
        raise SampleError(
            f"unreadable/corrupt image {path}: {exc}", sample_id, str(path), kind="image"
        ) from None
    return size


def load_image(
    path: str, sample_id: str | None = None, expected_size: tuple[int, int] | None = None
) -> np.ndarray:
    """Read an image as RGB uint8 ``(H, W, 3)``; :class:`SampleError` naming the file if missing/corrupt,
    or when it is not ``expected_size`` ``(w, h)`` (the sample's declared ``image_size``) when given."""
    check_image(path, sample_id)
    Image = _pil()
    try:
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB"))
    except (*_IMAGE_ERRORS, Image.DecompressionBombError) as exc:  # truncated data shows up on decode
        raise SampleError(
            f"unreadable/corrupt image {path}: {exc}", sample_id, str(path), kind="image"
        ) from None
    if expected_size is not None and tuple(expected_size) != (image.shape[1], image.shape[0]):
        w, h = expected_size
        raise SampleError(
            f"image {path} is {image.shape[1]}x{image.shape[0]} but the sample's image_size says {w}x{h}",
            sample_id,
            kind="image_size",
        )
    return image


# --- affine crops ------------------------------------------------------------------------------------
def crop_affine(
    bbox: Sequence[float],
    out_size: tuple[int, int] = (256, 256),
    scale: float = 1.0,
    aspect: str = "keep",
    rotation: float = 0.0,
) -> np.ndarray:
    """Affine (2, 3) mapping image points to crop points for box ``[x, y, w, h]``.

    The box is enlarged by ``scale`` about its center; with ``aspect="keep"`` its shorter side is
    then padded to the crop's aspect ratio (no distortion), with ``"stretch"`` it fills the crop.
    ``rotation`` (degrees) turns the content counter-clockwise on screen about the box center.
    Without rotation the box corners map to the crop corners ``(0, 0)`` and ``(w_out, h_out)``.
    """
    if aspect not in ("keep", "stretch"):
        raise ValueError(f"aspect must be 'keep' or 'stretch', got {aspect!r}")
    x, y, w, h = (float(v) for v in bbox)
    if not (w > 0 and h > 0 and scale > 0):
        raise ValueError(
            f"crop_affine: need a positive box size and scale, got bbox={list(bbox)}, scale={scale}"
        )
    W, H = out_size
    cx, cy, w, h = x + w / 2, y + h / 2, w * scale, h * scale
    if aspect == "keep":
        if w / h > W / H:
            h = w * H / W
        else:
            w = h * W / H
    sx, sy = W / w, H / h
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    lin = np.array([[sx * c, sx * s], [-sy * s, sy * c]])
    t = np.array([W / 2, H / 2]) - lin @ np.array([cx, cy])
    return np.concatenate([lin, t[:, None]], axis=1)


def invert_affine(A: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine."""
    lin = np.linalg.inv(A[:, :2])
    return np.concatenate([lin, -(lin @ A[:, 2])[:, None]], axis=1)


def _warp_numpy(image: np.ndarray, M: np.ndarray, out_size: tuple[int, int], pad_value: float) -> np.ndarray:
    """Bilinear sample ``image`` at ``M @ (c, r, 1)`` for every crop pixel; outside = ``pad_value``."""
    W, H = out_size
    squeeze = image.ndim == 2
    img = image[..., None] if squeeze else image
    h, w = img.shape[:2]
    padded = np.full((h + 2, w + 2, img.shape[2]), pad_value, dtype=np.float32)
    padded[1:-1, 1:-1] = img
    cc, rr = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    xs = np.clip(M[0, 0] * cc + M[0, 1] * rr + M[0, 2] + 1, 0, w + 1)
    ys = np.clip(M[1, 0] * cc + M[1, 1] * rr + M[1, 2] + 1, 0, h + 1)
    x0 = np.minimum(np.floor(xs).astype(np.int64), w)
    y0 = np.minimum(np.floor(ys).astype(np.int64), h)
    wx, wy = (xs - x0)[..., None], (ys - y0)[..., None]
    out = (
        padded[y0, x0] * (1 - wx) * (1 - wy)
        + padded[y0, x0 + 1] * wx * (1 - wy)
        + padded[y0 + 1, x0] * (1 - wx) * wy
        + padded[y0 + 1, x0 + 1] * wx * wy
    )
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(image.dtype)
    return out[..., 0] if squeeze else out


def warp_affine(
    image: np.ndarray, A: np.ndarray, out_size: tuple[int, int], pad_value: float = 0, backend: str = "auto"
) -> np.ndarray:
    """Warp ``image`` (H, W[, C]) with ``A`` (image → crop) into ``out_size`` (w, h), bilinear.

    ``backend="pil"`` (default for uint8 gray/RGB) is fast; ``"numpy"`` handles any dtype/channels.
    They agree to +-1 level inside the image; in the half-pixel band along the image edge numpy blends
    with ``pad_value`` (as OpenCV's constant border) while PIL does not. Neither antialiases: for
    strong downscaling, blur or pre-shrink the image first.
    """
    M = invert_affine(np.asarray(A, dtype=np.float64))
    pil_ok = image.dtype == np.uint8 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3))
    if backend == "numpy" or (backend == "auto" and not pil_ok):
        return _warp_numpy(image, M, out_size, pad_value)
    if not pil_ok:
        raise ValueError(f"PIL backend needs a uint8 gray or RGB image, got {image.dtype} {image.shape}")
    Image = _pil()
    # PIL samples output pixel (c+0.5, r+0.5) → input point p, then reads the pixel centered at p - 0.5.
    t = M[:, 2] + 0.5 - M[:, :2] @ np.array([0.5, 0.5])
    data = (M[0, 0], M[0, 1], t[0], M[1, 0], M[1, 1], t[1])
    fill = int(pad_value) if image.ndim == 2 else (int(pad_value),) * 3
    pil = Image.fromarray(image)
    out = pil.transform(tuple(int(v) for v in out_size), Image.Transform.AFFINE, data,
                        resample=Image.Resampling.BILINEAR, fillcolor=fill)  # fmt: skip
    return np.asarray(out)


def crop_to_bbox(
    image: np.ndarray,
    bbox: Sequence[float],
    out_size: tuple[int, int] = (256, 256),
    scale: float = 1.0,
    aspect: str = "keep",
    rotation: float = 0.0,
    pad_value: float = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop box ``[x, y, w, h]`` of ``image`` (H, W, C) into ``out_size`` with one affine warp.

    Returns ``(crop (h_out, w_out, C), A (2, 3))`` with ``A`` mapping image points to crop points
    (see :func:`crop_affine`); areas outside the image are ``pad_value``.
    """
    A = crop_affine(bbox, out_size, scale=scale, aspect=aspect, rotation=rotation)
    return warp_affine(image, A, out_size, pad_value=pad_value), A


def apply_affine_2d(points: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Apply ``A`` (2, 3) to the first two columns of ``points`` (..., C>=2); other columns are kept."""
    pts = np.asarray(points)
    out = pts.astype(np.result_type(pts.dtype, np.float32), copy=True)
    xy = pts[..., :2].astype(np.float64)
    out[..., :2] = xy @ np.asarray(A, dtype=np.float64)[:, :2].T + np.asarray(A, dtype=np.float64)[:, 2]
    return out


# --- intrinsics --------------------------------------------------------------------------------------
def intrinsics_matrix(focal: Sequence[float], princpt: Sequence[float]) -> np.ndarray:
    """(3, 3) pinhole matrix from ``focal (fx, fy)`` and ``princpt (cx, cy)``."""
    (fx, fy), (cx, cy) = focal, princpt
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def update_intrinsics_for_affine(K: np.ndarray, A: np.ndarray, strict: bool = True) -> np.ndarray:
    """Intrinsics of the crop: ``K' = [A; 0 0 1] @ K`` (3, 3).

    Projecting with ``K'`` equals projecting with ``K`` and then applying ``A``, for any affine
    (the affine acts after the perspective divide). ``K'`` is again a pinhole matrix (no skew,
    ``fx, fy > 0``) only when ``A`` is scale + translation; with ``strict`` a rotated/sheared/flipped
    ``A`` raises ValueError (rotate the camera frame instead, or pass ``strict=False`` to get the
    general 3x3 projection matrix).
    """
    A = np.asarray(A, dtype=np.float64)
    lin = A[:, :2]
    if strict:
        tol = 1e-9 * max(1.0, np.abs(lin).max())
        if abs(lin[0, 1]) > tol or abs(lin[1, 0]) > tol or lin[0, 0] <= 0 or lin[1, 1] <= 0:
            raise ValueError(f"update_intrinsics_for_affine: A is not scale+translation: {A.tolist()}")
    Ah = np.vstack([A, [0.0, 0.0, 1.0]])
    return Ah @ np.asarray(K, dtype=np.float64)


# --- flips ---------------------------------------------------------------------------------------------
def hflip(
    image: np.ndarray | None, joints_2d: np.ndarray, joint_set: str, image_width: int | None = None
) -> tuple[np.ndarray | None, np.ndarray]:
    """Mirror an image (H, W, ...) and its joints (J, C>=3) left-right.

    ``x' = W - 1 - x`` for joints with confidence > 0 (others keep their zeros), then rows are
    reordered with ``flip_permutation(joint_set)`` so ``left_*`` stays the subject's left. Hand
    sets are self-mapped: a flipped right hand is a left hand (change ``Sample.part``).
    ``image`` may be None when ``image_width`` is given. Flipping twice is the identity.
    """
    if image is None and image_width is None:
        raise ValueError("hflip: pass the image or image_width")
    W = image.shape[1] if image is not None else int(image_width)
    j = np.array(joints_2d, dtype=np.float32, copy=True)
    valid = j[:, 2] > 0
    j[valid, 0] = (W - 1) - j[valid, 0]
    j = j[flip_permutation(joint_set)]
    return (None if image is None else np.ascontiguousarray(image[:, ::-1])), j


def hflip_bbox(bbox: Sequence[float], image_width: int) -> np.ndarray:
    """Mirror ``[x, y, w, h]`` with the same ``x' = W - 1 - x`` map as :func:`hflip`."""
    x, y, w, h = (float(v) for v in bbox)
    return np.array([image_width - 1 - x - w, y, w, h], dtype=np.float32)


def hflip_joints_3d(joints_3d: np.ndarray, joint_set: str) -> np.ndarray:
    """Mirror camera-frame joints (J, C>=3): ``X → -X`` and reorder; pair with :func:`hflip_intrinsics`."""
    j = np.array(joints_3d, dtype=np.float32, copy=True)
    j[:, 0] = -j[:, 0]
    return j[flip_permutation(joint_set)]


def hflip_intrinsics(K: np.ndarray, image_width: int) -> np.ndarray:
    """``cx' = W - 1 - cx`` so that projecting :func:`hflip_joints_3d` output matches :func:`hflip`."""
    K = np.array(K, dtype=np.float64, copy=True)
    K[0, 2] = image_width - 1 - K[0, 2]
    return K


# --- targets -----------------------------------------------------------------------------------------
def joints_to_heatmaps(
    joints_2d: np.ndarray,
    size: tuple[int, int] = (64, 64),
    sigma: float = 2.0,
    input_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Unnormalised Gaussian heatmaps (J, h, w) float32, peak 1 at each joint.

    ``joints_2d`` (J, C>=3) are in heatmap pixels, or in ``input_size`` (w, h) pixels (e.g. the crop)
    which are scaled to ``size``. Joints with confidence <= 0 or whose Gaussian lies entirely off
    the map (further than 3 sigma) get all-zero maps.
    """
    W, H = size
    j = np.asarray(joints_2d, dtype=np.float64)
    x, y = j[:, 0].copy(), j[:, 1].copy()
    if input_size is not None:
        x *= W / input_size[0]
        y *= H / input_size[1]
    r = 3 * sigma
    keep = (j[:, 2] > 0) & (x > -r) & (x < W - 1 + r) & (y > -r) & (y < H - 1 + r) & np.isfinite(x + y)
    x, y = np.where(keep, x, 0.0), np.where(keep, y, 0.0)
    gx = np.exp(-((np.arange(W)[None, :] - x[:, None]) ** 2) / (2 * sigma**2))
    gy = np.exp(-((np.arange(H)[None, :] - y[:, None]) ** 2) / (2 * sigma**2))
    hm = gy[:, :, None] * gx[:, None, :]
    hm[~keep] = 0.0
    return hm.astype(np.float32)


def visibility_in_crop(joints_2d: np.ndarray, crop_size: tuple[int, int]) -> np.ndarray:
    """(J,) bool: confidence > 0 and inside the crop ``0 <= x <= w-1, 0 <= y <= h-1`` (crop pixels).

    Mask the joints with ``joints[:, 2] *= mask``.
    """
    W, H = crop_size
    j = np.asarray(joints_2d)
    x, y = j[:, 0], j[:, 1]
    return (j[:, 2] > 0) & (x >= 0) & (x <= W - 1) & (y >= 0) & (y <= H - 1)


def scale_jitter(
    bbox: Sequence[float],
    rng: np.random.Generator | int,
    scale: float = 0.25,
    shift: float = 0.1,
) -> np.ndarray:
    """Randomly rescale and shift a box ``[x, y, w, h]``.

    Side lengths are multiplied by one factor drawn from ``U(1 - scale, 1 + scale)``; the center
    moves by ``U(-shift, shift)`` times the original width/height. ``rng`` is a
    ``np.random.Generator`` (or a seed). Returns the new box (4,) float32.
    """
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    x, y, w, h = (float(v) for v in bbox)
    f = rng.uniform(1 - scale, 1 + scale)
    dx, dy = rng.uniform(-shift, shift, size=2) * (w, h)
    cx, cy = x + w / 2 + dx, y + h / 2 + dy
    return np.array([cx - f * w / 2, cy - f * h / 2, f * w, f * h], dtype=np.float32)
