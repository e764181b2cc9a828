"""SMPLify-X building blocks: options and results, Anny's fast keypoints, the pose embedding, and the
batched fitting problem (:class:`_Problem`) that :mod:`neuralannot.annotators.optimize` solves.

Split out of ``optimize.py`` (see its docstring for the method); ``optimize`` re-exports the public names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import roma
import torch
from torch import Tensor

from neuralannot.annotators.optimize_losses import BendingPrior, shape_prior
from neuralannot.annotators.optimize_solvers import OPTIMIZERS
from neuralannot.bodies.base import BodyModel
from neuralannot.bodies.fast_keypoints import AnnyKeypoints
from neuralannot.bodies.joints import get_regressor, joint_sets_for, posed_keypoints

METHODS = {"2d": "2d", "wild": "2d", "3d": "3d", "mocap": "3d"}
#: Joints of the camera / rigid initialisation and of the side-view test, per model part.
INIT_JOINTS = {
    "body": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
    "hand": ("wrist", "index1", "middle1", "ring1", "pinky1"),
    # face68: eye corners, nose tip, mouth corners (the rigid part of the face)
    "face": ("right_eye_0", "right_eye_3", "left_eye_0", "left_eye_3", "nose_base_2", "mouth_outer_0",
             "mouth_outer_6"),
}  # fmt: skip
#: Outer eye corners: closer than ``side_view_px`` in 2D → a profile view (both facings fitted).
SIDE_PAIR = {"body": ("left_shoulder", "right_shoulder"), "hand": ("index1", "pinky1"),
             "face": ("right_eye_0", "left_eye_3")}  # fmt: skip
#: Default ρ (meters) of the 3D Geman–McClure term per part (see the module docstring).
RHO_3D = {"body": 0.5, "hand": 0.1, "face": 0.05}
#: Default L-BFGS iterations per stage and part (``iterations=None``). Hands need more: 45 finger
#: rotations leave the prior-dominated stages far from the joints, and 30 iterations per stage stop
#: before the pose stages converge. On 32 synthetic hands (2 mm joint noise, seed 5) the 3D fit
#: reached MPJPE 16.9 / PA 7.4 mm with 30, 9.0 / 4.4 with 50, 4.5 / 2.4 with 100, 4.8 / 2.5 with 200;
#: the 2D fit PA-MPJPE 5.4 → 3.1 mm (30 → 100). Bodies: 30 (SMPLify-X's pace on CPU). Faces (48
#: synthetic, seed 5, surface error mm, 2D / 3D): 3.70 / 1.52 with 30, 3.66 / 1.39 with 50, 3.52 / 0.96
#: with 100, 3.40 / 0.94 with 200 (< 1 s per face on one CPU thread).
ITERATIONS = {"body": 30, "hand": 100, "face": 200}
#: Default facing strategy per part (``orientations="auto"``).
ORIENTATIONS = {"body": "side", "hand": "always", "face": "side"}
#: :attr:`FitOptions.neutral_turn` where unset, per part
NEUTRAL_TURN = {"body": False, "hand": True, "face": False}
#: 3D SMPLify-X's silhouette weight (``FitOptions.w_silhouette``) where it is compared with an annotator
#: that reads person masks (the ``baseline_vae_sil`` row). Validation (seed 101, 400 samples, VAE
#: prior, the 224² / 384-point targets): MPVPE 36.06 mm without, 34.37 at 10, 33.81 at 30 (MPJPE
#: 14.53, 14.68, 15.46); the row is judged on MPVPE. With the coarser targets 10 was the best of 3,
#: 10, 30, 100 on 40 samples.
FIT_SILHOUETTE = 30.0
#: The hybrid's 3D refinement's silhouette weight (``HybridOptions.w_silhouette``): validation (seed
#: 101, from a 30.3 mm annotator) MPVPE 30.9 mm without, 29.5 at 10
HYBRID_SILHOUETTE = 10.0
#: Model pose group → part (the first group present in a model's specs is fitted).
POSE_GROUPS = {"body_pose": "body", "hand_pose": "hand", "head_pose": "face"}


@dataclass
class FitOptions:
    """Settings of both variants (defaults: SMPLify-X's, few iterations for CPU).

    ``schedule``: see :func:`~.optimize_losses.parse_schedule`. ``iterations``: per stage (L-BFGS
    iterations or Adam steps; ``None``: per part, :data:`ITERATIONS`); ``camera_iterations``
    (default = ``iterations``) for the 2D camera stage. ``orientations``: ``side`` (SMPLify-X: fit
    both facings for side views), ``always``, ``never`` (keep the facing with the lower camera-stage
    loss) or ``auto`` (body and face ``side``, hand ``always``: a palm and a back of the hand are
    mirror images in 2D). ``rho_m``: ρ of the 3D
    term (default per part, :data:`RHO_3D`).
    """

    optimizer: str = "lbfgs"
    iterations: int | None = None
    camera_iterations: int | None = None
    schedule: Any = None
    lr: float | None = None
    history: int = 20
    rho_px: float = 100.0
    data_scale_px: float = 1000.0
    focal: float = 5000.0
    depth_weight: float = 100.0
    orientations: str = "auto"
    side_view_px: float = 25.0
    rho_m: float | None = None
    data_weight_3d: float = 1e6
    #: 3D variant's pose prior: "l2" (the paper's modified SMPLify-X: axis-angle, ``|θ|²``),
    #: "embedding" (the pose in the embedding's latent space with ``|z|²``, as the 2D variant) or
    #: "vae" (axis-angle scored by the embedding's ``pose_prior``, the prior of the neural
    #: annotator's ``reg.pose_prior``)
    prior_3d: str = "l2"
    #: 3D variant: weight of the silhouette term (data/silhouette.py) where samples have person
    #: masks, the evidence of girth the annotator's ``w_silhouette`` uses; 0 = the paper's (joints only)
    w_silhouette: float = 0.0
    #: 2D refinement of an initial pseudo-GT (hybrid): "sample" (the sample's intrinsics where it has
    #: them: the start's root is turned from its crop camera's viewing axis onto the real ray through
    #: the crop centre, as CLIFF, and its translation re-fitted) or "record" (the start's own camera,
    #: e.g. the wild annotator's near-orthographic virtual camera)
    init_camera: str = "sample"
    #: refinement (a start given): hold the shape at the start's while the rest is refitted (a
    #: network's shape, read across the whole set, is kept); tried on wild hands, where it was worse
    #: (tuning seed 301: 18.2 against 17.6 mm), so off
    keep_shape: bool = False
    #: refinement: the start turned 180° (``orientations``) also restarts from the neutral
    #: articulation, since the start's articulation was fitted for the other side; ``None``: hands
    #: only (hand tuning set, seed 301, 200, hybrid from the wild annotator, which turned 15 hands palm
    #: for back: 5 stayed turned without, 3 with; MPVPE 19.2 → 17.6 mm)
    neutral_turn: bool | None = None

    def for_part(self, part: str) -> FitOptions:
        """These options with ``iterations`` resolved for ``part`` (body | hand | face)."""
        return self if self.iterations is not None else replace(self, iterations=ITERATIONS[part])

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.prior_3d not in ("l2", "embedding", "vae"):
            raise ValueError(f"prior_3d must be l2 | embedding | vae, got {self.prior_3d!r}")
        if self.orientations not in ("auto", "side", "always", "never"):
            raise ValueError(f"orientations must be auto | side | always | never, got {self.orientations!r}")
        if self.init_camera not in ("sample", "record"):
            raise ValueError(f"init_camera must be sample | record, got {self.init_camera!r}")
        if self.w_silhouette < 0:
            raise ValueError(f"w_silhouette must be >= 0, got {self.w_silhouette}")
        if self.iterations is not None and self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")


@dataclass
class FitResult:
    """Batched fit: ``params`` axis-angle tensors (B, ...), ``keypoints`` (B, J, 3) camera frame,
    ``loss`` (B,) final-stage loss (NaN when diverged from the start), ``joint_err`` (B,) mean error
    over the valid joints (2D: pixels; 3D: meters; NaN without valid joints), ``diverged`` (B,),
    ``K`` (B, 3, 3) the camera used (2D only), ``evals`` objective evaluations."""

    params: dict[str, Tensor]
    keypoints: Tensor
    loss: Tensor
    joint_err: Tensor
    diverged: Tensor
    K: Tensor | None = None
    evals: int = 0
    info: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# keypoints without skinning (Anny)
# ------------------------------------------------------------------------------------------------
# ------------------------------------------------------------------------------------------------
# the parameter vector of one sample
# ------------------------------------------------------------------------------------------------
def resolve_embedding(body: BodyModel, embedding: Any = "default"):
    """``"default"`` → the shipped Anny embedding of the part (MANO: its PCA; SMPL/SMPL-X: none),
    ``None`` → none (axis-angle pose), a name/path → :func:`load_embedding` (``.ckpt``/``.pt``: VPoser
    v2), or a :class:`~neuralannot.bodies.embedding.PoseEmbedding` as is."""
    from neuralannot.bodies.embedding import MANOPCA, PoseEmbedding, load_embedding, load_vposer_checkpoint

    if embedding is None or isinstance(embedding, PoseEmbedding):
        return embedding
    if embedding == "default":
        if body.name == "anny":
            return load_embedding("anny-body-vae")
        if body.name == "anny-hand":
            return load_embedding("anny-hand-pca")
        if hasattr(body, "hand_components"):
            return MANOPCA.from_model(body)
        return None
    if str(embedding).endswith((".ckpt", ".pt", ".pth")):
        return load_vposer_checkpoint(embedding)
    return load_embedding(embedding)


class _Problem:
    """Packs one sample's unknowns into a vector ``[root (3) | pose | shape | expr | trans (3)]``
    (``expr``: face models only) and evaluates keypoints and priors for a batch of such vectors.

    Face (Anny head): ``head_pose`` axis-angle with ``|θ|²``, the 52 facial actions as ``clamp(e, 0,
    1)`` of the free ``e`` with SMPLify-X's expression prior ``w_shape² |e|²`` (``expr_weights`` =
    ``shape_weights`` in ``fit_smplx.yaml``; it also pulls a negative ``e`` back to the bound 0, where
    a sigmoid would start without gradient at the default 0)."""

    def __init__(self, body: BodyModel, joint_set: str, embedding=None, pose_scorer=None):
        specs = body.param_specs
        self.pose_group = next((g for g in POSE_GROUPS if g in specs), None)
        if self.pose_group is None:
            raise ValueError(
                f"SMPLify-X fitting supports body, hand and face models, not {body.name} ({body.part})"
            )
        # SMPL-X / whole-body Anny: the body alone (hands, face at their defaults, as SMPLify-X's
        # use_hands=False, use_face=False)
        self.body, self.part = body, POSE_GROUPS[self.pose_group]
        self.expr = self.part == "face" and "expression" in specs
        self.shape_group = "phenotype" if "phenotype" in specs else "shape"
        self.anny = self.shape_group == "phenotype"
        self.pose_shape = specs[self.pose_group].shape
        self.embedding = embedding
        #: an embedding scoring axis-angle poses (``pose_prior``) in place of ``|θ|²`` (no latent)
        self.pose_scorer = pose_scorer
        for emb in (embedding, pose_scorer):
            if emb is None:
                continue
            ej = emb.pose_shape
            if len(ej) != 2 or ej[1] != 3 or ej[0] > self.pose_shape[0]:
                raise ValueError(
                    f"embedding of poses {ej} does not fit {body.name}.{self.pose_group} {self.pose_shape}"
                )
            emb.to(body.device)
        n_pose = embedding.latent_dim if embedding is not None else math.prod(self.pose_shape)
        sizes = [("root", 3), ("pose", n_pose), ("shape", specs[self.shape_group].numel),
                 ("expr", specs["expression"].numel if self.expr else 0), ("trans", 3)]  # fmt: skip
        start, self.sl = 0, {}
        for name, n in sizes:
            self.sl[name] = slice(start, start + n)
            start += n
        self.dim = start
        self.reg = get_regressor(body, joint_set)
        self.fast = AnnyKeypoints(body, self.reg) if body.is_anny else None
        self.bending = BendingPrior.for_model(body) if self.pose_group == "body_pose" else None

    def zeros(self, B: int) -> Tensor:
        """Neutral vectors: zero rotations / latent, mean shape (phenotype 0.5), zero translation."""
        return torch.zeros(B, self.dim, dtype=self.body.dtype, device=self.body.device)

    def unpack(self, x: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """→ body params (pose as matrices), pose prior (B,) (``|z|²`` or ``|θ|²``), shape values."""
        B = x.shape[0]
        s = x[:, self.sl["shape"]]
        shape = torch.sigmoid(s) if self.anny else s
        p = x[:, self.sl["pose"]]
        if self.embedding is not None:
            rot = self.embedding.decode(p)
            missing = self.pose_shape[0] - rot.shape[1]
            if missing:  # e.g. VPoser (21 joints) on SMPL (23): SMPLify-X leaves the hands at rest
                eye = torch.eye(3, dtype=rot.dtype, device=rot.device).expand(B, missing, 3, 3)
                rot = torch.cat([rot, eye], 1)
            prior = self.embedding.prior_loss(p)
        else:
            rot = roma.rotvec_to_rotmat(p.reshape(B, *self.pose_shape))
            if self.pose_scorer is not None:
                prior = self.pose_scorer.pose_prior(rot[:, : self.pose_scorer.pose_shape[0]])
            else:
                prior = p.square().sum(-1)
        params = {"root_pose": x[:, self.sl["root"]], self.pose_group: rot, self.shape_group: shape,
                  "trans": x[:, self.sl["trans"]]}  # fmt: skip
        if self.expr:
            e = x[:, self.sl["expr"]]  # clamped, with gradient at the default 0 (torch's clamp has none)
            params["expression"] = torch.where(e < 0, 0.0, torch.where(e > 1, 1.0, e))
        return params, prior, shape

    def pack(self, params: dict[str, Tensor]) -> Tensor:
        """Axis-angle body params (a pseudo-GT's) → vectors ``x`` (inverse of :meth:`unpack`; an
        embedded pose goes through the encoder, so it is the nearest pose the embedding can express)."""
        root = torch.as_tensor(params["root_pose"], dtype=self.body.dtype, device=self.body.device)
        B = root.reshape(-1, 3).shape[0]

        def get(name: str, shape) -> Tensor:
            v = torch.as_tensor(params[name], dtype=self.body.dtype, device=self.body.device)
            return v.reshape(B, *shape)

        x = self.zeros(B)
        x[:, self.sl["root"]] = root.reshape(B, 3)
        pose = get(self.pose_group, self.pose_shape)
        if self.embedding is not None:
            n = self.embedding.pose_shape[0]
            x[:, self.sl["pose"]] = self.embedding.encode(pose[:, :n])
        else:
            x[:, self.sl["pose"]] = pose.reshape(B, -1)
        shape = get(self.shape_group, (-1,))
        x[:, self.sl["shape"]] = torch.logit(shape.clamp(1e-4, 1 - 1e-4)) if self.anny else shape
        x[:, self.sl["trans"]] = get("trans", (3,))
        if self.expr and "expression" in params:
            x[:, self.sl["expr"]] = get("expression", (-1,))
        return x

    def free_indices(self, keep_shape: bool = False) -> Tensor:
        """Indices of the optimised coordinates of ``x``: all, or all but the shape's."""
        held = range(self.sl["shape"].start, self.sl["shape"].stop) if keep_shape else range(0)
        return torch.tensor([i for i in range(self.dim) if i not in held], dtype=torch.long)

    def terms(self, x: Tensor, data_term, src: Tensor) -> tuple[Tensor, Tensor]:
        """Per row: the unweighted data term and the pose prior (``|z|²`` or ``|θ|²``), no grad."""
        with torch.no_grad():
            params, prior, _ = self.unpack(x)
            return data_term(params, src), prior

    def keypoints(self, params: dict[str, Tensor]) -> Tensor:
        if self.fast is not None:
            return self.fast(params)
        return posed_keypoints(self.body, self.reg, params)

    def priors(self, x: Tensor, stage) -> tuple[dict[str, Tensor], Tensor]:
        """Body params and the prior part of a stage's loss (B,)."""
        params, prior, shape = self.unpack(x)
        loss = stage.pose**2 * prior + stage.shape**2 * shape_prior(shape, self.anny)
        if self.expr:
            loss = loss + stage.shape**2 * x[:, self.sl["expr"]].square().sum(-1)
        if self.bending is not None and stage.bending_weight > 0:
            loss = loss + stage.bending_weight * self.bending(params[self.pose_group])
        return params, loss

    def axis_angle(self, x: Tensor) -> dict[str, Tensor]:
        """Detached axis-angle parameters (the pseudo-GT layout)."""
        with torch.no_grad():
            params, _, _ = self.unpack(x)
            params[self.pose_group] = roma.rotmat_to_rotvec(params[self.pose_group])
        return {k: v.detach() for k, v in params.items()}


def _guard(fn):
    """Objective wrapper: rows with non-finite parameters are evaluated at 0 and report NaN."""

    def wrapped(x: Tensor, rows: Tensor) -> Tensor:
        bad = ~torch.isfinite(x).all(1)
        if bool(bad.any()):
            x = torch.where(bad[:, None], 0.0, x)
            return torch.where(bad, float("nan"), fn(x, rows))
        return fn(x, rows)

    return wrapped


def _names_mask(names: Sequence[str], wanted: Sequence[str], device) -> Tensor:
    plain = [n.removeprefix("left_hand_").removeprefix("right_hand_") for n in names]
    return torch.tensor([n in wanted for n in plain], device=device)


def _model_joint_set(body: BodyModel, joint_set: str) -> str:
    """A left-hand set on a right-hand model (left hands are mirrored to right ones)."""
    if joint_set not in joint_sets_for(body) and joint_set == "lhand21":
        return "rhand21"
    return joint_set


def _joint_names(body: BodyModel, joint_set: str) -> list[str]:
    return list(get_regressor(body, joint_set).names)


def _inputs(joints: Tensor, dims: int, body: BodyModel) -> tuple[Tensor, Tensor]:
    """(B, J, dims + 1) → targets with missing joints zeroed, confidences in [0, 1]."""
    joints = torch.as_tensor(joints, dtype=body.dtype, device=body.device)
    conf = joints[..., dims].nan_to_num(0.0).clamp(0.0, 1.0)
    coords = joints[..., :dims]
    bad = (conf > 0) & ~torch.isfinite(coords).all(-1)
    if bool(bad.any()):
        rows = bad.any(-1).nonzero().flatten().tolist()
        raise ValueError(f"joints marked valid have NaN/inf coordinates in batch rows {rows[:10]}")
    return torch.where((conf > 0)[..., None], coords, 0.0), conf
