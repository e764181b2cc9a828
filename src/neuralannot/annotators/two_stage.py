"""Two-stage NeuralAnnot (paper Table 7) and a SPIN-style loop, both on top of the one-stage annotator.

- :func:`run_two_stage`: a second network of the same architecture is trained on the same set with
  the first stage's pseudo-GTs as full supervision (L1 on rotation matrices and shape,
  ``cfg.w_params_resolved``) **plus** the usual weak loss on the GT joints, then annotates the set.
- :func:`run_spin_loop`: SPIN's (Kolotouros et al. 2019) loop per round: the network's predictions
  initialise SMPLify-X; per sample the fit replaces the stored pseudo-GT only when its data term is
  lower; the next network is trained on the stored pseudo-GTs; its predictions are the output.

Both return :class:`~neuralannot.io.pseudo_gt.PseudoGT` records in sample order and a summary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import roma
import torch

from neuralannot.annotators import state
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.finish import annotation_stages
from neuralannot.data.crop_cache import crop_centre
from neuralannot.geometry import ray_rotation
from neuralannot.io.pseudo_gt import PseudoGT, read_pseudo_gt
from neuralannot.io.records import in_sample_camera, mirror_to_left

log = logging.getLogger(__name__)

__all__ = ["pseudo_gt_targets", "run_two_stage", "run_spin_loop", "train_and_annotate"]


def pseudo_gt_targets(
    records: Sequence[PseudoGT], samples: Sequence, body, crop_frame: bool = False
) -> dict[str, torch.Tensor]:
    """Training targets ``{name: (N, ...)}`` from pseudo-GTs in sample order: rotations as matrices,
    left hands mirrored to the right-hand crops the network sees; translation left out.

    ``crop_frame`` (a wild network with the virtual crop camera): a record in the sample's own camera
    (e.g. SMPLify-X's) has its root turned into the crop's frame, whose optical axis is the real ray
    through the crop centre (:func:`~neuralannot.geometry.ray_rotation`); records in a crop camera
    already are."""
    by_id = {r.sample_id: r for r in records}
    rows = []
    for s in samples:
        r = by_id.get(s.id)
        if r is None:
            raise ValueError(f"two-stage: sample {s.id!r} has no first-stage pseudo-GT")
        p = {k: np.asarray(v, np.float32) for k, v in r.params.items() if k in body.param_specs}
        p = mirror_to_left(p, body) if s.part == "lhand" else p
        if crop_frame and "root_pose" in p and in_sample_camera(r, s):
            K = torch.as_tensor(np.asarray(s.K, np.float64))
            R = ray_rotation(K, torch.from_numpy(crop_centre(s))).float()
            root = roma.rotvec_to_rotmat(torch.from_numpy(p["root_pose"]))
            p = {**p, "root_pose": roma.rotmat_to_rotvec(R.T @ root).numpy()}
        rows.append(p)
    out = {}
    for name, spec in body.param_specs.items():
        if name == "trans" or name not in rows[0]:
            continue
        v = torch.from_numpy(np.stack([p[name] for p in rows]))
        out[name] = roma.rotvec_to_rotmat(v.reshape(len(rows), -1, 3)).reshape(*v.shape[:-1], 3, 3) if (
            spec.kind == "rotation") else v  # fmt: skip
    return out


def train_and_annotate(
    cfg: AnnotatorConfig,
    samples: Sequence,
    work_dir: str | Path,
    targets_from: Sequence[PseudoGT] | None = None,
    device: str = "cpu",
    progress: bool = True,
    tag: str = "",
    feature_store: dict | None = None,
    aux=None,
) -> tuple[list[PseudoGT], dict]:
    """Train a network of ``cfg`` on ``samples`` (with pseudo-GT targets when given) and annotate
    them, ending with the stages of ``cfg`` (:func:`~neuralannot.annotators.finish.annotation_stages`);
    the run lives in ``work_dir/<tag><config digest>-<data digest>`` (resumable). Runs given the same
    ``feature_store`` dict compute frozen-backbone features once. ``aux``: an
    :class:`~neuralannot.annotators.aux_mocap.AuxMocap` set trained jointly (wild mode); None: the
    config's own (``cfg.aux_spec``, by default the embedded set for wild bodies and hands)."""
    from neuralannot.annotators.aux_mocap import config_aux
    from neuralannot.annotators.neural import build_annotator
    from neuralannot.annotators.predict import predict
    from neuralannot.annotators.training import train

    model = build_annotator(cfg, samples[0].joint_set)
    if feature_store is not None:
        model._aux["feature_store"] = feature_store
    targets = None
    if targets_from is not None:
        targets = pseudo_gt_targets(targets_from, samples, model.body, cfg.crop_frame)
    if aux is None:
        aux = config_aux(cfg, samples)
    if aux is not None:
        tag += aux.run_tag(cfg.uses_image)
    run_dir = state.run_dir(work_dir, cfg, samples, tag, targets)
    fit = train(model, samples, run_dir, device=device, progress=progress, targets=targets, aux=aux)
    out = run_dir / "pseudo_gt.npz"
    ann = predict(model, samples, out, run_dir, batch_size=max(cfg.batch_size, 64), device=device,
                  progress=progress, meta={"stage": tag.rstrip("-") or "one-stage"})  # fmt: skip
    ann.update(annotation_stages(cfg, samples, out, run_dir, device, progress))
    records, _ = read_pseudo_gt(out)
    order = {s.id: i for i, s in enumerate(samples)}
    records.sort(key=lambda r: order[r.sample_id])
    used = None if aux is None else aux.summary()
    return records, {"train": fit, "annotate": ann, "run_dir": str(run_dir), "aux": used}


def run_two_stage(
    cfg: AnnotatorConfig,
    samples: Sequence,
    stage1: Sequence[PseudoGT],
    work_dir: str | Path,
    device: str = "cpu",
    progress: bool = True,
    feature_store: dict | None = None,
    aux=None,
) -> tuple[list[PseudoGT], dict]:
    """Second stage trained on ``stage1`` pseudo-GTs + GT joints; returns its annotation. ``aux``: as
    :func:`train_and_annotate` (None: the config's own set)."""
    t0 = time.perf_counter()
    records, info = train_and_annotate(
        cfg, samples, work_dir, stage1, device, progress, "stage2-", feature_store, aux
    )
    for r in records:
        r.quality["method"] = f"neuralannot-two-stage-{cfg.mode}"
    wall = time.perf_counter() - t0
    return records, {"method": "two_stage", "wall_s": wall, "samples_per_s": len(records) / wall, **info}


def _data_terms(samples, records, method: str, body_model, device: str) -> np.ndarray:
    """SMPLify-X data term of each record as it is (zero iterations from it)."""
    from neuralannot.annotators.optimize import FitOptions, fit_dataset

    opt = FitOptions(iterations=0, schedule={"pose": [0.0], "shape": [0.0]})
    recs, _ = fit_dataset(samples, method, body_model, None, device=device, options=opt, init=records)
    return _refined_data(recs)


def _refined_data(records) -> np.ndarray:
    """The data term after refinement of each record (``quality["refine"]``; inf when non-finite)."""
    return np.array([np.inf if r.quality["refine"]["data"] is None else r.quality["refine"]["data"]
                     for r in records])  # fmt: skip


def run_spin_loop(
    cfg: AnnotatorConfig,
    samples: Sequence,
    stage1: Sequence[PseudoGT],
    work_dir: str | Path,
    rounds: int = 1,
    fit_iterations: int = 15,
    device: str = "cpu",
    progress: bool = True,
    feature_store: dict | None = None,
    aux=None,
) -> tuple[list[PseudoGT], dict]:
    """SPIN-style rounds starting from the one-stage predictions ``stage1`` (see the module doc);
    ``aux`` as :func:`train_and_annotate`, loaded once for every round where None."""
    from neuralannot.annotators.aux_mocap import config_aux
    from neuralannot.annotators.optimize import FitOptions, fit_dataset

    method = "3d" if cfg.mode == "mocap" else "2d"
    t0 = time.perf_counter()
    stored, preds, history = list(stage1), list(stage1), []
    body = cfg.body_model
    aux = config_aux(cfg, samples) if aux is None else aux
    for r in range(rounds):
        fits, _ = fit_dataset(samples, method, body, None, device=device, progress=progress, init=preds,
                              options=FitOptions(iterations=fit_iterations))  # fmt: skip
        new = _refined_data(fits)
        old = _data_terms(samples, stored, method, body, device)
        better = new < old
        stored = [f if b else s for f, s, b in zip(fits, stored, better, strict=True)]
        rcfg = replace(cfg, seed=cfg.seed + r + 1)
        tag = f"spin{r + 1}-"
        preds, info = train_and_annotate(
            rcfg, samples, work_dir, stored, device, progress, tag, feature_store, aux
        )
        history.append({"round": r + 1, "fits_kept": int(better.sum()), "run_dir": info["run_dir"]})
        log.info("SPIN round %d: %d / %d fits replaced the stored pseudo-GT", r + 1, better.sum(), len(fits))
    for p in preds:
        p.quality["method"] = f"spin-{cfg.mode}"
    wall = time.perf_counter() - t0
    return preds, {"method": "spin", "rounds": history, "wall_s": wall, "samples_per_s": len(preds) / wall}
