"""Hybrid annotator (beyond the paper): neural pseudo-GTs refined by a short batched SMPLify-X.

The network's output is a good, consistent start that per-sample optimisation lacks; a short
optimisation from it fixes what the network gets slightly wrong on each sample. Per sample the
refinement is **kept only where it lowers the data term** (same robust 2D/3D term, same camera) **and
does not break the prior**: the pose prior (``|z|²`` of the embedding, or ``|θ|²``) may grow to at
most ``(1 + prior_tolerance) · prior₀ + prior_slack``. Otherwise the neural pseudo-GT stays.
Bodies and hands from 2D (:data:`SCRATCH_START`) also fit SMPLify-X from its own start and keep, per sample,
whichever of the two fits the joints better: the network's output is one more start of SMPLify-X.

Every record gets ``quality["hybrid"]`` (refined or not, why, the terms) and its confidence;
outliers of the whole set (robust z-score of the normalised joint error, :func:`flag_outliers`)
get ``"outlier"`` in ``quality.flags``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from neuralannot.annotators.optimize import FitOptions, fit_dataset, fit_digest, model_stamp
from neuralannot.annotators.optimize_problem import HYBRID_SILHOUETTE
from neuralannot.bodies.parts import MODEL_PART
from neuralannot.io.pseudo_gt import PseudoGT
from neuralannot.io.records import same_camera

log = logging.getLogger(__name__)

__all__ = ["HybridOptions", "flag_outliers", "refine_records"]

#: The last three SMPLify-X stages (the fine ones): the start is already close. On 200 synthetic
#: MoCap samples from a 66.8 mm MPVPE network: these × 30 iterations → 46.6 mm (30 s); the last two
#: × 15 → 56.9 mm (10 s); all five × 30 → 40.7 mm (47 s; 3D SMPLify-X from scratch: 41.2 mm).
REFINE_SCHEDULE = {"pose": [57.4, 4.78, 4.78], "shape": [10.0, 5.0, 5.0]}


#: Default refinement iterations per stage and part. Hands: from a wild hand annotator (hand PCA;
#: tuning set seed 301, 200 samples, 2D) MPVPE 33.9 mm → 33.6 with 20, 30.9 with 100 (BENCHMARKS.md).
HYBRID_ITERATIONS = {"body": 20, "hand": 100, "face": 100}


#: How far the refinement may raise the pose prior: ``(1 + tolerance) · prior₀ + slack``. From 2D
#: joints the start's crop camera is replaced by the real one, so the pose must move more: on the wild
#: validation set (seed 201, 200 samples, from a 244.9 mm annotator) MPVPE 214.8 mm with 1 (79 samples
#: kept neural), 198.0 with 4 (14 kept), 201.1 with no limit (2D SMPLify-X: 196.5; BENCHMARKS.md).
PRIOR_TOLERANCE = {"3d": 1.0, "2d": 4.0}


#: :attr:`HybridOptions.scratch` where unset, per (part, joints). Hands from 2D: the wild hand
#: annotator turns 7.5 % of hands palm for back, and a refinement from there stays in the wrong basin
#: for some (tuning set seed 301, 200: MPVPE 17.6 mm refined, 16.2 SMPLify-X alone, 14.9 with both
#: starts). Bodies from 2D (validation seed 201, 200): 177.7 refined, 201.6 alone, 158.1 with both
#: (facing > 90° 2.5 % → 0.5 %). Faces from 2D (tuning seed 402, with the face stage after): surface
#: 3.323 → 3.320 mm, not worth a second fit. Not measured from 3D. BENCHMARKS.md, sixteenth session.
SCRATCH_START = {("hand", "2d"): True, ("body", "2d"): True}
SCRATCH_REASON = "SMPLify-X's own start fitted better"


@dataclass
class HybridOptions:
    """``iterations`` per stage of :data:`REFINE_SCHEDULE` (``None``: per part,
    :data:`HYBRID_ITERATIONS`); acceptance and outlier thresholds."""

    iterations: int | None = None
    schedule: dict = field(default_factory=lambda: dict(REFINE_SCHEDULE))
    #: ``None``: per joints kind (:data:`PRIOR_TOLERANCE`)
    prior_tolerance: float | None = None
    prior_slack: float = 1.0
    outlier_z: float = 3.5
    optimizer: str = "lbfgs"
    #: 3D refinement's pose prior (``FitOptions.prior_3d``): "l2" (the paper's ``|θ|²``) or "vae" (the
    #: body VAE, the annotator's ``reg.pose_prior``; Anny bodies only, others fall back to "l2"). From
    #: a 32.1 mm annotator (validation seed 101): l2 → 31.8 mm MPVPE, vae → 32.5
    prior_3d: str = "l2"
    #: 2D refinement's camera (``FitOptions.init_camera``): "sample" (the sample's intrinsics, the start
    #: moved onto them) or "record" (the neural pseudo-GT's crop camera)
    init_camera: str = "sample"
    #: 3D refinement's silhouette weight (``FitOptions.w_silhouette``) where the samples have person
    #: masks (bodies); ``None``: :data:`HYBRID_SILHOUETTE` from 3D joints, 0 from 2D (the 2D fit has no
    #: mask term). Refining without the masks undoes what a masked annotator read from them: on the
    #: validation set (seed 101, 400) from a 30.3 mm annotator MPVPE 30.9 mm without, 29.5 with
    w_silhouette: float | None = None
    #: hold the start's shape (``FitOptions.keep_shape``) and restart the turned start from the
    #: neutral articulation (``FitOptions.neutral_turn``; ``None``: per part)
    keep_shape: bool = False
    neutral_turn: bool | None = None
    #: also fit SMPLify-X from its own start and keep, per sample, whichever fits the joints better
    #: (the network's output as one more start of SMPLify-X); ``None``: :data:`SCRATCH_START`
    scratch: bool | None = None


def normalised_error(record: PseudoGT) -> float | None:
    """Joint error in units of the confidence scale (``-log confidence``), None when unmeasured."""
    q = record.quality
    if "joint_err_mm" not in q and "joint_err_px" not in q:
        return None
    c = q.get("confidence")
    return None if c is None or c <= 0 else -math.log(c)


def flag_outliers(records: Sequence[PseudoGT], z: float = 3.5) -> int:
    """Flag ``"outlier"`` where the normalised error's robust z-score (median / 1.4826 MAD) > ``z``;
    returns how many were flagged (in place)."""
    errs = [(r, e) for r in records if (e := normalised_error(r)) is not None]
    if len(errs) < 5:
        return 0
    values = np.array([e for _, e in errs])
    med = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - med)))
    flagged = 0
    for r, e in errs:
        if mad > 0 and (e - med) / mad > z:
            flags = r.quality.setdefault("flags", [])
            if "outlier" not in flags:
                flags.append("outlier")
            flagged += 1
    return flagged


def _decide(init: PseudoGT, refined: PseudoGT, opt: HybridOptions) -> tuple[PseudoGT, dict]:
    t = refined.quality.get("refine", {})
    d0, d1, p0, p1 = (t.get(k) for k in ("data0", "data", "prior0", "prior"))
    diverged = "diverged" in refined.quality.get("flags", [])
    if diverged or None in (d0, d1, p0, p1):
        why = "diverged" if diverged else "non-finite terms"
    elif d1 >= d0:
        why = "data term not lowered"
    elif p1 > (1.0 + opt.prior_tolerance) * p0 + opt.prior_slack:
        why = "pose prior broken"
    else:
        why = None
    info = {"refined": why is None, "reason": why or "lower data term", **t}
    chosen = refined if why is None else init
    quality = {k: v for k, v in chosen.quality.items() if k != "refine"}
    if "flags" in quality:  # own list: outlier flags must not leak into the input records
        quality["flags"] = list(quality["flags"])
    return replace(chosen, quality={**quality, "method": "hybrid", "hybrid": info}), info


def _better_fit(chosen: PseudoGT, scratch: PseudoGT) -> PseudoGT:
    """``scratch`` (SMPLify-X from its own start) where its mean joint error is below ``chosen``'s (the
    hybrid's pick so far), as a hybrid record; else ``chosen``. 2D errors are compared only in the same
    camera (a record kept neural in its crop camera is not compared)."""
    key = "joint_err_mm" if "joint_err_mm" in chosen.quality else "joint_err_px"
    e0, e1 = chosen.quality.get(key), scratch.quality.get(key)
    if e0 is None or e1 is None or not e1 < e0 or "diverged" in scratch.quality.get("flags", []):
        return chosen
    if key == "joint_err_px" and not same_camera(chosen.camera, scratch.camera):
        return chosen
    info = {"refined": False, "reason": SCRATCH_REASON, f"{key}_start": e0}
    return replace(scratch, quality={**scratch.quality, "method": "hybrid", "hybrid": info})


def _has_vae(body_model, samples: Sequence) -> bool:
    """Whether the refinement can use the shipped body VAE: Anny bodies only."""
    name = body_model if isinstance(body_model, str) else getattr(body_model, "name", None)
    return name == "anny" and all(getattr(s, "part", "body") == "body" for s in samples)


def refine_records(
    samples: Sequence,
    init: Sequence[PseudoGT],
    method: str,
    body_model="anny",
    batch_size: int = 64,
    device: str = "cpu",
    options: HybridOptions | None = None,
    progress: bool = False,
    scratch_records: Sequence[PseudoGT] | None = None,
    parts_dir: str | Path | None = None,
) -> tuple[list[PseudoGT], dict]:
    """Refine the neural pseudo-GTs ``init`` (one per sample, same order) with SMPLify-X from GT
    ``method`` joints (``3d`` or ``2d``); returns the hybrid records and a summary.
    ``scratch_records``: SMPLify-X's own fits of the same samples (default options), reused where the
    scratch start is on instead of fitted again. ``parts_dir``: resume folder; the refinement's and
    the scratch fit's finished batches are kept in sub-folders named by :func:`fit_digest` (inputs,
    options, start records, body model), so a rerun fits only the unfinished batches."""
    opt = options or HybridOptions()
    by_id = {r.sample_id: r for r in init}
    missing = [s.id for s in samples if s.id not in by_id]
    if missing:
        raise ValueError(f"hybrid: {len(missing)} samples have no initial pseudo-GT, e.g. {missing[:3]}")
    start = [by_id[s.id] for s in samples]
    t0 = time.perf_counter()
    prior = opt.prior_3d if method == "3d" and _has_vae(body_model, samples) else "l2"
    from_3d = method in ("3d", "mocap")
    if opt.prior_tolerance is None:
        opt = replace(opt, prior_tolerance=PRIOR_TOLERANCE["3d" if from_3d else "2d"])
    if opt.w_silhouette is None:
        opt = replace(opt, w_silhouette=HYBRID_SILHOUETTE if from_3d else 0.0)
    part = MODEL_PART.get(samples[0].part, "body") if samples else "body"
    if opt.iterations is None:
        opt = replace(opt, iterations=HYBRID_ITERATIONS.get(part, HYBRID_ITERATIONS["body"]))
    fit_opt = FitOptions(
        optimizer=opt.optimizer, iterations=opt.iterations, schedule=opt.schedule, prior_3d=prior,
        init_camera=opt.init_camera, w_silhouette=opt.w_silhouette, keep_shape=opt.keep_shape,
        neutral_turn=opt.neutral_turn,
    )

    def resume(kind: str, options: FitOptions, start_records=None) -> Path | None:
        if parts_dir is None:
            return None
        key = fit_digest(samples, method, options, start_records, body_model=model_stamp(body_model),
                         batch_size=batch_size)  # fmt: skip
        return Path(parts_dir) / f"{kind}-{key}"

    refined, fit_summary = fit_dataset(samples, method, body_model, None, batch_size, device, options=fit_opt,
                                       progress=progress, init=start,
                                       parts_dir=resume("refine", fit_opt, start))  # fmt: skip
    out = [_decide(a, b, opt)[0] for a, b in zip(start, refined, strict=True)]
    scratch_on = opt.scratch
    if scratch_on is None:
        scratch_on = SCRATCH_START.get((part, "3d" if from_3d else "2d"), False)
    if scratch_on:
        if scratch_records is None:
            fit_opt = FitOptions(optimizer=opt.optimizer, prior_3d=prior, w_silhouette=opt.w_silhouette)
            scratch_records, _ = fit_dataset(samples, method, body_model, None, batch_size, device,
                                             options=fit_opt, progress=progress,
                                             parts_dir=resume("scratch", fit_opt))  # fmt: skip
        scratch = {r.sample_id: r for r in scratch_records}
        out = [_better_fit(a, scratch[a.sample_id]) if a.sample_id in scratch else a for a in out]
    reasons = dict(Counter(r.quality["hybrid"]["reason"] for r in out))
    outliers = flag_outliers(out, opt.outlier_z)
    wall = time.perf_counter() - t0
    n_ref = sum(r.quality["hybrid"]["refined"] for r in out)
    n_scratch = reasons.get(SCRATCH_REASON, 0)
    summary = {
        "method": f"hybrid-{fit_summary['method']}", "samples": len(out), "refined": n_ref,
        "scratch": bool(scratch_on), "from_scratch": n_scratch, "kept_neural": len(out) - n_ref - n_scratch,
        "reasons": reasons, "outliers": outliers, "wall_s": wall,
        "samples_per_s": len(out) / max(wall, 1e-9), "iterations": opt.iterations,
        "prior_tolerance": opt.prior_tolerance, "w_silhouette": opt.w_silhouette,
    }  # fmt: skip
    log.info("hybrid: refined %d / %d samples, %d outliers, %.1f s", n_ref, len(out), outliers, wall)
    return out, summary
