"""Training throughput of the data pipeline (issue 14 item 2): samples/s of a fine-tuned and a frozen config.

Trains a fresh annotator ``--runs`` times in one work folder (``--no-resume`` each time, so a later
run reuses what an earlier one left: the disk crop cache) and reports per run the wall time of the
whole ``train`` call (dataset preparation included: decoding, crop cache, frozen features) and the
training loop's samples/s. Presets: ``finetune`` (ResNet-18 without weights, trained end to end on
``--size`` px crops) and ``cpu`` (``configs/cpu.yaml``: frozen EfficientNet-Lite0 features).

    python bench/pipeline.py --data /tmp/pipe_set --preset finetune --steps 60 --label after

Runs against whichever ``neuralannot`` is importable (``PYTHONPATH=<clone>/src``), so the same
command measures the code before and after a change; ``--set KEY=VALUE`` overrides config keys.
Results are merged into ``bench/results/pipeline.json`` under ``<preset>/<label>``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader

from common import machine_info
from neuralannot.annotators.config import AnnotatorConfig
from neuralannot.annotators.pipeline import build_annotator, load_samples
from neuralannot.annotators.training import DistInfo, epoch_batches, make_dataset, train
from neuralannot.io import atomic_write_json

RESULTS = Path(__file__).parent / "results" / "pipeline.json"
CPU_YAML = Path(__file__).parents[1] / "configs" / "cpu.yaml"


def config(preset: str, steps: int, size: int, batch: int, workers: int, overrides: dict) -> AnnotatorConfig:
    common = {"epochs": 1, "min_steps": steps, "checkpoint_every": 10**9, "num_workers": workers}
    if preset == "cpu":
        return AnnotatorConfig.from_yaml(CPU_YAML, **common, **overrides)
    tiny = {"backbone": "resnet18", "backbone_weights": "none", "freeze_backbone": False, "input_size": size,
            "batch_size": batch, "head_hidden": [32], "lr": 1e-3}  # fmt: skip
    return AnnotatorConfig.from_dict({**tiny, **common, **overrides})


def data_only(model, samples, work: Path, steps: int) -> int:
    """Prepare the dataset and run ``steps`` batches through the loader and the on-device
    normalisation as training does, without the network; returns the samples served."""
    cfg, info = model.cfg, DistInfo()
    try:  # the loader of this change: built once (older code: one DataLoader per epoch)
        from neuralannot.annotators.loader import epoch_loader

        dataset = make_dataset(model, samples, work_dir=work, progress=False)
        loader = epoch_loader(dataset, cfg.num_workers, torch.device("cpu"), cfg.seed)
    except ImportError:
        dataset, loader = make_dataset(model, samples), None
    served, epoch = 0, 0
    while served < steps * cfg.batch_size:
        batches = epoch_batches(len(dataset), cfg.batch_size, cfg.seed, epoch, info)
        if loader is None:
            epoch_iter = DataLoader(dataset, batch_sampler=batches, num_workers=cfg.num_workers)
        else:
            epoch_iter = loader
            loader.batch_sampler.set(batches)
        for batch in epoch_iter:
            model.backbone.normalize(batch["image"])
            served += len(batch["index"])
        epoch += 1
    return served


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--preset", choices=["finetune", "cpu"], default="finetune")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--size", type=int, default=64, help="finetune: crop size")
    ap.add_argument("--batch", type=int, default=16, help="finetune: batch size")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("out/bench/pipeline"))
    ap.add_argument("--label", default="run")
    ap.add_argument("--data-only", action="store_true", help="finetune: the loader without the network")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (YAML)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    cfg = config(args.preset, args.steps, args.size, args.batch, args.workers, overrides)
    samples, _ = load_samples(args.data, cfg.part, needs_3d=True, images=True, keep_gt=False)
    work = args.work / f"{args.preset}-{args.label}"
    shutil.rmtree(work, ignore_errors=True)
    runs = []
    for r in range(args.runs):
        torch.manual_seed(0)
        model = build_annotator(cfg, samples[0].joint_set)
        t0 = time.perf_counter()
        if args.data_only:
            served = data_only(model, samples, work / "run", args.steps)
            wall = time.perf_counter() - t0
            runs.append({"run": r + 1, "wall_s": round(wall, 2), "data_samples_per_s": round(served / wall)})
            print(json.dumps(runs[-1]))
            continue
        out = train(model, samples, work / "run", resume=False, progress=False)
        wall = time.perf_counter() - t0
        runs.append({"run": r + 1, "wall_s": round(wall, 2),
                     "loop_samples_per_s": round(out["samples_per_s"], 2),
                     "overall_samples_per_s": round(out["samples_seen"] / wall, 2),
                     "final_loss": out["history"][-1]["loss"]})  # fmt: skip
        print(json.dumps(runs[-1]))
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    section = f"{args.preset}-data" if args.data_only else args.preset
    results.setdefault(section, {})[args.label] = {
        "command": "python bench/pipeline.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items()
                                                         if k not in ("set", "work", "data_only"))
                   + (" --data-only" if args.data_only else ""),  # fmt: skip
        "overrides": overrides,
        "samples": len(samples),
        "config": {k: v for k, v in cfg.to_dict().items() if k != "reg"},
        "runs": runs,
        "machine": machine_info(),
    }
    atomic_write_json(RESULTS, results)


if __name__ == "__main__":
    main()
