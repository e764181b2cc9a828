"""Keypoint conventions as plain data: ordered joint-name lists, flips, root joints, conversion.

Pure python (no torch, no numpy at import; :func:`convert_joints` takes numpy arrays). Names are
the project's canonical names; the names a source file uses for the same joints (e.g. mmpose's
``forefinger1``, 300W's ``kpt-0``) are listed in :data:`SOURCE_NAMES` and recognised by
:func:`match_joint_set`.

Sets (``JOINT_SETS[name]``, order = index in the joint arrays):

``coco17``
    COCO keypoints, COCO order (``person_keypoints`` category; = mmpose ``coco.py``).
``coco23``
    ``coco17`` + 6 foot keypoints in COCO-WholeBody order (left big toe, left small toe, left heel,
    right big toe, right small toe, right heel).
``h36m17``
    Human3.6M 17 joints in mmpose ``h36m.py`` order (root/pelvis first, right leg, left leg, spine,
    thorax, neck_base, head, left arm, right arm), names exactly as in the folder-format h36m.json.
``mpi_inf_3dhp17``
    The 17 MPI-INF-3DHP evaluation joints in the standard test-set order (head_top, neck, right arm,
    left arm, right leg, left leg, pelvis, spine, head).
``hand21``
    FreiHAND / mmpose order: wrist, then thumb, index, middle, ring, pinky, each from the knuckle
    (1) to the tip (4). Side-less: a left and a right hand use the same order.
``interhand21``
    InterHand2.6M's native per-hand order: each finger tip (4) to knuckle (1), wrist last.
``interhand42``
    InterHand2.6M two-hand layout: right hand (``interhand21`` order) then left hand.
``lhand21``, ``rhand21``
    ``hand21`` with ``left_hand_`` / ``right_hand_`` prefixes (the hands inside whole-body sets);
    convert to these to cut one hand out of ``coco_wholebody133`` or ``interhand42``.
``face68``
    iBUG-68 / 300W landmarks in 300W order: jaw 0-16 (subject's right ear to left ear), right then
    left eyebrow, nose bridge, nose base, right then left eye, outer then inner mouth. "right" is
    the subject's right (image left in a frontal face).
``coco_wholebody133``
    ``coco23`` + ``face68`` + ``lhand21`` + ``rhand21`` (COCO-WholeBody / mmpose concatenation).

Matching for :func:`convert_joints` uses a per-set *match key* (:data:`MATCH_KEYS`): a joint whose
anatomical point is the same as a differently named joint elsewhere gets that joint's key, e.g. the
h36m ``root`` is the ``pelvis`` and its ``right_foot`` is the ankle. The h36m ↔ MPI-INF-3DHP keys
follow the usual evaluation correspondence (h36m thorax ↔ 3DHP neck, neck_base ↔ head, head ↔
head_top).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "JOINT_SETS",
    "SOURCE_NAMES",
    "MATCH_KEYS",
    "ROOT_INDICES",
    "SET_PARTS",
    "FACE68_MIRROR_PAIRS",
    "INTERHAND21_TO_HAND21",
    "get_joint_names",
    "num_joints",
    "flip_name",
    "flip_permutation",
    "root_indices",
    "match_key",
    "match_joint_set",
    "conversion_indices",
    "convert_joints",
]

# --- body ----------------------------------------------------------------------------------------
COCO17 = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]  # fmt: skip
FEET6 = ["left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel"]
COCO23 = COCO17 + FEET6
H36M17 = [
    "root", "right_hip", "right_knee", "right_foot", "left_hip", "left_knee", "left_foot",
    "spine", "thorax", "neck_base", "head",
    "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
]  # fmt: skip
MPI_INF_3DHP17 = [
    "head_top", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle", "pelvis", "spine", "head",
]  # fmt: skip

# --- hands ---------------------------------------------------------------------------------------
_FINGERS = ["thumb", "index", "middle", "ring", "pinky"]
HAND21 = ["wrist"] + [f"{f}{i}" for f in _FINGERS for i in range(1, 5)]
INTERHAND21 = [f"{f}{i}" for f in _FINGERS for i in range(4, 0, -1)] + ["wrist"]
LHAND21 = [f"left_hand_{n}" for n in HAND21]
RHAND21 = [f"right_hand_{n}" for n in HAND21]
INTERHAND42 = [f"right_hand_{n}" for n in INTERHAND21] + [f"left_hand_{n}" for n in INTERHAND21]
#: ``hand21_joints = interhand21_joints[INTERHAND21_TO_HAND21]`` (InterHand native → FreiHAND order).
INTERHAND21_TO_HAND21 = [INTERHAND21.index(n) for n in HAND21]

# --- face ----------------------------------------------------------------------------------------
_FACE_PARTS = [
    ("jaw", 17), ("right_eyebrow", 5), ("left_eyebrow", 5), ("nose_bridge", 4), ("nose_base", 5),
    ("right_eye", 6), ("left_eye", 6), ("mouth_outer", 12), ("mouth_inner", 8),
]  # fmt: skip
FACE68 = [f"{part}_{i}" for part, n in _FACE_PARTS for i in range(n)]
assert len(FACE68) == 68

#: iBUG-68 horizontal mirror pairs (0-based indices; = mmpose 300w.py ``swap``). Unlisted = self.
FACE68_MIRROR_PAIRS: list[tuple[int, int]] = (
    [(i, 16 - i) for i in range(8)]  # jaw
    + [(17 + i, 26 - i) for i in range(5)]  # eyebrows
    + [(31, 35), (32, 34)]  # nose base
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer mouth
    + [(60, 64), (61, 63), (65, 67)]  # inner mouth
)

COCO_WHOLEBODY133 = COCO23 + FACE68 + LHAND21 + RHAND21

JOINT_SETS: dict[str, list[str]] = {
    "coco17": COCO17,
    "coco23": COCO23,
    "h36m17": H36M17,
    "mpi_inf_3dhp17": MPI_INF_3DHP17,
    "hand21": HAND21,
    "interhand21": INTERHAND21,
    "interhand42": INTERHAND42,
    "lhand21": LHAND21,
    "rhand21": RHAND21,
    "face68": FACE68,
    "coco_wholebody133": COCO_WHOLEBODY133,
}

#: Body part each set describes (``hand`` = side-less hand, ``hands`` = both hands).
SET_PARTS: dict[str, str] = {
    "coco17": "body",
    "coco23": "body",
    "h36m17": "body",
    "mpi_inf_3dhp17": "body",
    "hand21": "hand",
    "interhand21": "hand",
    "interhand42": "hands",
    "lhand21": "lhand",
    "rhand21": "rhand",
    "face68": "face",
    "coco_wholebody133": "wholebody",
}

#: Joints averaged to get the root for root alignment. COCO-style sets use the mid-hip point;
#: hands the wrist; face68 the nose tip (30); interhand42 the right wrist by convention (align
#: each hand separately after cutting it out with ``rhand21``/``lhand21``).
ROOT_INDICES: dict[str, list[int]] = {
    "coco17": [11, 12],
    "coco23": [11, 12],
    "h36m17": [0],
    "mpi_inf_3dhp17": [14],
    "hand21": [0],
    "interhand21": [20],
    "interhand42": [20],
    "lhand21": [0],
    "rhand21": [0],
    "face68": [30],
    "coco_wholebody133": [11, 12],
}

# --- names used by source files ------------------------------------------------------------------
_MMPOSE_FINGERS = {"thumb": "thumb", "index": "forefinger", "middle": "middle_finger",
                   "ring": "ring_finger", "pinky": "pinky_finger"}  # fmt: skip


def _mmpose_hand(names: Sequence[str], prefix: str = "", root: str = "wrist") -> list[str]:
    out = []
    for n in names:
        if n == "wrist":
            out.append(prefix + root)
        else:
            out.append(prefix + _MMPOSE_FINGERS[n[:-1]] + n[-1])
    return out


#: Other spellings of each set, as they appear in source annotation files (mmpose
#: ``configs/_base_/datasets/*.py`` @ 759b39c13fea, i.e. the folder-format JSON ``joint_names``).
SOURCE_NAMES: dict[str, list[list[str]]] = {
    "hand21": [_mmpose_hand(HAND21)],  # freihand2d.py / onehand10k.py / rhd2d.py
    "interhand42": [_mmpose_hand(INTERHAND21, "right_") + _mmpose_hand(INTERHAND21, "left_")],  # interhand3d
    "face68": [[f"kpt-{i}" for i in range(68)]],  # 300w.py
    "coco_wholebody133": [  # coco_wholebody.py
        COCO23
        + [f"face-{i}" for i in range(68)]
        + _mmpose_hand(HAND21, "left_", "hand_root")
        + _mmpose_hand(HAND21, "right_", "hand_root")
    ],
}

#: Per-set overrides of the key used to match joints across sets (default key = the name).
MATCH_KEYS: dict[str, dict[str, str]] = {
    "h36m17": {
        "root": "pelvis",
        "right_foot": "right_ankle",
        "left_foot": "left_ankle",
        "thorax": "neck",  # 3DHP "neck" (base of the neck)
        "neck_base": "head_center",  # 3DHP "head"
        "head": "head_top",  # 3DHP "head_top"
    },
    "mpi_inf_3dhp17": {"head": "head_center"},
}


def get_joint_names(name: str) -> list[str]:
    """Ordered joint names of set ``name`` (a copy); ValueError listing the known sets otherwise."""
    try:
        return list(JOINT_SETS[name])
    except (KeyError, TypeError):
        raise ValueError(f"unknown joint set {name!r}; known sets: {sorted(JOINT_SETS)}") from None


def num_joints(name: str) -> int:
    return len(get_joint_names(name))


def root_indices(name: str) -> list[int]:
    """Indices averaged to form the root joint of set ``name``."""
    get_joint_names(name)
    return list(ROOT_INDICES[name])


_FACE_MIRROR = {FACE68[a]: FACE68[b] for a, b in FACE68_MIRROR_PAIRS} | {
    FACE68[b]: FACE68[a] for a, b in FACE68_MIRROR_PAIRS
}
_SIDE_SWAPS = [("left_", "right_"), ("l_", "r_"), ("Left", "Right")]
_SUFFIX_SWAPS = [(".L", ".R"), ("_l", "_r"), (".l", ".r"), ("_L", "_R")]


def flip_name(name: str) -> str:
    """Name of the mirror-image joint: face68 mirror pairs, else swap left/right prefixes/suffixes.

    ``left_hand_wrist`` ↔ ``right_hand_wrist``, ``hip.L`` ↔ ``hip.R``; unpaired names map to themselves.
    """
    if name in _FACE_MIRROR:
        return _FACE_MIRROR[name]
    for a, b in _SIDE_SWAPS:
        if name.startswith(a):
            return b + name[len(a) :]
        if name.startswith(b):
            return a + name[len(b) :]
    for a, b in _SUFFIX_SWAPS:
        if name.endswith(a):
            return name[: -len(a)] + b
        if name.endswith(b):
            return name[: -len(b)] + a
    return name


def flip_permutation(name: str | Sequence[str]) -> list[int]:
    """Index permutation ``p`` such that ``flipped[:, i] = joints[:, p[i]]`` after a horizontal flip.

    Derived from the names with :func:`flip_name`; a name whose mirror is not in the set maps to
    itself, so ``hand21``/``lhand21`` are self-mapped (a flipped left hand is a right hand with the
    same joint order). ``name`` may be a set name or an explicit list of names.
    """
    names = get_joint_names(name) if isinstance(name, str) else list(name)
    index = {n: i for i, n in enumerate(names)}
    return [index.get(flip_name(n), i) for i, n in enumerate(names)]


def match_key(joint_set: str | None, name: str) -> str:
    """Key under which joint ``name`` of ``joint_set`` is matched by :func:`convert_joints`."""
    return MATCH_KEYS.get(joint_set or "", {}).get(name, name)


def match_joint_set(names: Sequence[str]) -> str | None:
    """The set whose canonical or source (:data:`SOURCE_NAMES`) names equal ``names``, else None."""
    names = list(names)
    for set_name, canon in JOINT_SETS.items():
        if names == canon or any(names == alt for alt in SOURCE_NAMES.get(set_name, [])):
            return set_name
    return None


def _resolve(spec: str | Sequence[str]) -> tuple[str | None, list[str]]:
    if isinstance(spec, str):
        return spec, get_joint_names(spec)
    return None, list(spec)


def conversion_indices(src: str | Sequence[str], dst: str | Sequence[str]) -> tuple[list[int], list[bool]]:
    """For each ``dst`` joint, the ``src`` index with the same match key (or -1) and a found flag.

    ``src``/``dst`` are set names or explicit name lists (explicit lists match by name only).
    """
    src_set, src_names = _resolve(src)
    dst_set, dst_names = _resolve(dst)
    lookup: dict[str, int] = {}
    for i, n in enumerate(src_names):
        lookup.setdefault(match_key(src_set, n), i)
    idx = [lookup.get(match_key(dst_set, n), -1) for n in dst_names]
    return idx, [i >= 0 for i in idx]


def convert_joints(joints, src: str | Sequence[str], dst: str | Sequence[str]):
    """Reorder joints ``(..., J, C)`` of ``src`` into ``dst`` order by matching names.

    Returns ``(out (..., K, C), valid (K,) bool)``; joints of ``dst`` missing from ``src`` are zero
    with ``valid`` False (mmhuman3d ``convert_kps`` idea). Accepts numpy arrays or torch tensors.
    """
    import numpy as np

    src_set, src_names = _resolve(src)
    if joints.shape[-2] != len(src_names):
        raise ValueError(
            f"convert_joints: joints have {joints.shape[-2]} joints, {src_set or 'src'} has {len(src_names)}"
        )
    idx, found = conversion_indices(src, dst)
    valid = np.asarray(found, dtype=bool)
    take = [i if i >= 0 else 0 for i in idx]
    if hasattr(joints, "index_select"):  # torch.Tensor
        import torch

        t_idx = torch.as_tensor(take, dtype=torch.long, device=joints.device)
        out = joints.index_select(-2, t_idx)
        mask = torch.as_tensor(valid, device=joints.device).unsqueeze(-1)
        return torch.where(mask, out, torch.zeros((), dtype=out.dtype, device=out.device)), valid
    joints = np.asarray(joints)
    out = np.take(joints, take, axis=-2)
    out = np.where(valid[:, None], out, np.zeros((), dtype=joints.dtype))
    return out, valid
