"""Worker for test_neural.test_ddp_two_ranks_agree (run under torchrun with 2 CPU processes, gloo)."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from conftest import TINY
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.pipeline import build_annotator, load_samples
from neuralannot.annotators.predict import predict
from neuralannot.annotators.training import train

data, out = sys.argv[1], Path(sys.argv[2])
samples, _ = load_samples(data, "body", needs_3d=True)
cfg = AnnotatorConfig(mode="mocap", **dict(TINY, epochs=1, checkpoint_every=100))
model = build_annotator(cfg, samples[0].joint_set)
train(model, samples, out / "work", progress=False)
torch.save(model.state_dict(), out / f"rank{dist.get_rank()}.pt")
predict(model, samples, out / "ddp.json", out / "work", batch_size=4, progress=False)
