"""`neuralannot fit`: per-sample optimization baselines (SMPLify-X 2D, 3D variant) → pseudo-GT file."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()
METHOD_NAMES = {"smplifyx": "2d", "smplifyx3d": "3d"}


def fit_cmd(
    data: Path = typer.Option(
        ..., "--data", help="Dataset (folder format, shard folder, or folder of them)."
    ),
    out: Path = typer.Option(..., "--out", help="Pseudo-GT file to write (.json or .npz)."),
    method: str = typer.Option("smplifyx", "--method", help="smplifyx (2D joints) | smplifyx3d (3D joints)."),
    part: str = typer.Option("body", "--part", help="body | hand."),
    body_model: str = typer.Option("anny", "--body-model", help="anny | smpl | smplx | mano | model path."),
    iterations: int | None = typer.Option(None, help="L-BFGS iterations per stage (default 30)."),
    optimizer: str | None = typer.Option(None, help="lbfgs | lbfgs-torch | adam."),
    batch_size: int = typer.Option(64, "--batch-size", help="Samples optimised together."),
    threads: int = typer.Option(0, help="torch threads (0 = keep torch's default; use 1 on a shared CPU)."),
    device: str = typer.Option("cpu"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad samples instead of failing."),
) -> None:
    """Fit SMPLify-X to every sample and write the same pseudo-GT format as `annotate`."""
    import torch

    from neuralannot.annotators.optimize import fit_dataset
    from neuralannot.annotators.pipeline import load_samples
    from neuralannot.io.pseudo_gt import write_pseudo_gt

    if method not in METHOD_NAMES:
        console.print(f"[red]error:[/red] --method must be one of {sorted(METHOD_NAMES)}, got {method!r}")
        raise typer.Exit(2)
    if threads:
        torch.set_num_threads(threads)
    try:
        samples, report = load_samples(data, part, skip_bad, needs_3d=method == "smplifyx3d")
        records, summary = fit_dataset(
            samples,
            METHOD_NAMES[method],
            body_model,
            part,
            batch_size,
            device,
            iterations,
            optimizer,
            progress=True,
        )
        write_pseudo_gt(out, records, {"method": method, "data": str(data), "summary": summary})
    except (ValueError, FileNotFoundError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1) from None
    console.print(
        f"fitted {len(records)} samples in {summary.get('wall_s', float('nan')):.1f} s "
        f"({summary.get('samples_per_s', float('nan')):.2f} samples/s) → {out}"
    )
    if report.num_skipped:
        console.print(f"skipped: {report}")
