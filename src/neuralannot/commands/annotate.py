"""`neuralannot annotate | train | predict`: the neural annotator from the command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from neuralannot.annotators.config import AnnotatorConfig

console = Console()
err_console = Console(stderr=True, soft_wrap=True)
#: Errors a command reports in one line (exit code 2) instead of a traceback: bad samples, files,
#: configs and body models are ValueErrors (SampleError, DatasetFormatError, BodyModelError, ...).
USER_ERRORS = (ValueError, OSError)

DATA = typer.Option(..., "--data", help="Dataset: folder-format JSON, shard folder, or a folder of them.")
MODE = typer.Option("mocap", "--mode", help="mocap (GT 3D joints) | wild (GT 2D joints).")
PART = typer.Option("body", "--part", help="body | hand | face | wholebody.")
BODY = typer.Option("anny", "--body-model", help="anny | smpl | smplx | mano | flame | model file path.")
CONFIG = typer.Option(None, "--config", help="YAML config (configs/cpu.yaml, configs/paper.yaml).")
JOINT_MAP = typer.Option(
    None, "--joint-map", help="Folder format: JSON {dataset joint name: keypoint name} (docs/datasets.md)."
)
WORK = typer.Option(Path("out/work"), "--work-dir", help="Checkpoints and partial outputs (resumable).")
FORCE = typer.Option(False, "--force", help="Write even onto an input file or inside a dataset folder.")
OUTSIDE = typer.Option(
    False, "--allow-outside-root", help="Read images outside the dataset folder (absolute, ../, symlinks)."
)
THREADS = typer.Option(
    0, "--threads", help="torch threads (0 = keep torch's default; use 1 per job on a shared CPU)."
)
AUX_DATA = typer.Option(
    None, "--aux-data", help="Wild mode: a MoCap set (3D joints) trained jointly, not annotated: a folder; "
    "synthetic[:N], an embedded synthetic 3D set of the part (N = 2000; generated once, cached; the default "
    "for bodies and hands); none. Config key aux_data.")
AUX_WEIGHT = typer.Option(
    None, "--aux-weight", help="Weight of the auxiliary set's losses (> 0; default: hands 4, else 1; whole "
    "body: its body and hand parts'). Config key aux_weight.")


def saved_config(checkpoint: Path) -> AnnotatorConfig | None:
    """The config a `train` checkpoint stores (None if none); ValueError if the file is unreadable."""
    from neuralannot.io.checkpoint import read_checkpoint

    ck = read_checkpoint(checkpoint)
    saved = ck.get("config") if isinstance(ck, dict) else None
    if saved is not None and not isinstance(saved, dict):
        raise ValueError(f"checkpoint {checkpoint}: 'config' is not a mapping")
    try:
        return AnnotatorConfig.from_dict(saved) if saved else None
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint {checkpoint}: bad config: {err}") from None


def _config(config: Path | None, mode: str, part: str, body_model: str, **overrides) -> AnnotatorConfig:
    base = {"mode": mode, "part": part, "body_model": body_model}
    base.update({k: v for k, v in overrides.items() if v is not None})
    try:
        if config is not None:
            return AnnotatorConfig.from_yaml(config, **base)
        return AnnotatorConfig.from_dict(base)
    except ValueError as err:
        fail(f"bad config: {err}")


def one_line(err: BaseException | str) -> str:
    """An error message on one line; errors re-raised from a DataLoader worker keep only the original."""
    text = str(err)
    if "Original Traceback" in text:
        text = text.rstrip().splitlines()[-1].split(": ", 1)[-1]
    return " ".join(text.split())


def fail(err: BaseException | str) -> None:
    """Print ``error: <one line>`` to stderr and exit with code 2 (bad input, not a crash)."""
    err_console.print(Text.assemble(("error:", "red"), " ", one_line(err)), highlight=False)
    raise typer.Exit(2) from None


def set_threads(threads: int) -> None:
    """Apply ``--threads`` (0 keeps torch's default, one thread per core); exit 2 on a negative count."""
    if threads < 0:
        fail(f"--threads must be 0 (torch's default) or more, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)


def check_device(device: str) -> None:
    """Exit 2 with one line unless ``device`` names a device this machine has (before any work)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        fail(f"--device must be cpu, cuda, cuda:N or mps, got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            fail(f"--device {device}: no CUDA GPU is available on this machine (or torch was built "
                 "without CUDA); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            fail(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        fail(f"--device {device}: MPS is not available on this machine; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        fail(f"--device must be cpu, cuda, cuda:N or mps, got {device!r}")


def check_outputs(files: dict[str, Path | None] | None = None, dirs: dict[str, Path | None] | None = None,
                  pseudo_gt: Path | None = None, **positive: int | None) -> None:
    """Exit 2 with one line if an output cannot be written or a count is < 1 (before any compute).

    ``files``/``dirs``: option name → path (None = not given); ``pseudo_gt``: the ``--out`` pseudo-GT
    file, which must also end in .json or .npz; ``positive``: option name (``batch_size`` for
    ``--batch-size``) → value that must be >= 1.
    """
    from neuralannot.io.pseudo_gt import PseudoGTError, check_pseudo_gt_suffix
    from neuralannot.io.writable import check_output_dir, check_output_file

    if pseudo_gt is not None:
        try:
            check_pseudo_gt_suffix(pseudo_gt)
        except PseudoGTError as err:
            fail(f"--out {err}")
        files = {"--out": pseudo_gt, **(files or {})}

    for name, value in positive.items():
        if value is not None and value < 1:
            fail(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    try:
        for what, path in (files or {}).items():
            if path is not None:
                check_output_file(path, what)
        for what, path in (dirs or {}).items():
            if path is not None:
                check_output_dir(path, what)
    except ValueError as err:
        fail(err)


def skipped_line(report: dict) -> str | None:
    """One summary line of the bad samples skipped with ``--skip-bad`` (None when there were none)."""
    counts = report.get("skipped") or {}
    if not counts and not report.get("failed_files"):
        return None
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
    line = f"skipped {sum(counts.values())} bad sample(s)" + (f" ({kinds})" if kinds else "")
    example = next((v[0] for v in (report.get("examples") or {}).values() if v), None)
    if example:
        line += f", e.g. {one_line(example)}"
    if report.get("failed_files"):
        line += f"; unreadable files: {', '.join(p for p, _ in report['failed_files'])}"
    return line


def _print_skips(report: dict) -> None:
    line = skipped_line(report)
    if line:
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def _samples(data: Path, cfg: AnnotatorConfig, skip_bad: bool, joint_map: Path | None = None,
             allow_outside_root: bool = False):  # fmt: skip
    """The command's samples and skip report; with ``--skip-bad`` unreadable images are skipped too."""
    from neuralannot.data.loading import load_samples

    return load_samples(data, cfg.part, skip_bad, needs_3d=cfg.mode == "mocap", images=cfg.uses_image,
                        joint_map=joint_map, allow_outside_root=allow_outside_root)  # fmt: skip


def guard_output(out: Path | None, data: Path | None, *inputs: Path | None, force: bool = False,
                 option: str = "--out") -> None:  # fmt: skip
    """Exit 2 before any work when ``out`` would overwrite an input or land in a dataset folder."""
    from neuralannot.io.guard import OutputError, check_output

    if out is None:
        return
    try:
        check_output(out, inputs, [data], force=force, option=option)
    except OutputError as err:
        fail(err)


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
    joint_map: Path | None = JOINT_MAP,
    force: bool = FORCE,
    allow_outside_root: bool = OUTSIDE,
    aux_data: str | None = AUX_DATA,
    aux_weight: float | None = AUX_WEIGHT,
    threads: int = THREADS,
) -> None:
    """Train the neural annotator on a set and annotate the SAME set (one-stage NeuralAnnot)."""
    from neuralannot.annotators.config_defaults import embedded_aux
    from neuralannot.annotators.pipeline import run_annotate

    set_threads(threads)
    check_device(device)
    check_outputs(dirs={"--work-dir": work_dir}, pseudo_gt=out)
    aux_folder = None if aux_data in (None, "none") or embedded_aux(aux_data) else Path(aux_data)
    guard_output(out, data, config, joint_map, aux_folder, force=force)
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
        aux_data=aux_data,
        aux_weight=aux_weight,
    )
    try:
        summary = run_annotate(data, out, cfg, work_dir, skip_bad=skip_bad, device=device, resume=resume,
                               joint_map=joint_map, allow_outside_root=allow_outside_root)  # fmt: skip
    except USER_ERRORS as err:
        fail(err)
    t, a = summary["train"], summary["annotate"]
    console.print(
        f"trained on {summary['samples']} samples in {t['wall_s']:.1f} s "
        f"({t['samples_per_s']:.1f} samples/s); annotated {a['annotated']} "
        f"({a['samples_per_s']:.1f} samples/s) → {a['out']}"
    )
    if "valid" in a:  # whole body: how many samples got each part
        console.print(", ".join(f"{k} {n}/{a['annotated']}" for k, n in a["valid"].items()))
    _print_skips(summary["skipped"])


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
    joint_map: Path | None = JOINT_MAP,
    allow_outside_root: bool = OUTSIDE,
    aux_data: str | None = AUX_DATA,
    aux_weight: float | None = AUX_WEIGHT,
    threads: int = THREADS,
) -> None:
    """Train the annotator only; the checkpoint lands in WORK_DIR/<config hash>-<data hash>/checkpoint.pt,
    the folder prefixed aux<set hash>- where it trains with an auxiliary set (wild bodies and hands)."""
    from neuralannot.annotators.aux_mocap import config_aux
    from neuralannot.annotators.pipeline import build_annotator
    from neuralannot.annotators.state import run_dir
    from neuralannot.annotators.training import train

    set_threads(threads)
    check_device(device)
    check_outputs(dirs={"--work-dir": work_dir})
    cfg = _config(config, mode, part, body_model, epochs=epochs, backbone_weights=backbone_weights,
                  aux_data=aux_data, aux_weight=aux_weight)  # fmt: skip
    try:
        samples, report = _samples(data, cfg, skip_bad, joint_map, allow_outside_root)
        model = build_annotator(cfg, samples[0].joint_set)
        aux = config_aux(cfg, samples, skip_bad=skip_bad, allow_outside_root=allow_outside_root)
        folder = run_dir(work_dir, cfg, samples, "" if aux is None else aux.run_tag(cfg.uses_image))
        summary = train(model, samples, folder, device=device, resume=resume, aux=aux)
    except USER_ERRORS as err:
        fail(err)
    console.print(f"checkpoint: {summary['checkpoint']} ({summary.get('wall_s', 0.0):.1f} s)")
    _print_skips(report.as_dict())


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
    batch_size: int = typer.Option(64, "--batch-size", help="Samples per forward pass."),
    chunk_size: int | None = typer.Option(
        None, "--chunk-size", help="Records per resumable part file (default max(4 x batch, 256))."
    ),
    joint_map: Path | None = JOINT_MAP,
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted run."),
    force: bool = FORCE,
    allow_outside_root: bool = OUTSIDE,
    threads: int = THREADS,
) -> None:
    """Annotate a dataset with a trained checkpoint (its config must match the one given here)."""
    from neuralannot.annotators.finish import annotation_stages
    from neuralannot.annotators.pipeline import build_annotator
    from neuralannot.annotators.predict import predict
    from neuralannot.annotators.training import load_trained

    set_threads(threads)
    check_device(device)
    check_outputs(dirs={"--work-dir": work_dir}, pseudo_gt=out, batch_size=batch_size, chunk_size=chunk_size)
    guard_output(out, data, checkpoint, config, joint_map, force=force)
    try:
        cfg = saved_config(checkpoint)
    except ValueError as err:
        fail(err)
    cfg = cfg or _config(config, mode, part, body_model)
    try:
        samples, report = _samples(data, cfg, skip_bad, joint_map, allow_outside_root)
        model = build_annotator(cfg, samples[0].joint_set)
        try:
            load_trained(model, checkpoint)
        except (KeyError, RuntimeError) as err:
            raise ValueError(f"{checkpoint} does not fit this dataset/config: {err}") from None
        meta = {"data": str(data), "checkpoint": str(checkpoint)}
        ann = predict(model, samples, out, work_dir / cfg.digest(), batch_size, device, meta=meta,
                      chunk_size=chunk_size, resume=resume)  # fmt: skip
        # the config's stages end it as they end `annotate` (wrist stage, face-size stage)
        stages = annotation_stages(cfg, samples, out, work_dir / cfg.digest(), device, progress=True)
    except USER_ERRORS as err:
        fail(err)
    console.print(f"annotated {ann['annotated']} samples ({ann['skipped_done']} done before) → {ann['out']}")
    for name, s in stages.items():
        console.print(f"{name}: {s['refined']} of {s['samples']} records refined ({s['wall_s']:.1f} s)")
    _print_skips(report.as_dict())
