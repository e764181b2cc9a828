"""The checks of an :class:`~neuralannot.annotators.config.AnnotatorConfig`'s values: each bad value is
refused with one line naming the key (``ValueError``)."""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing

from neuralannot.annotators.config_defaults import embedded_aux

#: The key that sets bodies' epochs in each mode (where unset, ``epochs``).
BODY_EPOCHS = {"mocap": "body_mocap_epochs", "wild": "body_wild_epochs"}

#: Closed-choice keys that may stay None once the defaults are resolved (faces have no ``head``).
NONE_AFTER_DEFAULTS = ("head",)


@functools.cache
def closed_choices(cls) -> dict[str, tuple]:
    """The allowed values of every field of the config class ``cls`` annotated with a ``Literal`` (or
    ``Literal | None``), read from the annotations, so each key's choices are written once; ``None``
    only for :data:`NONE_AFTER_DEFAULTS`."""
    hints = typing.get_type_hints(cls)
    choices = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        literals = [a for a in (typing.get_args(hint) if union else (hint,))
                    if typing.get_origin(a) is typing.Literal]  # fmt: skip
        if literals:
            values = tuple(v for lit in literals for v in typing.get_args(lit))
            choices[f.name] = ((None,) if f.name in NONE_AFTER_DEFAULTS else ()) + values
    return choices


def check_choice(cfg, key: str) -> None:
    """Refuse a value of the closed-choice ``key`` outside its annotation's, naming the allowed ones."""
    allowed = closed_choices(type(cfg))[key]
    if getattr(cfg, key) not in allowed:
        shown = " | ".join(a for a in allowed if a is not None)
        raise ValueError(f"{key} must be {shown}, got {getattr(cfg, key)!r}")


def _positive_number(value) -> bool:
    """A finite int or float > 0 (not a bool, a string or NaN)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0


def check_aux(cfg) -> None:
    """The auxiliary set's keys (before the defaults that depend on them): ``aux_weight`` a number > 0
    (stored as a float), ``aux_data`` none | synthetic[:N] | a folder, in wild mode only."""
    w = cfg.aux_weight
    if w is not None:
        if not _positive_number(w):
            raise ValueError(f"aux_weight must be a number > 0, got {w!r}")
        cfg.aux_weight = float(w)
    if cfg.aux_data is None or cfg.aux_data == "none":
        return
    if not isinstance(cfg.aux_data, str) or not cfg.aux_data:
        raise ValueError(f"aux_data must be none | synthetic[:N] | a folder, got {cfg.aux_data!r}")
    if cfg.mode != "wild":
        raise ValueError("aux_data: an auxiliary MoCap set supervises wild-mode sets only (mode wild)")
    if cfg.part == "wholebody" and not embedded_aux(cfg.aux_data):
        raise ValueError("aux_data: a whole-body set trains each part with its own embedded set "
                         "(synthetic[:N]) or none; a folder supervises one part")  # fmt: skip


def check_values(cfg) -> None:
    """Every other key, once the per-part defaults are resolved."""
    for key in closed_choices(type(cfg)):
        check_choice(cfg, key)
    if cfg.head == "swing" and cfg.mode != "mocap":
        raise ValueError("head 'swing' needs GT 3D joints: MoCap mode only (wild mode uses head 'paper')")
    sizes = (cfg.end_crop_size, cfg.end_crop_extent, cfg.end_crop_dim)
    if cfg.end_crops and not (sizes[0] >= 32 and 0 < sizes[1] <= 1 and sizes[2] >= 1):
        raise ValueError("end crops need end_crop_size >= 32, 0 < end_crop_extent <= 1 and "
                         f"end_crop_dim >= 1 (got {sizes})")  # fmt: skip
    if not isinstance(cfg.crop_cache, str) or not cfg.crop_cache:
        raise ValueError(f"crop_cache must be auto | off | a folder, got {cfg.crop_cache!r}")
    if not cfg.silhouette_end_weight > 0:
        raise ValueError(f"silhouette_end_weight must be > 0, got {cfg.silhouette_end_weight}")
    if cfg.face_stage and cfg.part != "face":
        raise ValueError(f"face_stage refines face pseudo-GTs: part face only, not {cfg.part!r}")
    if cfg.wrist_stage and cfg.part != "body":
        raise ValueError(f"wrist_stage refines body pseudo-GTs: part body only, not {cfg.part!r}")
    if cfg.backbone_lr is not None and not cfg.backbone_lr > 0:
        raise ValueError(f"backbone_lr must be > 0, got {cfg.backbone_lr}")
    if (cfg.w_silhouette or 0) < 0:
        raise ValueError(f"w_silhouette must be >= 0, got {cfg.w_silhouette}")
    if (cfg.shape_solve or 0) < 0 or (cfg.shape_damping is not None and cfg.shape_damping <= 0):
        raise ValueError(f"shape_solve must be >= 0 and shape_damping > 0: {cfg.shape_solve}, "
                         f"{cfg.shape_damping}")  # fmt: skip
    if not 0.0 <= cfg.feature_dropout < 1.0:
        raise ValueError(f"feature_dropout must be in [0, 1), got {cfg.feature_dropout}")
    if cfg.w_params is not None and not _positive_number(cfg.w_params):
        raise ValueError(f"w_params must be a number > 0, got {cfg.w_params!r}")
    if (cfg.root_solve or 0) < 0:
        raise ValueError(f"root_solve must be >= 0, got {cfg.root_solve}")
    for key in BODY_EPOCHS.values():
        if getattr(cfg, key) is not None and getattr(cfg, key) < 1:
            raise ValueError(f"{key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.joint_refit is not None and cfg.joint_refit < 0:
        raise ValueError(f"joint_refit must be >= 0, got {cfg.joint_refit}")
    if cfg.swing_weight is not None and not 0.0 < cfg.swing_weight <= 1.0:
        raise ValueError(f"swing_weight must be in (0, 1], got {cfg.swing_weight}")
    if cfg.shape_solve and cfg.mode != "mocap":
        raise ValueError("shape_solve needs the given 3D joints: MoCap mode only")
    if cfg.root_hypotheses < 1:
        raise ValueError(f"root_hypotheses must be >= 1, got {cfg.root_hypotheses}")
