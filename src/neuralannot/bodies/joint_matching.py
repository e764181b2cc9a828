"""Match a dataset's own ``joint_names`` to a known joint set by name (any order, subset, superset).

:func:`match_joint_names` picks the set of :data:`~neuralannot.bodies.joint_names.JOINT_SETS` that
the names cover best and returns a :class:`JointMatch`: for each joint of that set, the dataset
column that holds it (or -1). Readers scatter their arrays into the set's order with
:meth:`JointMatch.take`; joints the dataset lacks become invisible (confidence 0), so everything
downstream sees the canonical set.

A name matches a joint of a set when, after :func:`normalize_name` (case, separators, camelCase,
``L``/``R`` prefixes, ``_l``/``_r`` suffixes), it equals

1. the set's canonical name or a source spelling (:data:`~neuralannot.bodies.joint_names.SOURCE_NAMES`),
2. an alias of :data:`BODY_ALIASES` (mmpose, mmhuman3d, OpenPose BODY_25, H36M and MPI-INF-3DHP
   official names, ``root``/``pelvis``), read through the set's match keys (``MATCH_KEYS``), or a
   per-set alias of :data:`SET_ALIASES`,
3. a hand joint: side, finger (``index``/``forefinger``/``index_finger``...), then a number or an
   anatomical name (``cmc``, ``mcp``, ``pip``, ``dip``, ``ip``, ``tip``; a bare finger name is the
   tip, as in SMPL-X and mmhuman3d). Numbers count from the base (1 = knuckle, 4 = tip; 0-based when a
   ``0`` occurs); ``finger_numbering="tip_first"`` reads 1 as the tip,
4. a face landmark ``face-i`` / ``kpt-i`` / ``landmark_i`` (0-based iBUG-68 index).

An explicit map (``{dataset name: keypoint name or null}``) is applied first and wins over all of
these. Names matching nothing are returned in :attr:`JointMatch.unknown` (readers warn and ignore
them). Pure python: no numpy at import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from neuralannot.bodies.joint_names import (
    FACE68,
    JOINT_SETS,
    ROOT_INDICES,
    SET_PARTS,
    SOURCE_NAMES,
    match_joint_set,
    match_key,
)

__all__ = [
    "BODY_ALIASES",
    "SET_ALIASES",
    "FINGER_NUMBERINGS",
    "JointMatch",
    "normalize_name",
    "resolve_name",
    "match_joint_names",
    "required_joints",
]

FINGER_NUMBERINGS = ("base_first", "tip_first")
#: Sets matched by name. ``interhand21`` (the hand21 joints in InterHand's native order) is only
#: picked for its exact ordered name list; a permuted hand list is read as ``hand21``.
_NAME_SETS = [s for s in JOINT_SETS if s != "interhand21"]

#: Anatomical key (a canonical name or a ``MATCH_KEYS`` value) → other spellings (normalized).
BODY_ALIASES: dict[str, list[str]] = {
    # H36M "Hip", OpenPose "MidHip", mmhuman3d "pelvis_extra", Mixamo "Hips"
    "pelvis": ["root", "hip", "hips", "mid_hip", "midhip"],
    # base of the neck: H36M "Thorax", 3DHP "neck", OpenPose / Moon et al. "Neck", mmhuman3d "neck_extra"
    "neck": ["thorax", "neck_extra"],
    # H36M "Neck/Nose", 3DHP "head", mmpose "neck_base", mmhuman3d "head_extra", MPII "upper_neck"
    "head_center": ["neck_base", "neck_nose", "head_extra", "upper_neck", "head_centre"],
    # top of the head: mmpose h36m "head", Moon et al. "Head_top", mmhuman3d "headtop", CrowdPose "top_head"
    "head_top": ["headtop", "head_end", "top_head"],
    # Moon et al. "Torso", mmhuman3d "spine_extra"
    "spine": ["torso", "spine_extra"],
    # H36M / Mixamo "LeftFoot" is the ankle (MPI-INF-3DHP's own left_ankle wins where both occur)
    "left_ankle": ["left_foot"],
    "right_ankle": ["right_foot"],
    # mmhuman3d "left_bigtoe", OpenPose "LSmallToe"
    "left_big_toe": ["left_bigtoe"],
    "right_big_toe": ["right_bigtoe"],
    "left_small_toe": ["left_smalltoe", "left_little_toe"],
    "right_small_toe": ["right_smalltoe", "right_little_toe"],
}
#: Aliases whose meaning depends on the set: set → {normalized alias: canonical name}.
SET_ALIASES: dict[str, dict[str, str]] = {
    "h36m17": {"nose": "neck_base"},  # Moon et al.'s H36M names call the neck_base joint "Nose"
}
_SUFFIXES = ("_openpose", "_extra", "_3dhp", "_smplx", "_smpl", "_coco", "_h36m", "_mpii")

_FINGER_WORDS = {
    "thumb": "thumb",
    "index": "index", "index_finger": "index", "forefinger": "index", "fore_finger": "index",
    "first_finger": "index", "pointer": "index",
    "middle": "middle", "middle_finger": "middle", "second_finger": "middle",
    "ring": "ring", "ring_finger": "ring", "third_finger": "ring",
    "pinky": "pinky", "pinky_finger": "pinky", "pinkie": "pinky", "little": "pinky",
    "little_finger": "pinky", "small_finger": "pinky", "baby_finger": "pinky", "fourth_finger": "pinky",
}  # fmt: skip
_ANATOMY = {
    "thumb": {"cmc": 1, "mcp": 2, "ip": 3, "tip": 4},
    "other": {"mcp": 1, "pip": 2, "dip": 3, "tip": 4},
}
_HAND_RE = re.compile(
    r"^(?:(?P<side>left|right)_)?(?:hand_)?(?:(?P<wrist>wrist|root|hand_root|palm_root)|"
    r"(?P<finger>" + "|".join(sorted(_FINGER_WORDS, key=len, reverse=True)) + r")"
    r"(?:_?(?P<num>\d)|_(?P<anat>cmc|mcp|pip|dip|ip|tip|end))?)$"
)
_FACE_RE = re.compile(r"^(?:face|kpt|keypoint|landmark|lmk|lm|point|pt)_?(?P<i>\d+)$")


def normalize_name(name: str) -> str:
    """Lower-case snake form: ``LShoulder`` → ``left_shoulder``, ``Neck/Nose`` → ``neck_nose``,
    ``hip.R`` / ``hip_r`` → ``right_hip``, ``R_Hip`` → ``right_hip``, ``HeadTop`` → ``head_top``."""
    s = re.sub(r"([A-Z])([A-Z][a-z])", r"\1_\2", str(name).strip())
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")
    tokens = s.split("_") if s else []
    side = {"l": "left", "lt": "left", "left": "left", "r": "right", "rt": "right", "right": "right"}
    if len(tokens) > 1 and tokens[0] in side:
        tokens[0] = side[tokens[0]]
    elif len(tokens) > 1 and tokens[-1] in side:
        tokens = [side[tokens[-1]], *tokens[:-1]]
    return "_".join(tokens)


def _cmp(name: str) -> str:
    """Comparison form: no underscore before a digit (``thumb_1`` = ``thumb1``, ``jaw_0`` = ``jaw0``)."""
    return re.sub(r"_(\d)", r"\1", name)


@dataclass(frozen=True)
class _SetTable:
    exact: dict[str, str]  # cmp(normalized canonical / source name) → canonical
    alias: dict[str, str]  # cmp(normalized alias or match key) → canonical


def _build_table(set_name: str) -> _SetTable:
    canon = JOINT_SETS[set_name]
    exact: dict[str, str] = {}
    for names in (canon, *SOURCE_NAMES.get(set_name, [])):
        for c, n in zip(canon, names, strict=True):
            exact.setdefault(_cmp(normalize_name(n)), c)
    alias: dict[str, str] = {}
    by_key = {match_key(set_name, c): c for c in canon}
    for key, c in by_key.items():
        alias.setdefault(_cmp(normalize_name(key)), c)
    for key, spellings in BODY_ALIASES.items():
        if key in by_key:
            for a in spellings:
                alias.setdefault(_cmp(a), by_key[key])
    for a, c in SET_ALIASES.get(set_name, {}).items():
        alias[_cmp(a)] = c
    return _SetTable(exact, alias)


_TABLES: dict[str, _SetTable] = {}


def _table(set_name: str) -> _SetTable:
    if set_name not in _TABLES:
        _TABLES[set_name] = _build_table(set_name)
    return _TABLES[set_name]


def _hand_name(norm: str, numbering: str, zero_based: bool) -> str | None:
    """Canonical hand21 name (``thumb1``, ``wrist``), prefixed ``left_hand_``/``right_hand_`` when sided."""
    m = _HAND_RE.match(norm)
    if m is None:
        return None
    prefix = f"{m['side']}_hand_" if m["side"] else ""
    if m["wrist"]:
        return None if norm == "root" else prefix + "wrist"  # a bare "root" is the body root
    finger = _FINGER_WORDS[m["finger"]]
    if m["num"] is not None:
        k = int(m["num"]) + (1 if zero_based else 0)
        if not 1 <= k <= 4:
            return None
        if numbering == "tip_first":
            k = 5 - k
    elif m["anat"] is not None:
        k = 4 if m["anat"] == "end" else _ANATOMY["thumb" if finger == "thumb" else "other"].get(m["anat"])
        if k is None:
            return None
    else:
        k = 4  # SMPL-X / mmhuman3d: the bare finger name is its tip
    return f"{prefix}{finger}{k}"


def resolve_name(
    name: str, set_name: str, finger_numbering: str = "base_first", zero_based: bool = False
) -> tuple[str | None, int]:
    """``(canonical joint of set_name, level)`` named by ``name``; level 0 = exact, 1 = alias.

    ``(None, 2)`` when the name names no joint of the set.
    """
    table = _table(set_name)
    norm = normalize_name(name)
    key = _cmp(norm)
    hand = _hand_name(norm, finger_numbering, zero_based)
    renumbered = finger_numbering != "base_first" or zero_based
    if hand is not None and renumbered:  # the numbers of the canonical names mean other joints here
        hit = table.exact.get(_cmp(hand))
        return (hit, 1) if hit is not None else (None, 2)
    if key in table.exact:
        return table.exact[key], 0
    if key in table.alias:
        return table.alias[key], 1
    if hand is not None:
        hit = table.exact.get(_cmp(hand))
        if hit is not None:
            return hit, 1
    m = _FACE_RE.match(norm)
    if m is not None and int(m["i"]) < len(FACE68):
        hit = table.exact.get(_cmp(FACE68[int(m["i"])]))
        if hit is not None:
            return hit, 1
    for suffix in _SUFFIXES:
        if norm.endswith(suffix) and len(norm) > len(suffix):
            return resolve_name(norm[: -len(suffix)], set_name, finger_numbering, zero_based)
    return None, 2


@dataclass(frozen=True)
class JointMatch:
    """Dataset columns → joints of ``joint_set``.

    ``index[k]`` is the dataset column of the set's joint ``k`` (-1 when the dataset lacks it);
    ``unknown`` are dataset names that matched no joint (ignored); ``shadowed`` are names of a joint
    that another name gives more exactly (ignored); ``identity`` means the columns already are the
    set in order. ``passed_over`` names a set that covered more names but lacks joints its part
    needs (:func:`required_joints`), so this one was taken instead.
    """

    joint_set: str
    index: tuple[int, ...]
    unknown: tuple[str, ...] = ()
    identity: bool = False
    shadowed: tuple[str, ...] = ()
    passed_over: str | None = None

    @property
    def missing(self) -> list[str]:
        """Joints of the set the dataset does not have."""
        names = JOINT_SETS[self.joint_set]
        return [names[k] for k, i in enumerate(self.index) if i < 0]

    def take(self, arr):
        """Rows of ``arr`` (J, C) in the set's order (K, C); absent joints are all-zero rows
        (confidence / validity 0). Returns ``arr`` itself when :attr:`identity`."""
        if self.identity:
            return arr
        import numpy as np

        idx = np.asarray(self.index, dtype=np.int64)
        out = np.zeros((len(idx), *arr.shape[1:]), dtype=arr.dtype)
        ok = idx >= 0
        out[ok] = arr[idx[ok]]
        return out


def _zero_based(names: Sequence[str], joint_map: Mapping[str, str | None]) -> bool:
    """Whether the finger numbers count from 0 (some hand name ends in finger + ``0``)."""
    for n in names:
        m = _HAND_RE.match(normalize_name(joint_map.get(n, n) or ""))
        if m is not None and m["num"] == "0":
            return True
    return False


def _assign(names, set_name, joint_map, numbering, zero_based):
    """Per dataset name: (canonical or None, level, mapped); level 0 = exact, 1 = alias, 2 = none."""
    out = []
    for n in names:
        mapped = n in joint_map
        target = joint_map[n] if mapped else n
        if target is None:  # mapped to null: dropped on purpose
            out.append((None, 2, True))
        else:
            out.append((*resolve_name(target, set_name, numbering, zero_based), mapped))
    return out


def _score(assigned, set_name: str) -> tuple[int, ...]:
    """A set whose required joints are all there first, then most joints covered, most mapped,
    smallest set, most in their canonical column (when at least half are: the set's own order),
    most exact."""
    canon = JOINT_SETS[set_name]
    covered = {c for c, _, _ in assigned if c is not None}
    mapped = sum(1 for c, _, m in assigned if c is not None and m)
    in_place = sum(1 for col, (c, _, _) in enumerate(assigned) if col < len(canon) and c == canon[col])
    exact = sum(1 for c, lv, _ in assigned if c is not None and lv == 0)
    in_place = in_place if 2 * in_place >= len(covered) else 0
    complete = set(required_joints(set_name)) <= covered
    return complete, len(covered), mapped, -len(canon), in_place, exact


def match_joint_names(
    names: Sequence[str],
    joint_set: str | None = None,
    joint_map: Mapping[str, str | None] | None = None,
    finger_numbering: str = "base_first",
) -> JointMatch:
    """Resolve a dataset's ``joint_names`` to a known set (see the module docstring).

    ``joint_set`` restricts the choice to that set; with it, a list of exactly the set's length
    whose names do not all resolve is read in the set's order (the declared set says what the
    columns are). ``joint_map`` maps dataset names to keypoint names (``None`` = ignore the joint).
    Raises ValueError (no set matches, a map target is no joint of the set, two names for one joint).
    """
    names = [str(n) for n in names]
    joint_map = dict(joint_map or {})
    if finger_numbering not in FINGER_NUMBERINGS:
        raise ValueError(f"finger_numbering must be one of {FINGER_NUMBERINGS}, got {finger_numbering!r}")
    if joint_set is not None and (not isinstance(joint_set, str) or joint_set not in JOINT_SETS):
        raise ValueError(f"unknown joint set {joint_set!r}; known sets: {sorted(JOINT_SETS)}")
    if not joint_map and finger_numbering == "base_first":
        exact = match_joint_set(names)
        if exact is not None and joint_set in (None, exact):
            return JointMatch(exact, tuple(range(len(names))), (), True)
    zero_based = _zero_based(names, joint_map)
    candidates = [joint_set] if joint_set is not None else _NAME_SETS
    scores = {s: _score(_assign(names, s, joint_map, finger_numbering, zero_based), s) for s in candidates}
    best = max(candidates, key=scores.__getitem__)
    widest = max(candidates, key=lambda s: scores[s][1:])
    passed_over = widest if scores[widest][1] > scores[best][1] else None
    assigned = _assign(names, best, joint_map, finger_numbering, zero_based)
    if joint_set is not None and not joint_map and len(names) == len(JOINT_SETS[joint_set]):
        if any(c is None for c, _, _ in assigned) or len({c for c, _, _ in assigned}) < len(names):
            return JointMatch(joint_set, tuple(range(len(names))), (), True)  # declared order
    bad_targets = [f"{n!r} → {joint_map[n]!r}" for (c, _, m), n in zip(assigned, names, strict=True)
                   if c is None and m and joint_map[n] is not None]  # fmt: skip
    if bad_targets:
        raise ValueError(f"the joint map sends {', '.join(bad_targets)}, which name no joint of {best}")
    if not any(c is not None for c, _, _ in assigned):
        raise ValueError(
            f"joint_names ({len(names)}: {names[:4]}...) match no known joint set; name one with a "
            "top-level 'joint_set' key, map them with --joint-map, or use the names of "
            "neuralannot.bodies.joint_names.JOINT_SETS"
        )
    order = {c: k for k, c in enumerate(JOINT_SETS[best])}
    index = [-1] * len(order)
    level = [(3, 3)] * len(order)
    unknown, shadowed = [], []
    for col, ((canon, lv, mapped), n) in enumerate(zip(assigned, names, strict=True)):
        if canon is None:
            if not mapped:
                unknown.append(n)
            continue
        k = order[canon]
        rank = (0 if mapped else 1, lv)  # a mapped name first, then an exact name before an alias
        if index[k] >= 0 and rank == level[k]:
            raise ValueError(
                f"joint names {names[index[k]]!r} and {n!r} both name the {best} joint {canon!r}; "
                "keep one, or map the other to null with --joint-map"
            )
        if index[k] >= 0:
            shadowed.append(names[index[k]] if rank < level[k] else n)
        if rank < level[k]:
            index[k], level[k] = col, rank
    identity = index == list(range(len(names)))
    return JointMatch(best, tuple(index), tuple(unknown), identity, tuple(shadowed), passed_over)


_BODY_CORE = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
_HAND_CORE = ("wrist", "index1", "middle1", "pinky1")


def required_joints(joint_set: str) -> list[str]:
    """Joints a dataset of ``joint_set`` must have: the root joints and those that fix the part's
    orientation (body: shoulders and hips; hand: wrist and the index, middle and pinky knuckles;
    face: nose tip and the outer eye corners)."""
    names = JOINT_SETS[joint_set]
    part = SET_PARTS[joint_set]
    need = [names[i] for i in ROOT_INDICES[joint_set]]
    if part in ("body", "wholebody"):
        need += [n for n in _BODY_CORE if n in names]
    elif part in ("hand", "lhand", "rhand", "hands"):
        need += [n for n in names if any(n.endswith(c) and n[: -len(c)] in ("", "left_hand_", "right_hand_")
                                         for c in _HAND_CORE)]  # fmt: skip
    elif part == "face":
        need += [FACE68[36], FACE68[45]]
    return list(dict.fromkeys(need))
