"""Distributed training on 2 CPU processes (gloo): 2 ranks × batch B reach the weights of 1 rank × 2B.

DDP only guarantees that its ranks agree with each other. What this checks is what the project
promises on top: ``batch_size`` is the global batch, the ranks' shards of each step are exactly the
samples of the single-process step (``epoch_batches``), and the averaged gradient of two half
batches equals the full batch's gradient. That holds here because the network has no batch
statistics (MoCap mode on joints only: no BatchNorm) and every loss term is a mean over samples
with the same number of valid joints; what is left is float summation order. The paper head is
used: the swing head removes the gradient of the swing it replaces, and in those directions the
gradient is rounding noise that Adam normalises into steps of up to ±lr, so any change of
summation order (one process or two) moves those weights by about lr per step. The weights must
also have moved far more than the tolerance, so agreement is not trivial.
"""

import dataclasses
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import TINY, mocap_joint_samples
from neuralannot.annotators.aux_mocap import AuxMocap
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.pipeline import build_annotator
from neuralannot.annotators.training import CHECKPOINT, init_distributed, train
from neuralannot.io.checkpoint import read_checkpoint

pytestmark = pytest.mark.anny

N, B = 32, 4  # samples; per-rank batch (global batch 2B, 4 steps per epoch)
JOINT_SET = "h36m17"


def _config(batch_size: int) -> AnnotatorConfig:
    tiny = dict(TINY, batch_size=batch_size, epochs=2)
    return AnnotatorConfig(mode="mocap", inputs="joints", head="paper", **tiny)


def _rank(rank: int, world: int, port: int, samples, out: str) -> None:
    """One torchrun-like process: the environment torchrun would set, then the ordinary train()."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world))  # fmt: skip
    torch.set_num_threads(1)
    try:
        model = build_annotator(_config(2 * B), JOINT_SET)
        train(model, samples, os.path.join(out, "work"), progress=False)
        assert dist.get_backend() == "gloo"
        torch.save(model.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_of_batch_b_match_one_rank_of_batch_2b(anny_body, tmp_path):
    samples = mocap_joint_samples(anny_body, N)
    mp.spawn(_rank, args=(2, _free_port(), samples, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    ddp_state = read_checkpoint(tmp_path / "work" / CHECKPOINT)["state"]

    model = build_annotator(_config(2 * B), JOINT_SET)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    summary = train(model, samples, tmp_path / "single", progress=False)
    assert summary["history"][-1]["step"] == ddp_state["global_step"] == 2 * N // (2 * B)  # same steps
    single = model.state_dict()

    moved = max(float((single[k] - init[k]).abs().max()) for k in single)
    assert moved > 1e-3, moved  # trained: agreement below is not that of two untouched inits
    for k in single:
        torch.testing.assert_close(ranks[0][k], ranks[1][k], rtol=0, atol=0, msg=k)  # DDP's own promise
        torch.testing.assert_close(ranks[0][k], single[k], rtol=1e-4, atol=2e-5, msg=k)


def test_backend_and_device_follow_the_requested_device(monkeypatch):
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(backend))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(torch.device(d)))
    info = init_distributed("cpu")
    assert calls == ["gloo"] and info.device == torch.device("cpu") and (info.rank, info.world) == (1, 2)
    calls.clear()
    info = init_distributed("cuda")  # even on a machine whose GPU is visible: nccl on GPU LOCAL_RANK
    assert calls == [torch.device("cuda", 1), "nccl"] and info.device == torch.device("cuda", 1)


def _wild_config(batch_size: int) -> AnnotatorConfig:
    tiny = dict(TINY, batch_size=batch_size, epochs=2)
    return AnnotatorConfig(mode="wild", inputs="joints", joint_input="coordinates", head="paper", **tiny)


def _wild_samples(body) -> tuple[list, list]:
    """A wild set (2D joints only) and an auxiliary MoCap set of other poses, both without images."""
    wild = [dataclasses.replace(s, joints_3d=None) for s in mocap_joint_samples(body, N, seed=1)]
    return wild, mocap_joint_samples(body, N, seed=2)


def _aux_rank(rank: int, world: int, port: int, body, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world))  # fmt: skip
    torch.set_num_threads(1)
    try:
        wild, mocap = _wild_samples(body)
        model = build_annotator(_wild_config(2 * B), JOINT_SET)
        train(model, wild, os.path.join(out, "work"), progress=False, aux=AuxMocap(mocap, weight=2.0))
        torch.save(model.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_ranks_with_an_aux_set_match_one_rank_of_the_global_batch(anny_body, tmp_path):
    """Under torchrun the ranks split each step's auxiliary batch as they split the main one."""
    mp.spawn(_aux_rank, args=(2, _free_port(), anny_body, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]

    wild, mocap = _wild_samples(anny_body)
    aux = AuxMocap(mocap, weight=2.0)
    model = build_annotator(_wild_config(2 * B), JOINT_SET)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, wild, tmp_path / "single", progress=False, aux=aux)
    single = model.state_dict()
    moved = max(float((single[k] - init[k]).abs().max()) for k in single)
    assert moved > 1e-3, moved
    for k in single:
        torch.testing.assert_close(ranks[0][k], ranks[1][k], rtol=0, atol=0, msg=k)
        torch.testing.assert_close(ranks[0][k], single[k], rtol=1e-4, atol=2e-5, msg=k)
    # the two ranks' shards of a step are the single-process auxiliary batch, split
    full = aux.batch(3, 2 * B, 0)["index"].tolist()
    shards = [aux.batch(3, 2 * B, 0, rank=r, world=2)["index"].tolist() for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == sorted(full) and not set(shards[0]) & set(shards[1])
    with pytest.raises(ValueError, match="fewer than the 40 ranks"):
        aux.batch(0, 64, 0, rank=0, world=40)
