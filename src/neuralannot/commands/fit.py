"""`neuralannot fit`: the per-sample baselines and the annotators built on the one-stage network.

- ``smplifyx`` (GT 2D joints) / ``smplifyx3d`` (GT 3D joints): SMPLify-X, batched; finished batches are
  saved under ``<--work-dir>/fits/<method>-<digest>/`` (``optimize.fit_digest``: the samples, options
  and arguments), so an interrupted fit run again resumes.
- ``eft``: the trained annotator fine-tuned on each sample's own joints (``--checkpoint``, else one
  is trained on the set first).
- ``hybrid``: the neural pseudo-GT (``--init``, else train + annotate first) refined by a short
  SMPLify-X, kept per sample only where it lowers the data term without breaking the prior; from 2D
  joints (bodies, hands) SMPLify-X also runs from its own start and the better fit is kept.
- ``two-stage`` / ``spin``: a second network trained on the one-stage pseudo-GTs (Table 7) / SPIN-style;
  ``--init`` may be any pseudo-GT file, e.g. the hybrid's (a network distilled from it).
- ``wrists``: any body pseudo-GT (``--init``: the annotator's, the hybrid's, SMPLify-X's; else the
  annotator is trained first) with only its wrists refined to the person masks
  (``annotators/wrist_refine.py``); ``--iterations`` sets the Adam steps.
- ``joints``: any pseudo-GT from 3D joints (``--init``; else the annotator is trained first) with every
  rotation, its shape (a face's expression too) and translation refitted to the 3D joints
  (``annotators/joint_refit.py``, the stage that ends MoCap annotation, run once); ``--iterations``
  sets the Adam steps (default: the config's, as ``annotate``).
- ``face-size``: any face pseudo-GT (``--init``: the annotator's, SMPLify-X's, the hybrid's; else the
  annotator is trained first) with its phenotypes and rigid head refitted to the 2D landmarks
  (``annotators/face_refine.py``, the stage that ends wild Anny face annotation, run once), so every
  row of a faces-from-2D comparison can end with it, as ``bench/parts.py`` does; ``--iterations`` sets
  the Adam steps.

All write the same pseudo-GT format as ``annotate``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.console import Console

from neuralannot.commands.annotate import (
    BODY,
    CONFIG,
    FORCE,
    JOINT_MAP,
    OUTSIDE,
    THREADS,
    USER_ERRORS,
    WORK,
    _config,
    _print_skips,
    check_device,
    check_outputs,
    fail,
    guard_output,
    set_threads,
)

console = Console()
METHOD_NAMES = {"smplifyx": "2d", "smplifyx3d": "3d", "smplifyx3d-vae": "3d"}
#: SMPLify-X variants' options: 3D with axis-angle poses scored by the body VAE (the prior the
#: neural annotator's ``reg.pose_prior`` uses), for a like-for-like baseline
METHOD_OPTIONS = {"smplifyx3d-vae": {"prior_3d": "vae"}}
NEURAL_METHODS = ("eft", "hybrid", "two-stage", "spin", "wrists", "joints", "face-size")


def _joints(samples, joints: str) -> str:
    """``2d`` or ``3d``: ``auto`` is 3D when every sample has valid GT 3D joints."""
    if joints != "auto":
        return joints
    return "3d" if all(s.joints_3d is not None and s.valid_3d.any() for s in samples) else "2d"


def _stage1(samples, cfg, work_dir: Path, init: Path | None, device: str):
    """One-stage pseudo-GTs in sample order: read from ``init`` or trained + annotated now."""
    from neuralannot.annotators.two_stage import train_and_annotate
    from neuralannot.data.fingerprint import other_samples
    from neuralannot.io.pseudo_gt import read_pseudo_gt

    if init is None:
        records, info = train_and_annotate(cfg, samples, work_dir, device=device)
        return records, info["run_dir"]
    by_id, meta = read_pseudo_gt(init, as_dict=True)
    missing = [s.id for s in samples if s.id not in by_id]
    if missing:
        raise ValueError(f"{init}: no pseudo-GT for {len(missing)} samples, e.g. {missing[:3]}")
    records = [by_id[s.id] for s in samples]
    # the output's sidecar fingerprints these samples: a start made from others would pass as theirs
    # (all of the file's ids: a file of a larger set cannot be compared, as in `eval`)
    other = other_samples(meta, list(by_id), samples)
    if other:
        raise ValueError(f"--init {init}: {other}; pass a pseudo-GT of these samples")
    return records, None


def _checkpoint_config(checkpoint: Path):
    """The config of a `train` checkpoint (read without running code); ValueError if unusable."""
    from neuralannot.commands.annotate import saved_config

    cfg = saved_config(checkpoint)
    if cfg is None:
        raise ValueError(f"checkpoint {checkpoint}: no config stored (not written by `train`)")
    return cfg


def _neural_method(method, samples, cfg, work_dir, init, checkpoint, iterations, device, silhouette=None,
                   scratch=None):  # fmt: skip
    from neuralannot.annotators.hybrid import HybridOptions, refine_records
    from neuralannot.annotators.two_stage import run_spin_loop, run_two_stage

    if method == "eft":
        from neuralannot.annotators.eft import EFT_ITERATIONS, eft_records
        from neuralannot.annotators.pipeline import build_annotator
        from neuralannot.annotators.training import load_trained

        if checkpoint is None:
            _, run_dir = _stage1(samples, cfg, work_dir, None, device)
            checkpoint = Path(run_dir) / "checkpoint.pt"
        else:
            cfg = _checkpoint_config(checkpoint)
        model = load_trained(build_annotator(cfg, samples[0].joint_set), checkpoint)
        return eft_records(model, samples, iterations or EFT_ITERATIONS, device=device)
    if method == "joints" and cfg.mode != "mocap":  # before any training
        raise ValueError("--method joints refits to the 3D joints: the samples have none (or --joints 2d)")
    # --method joints / face-size is the stage itself: the one-stage records it starts from end without it
    stage_off = {"joints": {"joint_refit": 0}, "face-size": {"face_stage": False}}.get(method, {})
    stage1_cfg = dataclasses.replace(cfg, **stage_off)
    stage1, _ = _stage1(samples, stage1_cfg, work_dir, init, device)
    if method == "hybrid":
        joints = "3d" if cfg.mode == "mocap" else "2d"
        opt = HybridOptions(iterations=iterations or HybridOptions.iterations, w_silhouette=silhouette,
                            scratch=scratch)  # fmt: skip
        return refine_records(samples, stage1, joints, cfg.body_model, device=device, options=opt,
                              progress=True, parts_dir=Path(work_dir) / "fits")  # fmt: skip
    if method == "wrists":
        from neuralannot.annotators.wrist_refine import WristRefineOptions, refine_wrists

        opt = WristRefineOptions(steps=iterations or WristRefineOptions.steps)
        return refine_wrists(samples, stage1, cfg.body_model, opt, progress=True, device=device)
    if method == "joints":
        from neuralannot.annotators.config import JOINT_REFIT_STEPS
        from neuralannot.annotators.joint_refit import JointRefitOptions, refine_joints_3d

        opt = JointRefitOptions(steps=iterations or cfg.joint_refit_steps or JOINT_REFIT_STEPS)
        return refine_joints_3d(samples, stage1, cfg.body_model, opt, progress=True, device=device)
    if method == "face-size":
        from neuralannot.annotators.face_refine import FaceRefineOptions, refine_face_size

        opt = FaceRefineOptions(steps=iterations or FaceRefineOptions.steps)
        return refine_face_size(samples, stage1, cfg.body_model, opt, progress=True, device=device)
    if method == "two-stage":
        return run_two_stage(cfg, samples, stage1, work_dir, device)
    return run_spin_loop(cfg, samples, stage1, work_dir, fit_iterations=iterations or 15, device=device)


def fit_cmd(
    data: Path = typer.Option(..., "--data", help="Dataset: folder format, shard folder or official layout."),
    out: Path = typer.Option(..., "--out", help="Pseudo-GT file to write (.json or .npz)."),
    method: str = typer.Option(
        "smplifyx",
        "--method",
        help="smplifyx | smplifyx3d | smplifyx3d-vae | eft | hybrid | two-stage | spin | wrists | joints | "
        "face-size.",
    ),
    part: str = typer.Option("body", "--part", help="body | hand | face."),
    body_model: str = BODY,
    joints: str = typer.Option("auto", "--joints", help="eft/hybrid/two-stage/spin: 2d | 3d | auto."),
    init: Path | None = typer.Option(
        None, "--init", help="hybrid/two-stage/spin: one-stage pseudo-GT file; wrists, joints, face-size: "
        "the pseudo-GT the stage refines."
    ),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="eft: trained annotator checkpoint."),
    config: Path | None = CONFIG,
    work_dir: Path = WORK,
    min_steps: int | None = typer.Option(
        None, "--min-steps", help="Training steps when a network is trained."
    ),
    iterations: int | None = typer.Option(
        None, help="Per stage (SMPLify-X, hybrid, spin) or EFT iterations."
    ),
    optimizer: str | None = typer.Option(None, help="SMPLify-X: lbfgs | lbfgs-torch | adam."),
    silhouette: float | None = typer.Option(
        None,
        "--silhouette",
        help="3D SMPLify-X and the 3D hybrid: weight of the person-mask term where samples have masks "
        "(default: 0 for SMPLify-X, the paper's; HYBRID_SILHOUETTE = 10 for the hybrid).",
    ),
    scratch: bool | None = typer.Option(
        None,
        "--scratch/--no-scratch",
        help="hybrid: also fit SMPLify-X from its own start and keep, per sample, the fit with the lower "
        "joint error (default: on for bodies and hands from 2D joints).",
    ),
    batch_size: int = typer.Option(64, "--batch-size", help="Samples optimised together."),
    threads: int = THREADS,
    device: str = typer.Option("cpu"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad samples instead of failing."),
    joint_map: Path | None = JOINT_MAP,
    force: bool = FORCE,
    allow_outside_root: bool = OUTSIDE,
) -> None:
    """Fit or refine every sample and write the same pseudo-GT format as `annotate`."""
    from neuralannot.annotators.optimize import FitOptions, fit_dataset, fit_digest, model_stamp
    from neuralannot.commands.annotate import _samples
    from neuralannot.data.fingerprint import FINGERPRINT_KEY, samples_fingerprint
    from neuralannot.data.loading import load_samples
    from neuralannot.io.pseudo_gt import write_pseudo_gt

    if method not in (*METHOD_NAMES, *NEURAL_METHODS):
        fail(f"--method must be one of {[*METHOD_NAMES, *NEURAL_METHODS]}, got {method!r}")
    if joints not in ("auto", "2d", "3d"):
        fail(f"--joints must be auto | 2d | 3d, got {joints!r}")
    set_threads(threads)
    takes_masks = METHOD_NAMES.get(method, method) in ("3d", "hybrid")
    if silhouette is not None and (silhouette < 0 or (silhouette and not takes_masks)):
        fail(f"--silhouette must be >= 0 and needs 3D SMPLify-X or the hybrid: {silhouette} with {method}")
    if method == "face-size" and part != "face":
        fail(f"--method face-size refits faces to their 2D landmarks: use --part face, not {part}")
    if scratch is not None and method != "hybrid":
        fail(f"--scratch/--no-scratch belongs to the hybrid, not {method}")
    check_device(device)
    check_outputs(dirs={"--work-dir": work_dir}, pseudo_gt=out, batch_size=batch_size)
    guard_output(out, data, init, checkpoint, config, joint_map, force=force)
    try:
        if method == "eft" and checkpoint is not None:
            _checkpoint_config(checkpoint)  # a bad checkpoint fails before any data is loaded
        if method in METHOD_NAMES:
            samples, report = load_samples(data, part, skip_bad, needs_3d=METHOD_NAMES[method] == "3d",
                                           joint_map=joint_map,
                                           allow_outside_root=allow_outside_root)  # fmt: skip
            options = FitOptions(**METHOD_OPTIONS.get(method, {}), w_silhouette=silhouette or 0.0)
            key = fit_digest(samples, METHOD_NAMES[method], options, body_model=model_stamp(body_model),
                             part=part, batch_size=batch_size, iterations=iterations,
                             optimizer=optimizer)  # fmt: skip
            records, summary = fit_dataset(samples, METHOD_NAMES[method], body_model, part, batch_size,
                                           device, iterations, optimizer, options=options, progress=True,
                                           parts_dir=work_dir / "fits" / f"{method}-{key}")  # fmt: skip
        else:
            probe, _ = load_samples(data, part, skip_bad, joint_map=joint_map,
                                    allow_outside_root=allow_outside_root)  # fmt: skip
            mode = "mocap" if _joints(probe, joints) == "3d" else "wild"
            if silhouette and mode != "mocap":  # before any training
                raise ValueError("--silhouette: the hybrid's mask term needs 3D joints (the 2D fit has none)")
            cfg = _config(config, mode, part, body_model, min_steps=min_steps)
            samples, report = _samples(data, cfg, skip_bad, joint_map, allow_outside_root)
            records, summary = _neural_method(method, samples, cfg, work_dir, init, checkpoint, iterations,
                                              device, silhouette, scratch)  # fmt: skip
        summary = {k: v for k, v in summary.items() if k not in ("train", "annotate")}
        fingerprint = samples_fingerprint(samples, {r.sample_id for r in records})
        write_pseudo_gt(out, records, {"method": method, "data": str(data), "summary": summary,
                                       FINGERPRINT_KEY: fingerprint})  # fmt: skip
    except USER_ERRORS as err:
        fail(err)
    console.print(
        f"{method}: {len(records)} samples in {summary.get('wall_s', float('nan')):.1f} s "
        f"({summary.get('samples_per_s', float('nan')):.2f} samples/s) → {out}"
    )
    if method == "hybrid":
        console.print(f"refined {summary['refined']} / {len(records)}, SMPLify-X's own fit kept for "
                      f"{summary['from_scratch']} ({summary['reasons']}); "
                      f"outliers flagged: {summary['outliers']}")  # fmt: skip
    _print_skips(report.as_dict())
