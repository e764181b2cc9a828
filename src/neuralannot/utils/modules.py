"""Tensor conversions of objects an ``nn.Module`` holds outside its registered members."""

from __future__ import annotations

from torch import Tensor, nn


def apply_to_members(value, fn, recurse: bool, seen: set[int]):
    """``value`` with ``fn`` (a tensor conversion of :meth:`nn.Module._apply`) applied to every
    module and tensor in it; modules are converted in place and once (an object met twice, e.g. the
    body inside the swing solver, is not converted twice)."""
    if isinstance(value, nn.Module):
        if id(value) not in seen:
            seen.add(id(value))
            value._apply(fn, recurse)
        return value
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return type(value)(apply_to_members(v, fn, recurse, seen) for v in value)
    if isinstance(value, dict):
        return {k: apply_to_members(v, fn, recurse, seen) for k, v in value.items()}
    if hasattr(value, "_apply_tensors") and id(value) not in seen:  # e.g. SwingSolver
        seen.add(id(value))
        value._apply_tensors(fn)
    return value
