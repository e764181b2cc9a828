"""Training loop of the neural annotator: seeded, resumable, optionally distributed (torchrun/DDP).

Determinism: the batch order of epoch ``e`` is a permutation seeded by ``(seed, e)``, the data
pipeline has no randomness (one DataLoader per run, ``annotators/loader.py``; crops from the disk
crop cache, ``data/crop_cache.py``), and the checkpoint stores model, optimizer, scheduler, RNG state
and the position inside the epoch. A run killed at any point and started again with the same command
continues from its last checkpoint to the same final weights as an uninterrupted run.

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) each rank takes every ``world``-th index of the
epoch permutation (``batch_size`` is the global batch: ``batch_size / world`` per rank), gradients
are averaged by DistributedDataParallel and rank 0 writes checkpoints; an auxiliary MoCap set's batch
of each step is split across the ranks the same way (``AuxMocap.batch``). The backend follows the
requested device (nccl for ``cuda``, gloo otherwise); on CUDA each rank uses GPU ``LOCAL_RANK``.

AMP (``amp: true``, CUDA only): bfloat16 autocast where the GPU supports it, else float16 with a
GradScaler, whose state is saved in the checkpoint so an AMP run resumes like an fp32 run.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from neuralannot.annotators.loader import crop_cache_dir, epoch_loader, loader_options
from neuralannot.annotators.neural import NeuralAnnotator
from neuralannot.annotators.state import samples_digest
from neuralannot.data.crop_cache import crop_key, ensure_crop_cache
from neuralannot.data.crops import CropDataset
from neuralannot.io.atomic import atomic_write
from neuralannot.io.checkpoint import read_checkpoint

if TYPE_CHECKING:
    from neuralannot.annotators.aux_mocap import AuxMocap

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    #: the device this rank computes on (``cuda`` → ``cuda:LOCAL_RANK`` under torchrun)
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | torch.device = "cpu") -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); a no-op otherwise.

    The backend follows ``device``: nccl for CUDA, gloo for the CPU. On CUDA each rank takes GPU
    ``LOCAL_RANK`` (``torch.cuda.set_device``), so the ranks of a node do not all use cuda:0."""
    dev = torch.device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(device=dev)
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if dev.index is not None and dev.index != local:
            log.warning("--device %s under torchrun: rank uses cuda:%d (LOCAL_RANK)", device, local)
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), dev)


def autocast_dtype(amp: bool, dev: torch.device) -> torch.dtype | None:
    """The AMP dtype on ``dev`` (None: fp32): bfloat16 on CUDA GPUs that support it, else float16."""
    if not amp or dev.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def make_scaler(amp: bool, dev: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for float16 autocast; disabled (a no-op) for bfloat16 and fp32."""
    return torch.amp.GradScaler(dev.type, enabled=autocast_dtype(amp, dev) == torch.float16)


def feature_key(model: NeuralAnnotator, samples) -> tuple:
    """Identifies the samples whose frozen features ``model._aux["features"]`` holds: everything that
    determines their crops (ids, images and their stamps, boxes; two sets with the same ids differ)."""
    return (len(samples), crop_key(samples, model.cfg.input_size), model.cfg.input_size)


def has_cached_features(model: NeuralAnnotator, samples) -> bool:
    cached = model._aux.get("features")
    return cached is not None and cached[0] == feature_key(model, samples)


def cached_crops(
    model: NeuralAnnotator, samples, work_dir: str | Path | None, progress: bool = True
) -> Path | None:
    """The crop cache file of ``samples`` for ``model`` (built if needed; ``cfg.crop_cache``), or None."""
    folder = crop_cache_dir(model.cfg.crop_cache, work_dir)
    if folder is None or model.backbone is None or not model.cfg.uses_image:
        return None
    return ensure_crop_cache(samples, model.cfg.input_size, folder, model.cfg.num_workers, progress)


def make_dataset(
    model: NeuralAnnotator,
    samples,
    device: str | torch.device = "cpu",
    work_dir: str | Path | None = None,
    progress: bool = True,
) -> Dataset:
    """The training/annotation dataset of ``model``; with a frozen backbone the image features are
    computed once (cached on the model for the same samples) and the images are not read again.

    ``work_dir`` (the run folder) places the disk crop cache (``cfg.crop_cache``); without it crops
    are decoded per item (and kept in memory when they fit)."""
    cfg = model.cfg
    frozen = cfg.freeze_backbone and model.backbone is not None
    crop_file: Path | None = None

    def crops(load_images: bool, heatmaps: bool, cache: bool | None = None) -> CropDataset:
        return CropDataset(
            samples,
            cfg.input_size,
            load_images=load_images,
            heatmaps=heatmaps,
            heatmap_size=cfg.heatmap_size,
            heatmap_sigma=cfg.heatmap_sigma,
            virtual_focal=cfg.virtual_focal,
            camera=cfg.camera,
            cache_images=cache,
            crop_cache=crop_file,
        )

    wild_hm = cfg.wild_heatmaps
    if not frozen:
        crop_file = cached_crops(model, samples, work_dir, progress)
        return crops(model.backbone is not None and cfg.uses_image, wild_hm)
    key = feature_key(model, samples)
    cached = model._aux.get("features")
    if cached is None or cached[0] != key:
        # models given the same ``feature_store`` dict (same backbone) share the features
        store = model._aux.get("feature_store", {})
        spatial = model.joint_sampler is not None
        wanted = {"feature": (cfg.backbone, cfg.backbone_weights, spatial, *key)}
        if model.end_crops is not None:
            rule = (tuple(model.end_crops.parts), cfg.end_crop_extent, cfg.end_crop_size, cfg.end_crop_rotate,
                    cfg.end_crop_spatial)  # fmt: skip
            wanted["end_feature"] = ("end", cfg.backbone, cfg.backbone_weights, *rule, *key)
        if any(skey not in store for skey in wanted.values()):
            crop_file = cached_crops(model, samples, work_dir, progress)
            images = crops(True, False, cache=False)
            for name, skey in wanted.items():
                if skey not in store:
                    kind = {"spatial": spatial, "end": name == "end_feature"}
                    store[skey] = precompute_features(model, images, device, progress=progress, **kind)
        model._aux["features"] = cached = (key, {name: store[skey] for name, skey in wanted.items()})
    return _WithItems(crops(False, wild_hm), cached[1])  # precomputed backbone features


class _WithItems(Dataset):
    """Adds per-sample tensors ``{key: (N, ...)}`` to the items of a dataset under their own keys."""

    def __init__(self, base: Dataset, items: dict[str, torch.Tensor]):
        self.base, self.items = base, items

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        return {**self.base[index], **{k: v[index] for k, v in self.items.items()}}


def _WithTargets(base: Dataset, targets: dict[str, torch.Tensor]) -> _WithItems:  # noqa: N802
    """Adds per-sample target parameters ``{name: (N, ...)}`` as ``target_<name>`` to the items."""
    return _WithItems(base, {f"target_{k}": v for k, v in targets.items()})


@torch.no_grad()
def precompute_features(
    model: NeuralAnnotator,
    dataset: CropDataset,
    device="cpu",
    batch_size: int = 64,
    progress: bool = True,
    spatial: bool = False,
    end: bool = False,
) -> torch.Tensor:
    """Frozen-backbone features of every crop on the CPU: pooled (N, F) float32, or with ``spatial``
    the maps (N, F, h, w) in float16 (half the memory; the head reads them in float32); with ``end``
    the features of the end-part crops (N, P, F) or (N, P, F, h, w) in float16 (``models/end_crops.py``)."""
    bb = model.backbone.to(device).eval()
    out = []
    opts = loader_options(model.cfg.num_workers, torch.device(device))
    loader = DataLoader(dataset, batch_size=batch_size, **dict(opts, persistent_workers=False))
    desc = "end-part crop features" if end else "image features"
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        if end:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            out.append(model.end_part_features(batch).half().cpu())
            continue
        x = bb.normalize(batch["image"].to(device, non_blocking=True))
        out.append(bb.forward_features(x).half().cpu() if spatial else bb(x).float().cpu())
    return torch.cat(out)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, info: DistInfo) -> list[list[int]]:
    """This rank's batches of epoch ``epoch`` (drop-last, so every rank runs the same step count)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch)).tolist()
    per_rank = max(batch_size // info.world, 1)
    steps = n // (per_rank * info.world)
    if steps == 0:  # tiny sets: one (smaller) batch
        per_rank, steps = max(n // info.world, 1), 1
    mine = perm[info.rank :: info.world]
    return [mine[i * per_rank : (i + 1) * per_rank] for i in range(steps)]


def batch_to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _save(path: Path, state: dict) -> None:
    with atomic_write(path, "wb") as f:
        torch.save(state, f)


def param_groups(model: NeuralAnnotator) -> list[dict]:
    """Adam's parameter groups: every trainable parameter at ``cfg.lr``, except a fine-tuned backbone's
    at ``cfg.backbone_lr`` where that is set (a group of its own, first)."""
    cfg = model.cfg
    trainable = [p for p in model.parameters() if p.requires_grad]
    if cfg.backbone_lr is None or cfg.freeze_backbone or model.backbone is None:
        return [{"params": trainable, "lr": cfg.lr}]
    ids = {id(p) for p in model.backbone.parameters() if p.requires_grad}
    backbone = [p for p in trainable if id(p) in ids]
    rest = [p for p in trainable if id(p) not in ids]
    return [{"params": backbone, "lr": cfg.backbone_lr}, {"params": rest, "lr": cfg.lr}]


def train(
    model: NeuralAnnotator,
    samples,
    out_dir: str | Path,
    device: str = "cpu",
    resume: bool = True,
    progress: bool = True,
    stop_after_steps: int | None = None,
    targets: dict[str, torch.Tensor] | None = None,
    aux: AuxMocap | None = None,
) -> dict:
    """Train ``model`` on ``samples`` (the set it will annotate); returns the training summary.

    ``targets``: per-sample parameters ``{name: (N, ...)}`` (rotations as matrices, in the crop's
    orientation: left hands mirrored) supervising the output directly (the two-stage variant).
    ``aux`` (wild mode): a MoCap set trained jointly, one batch of it per step with its 3D joint
    loss (``annotators/aux_mocap.py``); it is not annotated.

    Checkpoints go to ``out_dir/checkpoint.pt`` every ``cfg.checkpoint_every`` steps and at each
    epoch end; an existing checkpoint of the same config is resumed. ``stop_after_steps`` ends the
    run early right after a checkpoint at that global step (simulates a kill, for tests).
    """
    cfg = model.cfg
    if aux is not None and cfg.mode != "wild":
        raise ValueError("an auxiliary MoCap set supervises wild-mode training only")
    info = init_distributed(device)
    out_dir = Path(out_dir)
    ckpt_path = out_dir / CHECKPOINT
    torch.manual_seed(cfg.seed)
    dev = info.device
    model.to(dev)  # with its auxiliary modules (body model, regressor, embedding, swing solver)
    net: torch.nn.Module = model
    if info.world > 1:
        ids = [dev.index] if dev.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False)
    groups = param_groups(model)
    opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience,
        min_lr=[g["lr"] * cfg.min_lr_ratio for g in groups],
    )  # fmt: skip
    amp_dtype = autocast_dtype(cfg.amp, dev)
    scaler = make_scaler(cfg.amp, dev)
    state = {
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "epoch_loss": 0.0,
        "epoch_count": 0,
        "period_start": 0,
        "history": [],
    }
    data_digest = samples_digest(samples, cfg.uses_image, targets)  # a checkpoint belongs to one set
    if aux is not None:
        data_digest = hashlib.sha256(f"{data_digest}+{aux.digest(cfg.uses_image)}".encode()).hexdigest()[:16]
    if info.main and out_dir.exists():  # temp files of a checkpoint write killed half-way
        for tmp in out_dir.glob(f".{CHECKPOINT}.*.tmp"):
            tmp.unlink(missing_ok=True)
    if resume and ckpt_path.exists():
        ck = read_checkpoint(ckpt_path, map_location=dev)
        if ck["config_digest"] != cfg.digest():
            raise ValueError(
                f"{ckpt_path} was written by another config ({ck['config_digest']} != "
                f"{cfg.digest()}); use a new --work-dir or --no-resume"
            )
        if ck.get("samples_digest", data_digest) != data_digest:
            raise ValueError(
                f"{ckpt_path} was trained on other samples ({ck['samples_digest']} != {data_digest}); "
                "use a new --work-dir or --no-resume"
            )
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if ck.get("scaler"):  # absent in older checkpoints; empty from a disabled scaler
            scaler.load_state_dict(ck["scaler"])
        torch.set_rng_state(ck["rng"].cpu())  # map_location may have put it on the GPU
        state = ck["state"]
        log.info("resumed from %s at epoch %d step %d", ckpt_path, state["epoch"], state["step_in_epoch"])

    def checkpoint() -> None:
        if info.main:
            _save(
                ckpt_path,
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": torch.get_rng_state(),
                    "state": state,
                    "config": cfg.to_dict(),
                    "config_digest": cfg.digest(),
                    "samples_digest": data_digest,
                },
            )
        if info.world > 1:
            dist.barrier()

    if aux is not None:  # both sets' frozen features stay cached: the main set is annotated next
        model._aux.setdefault("feature_store", {})
    dataset = make_dataset(model, samples, dev, work_dir=out_dir, progress=progress and info.main)
    if aux is not None:
        aux.prepare(model, make_dataset(model, aux.samples, dev, out_dir, progress and info.main))
        log.info("auxiliary MoCap set: %d samples (%s), weight %g", len(aux.samples), aux.joint_set,
                 aux.weight)  # fmt: skip
    if targets is not None:
        dataset = _WithTargets(dataset, targets)
    if cfg.silhouette_weight > 0 and model.silhouettes is not None:
        from neuralannot.data.silhouette import silhouette_targets

        sil = silhouette_targets(samples, cfg.input_size)
        if sil is not None:
            log.info(
                "silhouette targets: %d of %d samples have a mask", int(sil["sil_valid"].sum()), len(samples)
            )
            dataset = _WithItems(dataset, sil)
    t_start, seen = time.perf_counter(), 0
    model.train()
    steps_per_epoch = len(epoch_batches(len(dataset), cfg.batch_size, cfg.seed, 0, info))
    num_epochs = max(cfg.epochs_resolved, math.ceil(cfg.min_steps / max(steps_per_epoch, 1)))
    log.info(
        "step budget: %d epochs of %d steps = %d steps (config: epochs %d, min_steps %d)",
        num_epochs, steps_per_epoch, num_epochs * steps_per_epoch, cfg.epochs_resolved, cfg.min_steps,
    )  # fmt: skip
    bar = tqdm(
        total=num_epochs * steps_per_epoch,
        initial=state["global_step"],
        leave=False,
        disable=not (progress and info.main),
        desc=f"train {cfg.mode}",
        unit="step",
        mininterval=2.0,
    )
    last_ckpt = state["global_step"]
    loader = epoch_loader(dataset, cfg.num_workers, dev, cfg.seed)
    for epoch in range(state["epoch"], num_epochs):
        batches = epoch_batches(len(dataset), cfg.batch_size, cfg.seed, epoch, info)
        loader.batch_sampler.set(batches[state["step_in_epoch"] :])
        for batch in loader:
            batch = batch_to(batch, dev)
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                pred = net(batch)
                terms = model.losses(batch, pred)
                if aux is not None:
                    size = len(batch["index"]) * info.world  # the step's global batch
                    abatch = aux.batch(state["global_step"], size, cfg.seed, info.rank, info.world)
                    abatch = batch_to(abatch, dev)
                    extra = aux.losses(model, abatch, net(abatch))
                    terms = {**terms, **extra, "loss": terms["loss"] + sum(extra.values())}
            opt.zero_grad(set_to_none=True)
            scaler.scale(terms["loss"]).backward()
            scaler.step(opt)
            scaler.update()
            n = len(batch["index"])
            seen += n
            state["epoch_loss"] += float(terms["loss"].detach()) * n
            state["epoch_count"] += n
            state["step_in_epoch"] += 1
            state["global_step"] += 1
            bar.update(1)
            rate = seen * info.world / max(time.perf_counter() - t_start, 1e-9)
            bar.set_postfix(epoch=epoch + 1, loss=f"{float(terms['loss'].detach()):.4f}", sps=f"{rate:.0f}")
            if state["global_step"] % cfg.checkpoint_every == 0:
                checkpoint()
                last_ckpt = state["global_step"]
            if stop_after_steps is not None and state["global_step"] >= stop_after_steps:
                checkpoint()
                bar.close()
                return {"stopped_at_step": state["global_step"], "checkpoint": str(ckpt_path)}
        last_epoch = epoch + 1 == num_epochs
        if state["global_step"] - state["period_start"] >= cfg.plateau_period or last_epoch:
            # one plateau check per period of >= plateau_period steps (lr ÷10 when the loss stalls)
            period_loss = _all_mean(state["epoch_loss"], state["epoch_count"], info, dev)
            sched.step(period_loss)
            lr = opt.param_groups[-1]["lr"]  # the heads'
            state["history"].append(
                {"epoch": epoch + 1, "step": state["global_step"], "loss": period_loss, "lr": lr}
            )
            log.debug(
                "epoch %d/%d step %d loss %.5f lr %.1e",
                epoch + 1,
                num_epochs,
                state["global_step"],
                period_loss,
                lr,
            )
            state.update(epoch_loss=0.0, epoch_count=0, period_start=state["global_step"])
        state.update(epoch=epoch + 1, step_in_epoch=0)
        if state["global_step"] - last_ckpt >= cfg.checkpoint_every or epoch + 1 == num_epochs:
            checkpoint()
            last_ckpt = state["global_step"]
    bar.close()
    if state["history"]:
        log.info(
            "trained %d epochs (%d steps): final loss %.5f",
            num_epochs,
            state["global_step"],
            state["history"][-1]["loss"],
        )
    if info.world > 1:  # BatchNorm running stats drift per rank after DDP's last buffer broadcast
        for buf in model.buffers():
            dist.broadcast(buf, src=0)
    model.eval()
    wall = time.perf_counter() - t_start
    return {
        "history": state["history"],
        "epochs": num_epochs,
        "steps": state["global_step"],
        "wall_s": wall,
        "samples_seen": seen * info.world,
        "samples_per_s": seen * info.world / max(wall, 1e-9),
        "checkpoint": str(ckpt_path),
    }


def _all_mean(total: float, count: int, info: DistInfo, device: torch.device) -> float:
    if info.world > 1:  # on the training device: NCCL reduces CUDA tensors only
        t = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        total, count = float(t[0]), int(t[1])
    return total / max(count, 1)


def load_trained(model: NeuralAnnotator, path: str | Path) -> NeuralAnnotator:
    """Load weights from a checkpoint written by :func:`train` (config must match)."""
    ck = read_checkpoint(path)
    if ck.get("config_digest") != model.cfg.digest():
        raise ValueError(
            f"{path}: checkpoint config {ck.get('config_digest')} does not match {model.cfg.digest()}"
        )
    model.load_state_dict(ck["model"])
    return model.eval()
