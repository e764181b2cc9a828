"""Device, dtype and AMP correctness without a GPU: moving the annotator moves everything it computes
with, and the AMP loss scaler's state is checkpointed.

A CUDA run crashes ("Expected all tensors to be on the same device") when a tensor the forward uses
stays on the CPU. Two CPU stand-ins catch that: ``.to("meta")`` must reach every parameter and
buffer of the auxiliary modules kept outside the module tree (``NeuralAnnotator._aux``), and a
float64 model must run its forward, losses and backward on float64 inputs (a float32 tensor left
behind makes the matmuls fail, as a CPU tensor left behind does on CUDA).
"""

import pytest
import torch
from torch import nn

from conftest import TINY, mocap_joint_samples
from neuralannot.annotators import training
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.neural import AUX_DATA
from neuralannot.annotators.pipeline import build_annotator
from neuralannot.io.checkpoint import read_checkpoint

pytestmark = pytest.mark.anny

B, J = 3, 17  # h36m17 joints


def _aux_tensors(value, path: str):
    """(path, tensor) of every tensor reachable from an ``_aux`` value: module parameters and
    buffers, bare tensors, tensors inside tuples/lists/dicts and the swing solver's own tensors."""
    if isinstance(value, nn.Module):
        for name, t in [*value.named_parameters(), *value.named_buffers()]:
            yield f"{path}.{name}", t
    elif isinstance(value, torch.Tensor):
        yield path, value
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from _aux_tensors(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _aux_tensors(v, f"{path}[{k!r}]")
    elif hasattr(value, "_apply_tensors"):  # the swing solver
        yield from _aux_tensors(vars(value), path)


def _batch(gen: torch.Generator, dtype=torch.float32) -> dict[str, torch.Tensor]:
    K = torch.tensor([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]]).expand(B, 3, 3).clone()
    j3 = torch.randn(B, J, 3, generator=gen) * 0.3 + torch.tensor([0.0, 0.0, 3.0])
    j2 = torch.rand(B, J, 2, generator=gen) * 64
    batch = {
        "image": torch.rand(B, 3, 64, 64, generator=gen),
        "K": K,
        "joints_3d": torch.cat([j3, torch.ones(B, J, 1)], -1),
        "joints_2d": torch.cat([j2, torch.ones(B, J, 1)], -1),
    }
    return {k: v.to(dtype) for k, v in batch.items()}


@pytest.mark.parametrize("mode", ["mocap", "wild"])  # mocap: swing head; wild: pose embedding
def test_moving_the_annotator_moves_every_auxiliary_module(mode):
    outputs = "embedding" if mode == "wild" else None  # wild: the embedding is an auxiliary module
    model = build_annotator(AnnotatorConfig(mode=mode, outputs=outputs, **TINY), "h36m17")
    assert (model.cfg.swing_head, model.embedding is not None) == (mode == "mocap", mode == "wild")
    # entries a later feature may add (e.g. a pose prior kept as (group, module)) are covered too
    model._aux["pose_prior"] = ("body_pose", nn.Linear(4, 4))
    model._aux["ids"] = torch.arange(5)
    features = torch.zeros(2, 8)
    model._aux["features"] = (("key",), features)  # a data cache: stays on the CPU
    aux = [(p, t) for k, v in model._aux.items() if k not in AUX_DATA for p, t in _aux_tensors(v, k)]
    names = {p.split(".")[0].split("[")[0] for p, _ in aux}
    assert {"body", "regressor", "pose_prior", "ids"} <= names
    assert ("swing" in names) == (mode == "mocap") and ("embedding" in names) == (mode == "wild")
    model.to("meta")
    aux = [(p, t) for k, v in model._aux.items() if k not in AUX_DATA for p, t in _aux_tensors(v, k)]
    left = [p for p, t in aux if t.device.type != "meta"]
    assert not left, f"left off the meta device: {left[:10]}"
    assert all(p.device.type == "meta" for p in model.parameters())
    assert model._aux["features"][1] is features and features.device.type == "cpu"
    assert model._aux["ids"].dtype == torch.int64  # integer ids keep their dtype under .double()


@pytest.mark.parametrize("mode", ["mocap", "wild"])
def test_a_float64_annotator_trains_in_float64(mode, gen):
    model = build_annotator(AnnotatorConfig(mode=mode, **TINY), "h36m17").double()
    batch = _batch(gen, torch.float64)
    pred = model(batch)
    terms = model.losses(batch, pred)
    assert {k: v.dtype for k, v in pred.items()} == {k: torch.float64 for k in pred}
    assert terms["loss"].dtype == torch.float64 and torch.isfinite(terms["loss"])
    terms["loss"].backward()
    grads = [p.grad for p in model.head.parameters()]
    assert all(g is not None and g.dtype == torch.float64 for g in grads)
    # and back: the float32 model gives the float32 result of the same batch
    model.float()
    pred32 = model(_batch(torch.Generator().manual_seed(0)))
    assert pred32["root_pose"].dtype == torch.float32


def test_amp_grad_scaler_state_is_checkpointed_and_resumed(anny_body, tmp_path, monkeypatch):
    """float16 AMP needs CUDA; its GradScaler is stood in for by an enabled CPU scaler whose scale
    doubles after every step, so the checkpointed scale counts the steps it has seen."""
    scaler = lambda amp, dev: torch.amp.GradScaler("cpu", init_scale=16.0, growth_interval=1)  # noqa: E731
    monkeypatch.setattr(training, "make_scaler", scaler)
    samples = mocap_joint_samples(anny_body, 16)
    cfg = AnnotatorConfig(mode="mocap", inputs="joints", head="paper", **dict(TINY, batch_size=4, epochs=2))

    def run(work, **kw):
        model = build_annotator(cfg, "h36m17")
        training.train(model, samples, work, progress=False, **kw)
        return read_checkpoint(work / training.CHECKPOINT), model.state_dict()

    whole, w_whole = run(tmp_path / "whole")
    assert whole["scaler"]["scale"] == 16.0 * 2**8  # 8 steps, all finite
    run(tmp_path / "killed", stop_after_steps=3)
    resumed, w_resumed = run(tmp_path / "killed")
    assert resumed["scaler"] == whole["scaler"]  # restored: a fresh scaler would end at 16 * 2**5
    for k in w_whole:
        torch.testing.assert_close(w_resumed[k], w_whole[k], rtol=0, atol=0, msg=k)
    # a checkpoint written before the scaler was saved still resumes (with a fresh scaler)
    old = tmp_path / "old"
    old.mkdir()
    del whole["scaler"]
    torch.save(whole, old / training.CHECKPOINT)
    model = build_annotator(cfg, "h36m17")
    assert training.train(model, samples, old, progress=False)["samples_seen"] == 0  # finished: nothing to do


def test_amp_dtype_per_device(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert training.autocast_dtype(True, cpu) is None and training.autocast_dtype(False, cuda) is None
    assert not training.make_scaler(True, cpu).is_enabled()
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert training.autocast_dtype(True, cuda) == torch.bfloat16  # no loss scaling needed
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert training.autocast_dtype(True, cuda) == torch.float16
