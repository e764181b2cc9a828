"""Device and dtype correctness without a GPU: moving the annotator moves everything it computes with.

A CUDA run crashes ("Expected all tensors to be on the same device") when a tensor the forward uses
stays on the CPU. Two CPU stand-ins catch that: ``.to("meta")`` must reach every parameter and
buffer of the auxiliary modules kept outside the module tree (``NeuralAnnotator._aux``), and a
float64 model must run its forward, losses and backward on float64 inputs (a float32 tensor left
behind makes the matmuls fail, as a CPU tensor left behind does on CUDA).
"""

import pytest
import torch
from torch import nn

from conftest import TINY
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.neural import AUX_DATA
from neuralannot.annotators.pipeline import build_annotator

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
    model = build_annotator(AnnotatorConfig(mode=mode, **TINY), "h36m17")
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
