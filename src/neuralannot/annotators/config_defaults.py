"""Tuned defaults of the annotator config (what an unset field resolves to), each with the measurement
that chose it; :mod:`neuralannot.annotators.config` re-exports them."""

#: Default wild-mode root hypotheses per part (``AnnotatorConfig.root_hypotheses``). Bodies: 4 facings.
#: Hands: palm or back (2); on a hand tuning set (seed 301, 200 samples, 1,500 steps) MPVPE 34.6 mm with
#: 1, 32.2 with 2, 55.6 with 4 (quarter turns about the finger axis fit the 2D joints badly and
#: trap the min-of-H loss; BENCHMARKS.md). Faces: 1.
ROOT_HYPOTHESES = {"body": 4, "wholebody": 4, "hand": 2, "lhand": 2, "rhand": 2}
#: Silhouette weight where ``w_silhouette`` is unset: bodies in MoCap mode (see ``silhouette_weight``);
#: validation (seed 101, 400 samples) MPVPE 34.1 mm without, 32.3 at 1, 30.3 at 4, 29.8 at 8 (MPJPE
#: 13.2, 12.9, 12.9, 13.3; 112² grid, 96 outline points; 29.0 / 12.2 at 4 with the current 224² / 384)
MOCAP_SILHOUETTE = 4.0


#: MoCap hands' swing weight where ``swing_weight`` is unset: finger bones are 2–4 cm, so a few mm of
#: joint noise turn them by several degrees; swinging half-way to the joints and letting the network
#: carry the rest is better. Hand tuning set (seed 302, 200, 2 mm noise) MPVPE 3.85 mm at 1 → 3.68 at
#: 0.75, 3.66 at 0.5, 3.64 at 0.3, 3.65 at 0.1 (BENCHMARKS.md)
HAND_SWING_WEIGHT = 0.5
#: MoCap joint-refit steps (bodies and hands) where ``joint_refit`` is unset (annotators/joint_refit.py).
#: Hand tuning set (seed 301, 200, 2 mm noise, with ``reg.twist`` on the fingers): MPVPE 3.57 mm without
#: → 3.23 at 100, 3.24 at 200, 3.30 at 400, 3.37 at 1,000 steps (more steps fit the joints' noise).
#: Body validation set (seed 103, 400, after the wrist stage): 26.07 → 24.38 at 100, 24.29 at 200,
#: 24.79 at 400 (MPJPE 11.9 → 9.6); 3D SMPLify-X's records gain alike (29.92 → 27.55 at 100)
JOINT_REFIT_STEPS = 100
#: Faces' (MoCap: 3D landmarks, whose refit also moves the facial expression). Face tuning set (seed 401,
#: 200): surface error 0.520 mm without → 0.466 at 100, 0.439 at 300, 0.400 at 1,000, 0.376 at 3,000
#: steps (~0.5 s per face on one CPU thread at 1,000); 3D SMPLify-X's records 0.839 → 0.440 at 1,000
FACE_REFIT_STEPS = 1000
#: Every other part's (bodies): validation seed 101 (400, 3,000 steps) MPVPE 29.01 mm at 1 → 28.57 at
#: 0.75, MPJPE 12.22 → 12.12; seed 102 28.35 → 27.89, MPJPE 12.06 → 11.32; seed 103 29.84 → 29.30;
#: the 2,000-sample test set (seed 777) 31.95 → 31.18, MPJPE 12.79 → 13.00 (BENCHMARKS.md)
SWING_WEIGHT = 0.75
#: Root-solve steps at annotation in wild mode where ``root_solve`` is unset (see the BENCHMARKS.md
#: wild tables)
ROOT_SOLVE_STEPS = 10


#: Shape-solve damping (m² per squared unit of shape; 5 mm noise over a 0.2 phenotype error) and the
#: faces' (shape + facial expression, tuned on a face set: see ``shape_solve``) with their step count.
SHAPE_SOLVE_DAMPING = 6e-4
FACE_SOLVE_DAMPING = 1e-4
FACE_SOLVE_STEPS = 3


#: Sample parts whose wild-mode default output is the pose embedding (hand PCA, as the paper).
HAND_PARTS = ("hand", "lhand", "rhand")
EMBEDDING_DEFAULT_PARTS = HAND_PARTS


#: Wild-mode parts trained jointly with the embedded synthetic 3D set where ``aux_data`` is unset
#: (``annotate --aux-data synthetic``, annotators/aux_mocap.py): what the 2D joints leave open (depth,
#: facing, palm or back) it teaches from 3D. Hands (tuning seed 301, 200): MPVPE 27.44 → 15.38 mm; test
#: seed 300: 31.86 → 20.26. Bodies (with the 2D-joint network, below): validation seed 201 (200) 227.70
#: (the image network) → 206.89, seed 202 (2,000) 219.09 → 190.44; test seed 778 223.74 → 191.11.
#: Faces: no gain (tuning seed 402: 3.53 against 3.54 mm with the image network; the landmark-only
#: network with the set 3.76 at weight 1, 4.08 at 4), left off. BENCHMARKS.md
AUX_DEFAULT_PARTS = ("body", *HAND_PARTS)


#: The auxiliary set's loss weight per part where ``aux_weight`` is unset (else 1). Hands: the palm/back
#: turns the 2D joints leave open are the 3D set's to teach; hand tuning set (seed 301, 200, the embedded
#: set, 3,000 steps), training seeds 0 / 1 / 2: MPVPE 19.91 / 16.05 / 19.49 mm at weight 1 (turned > 90°:
#: 3.0 / 1.0 / 3.0 %) → 17.19 / 15.98 / 17.84 at 4 (0.5 / 0.5 / 1.5 %); 17.15 at 8 (seed 0). Test seed 300,
#: three training seeds: 20.73 → 19.31 mean (`bench/parts.py`, 1,500 steps: 20.26 → 20.34, its hybrid
#: 17.63 → 16.94). Bodies (the lifter, validation seed 201): 206.89 at 1, 207.51 at 4: left at 1.
#: BENCHMARKS.md
AUX_WEIGHT = {part: 4.0 for part in HAND_PARTS}


def default_aux_weight(part: str) -> float:
    """The ``aux_weight`` a config gets when none is given (:data:`AUX_WEIGHT`, else 1)."""
    return AUX_WEIGHT.get(part, 1.0)


#: The two-stage network's weight on its targets' parameters (``w_params``) per (mode, part) where unset
#: (else 1). Wild bodies: on the body validation set (seed 201, 200, 3,000 steps) the network trained on
#: the hybrid's records (163.05 mm) scores 171.29 at 1, 160.33 at 4 (below the records it learns from),
#: 164.21 at 16; a second round (the hybrid from it, a network on that) 156.50. MoCap, hands, faces:
#: not measured (BENCHMARKS.md, thirty-second session).
PARAMS_WEIGHT = {("wild", "body"): 4.0}


def default_params_weight(mode: str, part: str) -> float:
    """The ``w_params`` a config gets when none is given (:data:`PARAMS_WEIGHT`, else 1)."""
    return PARAMS_WEIGHT.get((mode, part), 1.0)

def embedded_aux(spec) -> bool:
    """Whether the ``aux_data`` spec names the embedded synthetic set (``synthetic`` / ``synthetic:N``)."""
    return str(spec) == "synthetic" or str(spec).startswith("synthetic:")


def default_aux_data(mode: str, part: str) -> str | None:
    """The ``aux_data`` a config gets when none is given: the embedded synthetic 3D set for wild-mode
    bodies and hands (:data:`AUX_DEFAULT_PARTS`), else none."""
    return "synthetic" if mode == "wild" and part in AUX_DEFAULT_PARTS else None


def default_inputs(mode: str, part: str, aux: bool = False) -> str:
    """The ``inputs`` a config gets when none is given: image + GT 3D joints in MoCap mode (the paper).

    Wild mode: hands read the image and their 2D joints as coordinates (``joint_input``): on a hand
    tuning set (seed 301, 200 samples, 1,500 steps) MPVPE 32.2 → 28.6 mm, root error 19.6° → 15.7°
    (heatmaps: 28.9, 15× slower to train on CPUs). Bodies trained with an auxiliary 3D set (``aux``)
    read only their 2D joints' coordinates, a 2D → 3D lifter that the set teaches depth and facing:
    validation seed 201 (200) 220.96 mm with the image against 206.89, seed 202 (2,000; a hand-made
    set of the same kind) 190.44 against the image network's 219.09 without the set. Without one the
    image alone (the paper): the coordinates did not help there (seed 201: 254.6 against 244.9 mm).
    Faces: the image alone. BENCHMARKS.md"""
    if mode == "mocap":
        return "image+joints"
    if part in HAND_PARTS:
        return "image+joints"
    return "joints" if part == "body" and aux else "image"


def default_outputs(mode: str, part: str) -> str:
    """The ``outputs`` a config gets when none is given.

    MoCap: rotations (the paper). Wild: the hand-PCA embedding for hands (the paper), but rotations
    (6D, scored by the body VAE's pose prior) for bodies and faces. The paper regresses the body's
    VPoser latent in wild mode; here rotations beat the embedding in every seed of the 3-seed ablation
    (MPVPE 254 vs 312 mm) and on the wild validation set (seed 201, 200 samples: 242 vs 287 mm,
    facing flipped in 5.5 % vs 14.5 % of samples; BENCHMARKS.md). ``outputs: embedding`` restores it.
    """
    if mode == "mocap":
        return "rotations"
    return "embedding" if part in EMBEDDING_DEFAULT_PARTS else "rotations"
