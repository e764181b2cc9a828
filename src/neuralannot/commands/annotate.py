"""`neuralannot annotate | train | predict`: the neural annotator from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from neuralannot.annotators.config import AnnotatorConfig

console = Console()

DATA = typer.Option(..., "--data", help="Dataset: folder-format JSON, shard folder, or a folder of them.")
MODE = typer.Option("mocap", "--mode", help="mocap (GT 3D joints) | wild (GT 2D joints).")
PART = typer.Option("body", "--part", help="body | hand | face | wholebody.")
BODY = typer.Option("anny", "--body-model", help="anny | smpl | smplx | mano | flame | model file path.")
CONFIG = typer.Option(None, "--config", help="YAML config (configs/cpu.yaml, configs/paper.yaml).")
WORK = typer.Option(Path("out/work"), "--work-dir", help="Checkpoints and partial outputs (resumable).")


def _config(config: Path | None, mode: str, part: str, body_model: str, **overrides) -> AnnotatorConfig:
    base = {"mode": mode, "part": part, "body_model": body_model}
    base.update({k: v for k, v in overrides.items() if v is not None})
    try:
        if config is not None:
            return AnnotatorConfig.from_yaml(config, **base)
        return AnnotatorConfig.from_dict(base)
    except ValueError as err:
        console.print(f"[red]config error:[/red] {err}")
        raise typer.Exit(2) from None


def _fail(err: Exception) -> None:
    console.print(f"[red]error:[/red] {err}")
    raise typer.Exit(1) from None


def annotate(
    data: Path = DATA,
    out: Path = typer.Option(..., "--out", help="Pseudo-GT file to write (.json or .npz)."),
    mode: str = MODE,
    part: str = PART,
    body_model: str = BODY,
    config: Path | None = CONFIG,
    work_dir: Path = WORK,
    inputs: str | None = typer.Option(None, help="Ablation: image | joints | image+joints."),
    outputs: str | None = typer.Option(None, help="Ablation: rotations | embedding."),
    epochs: int | None = typer.Option(None, help="Override the config's epochs."),
    min_steps: int | None = typer.Option(None, "--min-steps", help="Override the config's min_steps."),
    backbone_weights: str | None = typer.Option(None, "--backbone-weights", help="imagenet | none | PATH."),
    device: str = typer.Option("cpu", help="cpu | cuda."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad samples instead of failing."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted run."),
) -> None:
    """Train the neural annotator on a set and annotate the SAME set (one-stage NeuralAnnot)."""
    from neuralannot.annotators.pipeline import run_annotate

    cfg = _config(
        config,
        mode,
        part,
        body_model,
        inputs=inputs,
        outputs=outputs,
        epochs=epochs,
        min_steps=min_steps,
        backbone_weights=backbone_weights,
    )
    try:
        summary = run_annotate(data, out, cfg, work_dir, skip_bad=skip_bad, device=device, resume=resume)
    except (ValueError, FileNotFoundError) as err:
        _fail(err)
    t, a = summary["train"], summary["annotate"]
    console.print(
        f"trained on {summary['samples']} samples in {t['wall_s']:.1f} s "
        f"({t['samples_per_s']:.1f} samples/s); annotated {a['annotated']} "
        f"({a['samples_per_s']:.1f} samples/s) → {a['out']}"
    )
    if summary["skipped"].get("skipped"):
        console.print(f"skipped: {json.dumps(summary['skipped'])}")


def train_cmd(
    data: Path = DATA,
    mode: str = MODE,
    part: str = PART,
    body_model: str = BODY,
    config: Path | None = CONFIG,
    work_dir: Path = WORK,
    epochs: int | None = typer.Option(None, help="Override the config's epochs."),
    backbone_weights: str | None = typer.Option(None, "--backbone-weights", help="imagenet | none | PATH."),
    device: str = typer.Option("cpu"),
    skip_bad: bool = typer.Option(False, "--skip-bad"),
    resume: bool = typer.Option(True, "--resume/--no-resume"),
) -> None:
    """Train the annotator only; the checkpoint lands in WORK_DIR/<config hash>/checkpoint.pt."""
    from neuralannot.annotators.pipeline import build_annotator, load_samples
    from neuralannot.annotators.training import train

    cfg = _config(config, mode, part, body_model, epochs=epochs, backbone_weights=backbone_weights)
    try:
        samples, _ = load_samples(data, cfg.part, skip_bad, needs_3d=cfg.mode == "mocap")
        model = build_annotator(cfg, samples[0].joint_set)
        summary = train(model, samples, work_dir / cfg.digest(), device=device, resume=resume)
    except (ValueError, FileNotFoundError) as err:
        _fail(err)
    console.print(f"checkpoint: {summary['checkpoint']} ({summary['wall_s']:.1f} s)")


def predict_cmd(
    data: Path = DATA,
    out: Path = typer.Option(..., "--out"),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="checkpoint.pt written by `train`."),
    mode: str = MODE,
    part: str = PART,
    body_model: str = BODY,
    config: Path | None = CONFIG,
    work_dir: Path = WORK,
    device: str = typer.Option("cpu"),
    skip_bad: bool = typer.Option(False, "--skip-bad"),
) -> None:
    """Annotate a dataset with a trained checkpoint (its config must match the one given here)."""
    import torch

    from neuralannot.annotators.pipeline import run_predict

    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True).get("config")
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is reported the same way
        _fail(ValueError(f"cannot read checkpoint {checkpoint}: {err}"))
    cfg = AnnotatorConfig.from_dict(saved) if saved else _config(config, mode, part, body_model)
    try:
        summary = run_predict(data, out, cfg, checkpoint, work_dir, skip_bad=skip_bad, device=device)
    except (ValueError, FileNotFoundError) as err:
        _fail(err)
    console.print(f"annotated {summary['annotate']['annotated']} samples → {summary['annotate']['out']}")
