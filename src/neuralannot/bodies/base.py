"""The one body-model interface every annotator, fitter and metric talks to.

A :class:`BodyModel` describes its parameters with :class:`ParamSpec` records and maps a dict of
batched parameter tensors to posed vertices and joints. Rotation parameters are axis-angle
``(B, *shape)`` with a trailing 3, or rotation matrices with the trailing 3 replaced by ``3, 3``
(the network path passes matrices straight from 6D, avoiding an axis-angle round trip). The format
is named from the spec shape by :func:`~neuralannot.geometry.rotation_format` (``"axis_angle"`` or
``"matrix"``); any other shape is an error naming both.
Units are meters; each model documents its own canonical frame.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from neuralannot.bodies.errors import BodyModelError, ModelFileError
from neuralannot.geometry.rotations import rotation_format, to_rotmat, to_rotvec

__all__ = [
    "BodyModel", "BodyModelError", "BodyOutput", "ModelFileError", "ParamKind", "ParamSpec",
    "as_rotmat", "as_rotvec",
]

ParamKind = Literal["rotation", "translation", "shape", "expression", "other"]


@dataclass(frozen=True)
class ParamSpec:
    """One named parameter group of a body model.

    ``shape`` is the per-sample shape (axis-angle for rotations, e.g. ``(21, 3)``), ``default``
    the fill value of the neutral parameter, ``bounds`` an optional valid range (Anny phenotypes
    live in [0, 1]) and ``optional`` marks groups that may be left out of a forward call.
    """

    name: str
    shape: tuple[int, ...]
    kind: ParamKind
    default: float = 0.0
    description: str = ""
    optional: bool = False
    bounds: tuple[float, float] | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class BodyOutput:
    """Posed model outputs, all in the model's canonical frame (meters).

    ``joints`` are the model's own skeleton joints (``model.joint_names`` order); ``vertices`` is
    ``None`` when the forward was asked for joints only. ``extras`` holds model-specific tensors
    (e.g. Anny's full ``bone_heads``) that joint regressors may read.
    """

    joints: Tensor
    vertices: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


class BodyModel(nn.Module, ABC):
    """Abstract batched body/hand/face model.

    Subclasses set ``name``, ``part``, ``param_specs`` (ordered), ``joint_names``, ``parents``
    (kinematic parent index per joint, -1 for the root) and register a ``faces`` buffer (F, 3).
    """

    name: str = "base"
    part: str = "body"
    param_specs: dict[str, ParamSpec]
    joint_names: list[str]
    parents: list[int]
    faces: Tensor

    # --- parameters -------------------------------------------------------------------
    def _float_buffer(self) -> Tensor:
        """The first floating-point buffer: where the model's dtype and device are read from."""
        return next((b for b in self.buffers() if b.is_floating_point()), torch.zeros(()))

    @property
    def dtype(self) -> torch.dtype:
        return self._float_buffer().dtype

    @property
    def device(self) -> torch.device:
        return self._float_buffer().device

    @property
    def num_vertices(self) -> int:
        return int(self.faces.max()) + 1

    def required_params(self) -> list[str]:
        return [n for n, s in self.param_specs.items() if not s.optional]

    def default_params(self, batch_size: int = 1, include_optional: bool = False) -> dict[str, Tensor]:
        """Neutral parameters (rest pose, mean shape) for ``batch_size`` samples."""
        out = {}
        for name, spec in self.param_specs.items():
            if spec.optional and not include_optional:
                continue
            out[name] = torch.full(
                (batch_size, *spec.shape), spec.default, dtype=self.dtype, device=self.device
            )
        return out

    def validate_params(self, params: dict[str, Tensor]) -> int:
        """Check names, shapes and finiteness; return the batch size.

        Raises :class:`BodyModelError` naming the offending parameter.
        """
        if not isinstance(params, dict):
            raise BodyModelError(
                f"{self.name}: params must be a dict of tensors, got {type(params).__name__}"
            )
        unknown = set(params) - set(self.param_specs)
        if unknown:
            raise BodyModelError(
                f"{self.name}: unknown parameter(s) {sorted(unknown)}; expected {list(self.param_specs)}"
            )
        missing = [n for n in self.required_params() if n not in params]
        if missing:
            raise BodyModelError(f"{self.name}: missing parameter(s) {missing}")
        batch = None
        for name, value in params.items():
            spec = self.param_specs[name]
            if not isinstance(value, Tensor):
                raise BodyModelError(
                    f"{self.name}: parameter '{name}' must be a torch.Tensor, got {type(value).__name__}"
                )
            if spec.kind == "rotation":
                try:
                    rotation_format(value, tuple(spec.shape[:-1]))
                except ValueError as err:
                    raise BodyModelError(f"{self.name}: parameter '{name}': {err}") from None
            elif value.ndim < 1 or tuple(value.shape[1:]) != spec.shape:
                want = f"(B, {', '.join(map(str, spec.shape))})"
                raise BodyModelError(
                    f"{self.name}: parameter '{name}' has shape {tuple(value.shape)}, expected {want}"
                )
            if batch is None:
                batch = value.shape[0]
            elif value.shape[0] != batch:
                raise BodyModelError(
                    f"{self.name}: parameter '{name}' has batch size {value.shape[0]}, others have {batch}"
                )
            if not torch.isfinite(value).all():
                bad = (~torch.isfinite(value.reshape(value.shape[0], -1))).any(1).nonzero().flatten().tolist()
                raise BodyModelError(
                    f"{self.name}: parameter '{name}' has NaN/inf values in batch rows {bad[:10]}"
                )
        return int(batch or 0)

    def complete_params(self, params: dict[str, Tensor]) -> tuple[dict[str, Tensor], int]:
        """Validate and fill optional groups that were left out with their defaults."""
        batch = self.validate_params(params)
        full = dict(params)
        for name, spec in self.param_specs.items():
            if name not in full:
                full[name] = torch.full(
                    (batch, *spec.shape), spec.default, dtype=self.dtype, device=self.device
                )
        return full, batch

    # --- forward ----------------------------------------------------------------------
    @abstractmethod
    def forward(self, params: dict[str, Tensor], return_vertices: bool = True) -> BodyOutput:
        """Pose the model: ``params`` (see :attr:`param_specs`) → :class:`BodyOutput`."""

    # --- joint sets ---------------------------------------------------------------------
    @property
    def joint_sets(self) -> list[str]:
        """Names of keypoint sets :meth:`keypoints` can regress for this model."""
        from neuralannot.bodies.joints import joint_sets_for

        return joint_sets_for(self)

    def keypoints(self, output: BodyOutput, joint_set: str) -> Tensor:
        """Regress the keypoints of ``joint_set`` (e.g. ``"coco17"``) from a forward output, (B, K, 3)."""
        from neuralannot.bodies.joints import get_regressor

        return get_regressor(self, joint_set)(output)

    @property
    def is_anny(self) -> bool:
        """One of the embedded Anny models (body, hand, head): they skin a vertex subset
        (``vertex_ids=``) and pose joints without vertices."""
        return self.name.startswith("anny")

    def extra_repr(self) -> str:
        groups = ", ".join(f"{n}{list(s.shape)}" for n, s in self.param_specs.items())
        return f"name={self.name}, part={self.part}, params=[{groups}]"


def as_rotmat(rot: Tensor, spec_shape: tuple[int, ...]) -> Tensor:
    """A batched rotation parameter whose per-sample axis-angle shape is ``spec_shape`` (e.g.
    ``(21, 3)``), given as axis-angle ``(B, *spec_shape)`` or matrices ``(B, *spec_shape[:-1], 3, 3)``
    → matrices. The format is named by :func:`~neuralannot.geometry.rotation_format` (one batch
    dimension), so a batch of three axis-angles ``(3, 3)`` is never read as one matrix."""
    return to_rotmat(rot, rotation_format(rot, tuple(spec_shape[:-1])))


def as_rotvec(rot: Tensor, spec_shape: tuple[int, ...]) -> Tensor:
    """Inverse of :func:`as_rotmat`: either format → axis-angle ``(B, *spec_shape)``."""
    return to_rotvec(rot, rotation_format(rot, tuple(spec_shape[:-1])))
