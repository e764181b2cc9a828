"""Typed configuration of the neural annotator (dataclass + YAML; unknown keys are errors)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from neuralannot.annotators.config_checks import BODY_EPOCHS, check_aux, check_choice, check_values
from neuralannot.annotators.config_defaults import (  # noqa: F401 (re-exported)
    EMBEDDING_DEFAULT_PARTS,
    FACE_REFIT_STEPS,
    FACE_SOLVE_DAMPING,
    FACE_SOLVE_STEPS,
    HAND_PARTS,
    HAND_SWING_WEIGHT,
    JOINT_REFIT_STEPS,
    MOCAP_SILHOUETTE,
    ROOT_HYPOTHESES,
    ROOT_SOLVE_STEPS,
    SHAPE_SOLVE_DAMPING,
    SWING_WEIGHT,
    default_aux_data,
    default_aux_weight,
    default_inputs,
    default_outputs,
    default_params_weight,
    embedded_aux,
)

Mode = Literal["mocap", "wild"]
InputKind = Literal["image", "joints", "image+joints"]
OutputKind = Literal["rotations", "embedding"]
HeadKind = Literal["paper", "swing"]
#: Config fields that do not affect the trained weights (``output_camera`` and the annotation-time
#: shape solve are in the prediction key).
RESULT_NEUTRAL = (
    "num_workers", "checkpoint_every", "log_every", "crop_cache",
    "output_camera", "shape_solve", "shape_damping", "root_solve", "wholebody_head", "wrist_stage",
    "face_stage", "joint_refit",
)  # fmt: skip
#: ``reg`` names besides the body models' parameter groups (``io.pseudo_gt.PARAM_SHAPES``).
REG_EXTRA = ("twist", "latent", "pose_prior")


def _reg_names() -> set[str]:
    from neuralannot.io.pseudo_gt import PARAM_SHAPES

    return {name for shapes in PARAM_SHAPES.values() for name in shapes} | set(REG_EXTRA)


#: Keys a dict-valued field accepts beyond those of its default (called only when needed).
_NESTED_KEYS = {"reg": _reg_names}


def _merge_nested(cls, d: dict) -> dict:
    """Dict-valued fields (``reg``...) merge key by key into their defaults; unknown keys are errors.

    A YAML ``reg: {body_pose: 0.2}`` changes that one weight and keeps the others (the limb twist
    included); a misspelled name fails instead of being ignored.
    """
    out = dict(d)
    for f in dataclasses.fields(cls):
        if f.name not in d or f.default_factory is dataclasses.MISSING:
            continue
        default = f.default_factory()
        if not isinstance(default, dict):
            continue
        given = d[f.name]
        if not isinstance(given, dict):
            raise ValueError(f"{f.name} must be a mapping (name: value), got {type(given).__name__}")
        extra = set(given) - set(default)
        if extra:
            known = set(default) | (_NESTED_KEYS[f.name]() if f.name in _NESTED_KEYS else set())
            if extra - known:
                raise ValueError(
                    f"unknown {f.name} key(s) {sorted(extra - known, key=str)}; known: {sorted(known)}"
                )
        for k, v in given.items():
            ref = default.get(k, 0.0)
            if isinstance(ref, float) and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise ValueError(f"{f.name}.{k} must be a number, got {v!r}")
        out[f.name] = {**default, **given}
    return out


@dataclass
class AnnotatorConfig:
    """Everything that defines a training run; the hash of this record names its checkpoints.

    ``mode``: ``mocap`` (image + GT 3D joints → rotations, 3D L1 loss, Eq. 1) or ``wild`` (image →
    pose + camera, 2D L1 loss, Eq. 2). ``inputs``/``outputs`` are the paper's ablations
    (Tables 2–3); ``None`` means the default for the mode and part (:func:`default_outputs`).
    """

    mode: Mode = "mocap"
    part: str = "body"
    body_model: str = "anny"
    inputs: InputKind | None = None
    outputs: OutputKind | None = None
    # wild mode: an auxiliary MoCap set (3D joints) trained jointly, not annotated (annotators/
    # aux_mocap.py): a folder, "synthetic" / "synthetic:N" (the embedded synthetic 3D set of the part),
    # or "none". None: per part (:func:`default_aux_data`: the embedded set for bodies and hands). The
    # set's identity names the run (its run tag), not this key. ``annotate --aux-data`` sets it
    aux_data: str | None = None
    # the auxiliary set's losses' weight (``--aux-weight``; > 0). None: per part (:func:`default_aux_weight`:
    # hands 4, else 1). Like the set, it names the run through the set's run tag, not the digest. A
    # whole-body run passes a given weight to its body and hand parts
    aux_weight: float | None = None
    # "swing" (MoCap default): the regressed rotations go through an analytic swing solve toward the
    # given 3D joints (bodies/swing_ik.py), so the network learns shape and the unobservable twists;
    # "paper": the plain FC output (Eq. 1), kept for the ablation tables. Wild mode and the face
    # (by default): "paper".
    head: HeadKind | None = None
    # wild mode, bodies and hands: the root rotation is tried turned about the model's +Y (the body's
    # up axis, the hand's wrist → fingers axis) by 0, 360/H, ... degrees and the hypothesis fitting the
    # 2D joints best is kept (min-of-H loss in training, selection at annotation); 1 = the paper's
    # single prediction; None = per part (ROOT_HYPOTHESES)
    root_hypotheses: int | None = None
    backbone: str = "efficientnet_lite0"
    backbone_weights: str = "imagenet"  # "imagenet" | "none" | path to a torchvision state dict
    freeze_backbone: bool = False  # CPU path: frozen ImageNet features computed once and cached
    # Adam learning rate of a fine-tuned backbone (None: ``lr``, as the heads); pretrained features
    # are usually fine-tuned slower than freshly initialised heads
    backbone_lr: float | None = None
    input_size: int = 256
    head_hidden: list[int] = field(default_factory=list)  # [] = one FC layer, as in the paper
    # image evidence for the head: "global" (the paper: the pooled backbone feature) or "joints"
    # (also the spatial map read at every GT 2D joint, projected to joint_feature_dim each)
    image_features: Literal["global", "joints"] = "global"
    joint_feature_dim: int = 32
    # close-up crops of the hands, feet and head (boxes from the 2D joints of their limbs, side
    # end_crop_extent × input_size, upsampled to end_crop_size px) through the backbone, one pooled
    # feature per part projected to end_crop_dim (models/end_crops.py): the end bones' rotations, which
    # the body joints do not carry; end_crop_rotate: each crop turned so that its limb points down;
    # end_crop_spatial: the crop's feature map (1×1 conv to 16 channels, flattened), not its mean
    end_crops: bool = False
    end_crop_size: int = 128
    end_crop_extent: float = 0.25
    end_crop_dim: int = 64
    end_crop_rotate: bool = False
    end_crop_spatial: bool = False
    joint_encoder_dim: int = 512
    # MoCap: the joint encoder also reads every pairwise joint distance (bone lengths → shape)
    joint_distances: bool = False
    # MoCap, at annotation: Gauss-Newton steps on the shape group (Anny's phenotypes, SMPL's betas)
    # toward the given 3D joints after the swing solve (where the model has one), the network's shape
    # as the start and prior (bodies/shape_solve.py), then the swing solve again, kept per sample where
    # it fits the joints better; 0 = off. Not in training: through the solve the 3D loss stalled (0.13
    # against 0.025 after 200 steps). None: 1 step in MoCap mode with the default head (validation set,
    # seed 101: MPJPE 14.8 → 13.2 mm, MPVPE 35.7 → 34.1, shape-only 22.8 → 19.3; BENCHMARKS.md), else
    # 0. Faces solve their facial expression with the shape (bodies/shape_solve.solve_groups), 3 steps
    # at λ 1e-4 (face tuning set, seed 401, 200 samples: surface error 1.23 mm without the expression,
    # 1.07 with it at 1 step and 6e-4, 0.88 at 3 steps and 1e-4; 5 steps: 0.88). shape_damping: λ (m²),
    # the weight of the network's shape against the joints (noise² / error²); None: per part
    shape_solve: int | None = None
    shape_damping: float | None = None
    # at annotation, the global rotation and translation refitted to the given joints, the network's
    # articulation and shape kept, per sample where the joint error drops (annotators/root_solve.py);
    # 0 = off. Wild: Levenberg-Marquardt steps toward the 2D joints (None: ROOT_SOLVE_STEPS). MoCap:
    # a rigid (Kabsch) fit to all the 3D joints (None: on for hands, whose swing solve turns the root
    # toward the wrist and knuckles only: tuning seed 302, 4.07 → 3.85 mm; bodies keep theirs)
    root_solve: int | None = None
    # MoCap, a stage after annotation: every rotation, the shape and the translation refitted together
    # to the given 3D joints (annotators/joint_refit.py), Adam steps from the record, kept per sample
    # where the joint error drops; 0 = off. None: JOINT_REFIT_STEPS for bodies and hands in MoCap mode,
    # FACE_REFIT_STEPS for faces in MoCap mode (their facial expression refitted too), else 0
    joint_refit: int | None = None
    # swing head: how far each bone swings toward its given joint (1 = onto it); below 1 the targets
    # are shrunk toward the network's own keypoints, for noisy joints. None: HAND_SWING_WEIGHT for
    # hands, SWING_WEIGHT otherwise
    swing_weight: float | None = None
    embedding: str | None = None  # default per part: anny-body-vae / anny-hand-pca
    virtual_focal: float = 5000.0  # px on a 256 crop (scaled with input_size), as Hand4Whole
    # wild mode's projection: "virtual" (virtual_focal at the crop centre, as Hand4Whole: nearly
    # orthographic) or "intrinsics" (each sample's own camera through its crop, as CLIFF: the real
    # perspective; samples without intrinsics fall back to the virtual camera)
    camera: Literal["virtual", "intrinsics"] = "virtual"
    # wild mode, virtual camera: the pseudo-GT's camera. "sample" (default but for faces): the sample's
    # intrinsics where it has them, the prediction moved onto the real ray through its keypoints' centroid (as
    # CLIFF) and its root rotation and translation refitted to the 2D joints there (``root_solve``
    # steps; the crop camera is nearly orthographic, the real one is not). "crop": the virtual crop
    # camera mapped back to the image (the paper's release; the overlay is what the network fitted).
    # Validation (root solve on): bodies (seed 201, 200 samples) MPVPE 246.2 → 241.6 mm, reprojection
    # 4.8 → 5.8 px; hands (seed 301) 28.4 → 25.2 mm, 5.6 → 4.9 px (BENCHMARKS.md). The hybrid refines
    # in the sample's camera either way (FitOptions.init_camera). None: "crop" for faces (their hybrid
    # kept the root-solved start in 135 of 200 samples: face set seed 402, surface 3.53 → 3.99 mm; the
    # annotator's own surface error is the same in both cameras), "sample" otherwise.
    output_camera: Literal["sample", "crop"] | None = None
    # --part wholebody: where the integrated head's rotation comes from. "face": the face annotator's
    # (its 68 landmarks), the body's head solved to match it where the face is valid; "body": the body
    # annotator's (the paper's integration, which takes only the jaw and expression from the face).
    # Whole-body tuning set (seed 501, 100 samples): face MPVPE 25.8 → 9.4 mm, whole mesh 214.4 → 212.3
    wholebody_head: Literal["face", "body"] = "face"
    # wild mode, inputs with joints: how the GT 2D joints reach the network. "heatmaps" (the paper's
    # Table 2: Gaussian maps, stacked with the image or through a small CNN) or "coordinates" (the
    # crop-normalised 2D positions through an MLP, as a 2D → 3D lifting network: cheap on CPUs).
    # None: coordinates for hands, heatmaps otherwise (see :func:`default_inputs`)
    joint_input: Literal["heatmaps", "coordinates"] | None = None
    heatmap_size: int = 64
    heatmap_sigma: float = 2.0
    # optimisation (paper: Adam 1e-4, batch 192, lr ÷10 when the loss plateaus)
    batch_size: int = 192
    lr: float = 1e-4
    epochs: int = 10
    # bodies' epochs per mode where set (None: epochs); an epochs override (from_yaml, --epochs) drops them
    body_mocap_epochs: int | None = None
    body_wild_epochs: int | None = None
    min_steps: int = 0  # small sets: train for more epochs until at least this many steps
    plateau_patience: int = 2  # in plateau periods
    plateau_factor: float = 0.1
    plateau_period: int = 200  # steps per plateau check (at the next epoch end); small sets have tiny epochs
    min_lr_ratio: float = 0.01  # lr never drops below lr * min_lr_ratio (two ÷10 steps)
    weight_decay: float = 0.0
    # dropout on the image features the head reads, in training only (0 = off, the paper): frozen
    # features identify each sample, and the head can learn the samples one by one
    feature_dropout: float = 0.0
    seed: int = 0
    num_workers: int = 0  # DataLoader workers (persistent across epochs); they also build the crop cache
    # decoded crops cached once as a uint8 memory map (data/crop_cache.py), reused by later runs and
    # by predict: "auto" (<--work-dir>/crops), "off" (decode per item, in-memory cache), or a folder
    crop_cache: str = "auto"
    amp: bool = False
    checkpoint_every: int = 200  # steps
    log_every: int = 20
    # loss weights: data terms and L2 regularisers per parameter group (Eq. 1–2)
    w_joints3d: float = 1.0
    w_joints2d: float = 1.0
    # silhouette term (data/silhouette.py) where samples have person masks: what joints cannot show
    # (hand, foot and head orientation, girth); 0 = off (the paper's annotator). None: MOCAP_SILHOUETTE
    # for bodies in MoCap mode with the default head, else 0 (wild mode: worse; BENCHMARKS.md)
    w_silhouette: float | None = None
    # > 1: the silhouette term stresses the hands, feet and head (their vertices and the outline points
    # near them weigh this much; data/silhouette.EndPartWeights); 1 = every point alike
    silhouette_end_weight: float = 1.0
    # the wrist stage after annotation (annotators/wrist_refine.py: only the wrists refined to the person
    # masks, which no body joint set constrains); None: on wherever the annotator reads the masks
    # (``silhouette_weight`` > 0: MoCap bodies with the default head). Test seed 777: 31.2 → 27.8 mm
    wrist_stage: bool | None = None
    # the face-size stage after annotation (annotators/face_refine.py: phenotypes and the rigid head
    # refitted to the 2D landmarks, which carry the size the network misses); None: Anny faces, wild mode.
    # Face tuning set (seed 402, 200): surface error 4.20 → 3.53 mm (2D SMPLify-X 3.62)
    face_stage: bool | None = None
    # two-stage / SPIN: weight of the L1 on the target pseudo-GT's rotation matrices and shape (if given);
    # None: per mode and part (config_defaults.PARAMS_WEIGHT: 4 for wild bodies, else 1)
    w_params: float | None = None
    # body_pose 0.1 + twist 0.3: joints cannot observe limb twist nor end-bone rotations (feet, head,
    # wrists); on 400 synthetic MoCap samples (1,500 steps) MPVPE 67.3 mm at body_pose 1e-3 → 54.0
    # at 0.1 → 51.7 with twist 0.3 (MPJPE unchanged, 27-29 mm). See BENCHMARKS.md.
    reg: dict[str, float] = field(
        default_factory=lambda: {
            "body_pose": 0.1,
            "twist": 0.3,
            "hand_pose": 1e-3,
            "latent": 1e-3,
            # MoCap (rotation outputs): the body VAE's score of the regressed pose (neural.py); on the
            # validation set (seed 101, 400) MPVPE 42.2 → 35.4 mm, MPJPE 16.9 → 14.4 (BENCHMARKS.md)
            "pose_prior": 1e-3,
            "phenotype": 0.1,  # 1e-2 → 0.1: swing head, MoCap test set MPVPE 46.6 → 42.5 mm (BENCHMARKS.md)
            "shape": 1e-2,
            # Anny's facial actions: 1e-3 → 0.1 on two face tuning sets (seeds 5, 6; 48 each) PA-MPVPE
            # 4.70 → 3.80 and 5.20 → 4.50 mm, action error 0.23 → 0.08 (BENCHMARKS.md)
            "expression": 0.1,
            "expr": 1e-3,
            "jaw_pose": 1e-3,
            # faces: landmarks do not see how the head's turn splits between neck and head. 1e-3 → 0.1:
            # MoCap face tuning set (seed 401, 200) surface 0.82 → 0.53 mm, MPVPE 36.8 → 14.3; wild
            # (seed 402) MPVPE 138 → 30, PA surface 1.70 → 1.16, surface 4.13 → 4.30 (its scale)
            "head_pose": 0.1,
        }
    )

    def __post_init__(self) -> None:
        check_choice(self, "mode")  # before the defaults that depend on it
        check_aux(self)
        if self.inputs is None:
            self.inputs = default_inputs(self.mode, self.part, aux=self.aux_spec is not None)
        if self.joint_input is None:  # wild hands and 2D-joint-only networks: coordinates
            lifter = self.mode == "wild" and (self.part in HAND_PARTS or self.inputs == "joints")
            self.joint_input = "coordinates" if lifter else "heatmaps"
        if self.outputs is None:
            self.outputs = default_outputs(self.mode, self.part)
        if self.output_camera is None:
            self.output_camera = "crop" if self.part == "face" else "sample"
        if self.root_hypotheses is None:
            self.root_hypotheses = ROOT_HYPOTHESES.get(self.part, 1)
        check_values(self)

    @property
    def aux_spec(self) -> str | None:
        """The auxiliary set this config trains with (None: none): ``aux_data``, or where unset the
        part's default (:func:`default_aux_data`)."""
        if self.aux_data is None:
            return default_aux_data(self.mode, self.part)
        return None if self.aux_data == "none" else self.aux_data

    @property
    def aux_weight_resolved(self) -> float:
        """The auxiliary set's loss weight: ``aux_weight``, or where unset the part's default."""
        return default_aux_weight(self.part) if self.aux_weight is None else self.aux_weight

    @property
    def w_params_resolved(self) -> float:
        """The two-stage targets' weight: ``w_params``, or where unset the mode's and part's default."""
        return default_params_weight(self.mode, self.part) if self.w_params is None else self.w_params

    @property
    def swing_head(self) -> bool:
        """The analytic swing solve is wanted: MoCap mode with ``head`` swing or unset (an unset head
        falls back to the paper head where the solver cannot pose the model, e.g. Anny's head: one
        head rotation, the rest is expression; see ``NeuralAnnotator``)."""
        return self.mode == "mocap" and self.head in (None, "swing")

    @property
    def shape_steps(self) -> int:
        """Shape-solve steps at annotation: ``shape_solve``, or where unset 1 in MoCap mode with the
        default head (swing, or the paper head where the model has no swing solver: Anny's head)."""
        if self.shape_solve is None:
            return (FACE_SOLVE_STEPS if self.part == "face" else 1) if self.swing_head else 0
        return self.shape_solve

    @property
    def swing_weight_resolved(self) -> float:
        """The swing solve's weight: ``swing_weight``, or where unset :data:`HAND_SWING_WEIGHT` for
        hands and :data:`SWING_WEIGHT` otherwise (1: the exact solve)."""
        if self.swing_weight is None:
            return HAND_SWING_WEIGHT if self.part in HAND_PARTS else SWING_WEIGHT
        return float(self.swing_weight)

    @property
    def epochs_resolved(self) -> int:
        """Epochs to train before the min_steps floor: body_<mode>_epochs for bodies where set, or epochs."""
        body = getattr(self, BODY_EPOCHS[self.mode]) if self.part == "body" else None
        return self.epochs if body is None else body

    @property
    def shape_lambda(self) -> float:
        """The shape solve's damping: ``shape_damping``, or where unset 1e-4 for faces, 6e-4 otherwise."""
        if self.shape_damping is None:
            return FACE_SOLVE_DAMPING if self.part == "face" else SHAPE_SOLVE_DAMPING
        return self.shape_damping

    @property
    def root_steps(self) -> int:
        """Root-solve steps at annotation: ``root_solve``, or where unset :data:`ROOT_SOLVE_STEPS` in
        wild mode, 1 for hands in MoCap mode, else 0."""
        if self.root_solve is None:
            if self.mode == "wild":
                return ROOT_SOLVE_STEPS
            return 1 if self.part in HAND_PARTS else 0
        return self.root_solve

    @property
    def joint_refit_steps(self) -> int:
        """Joint-refit steps after annotation: ``joint_refit``, or where unset (MoCap mode only)
        :data:`JOINT_REFIT_STEPS` for bodies and hands, :data:`FACE_REFIT_STEPS` for faces, else 0."""
        if self.joint_refit is None:
            if self.mode != "mocap":
                return 0
            if self.part == "face":
                return FACE_REFIT_STEPS
            return JOINT_REFIT_STEPS if self.part in ("body", *HAND_PARTS) else 0
        return self.joint_refit

    @property
    def silhouette_weight(self) -> float:
        """The silhouette term's weight: ``w_silhouette``, or where unset :data:`MOCAP_SILHOUETTE` for
        bodies in MoCap mode with the default head (validation, seed 101: MPVPE 34.1 → 30.3 mm), else 0
        (wild validation, seed 201: 244.9 → 294.4 mm, more facings flipped)."""
        if self.w_silhouette is None:
            return MOCAP_SILHOUETTE if (self.swing_head and self.part == "body") else 0.0
        return self.w_silhouette

    @property
    def refines_wrists(self) -> bool:
        """Whether annotation ends with the wrist stage: ``wrist_stage``, or where unset wherever the
        annotator reads the person masks (``silhouette_weight`` > 0, bodies)."""
        if self.wrist_stage is None:
            return self.part == "body" and self.silhouette_weight > 0
        return self.wrist_stage

    @property
    def refines_face(self) -> bool:
        """Whether annotation ends with the face-size stage: ``face_stage``, or where unset Anny faces in
        wild mode (it moves Anny's phenotypes; FLAME's shape coefficients are not measured)."""
        if self.face_stage is None:
            return self.part == "face" and self.mode == "wild" and self.body_model == "anny"
        return self.face_stage

    @property
    def uses_image(self) -> bool:
        return "image" in self.inputs

    @property
    def uses_joints(self) -> bool:
        return "joints" in self.inputs

    @property
    def wild_heatmaps(self) -> bool:
        """Wild mode reads the 2D joints as heatmaps (``joint_input``)."""
        return self.mode == "wild" and self.uses_joints and self.joint_input == "heatmaps"

    @property
    def end_crop_options(self) -> dict | None:
        """The end-part crop settings as :class:`~neuralannot.models.end_crops.EndCropBranch` takes them
        (None: the branch is off)."""
        if not self.end_crops:
            return None
        keys = ("size", "extent", "dim", "rotate", "spatial")
        return {"input_size": self.input_size, **{k: getattr(self, f"end_crop_{k}") for k in keys}}

    @property
    def crop_frame(self) -> bool:
        """Whether the network's rotations live in the crop's virtual camera frame (wild, virtual)."""
        return self.mode == "wild" and self.camera == "virtual"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """Short stable hash of what determines the result (names checkpoints, tags outputs).

        Settings that do not change the trained weights (workers, checkpoint/log cadence) are left out,
        so a run can be resumed with different ones.
        """
        d = {k: v for k, v in self.to_dict().items() if k not in RESULT_NEUTRAL}
        for key in ("aux_data", "aux_weight"):  # the set (and its weight) name the run through its own
            d.pop(key)  # tag (AuxMocap.run_tag)
        # the targets' weight acts only with targets: it names such a run through its folder
        # (state.run_dir); every digest keeps the value all runs had before the key's default moved
        d["w_params"] = 1.0
        d["w_silhouette"] = self.silhouette_weight  # the resolved weight: a changed default retrains
        d["epochs"] = self.epochs_resolved  # what trains: the same run however the file spells it
        for key in BODY_EPOCHS.values():
            d.pop(key)
        if self.backbone_lr is None or self.freeze_backbone:  # the one learning rate as before
            d.pop("backbone_lr")
        # likewise, where a swing solve runs (wild mode has none: its weight changes nothing)
        d["swing_weight"] = self.swing_weight_resolved if self.swing_head else None
        if self.mode == "mocap" and self.part in HAND_PARTS and self.reg.get("twist"):
            d["finger_twist"] = True  # reg.twist reaches the fingers since: older hand runs retrain
        if self.silhouette_end_weight == 1.0:  # the term as before: older runs still resume
            d.pop("silhouette_end_weight")
        if not self.feature_dropout:  # off, as before the key: older runs still resume
            d.pop("feature_dropout")
        if not self.end_crops:  # its settings change nothing while the branch is off
            for k in [k for k in d if k.startswith("end_crop")]:
                d.pop(k)
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, d: dict) -> AnnotatorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config key(s) {sorted(unknown, key=str)}; known: {sorted(known)}")
        return cls(**_merge_nested(cls, d))

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> AnnotatorConfig:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError, RecursionError) as err:
            raise ValueError(f"cannot read config {path}: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"config {path} must be a mapping, got {type(data).__name__}")
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if "epochs" in overrides:  # an epochs override is the number every part and mode trains
            for key in BODY_EPOCHS.values():
                data.pop(key, None)
        data.update(overrides)
        return cls.from_dict(data)
