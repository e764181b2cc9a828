"""Head-to-head comparison of every annotator on the SAME samples (paper Tables 4–7), shared by
``bench/compare.py`` and ``neuralannot demo``.

Direct evaluation (:func:`compare_direct`): NeuralAnnot (train + annotate on the set), the SMPLify-X
baseline of the setting (``from3d``: 3D variant; ``from2d``: 2D), EFT from the trained network,
the hybrid (neural → short SMPLify-X), the two-stage annotator and a SPIN-style loop, all scored
against the GT meshes with :func:`~neuralannot.evaluation.evaluate`. Where the annotator's config ends
with the wrist stage (``refines_wrists``), every row that reads the person masks ends with it too
(``wrists_refined`` counts the records it changed); likewise every row of faces from 2D with the
face-size stage (``refines_face``, ``faces_refined``) and every row from 3D joints (MoCap bodies,
hands and faces) with the joint refit (``joint_refit_steps``, ``joints_refined``).

Indirect evaluation (:func:`compare_indirect`, Tables 6–7): the same regressor, supervised ONLY by
the annotator's pseudo-GT parameters (no GT joints, no masks), is trained on each annotator's
pseudo-GTs and tested on a held-out set with GT meshes (PA-MPJPE, PA-MPVPE, MPVPE). ``image``: the
paper's kind, image → rotations + shape; ``joints``: the MoCap network (image + the sample's 3D
joints), whose held-out error is far lower. A ``gt`` row (the same regressor on the GT parameters) is
the bound every label set is read against: where it is not the best row, the table measures the
regressor, not the labels (at CPU scale neither regressor ranks the labels: BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.stages import STAGE_KEYS
from neuralannot.data.fingerprint import FINGERPRINT_KEY, samples_fingerprint
from neuralannot.evaluation import HAND_AUC, PART_MPVPE, SURFACE, ModelCache, evaluate
from neuralannot.io import atomic_write_json
from neuralannot.io.pseudo_gt import write_pseudo_gt

log = logging.getLogger(__name__)

SETTINGS = {"from3d": ("mocap", "3d", "smplifyx3d"), "from2d": ("wild", "2d", "smplifyx")}
METHODS = (
    "neuralannot", "baseline", "baseline_vae", "baseline_vae_sil", "eft", "hybrid", "two_stage", "spin"
)
#: Beyond the paper, on request: the second stage trained on the hybrid's pseudo-GTs (needs "hybrid");
#: from 2D, the annotator trained jointly with an auxiliary 3D set and the hybrid from it (need ``aux``)
EXTRA_METHODS = ("two_stage_hybrid", "neuralannot_aux", "hybrid_aux")
AUX_METHODS = ("neuralannot_aux", "hybrid_aux")
METRIC_KEYS = ("mpjpe_mm", "pa_mpjpe_mm", "mpvpe_mm", "pa_mpvpe_mm", "reproj_px", "mpvpe_pose_only_mm",
               "mpvpe_shape_only_mm", "shape_mae", "shape_mae_per_dim", "shape_mae_constant_guess",
               "root_err_deg", "root_err_median_deg", "root_flip_pct")
#: The SMPLify-X rows of a comparison table (``"baseline"``: a table keyed by role); the strongest
#: (lowest MPVPE) is what a verdict and ``mpvpe_ratio_to_best_baseline`` compare with.
BASELINE_ROWS = ("smplifyx3d", "smplifyx3d_vae", "smplifyx3d_vae_sil", "smplifyx", "baseline")
#: Reported only where ``evaluate`` measures them: hand AUCs, whole-body per-part MPVPE, face surface.
OPTIONAL_KEYS = HAND_AUC + PART_MPVPE + SURFACE


def _score(name: str, records, samples, cache, out_dir: Path | None, speed: dict) -> dict:
    by_id = {r.sample_id: r for r in records}
    _, m = evaluate(by_id, samples, cache, decompose=True)
    row = {k: m.get(k) for k in METRIC_KEYS} | {k: m[k] for k in OPTIONAL_KEYS if k in m}
    row |= {"n": m["n"], **speed}
    for key, stage in zip(("wrists_refined", "faces_refined", "joints_refined"), STAGE_KEYS, strict=True):
        row[key] = sum(stage in r.quality for r in records)
    if out_dir is not None:
        fingerprint = samples_fingerprint(samples, set(by_id))
        write_pseudo_gt(out_dir / f"{name}.npz", records, {"method": name, "summary": row,
                                                          FINGERPRINT_KEY: fingerprint})  # fmt: skip
    log.info("%s: MPVPE %s mm, %s samples/s", name, row["mpvpe_mm"], row.get("samples_per_s"))
    return row


def _stages(cfg: AnnotatorConfig, records, summary: dict, samples, work: Path, progress: bool,
            masked: bool = True):  # fmt: skip
    """``records`` after the stages that end the annotator's config, so every row gets what the
    annotator's own records got (like for like): the wrist stage (``refines_wrists``) on rows that
    read the masks (``masked``), the face-size stage (``refines_face``) and the joint refit
    (``joint_refit_steps``) on every row.
    ``summary["wall_s"]`` and ``samples_per_s`` include them."""
    from neuralannot.annotators.finish import config_stages
    from neuralannot.annotators.stages import run_stage, stage_key

    for stage, opt in config_stages(cfg, masked):
        records, s = run_stage(stage, opt, samples, records, work, cfg.body_model, progress)
        wall = summary["wall_s"] + s["wall_s"]
        summary = {**summary, "wall_s": wall, "samples_per_s": len(records) / max(wall, 1e-9),
                   stage_key(s): s}  # fmt: skip
    return records, summary


def _annotation_speed(annotate: dict, n: int) -> float:
    """Samples/s of a network's annotation, the stages that end it included."""
    stages = sum(annotate.get(k, {}).get("wall_s", 0.0) for k in STAGE_KEYS)
    wall = annotate["wall_s"] + stages
    return n / max(wall, 1e-9)


def compare_direct(
    setting: str,
    samples,
    cfg: AnnotatorConfig,
    work_dir: str | Path,
    methods=METHODS,
    fit_iterations: int | None = None,
    hybrid_iterations: int | None = None,
    eft_iterations: int = 20,
    eft_lr: float = 1e-4,
    spin_rounds: int = 1,
    progress: bool = True,
    aux=None,
    aux_cfg: AnnotatorConfig | None = None,
) -> tuple[dict, dict]:
    """Run ``methods`` of ``setting`` on ``samples``; returns (metrics per method, records per method).

    Speeds: ``samples_per_s`` is annotation after training for the networks (the paper's
    comparison), fitting for SMPLify-X, the method's own step for EFT/hybrid; ``pipeline_s`` is the
    whole wall time including training (and the stages it builds on).

    ``aux`` (:class:`~neuralannot.annotators.aux_mocap.AuxMocap`, from 2D): a 3D set the rows
    ``neuralannot_aux`` (the annotator trained jointly with it) and ``hybrid_aux`` (the hybrid from
    that annotator) train on; it is not scored. ``aux_cfg``: those rows' annotator config (e.g. a
    network that reads only the 2D joints), where not ``cfg``.
    """
    from neuralannot.annotators.aux_mocap import config_aux
    from neuralannot.annotators.eft import eft_records
    from neuralannot.annotators.hybrid import HYBRID_ITERATIONS, HybridOptions, refine_records
    from neuralannot.annotators.optimize import FitOptions, fit_dataset, fit_digest, model_stamp
    from neuralannot.annotators.optimize_problem import FIT_SILHOUETTE
    from neuralannot.annotators.pipeline import build_annotator
    from neuralannot.annotators.training import load_trained
    from neuralannot.annotators.two_stage import run_spin_loop, run_two_stage, train_and_annotate

    mode, joints, baseline = SETTINGS[setting]
    unknown = [m for m in methods if m not in (*METHODS, *EXTRA_METHODS)]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {[*METHODS, *EXTRA_METHODS]}")
    if "two_stage_hybrid" in methods and "hybrid" not in methods:
        raise ValueError("two_stage_hybrid trains on the hybrid's pseudo-GTs: add 'hybrid' to methods")
    if any(m in methods for m in AUX_METHODS) and (aux is None or mode != "wild"):
        raise ValueError(f"{list(AUX_METHODS)}: from 2D joints with an auxiliary 3D set (aux) only")
    cfg = replace(cfg, mode=mode)
    work = Path(work_dir)
    out_dir = work / "pseudo_gt"
    cache, table, recs, store = ModelCache(), {}, {}, {}
    t0 = time.perf_counter()
    own_aux = config_aux(cfg, samples)  # the config's own set, loaded once for every network of cfg
    neural, info = train_and_annotate(cfg, samples, work / "runs", progress=progress, feature_store=store,
                                      aux=own_aux)  # fmt: skip
    neural_s = time.perf_counter() - t0
    recs["neuralannot"] = neural
    speed = {"samples_per_s": _annotation_speed(info["annotate"], len(neural)),
             "train_s": info["train"]["wall_s"], "pipeline_s": neural_s, "aux": info["aux"]}  # fmt: skip
    table["neuralannot"] = _score("neuralannot", neural, samples, cache, out_dir, speed)
    fits_wanted = [(baseline, FitOptions())] if "baseline" in methods else []
    if "baseline_vae" in methods and joints == "3d":  # the same VAE prior as reg.pose_prior
        fits_wanted.append(("smplifyx3d_vae", FitOptions(prior_3d="vae")))
    if "baseline_vae_sil" in methods and joints == "3d":  # + the person masks the annotator also sees
        sil = FitOptions(prior_3d="vae", w_silhouette=FIT_SILHOUETTE)
        fits_wanted.append(("smplifyx3d_vae_sil", sil))
    own_fits = {}  # before any stage, with their wall time: the hybrid's scratch start reuses them
    for name, options in fits_wanted:
        key = fit_digest(samples, joints, options, iterations=fit_iterations,
                         body_model=model_stamp(cfg.body_model))  # fmt: skip
        fits, s = fit_dataset(samples, joints, cfg.body_model, iterations=fit_iterations, progress=progress,
                              options=options, parts_dir=work / "fits" / f"{name}-{key}")  # fmt: skip
        own_fits[name] = fits, s["wall_s"]
        fits, s = _stages(cfg, fits, s, samples, work, progress, masked=bool(options.w_silhouette))
        recs[name] = fits
        speed = {"samples_per_s": s["samples_per_s"], "pipeline_s": s["wall_s"]}
        table[name] = _score(name, fits, samples, cache, out_dir, speed)
    if "eft" in methods:
        model = build_annotator(cfg, samples[0].joint_set)
        model._aux["feature_store"] = store
        model = load_trained(model, Path(info["run_dir"]) / "checkpoint.pt")
        e, s = eft_records(model, samples, eft_iterations, eft_lr, progress=progress)
        e, s = _stages(cfg, e, s, samples, work, progress)
        recs["eft"] = e
        speed = {"samples_per_s": s["samples_per_s"], "pipeline_s": neural_s + s["wall_s"]}
        table["eft"] = _score("eft", e, samples, cache, out_dir, speed)
    def hybrid(name: str, start, start_s: float) -> None:
        opt = HybridOptions(iterations=hybrid_iterations)
        reusable = joints == "2d" and fit_iterations is None  # the scratch start's options
        own, own_s = own_fits.get(baseline, (None, 0.0)) if reusable else (None, 0.0)
        h, s = refine_records(samples, start, joints, cfg.body_model, options=opt, progress=progress,
                              scratch_records=own, parts_dir=work / "hybrid")  # fmt: skip
        h, s = _stages(cfg, h, s, samples, work, progress)
        recs[name] = h
        reused = own_s if s["scratch"] and own is not None else 0.0  # the reused fit counts in its time
        speed = {"samples_per_s": s["samples_per_s"], "pipeline_s": start_s + s["wall_s"] + reused,
                 "refined": s["refined"], "from_scratch": s["from_scratch"],
                 "outliers": s["outliers"]}  # fmt: skip
        table[name] = _score(name, h, samples, cache, out_dir, speed)

    if "hybrid" in methods:
        hybrid("hybrid", neural, neural_s)
    if any(m in methods for m in AUX_METHODS):
        t1 = time.perf_counter()
        cfg_aux = cfg if aux_cfg is None else replace(aux_cfg, mode=mode)
        neural_aux, info = train_and_annotate(cfg_aux, samples, work / "runs", progress=progress,
                                              feature_store=store, aux=aux)  # fmt: skip
        aux_s = time.perf_counter() - t1
        recs["neuralannot_aux"] = neural_aux
        speed = {"samples_per_s": _annotation_speed(info["annotate"], len(neural_aux)),
                 "train_s": info["train"]["wall_s"], "pipeline_s": aux_s, "aux": info["aux"]}  # fmt: skip
        table["neuralannot_aux"] = _score("neuralannot_aux", neural_aux, samples, cache, out_dir, speed)
        if "hybrid_aux" in methods:
            hybrid("hybrid_aux", neural_aux, aux_s)
    if "two_stage" in methods:
        t, s = run_two_stage(cfg, samples, neural, work / "runs", progress=progress, feature_store=store,
                             aux=own_aux)  # fmt: skip
        recs["two_stage"] = t
        speed = {"samples_per_s": _annotation_speed(s["annotate"], len(t)),
                 "pipeline_s": neural_s + s["wall_s"]}  # fmt: skip
        table["two_stage"] = _score("two_stage", t, samples, cache, out_dir, speed)
    if "two_stage_hybrid" in methods:  # a network distilled from the hybrid's pseudo-GTs
        t, s = run_two_stage(cfg, samples, recs["hybrid"], work / "runs", progress=progress,
                             feature_store=store, aux=own_aux)  # fmt: skip
        recs["two_stage_hybrid"] = t
        speed = {"samples_per_s": _annotation_speed(s["annotate"], len(t)),
                 "pipeline_s": table["hybrid"]["pipeline_s"] + s["wall_s"]}  # fmt: skip
        table["two_stage_hybrid"] = _score("two_stage_hybrid", t, samples, cache, out_dir, speed)
    if "spin" in methods and spin_rounds > 0:
        p, s = run_spin_loop(cfg, samples, neural, work / "runs", spin_rounds,
                             hybrid_iterations or HYBRID_ITERATIONS["body"],
                             progress=progress, feature_store=store, aux=own_aux)  # fmt: skip
        recs["spin"] = p
        table["spin"] = _score("spin", p, samples, cache, out_dir, {"pipeline_s": neural_s + s["wall_s"]})
    base = table.get(baseline, {}).get("mpvpe_mm")
    best = best_baseline(table)
    best_mm = table[best]["mpvpe_mm"] if best else None
    for row in table.values():
        mm = row.get("mpvpe_mm")
        row["mpvpe_ratio_to_baseline"] = mm / base if base and mm else None
        row["mpvpe_ratio_to_best_baseline"] = mm / best_mm if best_mm and mm else None
        row["best_baseline"] = best
    atomic_write_json(work / "direct.json", table)
    return table, recs


def best_baseline(table: dict) -> str | None:
    """The strongest SMPLify-X row of ``table`` (:data:`BASELINE_ROWS`, lowest MPVPE), None if none."""
    rows = [k for k in BASELINE_ROWS if (table.get(k) or {}).get("mpvpe_mm") is not None]
    return min(rows, key=lambda k: table[k]["mpvpe_mm"]) if rows else None


#: the indirect evaluation's regressors: ``image`` (the paper's) or ``joints`` (image + 3D joints)
REGRESSORS = ("image", "joints")


def regressor_config(
    cfg: AnnotatorConfig, min_steps: int | None = None, inputs: str = "image"
) -> AnnotatorConfig:
    """The regressor of the indirect evaluation, supervised only by pseudo-GT parameters (GT joints and
    masks weighted 0, no learned pose prior: only the labels differ). ``inputs``: ``image`` (wild
    network: image → rotations + shape) or ``joints`` (the MoCap network: image + 3D joints, its own
    head and solves; no stages). Neither trains with an auxiliary set. The image regressor trains
    ``epochs``, not the wild annotator's ``body_wild_epochs``: its budget is its own (``min_steps``)."""
    if inputs not in REGRESSORS:
        raise ValueError(f"indirect regressor: {inputs!r} is not one of {', '.join(REGRESSORS)}")
    mode = {"image": dict(mode="wild", inputs="image"), "joints": dict(mode="mocap", inputs=None)}[inputs]
    return replace(cfg, **mode, outputs="rotations", aux_data="none", w_joints2d=0.0, w_joints3d=0.0,
                   w_silhouette=0.0, w_params=1.0, wrist_stage=False, joint_refit=0, face_stage=False,
                   body_wild_epochs=None, min_steps=cfg.min_steps if min_steps is None else min_steps,
                   reg={**cfg.reg, "pose_prior": 0.0})  # fmt: skip


def compare_indirect(
    records: dict,
    train_samples,
    test_samples,
    cfg: AnnotatorConfig,
    work_dir: str | Path,
    min_steps: int | None = None,
    progress: bool = True,
    regressor: str = "image",
    gt_reference: bool = False,
) -> dict:
    """Train the same regressor (:func:`regressor_config` ``inputs``) on each annotator's pseudo-GTs of
    ``train_samples``, test it on ``test_samples`` (GT meshes); ``gt_reference`` adds a ``gt`` row, the
    regressor trained on the GT parameters. Returns ``{method: {pa_mpjpe_mm, pa_mpvpe_mm, mpvpe_mm, n,
    train_s}}``."""
    from neuralannot.annotators import state
    from neuralannot.annotators.pipeline import build_annotator
    from neuralannot.annotators.predict import predict
    from neuralannot.annotators.training import train
    from neuralannot.annotators.two_stage import pseudo_gt_targets
    from neuralannot.io.pseudo_gt import read_pseudo_gt
    from neuralannot.io.records import gt_record

    rcfg = regressor_config(cfg, min_steps, regressor)
    if regressor == "joints":  # before any training
        no3d = [s.id for s in (*train_samples, *test_samples) if s.joints_3d is None]
        if no3d:
            raise ValueError(f"indirect regressor 'joints': {len(no3d)} samples lack 3D joints: {no3d[:3]}")
    if gt_reference:
        records = {**records, "gt": [gt_record(s) for s in train_samples]}
    cache, out, store = ModelCache(), {}, {}
    for name, recs in records.items():
        model = build_annotator(rcfg, train_samples[0].joint_set)
        model._aux["feature_store"] = store
        targets = pseudo_gt_targets(recs, train_samples, model.body, rcfg.crop_frame)
        run_dir = state.run_dir(work_dir, rcfg, train_samples, f"regressor-{name}-", targets)
        fit = train(model, train_samples, run_dir, progress=progress, targets=targets)
        pred_path = run_dir / "test_predictions.npz"
        predict(model, test_samples, pred_path, run_dir / "test", progress=progress)
        preds, _ = read_pseudo_gt(pred_path, as_dict=True)
        _, m = evaluate(preds, test_samples, cache)
        out[name] = {"pa_mpjpe_mm": m["pa_mpjpe_mm"], "pa_mpvpe_mm": m["pa_mpvpe_mm"],
                     "mpvpe_mm": m["mpvpe_mm"], "n": m["n"], "train_s": fit["wall_s"]}  # fmt: skip
        log.info("indirect %s: PA-MPVPE %.1f mm", name, m["pa_mpvpe_mm"] or float("nan"))
    atomic_write_json(Path(work_dir) / "indirect.json", out)
    return out
