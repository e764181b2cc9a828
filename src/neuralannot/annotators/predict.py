"""Run a trained neural annotator on its training set and write the pseudo-GTs (streaming, resumable).

Predictions are written in complete chunks (``PartWriter``) under ``work_dir/parts/<key>``, the key
being a digest of the samples' content and of the network's weights
(:func:`~neuralannot.annotators.state.prediction_key`); a restarted run with the same samples and
weights skips the samples already written, so every sample is annotated exactly once, and other
samples or another checkpoint never reuse them. Under ``torchrun`` each rank takes
every ``world``-th sample and writes its own chunk folder; rank 0 merges them.

Outputs per sample: parameters as axis-angle in the body model's names, the camera of the pseudo-GT
in the original image's pixels (wild: the virtual crop camera mapped back through the crop, or with
``output_camera: sample`` the sample's own intrinsics where it has them, the prediction moved there by
:func:`to_sample_camera`; MoCap: the sample's own intrinsics, since the translation is fitted to its
camera-frame GT joints), and a
``quality`` block: the error of the pseudo-GT against the sample's own GT joints (mm in MoCap mode,
image pixels in wild mode) and a confidence ``exp(-error / scale)``.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from neuralannot.annotators.loader import loader_options
from neuralannot.annotators.neural import NeuralAnnotator
from neuralannot.annotators.root_solve import (
    align_root_3d,
    moved_params,
    root_matrix,
    solve_root,
    solve_root_in_sample_camera,
)
from neuralannot.annotators.state import prediction_key
from neuralannot.annotators.training import (
    DistInfo,
    batch_to,
    cached_crops,
    has_cached_features,
    init_distributed,
    make_dataset,
)
from neuralannot.bodies.base import as_rotvec
from neuralannot.data.crops import CropDataset
from neuralannot.data.fingerprint import FINGERPRINT_KEY, samples_fingerprint
from neuralannot.geometry import project, ray_rotation
from neuralannot.geometry.alignment import translation_fit
from neuralannot.io.pseudo_gt import PartWriter, PseudoGT, merge_parts
from neuralannot.io.records import build_record, sample_camera

log = logging.getLogger(__name__)


def image_camera(K: np.ndarray, A: np.ndarray, flip: bool, size: int) -> dict[str, list[float]]:
    """Crop camera (3, 3) → focal/princpt in original-image pixels through the crop affine A (2, 3)."""
    cx, cy = float(K[0, 2]), float(K[1, 2])
    if flip:
        cx = size - 1 - cx
    sx, sy = float(A[0, 0]), float(A[1, 1])
    return {
        "focal": [float(K[0, 0]) / sx, float(K[1, 1]) / sy],
        "princpt": [(cx - float(A[0, 2])) / sx, (cy - float(A[1, 2])) / sy],
    }


def to_sample_camera(record: PseudoGT, sample, anchor: np.ndarray | None = None) -> PseudoGT:
    """A wild-mode pseudo-GT moved from its crop's virtual camera (optical axis through the crop centre,
    nearly orthographic) to the sample's own intrinsics, as CLIFF: the root is turned by the rotation
    taking the optical axis onto the real ray through the crop centre, and the ``anchor`` (a point of
    the posed model in the record's camera, e.g. its keypoints' centroid; default the model's origin
    ``trans``) is put on the ray through its virtual projection at the depth that keeps its apparent
    size. The turn is about the anchor, so a model whose origin lies far from its keypoints (a part
    model) keeps its overlay. Records without a camera, a translation or sample intrinsics are
    returned unchanged."""
    if sample.intrinsics is None or record.camera is None or "trans" not in record.params:
        return record
    Kr = np.asarray(sample.K, np.float64)
    fv, c = np.asarray(record.camera["focal"], np.float64), np.asarray(record.camera["princpt"], np.float64)
    R = ray_rotation(torch.from_numpy(Kr), torch.from_numpy(c)).numpy()
    a = np.asarray(record.params["trans"] if anchor is None else anchor, np.float64)
    u = fv * a[:2] / a[2] + c  # the anchor's virtual projection (image px)
    fr = np.array([Kr[0, 0], Kr[1, 1]])
    z = a[2] * fr.mean() / fv.mean()
    a_new = np.array([*((u - Kr[:2, 2]) * z / fr), z])
    params = moved_params(record.params, R, a, a_new)
    camera = {"focal": [float(v) for v in fr], "princpt": [float(Kr[0, 2]), float(Kr[1, 2])]}
    return replace(record, params=params, camera=camera)


def neural_records(
    model: NeuralAnnotator, batch: dict, pred: dict, kp: torch.Tensor, samples
) -> list[PseudoGT]:
    """The pseudo-GTs of one predicted batch (also used by EFT after its per-sample fine-tuning)."""
    cfg, body = model.cfg, model.body
    trans = pred["trans"]
    if cfg.mode == "mocap":
        gt = batch["joints_3d"]
        valid = gt[..., 3] > 0
        err = ((kp + trans[:, None] - gt[..., :3]).norm(dim=-1) * valid).sum(1) / valid.sum(1).clamp_min(1)
        err = err * 1000.0
    else:
        gt = batch["joints_2d"]
        valid = gt[..., 2] > 0
        uv = project(kp + trans[:, None], batch["K"])
        scale = batch["affine"][:, 0, 0]  # crop px per image px
        err = ((uv - gt[..., :2]).norm(dim=-1) * valid).sum(1) / valid.sum(1).clamp_min(1) / scale
    none_valid = valid.sum(1) == 0
    params = {}
    for name, spec in body.param_specs.items():
        if name in pred:
            v = as_rotvec(pred[name], spec.shape) if spec.kind == "rotation" else pred[name]
            params[name] = v.detach().cpu().numpy()
    records = []
    for b, idx in enumerate(batch["index"].tolist()):
        s = samples[idx]
        flip = bool(batch["flip"][b])  # predicted on the mirrored crop: mirrored back to a left hand
        if cfg.mode == "mocap":  # trans was fitted to the camera-frame GT joints: the sample's own camera
            cam = sample_camera(s)
        else:
            cam = image_camera(
                batch["K"][b].cpu().numpy(), batch["affine"][b].cpu().numpy(), flip, cfg.input_size
            )
        record = build_record(
            s, body, {k: v[b].astype(np.float32) for k, v in params.items()}, flip=flip,
            err=float(err[b]), three_d=cfg.mode == "mocap", camera=cam,
            quality={"method": f"neuralannot-{cfg.mode}", "num_valid_joints": int(valid[b].sum())},
            unmeasured="no_valid_joints" if bool(none_valid[b]) else None,
        )  # fmt: skip
        records.append(record)
    if cfg.crop_frame and cfg.output_camera == "sample":
        # the keypoints' centroid, the point the turn onto the real ray keeps in place; a left hand's
        # record is the mirrored crop's prediction mirrored back (x negated, as its translation)
        points = (kp + trans[:, None]).detach().double().cpu().numpy()
        points[batch["flip"].cpu().numpy().astype(bool), :, 0] *= -1.0
        batch_samples = [samples[i] for i in batch["index"].tolist()]
        pairs = zip(records, batch_samples, points, strict=True)
        moved = [to_sample_camera(r, s, p.mean(0)) for r, s, p in pairs]
        # the same rigid move for the keypoints: p' = R (p − t) + t', R = root' rootᵀ
        points = np.stack([_moved_points(p, *rr) for p, *rr in zip(points, records, moved, strict=True)])
        records = solve_root_in_sample_camera(moved, points, batch_samples, cfg.root_steps)
    return records


def _moved_points(points: np.ndarray, before: PseudoGT, after: PseudoGT) -> np.ndarray:
    """``points`` (J, 3) of ``before``'s posed model, carried along to ``after`` (same model, moved
    rigidly: its root turned and its translation changed)."""
    R = root_matrix(after.params) @ root_matrix(before.params).T
    t0, t1 = (np.asarray(r.params["trans"], np.float64) for r in (before, after))
    return (points - t0) @ R.T + t1


def annotation_dataset(
    model: NeuralAnnotator,
    samples,
    device: str | torch.device = "cpu",
    work_dir: str | Path | None = None,
    progress: bool = True,
) -> Dataset:
    """The dataset :func:`predict` runs on: reuses frozen features cached by training in this process;
    otherwise crops come from the disk crop cache beside ``work_dir`` (``cfg.crop_cache``; the one
    training built for the same samples) or are read per batch and never kept in memory, so memory
    does not grow with the set size."""
    cfg = model.cfg
    if has_cached_features(model, samples):
        return make_dataset(model, samples, device)
    return CropDataset(
        samples,
        cfg.input_size,
        load_images=model.backbone is not None and cfg.uses_image,
        heatmaps=cfg.wild_heatmaps,
        heatmap_size=cfg.heatmap_size,
        heatmap_sigma=cfg.heatmap_sigma,
        virtual_focal=cfg.virtual_focal,
        camera=cfg.camera,
        cache_images=False,
        crop_cache=cached_crops(model, samples, work_dir, progress),
    )


@torch.no_grad()
def predict(
    model: NeuralAnnotator,
    samples,
    out_path: str | Path,
    work_dir: str | Path,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = True,
    meta: dict | None = None,
    chunk_size: int | None = None,
    resume: bool = True,
) -> dict:
    """Annotate ``samples`` with ``model`` into ``out_path`` (.json or .npz); returns a summary.

    Batches are a fixed partition of this rank's samples, so a resumed run computes every sample in
    the same batch as an uninterrupted one (identical values); finished batches are skipped.
    ``chunk_size`` (records per part file) defaults to ``max(4 * batch_size, 256)``. Partial
    predictions of the same samples and weights are reused; ``resume=False`` deletes them first.
    """
    info = init_distributed(device)
    key = prediction_key(model, samples)
    parts_root = Path(work_dir) / "parts" / key
    parts_dir = parts_root / f"rank{info.rank}"
    if not resume and parts_dir.exists():
        shutil.rmtree(parts_dir)
    dev = info.device
    dataset = annotation_dataset(model, samples, dev, work_dir, progress=progress and info.main)
    model.to(dev).eval()  # with its auxiliary modules
    t0 = time.perf_counter()
    with PartWriter(parts_dir, chunk_size=chunk_size or max(batch_size * 4, 256)) as writer:
        done = set(writer.done)
        if done:
            log.info("resuming: %d samples already annotated in %s", len(done), parts_dir)
        mine = range(info.rank, len(samples), info.world)
        batches = [list(mine[i : i + batch_size]) for i in range(0, len(mine), batch_size)]
        batches = [b for b in batches if any(samples[i].id not in done for i in b)]
        todo = sum(samples[i].id not in done for b in batches for i in b)
        loader = DataLoader(dataset, batch_sampler=batches, **loader_options(model.cfg.num_workers, dev))
        for batch in tqdm(
            loader, total=len(batches), disable=not (progress and info.main), desc="annotate", leave=False
        ):
            batch = batch_to(batch, dev)
            pred = model(batch)
            kp = model.keypoints(pred)
            if model.cfg.mode == "mocap":
                gt = batch["joints_3d"]
                pred["trans"] = translation_fit(kp, gt[..., :3], gt[..., 3] > 0)
                if model.cfg.root_steps:
                    kp = align_root_3d(model, batch, pred, kp)
            else:
                kp, _ = model.pick_root_hypothesis(batch, pred, kp)
                if model.cfg.root_steps:
                    kp, _ = solve_root(model, batch, pred, kp)
            for r in neural_records(model, batch, pred, kp, samples):
                if r.sample_id not in done:
                    writer.write(r)
    wall = time.perf_counter() - t0
    if info.world > 1:
        dist.barrier()
    out_path = Path(out_path)
    if info.main:
        merge_rank_parts(
            parts_root,
            out_path,
            info,
            {
                "method": f"neuralannot-{model.cfg.mode}",
                "config": model.cfg.to_dict(),
                "config_hash": model.cfg.digest(),
                "prediction_key": key,
                FINGERPRINT_KEY: samples_fingerprint(samples),
                **(meta or {}),
            },
        )
    if info.world > 1:
        dist.barrier()
    return {
        "annotated": todo,
        "skipped_done": len(done),
        "wall_s": wall,
        "samples_per_s": todo / max(wall, 1e-9),
        "out": str(out_path),
    }


def merge_rank_parts(parts_root: Path, out_path: Path, info: DistInfo, meta: dict) -> Path:
    """Merge the chunk folders of this run's ranks into one file (every sample exactly once)."""
    from neuralannot.io.pseudo_gt import read_pseudo_gt, write_pseudo_gt

    rank_dirs = [parts_root / f"rank{r}" for r in range(info.world) if (parts_root / f"rank{r}").is_dir()]
    if len(rank_dirs) == 1:
        return merge_parts(rank_dirs[0], out_path, meta)
    merged = {}
    for d in rank_dirs:
        tmp = d / "merged.npz"
        merge_parts(d, tmp, meta)
        recs, _ = read_pseudo_gt(tmp)
        for r in recs:
            if r.sample_id in merged and merged[r.sample_id] != r:
                raise ValueError(f"sample {r.sample_id!r} annotated differently by two ranks")
            merged[r.sample_id] = r
    return write_pseudo_gt(out_path, list(merged.values()), meta)
