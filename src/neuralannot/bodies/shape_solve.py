"""Analytic shape solve: the body shape that makes a posed model's keypoints reach given 3D targets.

Joint positions fix bone lengths, and bone lengths are what a body model's shape parameters (Anny's
phenotypes, SMPL's betas) change most. The :class:`ShapeSolver` holds the pose fixed and takes damped
Gauss-Newton steps on the shape group toward the targets, with the translation eliminated (both
sides centred on their valid keypoints) and a pull toward the starting shape (a network's
prediction)::

    δ = (JᵀJ + λ I)⁻¹ Jᵀ r,    r = c(targets) − c(keypoints(β)),   β ← clip(β + δ, bounds)

``λ`` (``damping``, m² per squared unit of shape) weighs the start: keypoint noise σ² over the
start's expected error² (5 mm noise and a 0.2 phenotype error: 6e-4). The Jacobian ``J`` comes from
finite differences and is held constant (no gradient); the residual carries gradients to the pose and
the starting shape. It is the shape counterpart of smplfitter's least-squares shape fit and of the
swing solve in ``swing_ik``. The MoCap annotator runs it at annotation only, keeping each sample's
step where :meth:`ShapeSolver.keep_better` finds it fits better (trained through, the 3D loss stalled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from neuralannot.bodies.base import BodyModel, BodyModelError, as_rotmat
from neuralannot.bodies.fast_keypoints import AnnyKeypoints
from neuralannot.bodies.joints import posed_keypoints, untranslated_params
from neuralannot.geometry.alignment import rigid_align

__all__ = ["ShapeSolver", "solve_groups"]

#: Finite-difference step (units of the shape parameter).
FD_STEP = 1e-2


def _centred(x: Tensor, w: Tensor) -> Tensor:
    """``x`` (B, K, ...) minus its weighted mean over K (weights ``w`` (B, K)), zero where w = 0."""
    shape = w.shape + (1,) * (x.dim() - 2)
    ww = w.reshape(shape)
    mean = (x * ww).sum(1, keepdim=True) / ww.sum(1, keepdim=True).clamp_min(1.0)
    return (x - mean) * ww


def solve_groups(body: BodyModel) -> list[str] | None:
    """The groups a MoCap annotator's solve refines: the shape group, and for faces also the facial
    expression (landmarks see it as directly as bone lengths see the shape; SMPLify-X fits both per
    sample). ``None``: the model's single shape group."""
    if body.part != "face":
        return None
    shape = [s.name for s in body.param_specs.values() if s.kind == "shape" and not s.optional]
    expr = [s.name for s in body.param_specs.values() if s.kind == "expression" and not s.optional]
    return shape + expr if len(shape) == 1 and expr else None


class ShapeSolver:
    """Gauss-Newton steps on ``body``'s shape group (or the given ``groups``, solved jointly, e.g. a
    face's phenotypes and facial actions) for the keypoints of ``regressor``."""

    def __init__(self, body: BodyModel, regressor, groups: Sequence[str] | None = None):
        if groups is None:
            shape = [s.name for s in body.param_specs.values() if s.kind == "shape" and not s.optional]
            if len(shape) != 1:
                raise BodyModelError(f"{body.name}: no single shape group to solve ({shape})")
            groups = shape
        unknown = [g for g in groups if g not in body.param_specs]
        if unknown or not groups:
            raise BodyModelError(f"{body.name}: cannot solve groups {list(groups)} (unknown: {unknown})")
        self.body, self.reg, self.groups = body, regressor, list(groups)
        self.group = self.groups[0]
        self.sizes = [math.prod(body.param_specs[g].shape) for g in self.groups]
        lo, hi = [], []
        for g, n in zip(self.groups, self.sizes, strict=True):
            b = body.param_specs[g].bounds or (-math.inf, math.inf)
            lo += [b[0]] * n
            hi += [b[1]] * n
        self.lo, self.hi = torch.tensor(lo), torch.tensor(hi)
        # Anny: keypoints without skinning (exact; the solve evaluates S + 1 poses per sample and step)
        self.fast = AnnyKeypoints(body, regressor) if body.is_anny else None

    def _get(self, params: dict[str, Tensor]) -> Tensor:
        """The solved groups of ``params`` flattened into one (B, S)."""
        return torch.cat([params[g].flatten(1) for g in self.groups], 1)

    def _set(self, params: dict[str, Tensor], beta: Tensor) -> dict[str, Tensor]:
        """``params`` with the solved groups taken from ``beta`` (B, S)."""
        out = dict(params)
        for g, v in zip(self.groups, beta.split(self.sizes, 1), strict=True):
            out[g] = v.reshape(v.shape[0], *self.body.param_specs[g].shape)
        return out

    def _clamp(self, beta: Tensor) -> Tensor:
        return beta.clamp(self.lo.to(beta), self.hi.to(beta))

    def keypoints(self, params: dict[str, Tensor]) -> Tensor:
        """Model keypoints (B, K, 3) of ``params`` without translation."""
        params = untranslated_params(self.body, params)
        if self.fast is not None:
            return self.fast(params)
        return posed_keypoints(self.body, self.reg, params)

    def jacobian(self, params: dict[str, Tensor], w: Tensor, base: Tensor) -> Tensor:
        """Centred keypoint Jacobian (B, K·3, S) by one-sided finite differences (stepping inward
        from an upper bound) from ``base``, the keypoints of ``params`` (B, K, 3), without gradients."""
        beta = self._get(params).detach()
        B, S = beta.shape
        step = torch.full_like(beta, FD_STEP)
        step = torch.where(beta + FD_STEP > self.hi.to(beta), -step, step)
        eye = torch.eye(S, dtype=beta.dtype, device=beta.device)
        moved = beta[:, None] + eye[None] * step[:, None]  # (B, S, S): row s moves parameter s
        batch = {k: v.detach() for k, v in params.items() if k in self.body.param_specs}
        rep = {k: v.repeat_interleave(S, 0) for k, v in batch.items()}
        rep = self._set(rep, moved.reshape(B * S, S))
        with torch.no_grad():
            kp = self.keypoints(rep).reshape(B, S, -1, 3)
        diff = (kp - base.detach()[:, None]) / step[:, :, None, None]  # (B, S, K, 3)
        J = _centred(diff.permute(0, 2, 3, 1), w)  # (B, K, 3, S)
        return J.reshape(B, -1, S)

    def error(self, params: dict[str, Tensor], targets: Tensor, valid: Tensor) -> Tensor:
        """Per-sample mean squared keypoint error (B,) after the best translation (m²)."""
        w = valid.to(targets.dtype)
        r = _centred(targets - self.keypoints(params), w)
        return r.square().sum((1, 2)) / w.sum(1).clamp_min(1.0)

    def keep_better(
        self, before: dict[str, Tensor], after: dict[str, Tensor], targets: Tensor, valid: Tensor
    ) -> dict[str, Tensor]:
        """Per sample, ``after`` where it fits the targets better than ``before``, else ``before`` (a
        Gauss-Newton step accepted only where it lowers the error: one linearised step from a poor
        start, or the re-solved pose after it, can land far off)."""
        better = self.error(after, targets, valid) < self.error(before, targets, valid)
        out = dict(before)
        for k, v in after.items():
            if isinstance(v, Tensor) and k in before and v.shape == before[k].shape:
                out[k] = torch.where(better.reshape(-1, *(1,) * (v.dim() - 1)), v, before[k])
        return out

    def solve(
        self,
        params: dict[str, Tensor],
        targets: Tensor,
        valid: Tensor,
        damping: float,
        iterations: int = 1,
        rigid: bool = False,
    ) -> dict[str, Tensor]:
        """``params`` with the solved groups refined toward ``targets`` (B, K, 3), ``valid`` (B, K) bool;
        the pose (and every other group) is unchanged. Differentiable in the pose and the start.

        ``rigid``: before each step the global rotation (``root_pose``, a matrix) is turned by the
        rigid (Kabsch) fit of the keypoints to the targets, so a start whose orientation is off (a face
        without a swing solve) does not push its misfit into the solved groups."""
        w = valid.to(targets.dtype)
        out = dict(params)
        start = self._get(params)
        for _ in range(iterations):
            beta = self._get(out)
            if rigid:
                out = self._turned(out, targets, valid)
            kp = self.keypoints(out)
            J = self.jacobian(out, w, kp)
            r = _centred(targets - kp, w).reshape(J.shape[0], -1)
            S = J.shape[-1]
            A = J.transpose(1, 2) @ J + damping * torch.eye(S, dtype=J.dtype, device=J.device)
            b = (J.transpose(1, 2) @ r[..., None])[..., 0] - damping * (beta - start)
            out = self._set(out, self._clamp(beta + torch.linalg.solve(A, b)))
        return self._turned(out, targets, valid) if rigid else out

    def _turned(self, params: dict[str, Tensor], targets: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """``params`` with ``root_pose`` turned by the rigid fit of the keypoints to the targets (where
        at least 3 are valid): the translation is eliminated anyway, the rotation about the root joint
        turns the centred keypoints by the same rotation."""
        kp = self.keypoints(params)
        R, _ = rigid_align(kp, targets, valid.to(targets.dtype))
        root = as_rotmat(params["root_pose"], (3,))
        turn = (valid.sum(1) >= 3).reshape(-1, 1, 1)
        return {**params, "root_pose": torch.where(turn, R @ root, root)}
