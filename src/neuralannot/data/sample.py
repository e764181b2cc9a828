"""One annotated sample (an image crop of a body, hand, face or whole body) and its checks.

Conventions: pixels with x right / y down and the origin at the top-left image corner; meters in the
OpenCV camera frame (x right, y down, z forward); projection ``u = fx*X/Z + cx``. Joint rows follow
``neuralannot.bodies.joint_names.JOINT_SETS[joint_set]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuralannot.bodies.joint_names import JOINT_SETS, SET_PARTS
from neuralannot.bodies.parts import PARTS

__all__ = ["PARTS", "Sample", "SampleError", "part_accepts", "to_jsonable"]

#: 3D joints further than this from the camera (m) are rejected as a probable unit error (mm).
MAX_DEPTH_M = 200.0


class SampleError(ValueError):
    """A bad sample: the message names the sample id (and the file when known) and the problem.

    ``kind`` is a short category used to count skips (``shape``, ``nonfinite``, ``bbox``, ``image``...).
    """

    def __init__(
        self, problem: str, sample_id: str | None = None, path: str | None = None, kind: str = "invalid"
    ):
        self.problem, self.sample_id, self.path, self.kind = problem, sample_id, path, kind
        where = f"sample {sample_id!r}" if sample_id is not None else "sample"
        if path:
            where += f" in {path}"
        super().__init__(f"{where}: {problem}")


def part_accepts(part: str, joint_set: str) -> bool:
    """Whether a sample of ``part`` may carry joints of ``joint_set``."""
    set_part = SET_PARTS.get(joint_set)
    if part in ("lhand", "rhand", "hand"):
        return set_part == "hand" or set_part == part
    return set_part == part


def to_jsonable(value: Any) -> Any:
    """Recursively turn arrays/tensors/tuples/numpy scalars into JSON-friendly python objects."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "tolist") and not isinstance(value, str):  # np.ndarray, torch.Tensor
        return value.detach().cpu().tolist() if hasattr(value, "detach") else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _as_array(value: Any, name: str, sample_id: str, ndim: int | None = None) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise SampleError(f"{name} is not a numeric array ({exc})", sample_id, kind="malformed") from None
    if ndim is not None and arr.ndim != ndim:
        raise SampleError(
            f"{name} must have {ndim} dimensions, got shape {arr.shape}", sample_id, kind="shape"
        )
    return arr


@dataclass
class Sample:
    """One annotated person / hand / face instance.

    Fields:
        id: stable unique string id.
        image: image path (absolute or as given) or None.
        bbox: (4,) float32 ``[x_min, y_min, w, h]`` pixels; may extend past the image.
        part: one of :data:`PARTS`.
        joint_set: name in ``JOINT_SETS``; J = its length.
        joints_2d: (J, 3) float32 ``[x, y, confidence]``, confidence in [0, 1], 0 = missing.
        joints_3d: (J, 4) float32 ``[X, Y, Z, confidence]`` meters, camera frame, or None.
        intrinsics: ``{"focal": (2,), "princpt": (2,)}`` float64 pixels, or None.
        image_size: ``(w, h)`` or None.
        gt: evaluation-only ground truth, e.g. ``{"model": "smpl", "params": {"pose": ..., "betas": ...}}``.
        extra: free-form dataset fields (JSON-friendly).
    """

    id: str
    image: str | None
    bbox: np.ndarray
    part: str
    joint_set: str
    joints_2d: np.ndarray
    joints_3d: np.ndarray | None = None
    intrinsics: dict[str, np.ndarray] | None = None
    image_size: tuple[int, int] | None = None
    gt: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sid = self.id
        self.bbox = _as_array(self.bbox, "bbox", sid)
        self.joints_2d = _as_array(self.joints_2d, "joints_2d", sid)
        if self.joints_3d is not None:
            self.joints_3d = _as_array(self.joints_3d, "joints_3d", sid)
        if self.intrinsics is not None:
            if not isinstance(self.intrinsics, dict) or not {"focal", "princpt"} <= set(self.intrinsics):
                raise SampleError(
                    "intrinsics must be a dict with 'focal' and 'princpt'", sid, kind="intrinsics"
                )
            self.intrinsics = {
                k: np.array(self.intrinsics[k], dtype=np.float64).reshape(-1) for k in ("focal", "princpt")
            }
        if self.image_size is not None:
            try:
                self.image_size = tuple(int(v) for v in self.image_size)
            except (TypeError, ValueError):
                raise SampleError(
                    f"image_size must be (w, h) integers, got {self.image_size!r}", sid, kind="malformed"
                ) from None
        if self.extra is None:
            self.extra = {}

    # --- derived ---------------------------------------------------------------------------------
    @property
    def joint_names(self) -> list[str]:
        return list(JOINT_SETS[self.joint_set])

    @property
    def num_joints(self) -> int:
        return int(self.joints_2d.shape[0])

    @property
    def valid_2d(self) -> np.ndarray:
        """(J,) bool: joints with positive 2D confidence."""
        return self.joints_2d[:, 2] > 0

    @property
    def valid_3d(self) -> np.ndarray:
        """(J,) bool: joints with a positive 3D confidence (all False without 3D)."""
        if self.joints_3d is None:
            return np.zeros(self.num_joints, dtype=bool)
        return self.joints_3d[:, 3] > 0

    @property
    def K(self) -> np.ndarray | None:
        """(3, 3) pinhole intrinsics matrix, or None."""
        if self.intrinsics is None:
            return None
        (fx, fy), (cx, cy) = self.intrinsics["focal"], self.intrinsics["princpt"]
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    # --- checks ----------------------------------------------------------------------------------
    def _fail(self, problem: str, kind: str = "invalid") -> SampleError:
        return SampleError(problem, self.id, kind=kind)

    def _check_joints(self, arr: np.ndarray, name: str, dims: int) -> None:
        J = len(JOINT_SETS[self.joint_set])
        if arr.shape != (J, dims + 1):
            raise self._fail(
                f"{name} has shape {arr.shape}, expected ({J}, {dims + 1}) for joint set {self.joint_set!r}",
                "shape",
            )
        conf = arr[:, dims]
        if not np.isfinite(conf).all():
            raise self._fail(
                f"{name} confidence has NaN/inf at joints {np.flatnonzero(~np.isfinite(conf))[:10]}",
                "nonfinite",
            )
        if (conf < 0).any() or (conf > 1).any():
            raise self._fail(
                f"{name} confidence outside [0, 1] (min {conf.min():g}, max {conf.max():g})", "confidence"
            )
        bad = ~np.isfinite(arr[:, :dims]).all(1)
        marked = bad & (conf > 0)
        if marked.any():
            names = [JOINT_SETS[self.joint_set][i] for i in np.flatnonzero(marked)[:5]]
            raise self._fail(f"{name} has NaN/inf coordinates in joints marked valid: {names}", "nonfinite")
        arr[bad, :dims] = 0.0  # NaN/inf in invalid joints is allowed: sanitise

    def validate(self) -> Sample:
        """Check shapes, finiteness and consistency; zero NaN coordinates of invalid joints in place.

        Returns ``self``; raises :class:`SampleError` naming the sample and the problem.
        """
        if not isinstance(self.id, str) or not self.id:
            raise SampleError(f"id must be a non-empty string, got {self.id!r}")
        if self.part not in PARTS:
            raise self._fail(f"part {self.part!r} is not one of {PARTS}", "part")
        if self.joint_set not in JOINT_SETS:
            raise self._fail(
                f"unknown joint set {self.joint_set!r}; known: {sorted(JOINT_SETS)}", "joint_set"
            )
        if not part_accepts(self.part, self.joint_set):
            raise self._fail(
                f"part {self.part!r} does not match joint set {self.joint_set!r} "
                f"(a {SET_PARTS[self.joint_set]!r} set)",
                "part",
            )
        if self.image is not None and not isinstance(self.image, str):
            raise self._fail(f"image must be a path string or None, got {type(self.image).__name__}")
        b = self.bbox
        if b.shape != (4,):
            raise self._fail(f"bbox has shape {b.shape}, expected (4,) [x, y, w, h]", "bbox")
        if not np.isfinite(b).all():
            raise self._fail(f"bbox has non-finite values {b.tolist()}", "bbox")
        if b[2] <= 0 or b[3] <= 0:
            raise self._fail(f"bbox {b.tolist()} has zero or negative area", "bbox")
        self._check_joints(self.joints_2d, "joints_2d", 2)
        if self.joints_3d is not None:
            self._check_joints(self.joints_3d, "joints_3d", 3)
            v = self.joints_3d[:, 3] > 0
            if v.any() and np.abs(self.joints_3d[v, :3]).max() > MAX_DEPTH_M:
                raise self._fail(
                    f"joints_3d up to {np.abs(self.joints_3d[v, :3]).max():.1f} m from the camera: "
                    "expected meters (millimeters?)",
                    "units",
                )
        if self.intrinsics is not None:
            f, c = self.intrinsics["focal"], self.intrinsics["princpt"]
            if f.shape != (2,) or c.shape != (2,):
                raise self._fail(
                    f"intrinsics focal/princpt must have 2 values, got {f.shape}, {c.shape}", "intrinsics"
                )
            if not (np.isfinite(f).all() and np.isfinite(c).all()) or (f <= 0).any():
                raise self._fail(
                    f"intrinsics must be finite with positive focal, got {f.tolist()}, {c.tolist()}",
                    "intrinsics",
                )
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) <= 0):
            raise self._fail(f"image_size {self.image_size} must be two positive integers (w, h)")
        if self.gt is not None and not isinstance(self.gt, dict):
            raise self._fail(f"gt must be a dict or None, got {type(self.gt).__name__}")
        if not isinstance(self.extra, dict):
            raise self._fail(f"extra must be a dict, got {type(self.extra).__name__}")
        return self

    # --- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (lists, floats, None); inverse of :meth:`from_dict`."""
        return {
            "id": self.id,
            "image": self.image,
            "bbox": to_jsonable(self.bbox),
            "part": self.part,
            "joint_set": self.joint_set,
            "joints_2d": to_jsonable(self.joints_2d),
            "joints_3d": to_jsonable(self.joints_3d),
            "intrinsics": to_jsonable(self.intrinsics),
            "image_size": to_jsonable(self.image_size),
            "gt": to_jsonable(self.gt),
            "extra": to_jsonable(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], validate: bool = True) -> Sample:
        """Build from :meth:`to_dict` output; raises :class:`SampleError` on missing keys or bad values."""
        sid = d.get("id") if isinstance(d, dict) else None
        if not isinstance(d, dict):
            raise SampleError(f"expected a dict, got {type(d).__name__}")
        missing = [k for k in ("id", "bbox", "part", "joint_set", "joints_2d") if k not in d]
        if missing:
            raise SampleError(f"missing key(s) {missing}", sid, kind="missing_key")
        s = cls(
            id=d["id"],
            image=d.get("image"),
            bbox=d["bbox"],
            part=d["part"],
            joint_set=d["joint_set"],
            joints_2d=d["joints_2d"],
            joints_3d=d.get("joints_3d"),
            intrinsics=d.get("intrinsics"),
            image_size=d.get("image_size"),
            gt=d.get("gt"),
            extra=d.get("extra") or {},
        )
        return s.validate() if validate else s
