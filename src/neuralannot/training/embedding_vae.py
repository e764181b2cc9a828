"""Training of the body pose VAE (:class:`~neuralannot.bodies.embedding.BodyVAE`) on mocap poses.

Kept out of :mod:`neuralannot.bodies` because it draws on the synthetic-data layer (the pose
sampler's mirror, Anny's joint limits); ``scripts/build_pose_embeddings.py`` runs it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import Tensor

from neuralannot.bodies.anny import BODY_SLOTS
from neuralannot.bodies.embedding import BodyVAE, geodesic_angle
from neuralannot.data.synthetic.pose_fit import limit_violations
from neuralannot.data.synthetic.poses import mirror_body_pose
from neuralannot.geometry.rotations import rotvec_to_rotmat

__all__ = ["train_body_vae"]


def _block_split(n: int, val_frac: float, gen: torch.Generator, n_blocks: int = 50) -> tuple[Tensor, Tensor]:
    """Hold out whole contiguous blocks (consecutive mocap frames are near-duplicates) → (train, val) ids."""
    blocks = torch.arange(n).tensor_split(min(n_blocks, n))
    n_val = max(1, round(len(blocks) * val_frac)) if val_frac > 0 else 0
    order = torch.randperm(len(blocks), generator=gen).tolist()
    val = [blocks[i] for i in sorted(order[:n_val])]
    train = [blocks[i] for i in sorted(order[n_val:])]
    cat = lambda xs: torch.cat(xs) if xs else torch.zeros(0, dtype=torch.long)  # noqa: E731
    return cat(train), cat(val)


@torch.no_grad()
def _recon_errors(model: BodyVAE, poses: Tensor, batch: int = 4096) -> Tensor:
    """Per-pose, per-joint geodesic error (degrees) of decode(encode(pose)) → (N, J)."""
    out = []
    for x in poses.split(batch):
        out.append(geodesic_angle(model.decode(model.encode(x)), rotvec_to_rotmat(x)))
    return torch.cat(out).rad2deg() if out else poses.new_zeros(0, poses.shape[1])


@torch.no_grad()
def _nearest_angle_deg(queries: Tensor, data: Tensor, chunk: int = 2048) -> Tensor:
    """RMS joint angle (deg) from each query pose to its nearest data pose (chordal metric), (Q,)."""
    A = rotvec_to_rotmat(queries).flatten(1)
    J = queries.shape[1]
    best = torch.full((A.shape[0],), -float("inf"))
    for d in data.split(chunk):
        best = torch.maximum(best, (A @ rotvec_to_rotmat(d).flatten(1).T).max(1).values)
    chord2 = (2 * 3 * J - 2 * best).clamp(min=0) / J  # mean |Ra - Rb|_F^2 per joint = 8 sin^2(θ/2)
    return (2 * torch.asin((chord2 / 8).sqrt().clamp(max=1))).rad2deg()


def _summary(err: Tensor, moving: Tensor) -> dict:
    """(N, J) errors (deg) → mean / median / p90 of the per-pose mean over joints, the same mean over
    the ``moving`` (J,) joints only (slots the data never rotates are trivially reproduced), and
    the per-joint mean."""
    per_pose = err.mean(1)
    return {"mean_deg": per_pose.mean().item(), "median_deg": per_pose.median().item(),
            "p90_deg": per_pose.quantile(0.9).item(), "mean_deg_moving_joints": err[:, moving].mean().item(),
            "per_joint_deg": [round(v, 3) for v in err.mean(0).tolist()]}  # fmt: skip


def train_body_vae(
    poses: Tensor,
    epochs: int = 60,
    batch: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    mirror: bool | Callable[[Tensor], Tensor] = True,
    val_frac: float = 0.1,
    kl_weight: float = 5e-3,
    kl_warmup: float = 0.1,
    rec_weight: float = 2.0,
    weight_decay: float = 1e-5,
    model_kwargs: dict | None = None,
    n_eval_samples: int = 2000,
    log: Callable[[str], None] | None = None,
) -> tuple[BodyVAE, dict]:
    """Train a :class:`BodyVAE` on axis-angle poses (N, J, 3); returns the frozen model and stats.

    Loss (per batch, VPoser v2 weights): ``rec_weight · mean geodesic angle (rad) over joints`` +
    ``kl_weight · KL(q(z|x) || N(0, I))`` (summed over latent dims, mean over the batch), the KL weight
    ramping linearly from 0 over the first ``kl_warmup`` fraction of epochs. Adam (``lr``, weight decay
    1e-5 as VPoser), cosine learning-rate decay to ``lr/20``.

    Data: ``val_frac`` of the poses, in whole contiguous blocks (consecutive mocap frames are near
    duplicates), is held out; ``mirror`` adds the left/right mirror image of every training pose
    (``True``: the pose sampler's :func:`~neuralannot.data.synthetic.poses.mirror_body_pose` for
    Anny's 21 slots, or a callable (N, J, 3) → (N, J, 3)). Deterministic per ``seed``
    (on CPU); the global RNG state is restored afterwards.

    Stats: per-epoch history; train/val reconstruction error of decode(encode(x)) in degrees (per-pose
    mean over joints: mean/median/p90; per-joint mean), val KL (nats), active latent dims (variance of
    the posterior mean > 0.01); prior samples z ~ N(0, I): mean rotation angle per joint vs the data,
    RMS angle to the nearest training pose vs the same for val poses, and (21-slot Anny poses) the
    fraction of poses outside Anny's joint limits vs the data.
    """
    poses = torch.as_tensor(poses, dtype=torch.float32).cpu()
    say = log or (lambda s: None)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        tr_idx, val_idx = _block_split(len(poses), val_frac, gen)
        train, val = poses[tr_idx], poses[val_idx]
        if mirror:
            if mirror is True:
                mirror = mirror_body_pose
            train = torch.cat([train, mirror(train)])
        model = BodyVAE(num_joints=poses.shape[1], **(model_kwargs or {}))
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        steps_per_epoch = max(1, math.ceil(len(train) / batch))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch, eta_min=lr / 20)
        warm = max(1, round(kl_warmup * epochs * steps_per_epoch))
        train_R = rotvec_to_rotmat(train)
        history, step = [], 0
        for epoch in range(epochs):
            model.train()
            tot = {"loss": 0.0, "rec_deg": 0.0, "kl": 0.0}
            for ids in torch.randperm(len(train), generator=gen).split(batch):
                mu, std = model.posterior(train[ids])
                z = mu + std * torch.randn(mu.shape, generator=gen)
                rec = geodesic_angle(model.decode(z), train_R[ids]).mean()
                kl = (0.5 * (mu.pow(2) + std.pow(2) - 1) - std.log()).sum(-1).mean()
                loss = rec_weight * rec + kl_weight * min(1.0, step / warm) * kl
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                for k, v in (("loss", loss), ("rec_deg", rec.rad2deg()), ("kl", kl)):
                    tot[k] += v.item() * len(ids) / len(train)
            model.eval()
            row = {"epoch": epoch + 1, **{k: round(v, 5) for k, v in tot.items()}}
            if len(val):
                row["val_rec_deg"] = round(_recon_errors(model, val).mean().item(), 4)
            history.append(row)
            say(" ".join(f"{k}={v}" for k, v in row.items()))
        model.freeze()
        stats = _vae_stats(model, poses, train, val, n_eval_samples, gen)
    stats.update(
        n_poses=len(poses), n_train=len(tr_idx), n_train_augmented=len(train), n_val=len(val_idx),
        epochs=epochs, batch=batch, lr=lr, seed=seed, mirror=bool(mirror), kl_weight=kl_weight,
        kl_warmup=kl_warmup, rec_weight=rec_weight, history=history,
        train_seconds=round(time.perf_counter() - t0, 1),
    )  # fmt: skip
    return model, stats


@torch.no_grad()
def _vae_stats(
    model: BodyVAE, poses: Tensor, train: Tensor, val: Tensor, n: int, gen: torch.Generator
) -> dict:
    sub = train[torch.randperm(len(train), generator=gen)[: max(n, 1)]]
    moving = poses.abs().amax(dim=(0, 2)) > 0
    stats: dict = {"train": _summary(_recon_errors(model, sub), moving), "n_moving_joints": int(moving.sum())}
    if len(val):
        stats["val"] = _summary(_recon_errors(model, val), moving)
        mu, std = model.posterior(val)
        stats["val_kl"] = (0.5 * (mu.pow(2) + std.pow(2) - 1) - std.log()).sum(-1).mean().item()
        stats["active_latent_dims"] = int((mu.var(0) > 0.01).sum())
    ref = val if len(val) else sub
    samples = model.decode_aa(torch.randn(n, model.latent_dim, generator=gen))
    per_joint = lambda p: [round(v, 2) for v in p.norm(dim=-1).mean(0).rad2deg().tolist()]  # noqa: E731
    s = {"n": n, "mean_angle_deg_per_joint": per_joint(samples),
         "data_mean_angle_deg_per_joint": per_joint(poses),
         "nn_rms_deg_median": _nearest_angle_deg(samples, train).median().item(),
         "val_nn_rms_deg_median": _nearest_angle_deg(ref[:n], train).median().item()}  # fmt: skip
    s["mean_angle_deg"] = samples.norm(dim=-1).mean().rad2deg().item()
    s["data_mean_angle_deg"] = poses.norm(dim=-1).mean().rad2deg().item()
    if poses.shape[1] == len(BODY_SLOTS):
        s["limit_violation_frac"] = limit_violations(samples).any(-1).float().mean().item()
        s["data_limit_violation_frac"] = limit_violations(poses).any(-1).float().mean().item()
    zero = model.decode_aa(torch.zeros(1, model.latent_dim))
    s["z0_to_data_mean_angle_deg"] = _nearest_angle_deg(zero, poses).item()
    stats["prior_samples"] = s
    return stats
