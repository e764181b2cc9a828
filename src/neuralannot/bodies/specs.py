"""Every body model's parameter groups (:class:`ParamSpec` lists), built from the sizes that come from
model data (shape and expression coefficients, Anny's facial actions and local changes), so that they
are known without loading a model: :func:`model_variants` feeds the pseudo-GT schema.
"""

from __future__ import annotations

from neuralannot.bodies.base import ParamSpec

__all__ = [
    "ANNY_FACIAL_ACTIONS",
    "FILE_SIZE",
    "PHENOTYPES",
    "anny_body_specs",
    "anny_hand_specs",
    "anny_head_specs",
    "flame_specs",
    "mano_specs",
    "model_variants",
    "smpl_specs",
    "smplx_specs",
]

PHENOTYPES = ["gender", "age", "muscle", "weight", "height", "proportions"]
#: Anny's facial actions (``anny.models.facial_actions.FACIAL_ACTION_LABELS``, ARKit names); the
#: models read the count from Anny itself, the pseudo-GT schema uses this one.
ANNY_FACIAL_ACTIONS = 52
#: The size :func:`model_variants` gives a group whose length comes from the model file.
FILE_SIZE = -1


def _rot(name: str, shape: tuple[int, ...], description: str, optional: bool = False) -> ParamSpec:
    return ParamSpec(name, shape, "rotation", 0.0, description, optional)


# ---------------------------------------------------------------------------------------------
# SMPL family
# ---------------------------------------------------------------------------------------------
def _betas(n: int) -> ParamSpec:
    return ParamSpec("shape", (n,), "shape", 0.0, "shape (beta) coefficients")


def _expr(n: int, optional: bool) -> ParamSpec:
    return ParamSpec("expr", (n,), "expression", 0.0, "expression coefficients", optional)


def _mean_note(flat_hand_mean: bool) -> str:
    return "flat hand = 0" if flat_hand_mean else "offset from the mean hand pose"


_TRANS = ParamSpec("trans", (3,), "translation", 0.0, "translation added to all vertices and joints (m)")
_PELVIS = _rot("root_pose", (3,), "global rotation about the pelvis joint (axis-angle)")


def smpl_specs(num_betas: int) -> list[ParamSpec]:
    return [
        _PELVIS,
        _rot("body_pose", (23, 3), "rotations of SMPL joints 1..23 relative to their parents"),
        _betas(num_betas),
        _TRANS,
    ]


def smplx_specs(num_betas: int, num_expr: int, flat_hand_mean: bool = False) -> list[ParamSpec]:
    note = _mean_note(flat_hand_mean)
    return [
        _PELVIS,
        _rot("body_pose", (21, 3), "rotations of SMPL-X body joints 1..21"),
        _rot("lhand_pose", (15, 3), f"left-hand finger rotations ({note})", optional=True),
        _rot("rhand_pose", (15, 3), f"right-hand finger rotations ({note})", optional=True),
        _rot("jaw_pose", (3,), "jaw rotation", optional=True),
        _rot("leye_pose", (3,), "left eyeball rotation", optional=True),
        _rot("reye_pose", (3,), "right eyeball rotation", optional=True),
        _betas(num_betas),
        _expr(num_expr, optional=True),
        _TRANS,
    ]


def mano_specs(num_betas: int, flat_hand_mean: bool = False) -> list[ParamSpec]:
    return [
        _rot("root_pose", (3,), "global rotation about the wrist joint (axis-angle)"),
        _rot("hand_pose", (15, 3), f"finger joint rotations, MANO order ({_mean_note(flat_hand_mean)})"),
        _betas(num_betas),
        _TRANS,
    ]


def flame_specs(num_betas: int, num_expr: int) -> list[ParamSpec]:
    return [
        _rot("root_pose", (3,), "global rotation about the root joint (axis-angle)"),
        _rot("neck_pose", (3,), "neck rotation", optional=True),
        _rot("jaw_pose", (3,), "jaw rotation"),
        _rot("eye_pose", (2, 3), "eyeball rotations (left, right)", optional=True),
        _betas(num_betas),
        _expr(num_expr, optional=False),
        _TRANS,
    ]


# ---------------------------------------------------------------------------------------------
# Anny
# ---------------------------------------------------------------------------------------------
_UNIT = (0.0, 1.0)


def _anny(root: str, *poses: ParamSpec) -> list[ParamSpec]:
    """``root_pose``, then ``poses``, then ``trans`` and ``phenotype``."""
    return [
        _rot("root_pose", (3,), root),
        *poses,
        ParamSpec("trans", (3,), "translation", 0.0, "root bone head position in the output frame (m)"),
        ParamSpec(
            "phenotype", (len(PHENOTYPES),), "shape", 0.5, f"Anny phenotypes {PHENOTYPES}", bounds=_UNIT
        ),
    ]


def _facial_actions(n: int, description: str, optional: bool) -> ParamSpec:
    return ParamSpec("expression", (n,), "expression", 0.0, description, optional, bounds=_UNIT)


def anny_body_specs(
    hands: bool = False, n_face: int | None = None, n_local: int | None = None
) -> list[ParamSpec]:
    """The body, with both hands' fingers, ``n_face`` facial actions and ``n_local`` local changes."""
    specs = _anny(
        "global rotation of the body (axis-angle, canonical frame)",
        _rot("body_pose", (21, 3), "local-ref rotations of BODY_SLOTS"),
    )
    if hands:
        for side in ("lhand_pose", "rhand_pose"):
            specs.append(_rot(side, (15, 3), f"finger rotations of the {side[0]} hand", optional=True))
    if n_face is not None:
        specs.append(_facial_actions(n_face, "Anny facial actions (ARKit names)", optional=True))
    if n_local is not None:
        specs.append(
            ParamSpec(
                "local_changes",
                (n_local,),
                "shape",
                0.0,
                "Anny local changes",
                optional=True,
                bounds=(-1.0, 1.0),
            )
        )
    return specs


def anny_hand_specs() -> list[ParamSpec]:
    return _anny(
        "global rotation of the wrist (axis-angle, wrist frame)",
        _rot("hand_pose", (15, 3), "finger rotations, thumb first (finger1..5 × 3 joints)"),
    )


def anny_head_specs(n_face: int) -> list[ParamSpec]:
    return _anny(
        "global rotation of the neck (axis-angle, head frame)",
        _rot("head_pose", (3,), "rotation of the head bone relative to the neck"),
        _facial_actions(n_face, "Anny facial actions (ARKit names, jaw via jawOpen)", optional=False),
        _rot("eye_pose", (2, 3), "left, right eye rotations", optional=True),
    )


def model_variants() -> dict[str, list[list[ParamSpec]]]:
    """The spec lists each model (``MODEL_NAMES``) can have, one per part or option set, with
    :data:`FILE_SIZE` for the lengths that come from the model file."""
    n = FILE_SIZE
    return {
        "smpl": [smpl_specs(n)],
        "smplx": [smplx_specs(n, n)],
        "mano": [mano_specs(n)],
        "flame": [flame_specs(n, n)],
        "anny": [
            anny_body_specs(True, ANNY_FACIAL_ACTIONS, n),
            anny_hand_specs(),
            anny_head_specs(ANNY_FACIAL_ACTIONS),
        ],
    }
