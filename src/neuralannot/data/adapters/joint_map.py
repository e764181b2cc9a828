"""A dataset file's ``joint_names`` → a known joint set, with an optional user joint map (``--joint-map``).

The folder adapter calls :func:`resolve_file_joints` once per file (or shard folder) and scatters
every sample's joints into the resolved set with :meth:`~neuralannot.bodies.joint_matching.JointMatch.take`.

Joint-map file (JSON), either flat::

    {"Pelvis": "root", "RHip": "right_hip", "Background": null}

or with options::

    {"joint_set": "h36m17", "finger_numbering": "base_first", "joints": {"Pelvis": "root", ...}}

Keys are the dataset's ``joint_names``; values are keypoint names of a known set
(``neuralannot.bodies.joint_names.JOINT_SETS``, or any alias the automatic matching accepts), or
``null`` to ignore that joint. Names not in the map are matched automatically.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuralannot.bodies.joint_matching import (
    FINGER_NUMBERINGS,
    JointMatch,
    match_joint_names,
    required_joints,
)
from neuralannot.bodies.joint_names import JOINT_SETS

__all__ = ["JointMap", "JointMapError", "read_joint_map", "resolve_file_joints"]

log = logging.getLogger(__name__)
_OPTION_KEYS = {"joints", "joint_set", "finger_numbering"}


class JointMapError(ValueError):
    """A joint-map file cannot be used; the message names the file."""


@dataclass(frozen=True)
class JointMap:
    """A parsed joint map: dataset name → keypoint name (``None`` = ignore), plus options."""

    joints: dict[str, str | None] = field(default_factory=dict)
    joint_set: str | None = None
    finger_numbering: str | None = None
    path: str | None = None


def read_joint_map(source: str | os.PathLike | Mapping[str, Any] | JointMap | None) -> JointMap | None:
    """Parse a joint map from a JSON file, a dict (same layout) or a :class:`JointMap`; None passes."""
    if source is None or isinstance(source, JointMap):
        return source
    path = None
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = str(source)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise JointMapError(f"{path}: joint map not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise JointMapError(f"{path}: cannot read the joint map: {exc}") from None
    where = path or "joint map"
    if not isinstance(data, dict):
        raise JointMapError(f"{where}: expected a JSON object {{dataset name: keypoint name}}")
    options: dict[str, Any] = {}
    if isinstance(data.get("joints"), dict):
        unknown = sorted(set(data) - _OPTION_KEYS)
        if unknown:
            raise JointMapError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_OPTION_KEYS)}")
        options, data = {k: v for k, v in data.items() if k != "joints"}, data["joints"]
    bad = [k for k, v in data.items() if not (v is None or isinstance(v, str))]
    if bad:
        raise JointMapError(f"{where}: values must be keypoint names or null; not for {bad[:5]}")
    joint_set = options.get("joint_set")
    if joint_set is not None and joint_set not in JOINT_SETS:
        raise JointMapError(f"{where}: unknown joint_set {joint_set!r}; known: {sorted(JOINT_SETS)}")
    numbering = options.get("finger_numbering")
    if numbering is not None and numbering not in FINGER_NUMBERINGS:
        raise JointMapError(f"{where}: finger_numbering must be one of {FINGER_NUMBERINGS}: {numbering!r}")
    return JointMap(dict(data), joint_set, numbering, path)


def resolve_file_joints(meta: Mapping[str, Any], where: str | os.PathLike, joint_map: JointMap | None = None
                        ) -> JointMatch:  # fmt: skip
    """The :class:`JointMatch` of a file's top-level metadata (``joint_names``, optional ``joint_set``
    and ``finger_numbering``; the joint map's options win). Raises ValueError: no set matches, or the
    file lacks joints that its part needs (the message lists them). Warns about ignored names."""
    jm = joint_map or JointMap()
    numbering = jm.finger_numbering or meta.get("finger_numbering") or "base_first"
    match = match_joint_names(
        meta["joint_names"], jm.joint_set or meta.get("joint_set"), jm.joints, numbering
    )
    missing = [n for n in required_joints(match.joint_set) if n in match.missing]
    if missing:
        have = len(match.index) - len(match.missing)
        raise ValueError(
            f"joint_names give {have} of the {len(match.index)} {match.joint_set} joints; missing "
            f"{missing}, which a {match.joint_set} dataset needs (add them, or map the dataset's "
            "names onto them with --joint-map)"
        )
    if match.passed_over:
        log.warning("%s: joint_names match more %s joints, but not all it needs (root, orientation); "
                    "reading them as %s", Path(where), match.passed_over, match.joint_set)  # fmt: skip
    if match.unknown:
        log.warning(
            "%s: ignoring %d joint name(s) that match no %s joint: %s (map them with --joint-map)",
            Path(where), len(match.unknown), match.joint_set, ", ".join(match.unknown),
        )  # fmt: skip
    if match.shadowed:
        log.warning("%s: ignoring joint name(s) %s: another name gives the same %s joint",
                    Path(where), ", ".join(match.shadowed), match.joint_set)  # fmt: skip
    if jm.path and jm.joints:
        unused = sorted(set(jm.joints) - {str(n) for n in meta["joint_names"]})
        if unused:
            log.warning("%s: joint map %s names joints the file does not have: %s",
                        Path(where), jm.path, ", ".join(unused))  # fmt: skip
    if match.missing:
        log.info("%s: %s joints absent from the file (read as invisible): %s",
                 Path(where), match.joint_set, ", ".join(match.missing))  # fmt: skip
    return match
