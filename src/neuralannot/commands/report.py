"""`neuralannot report`: a static HTML report of a pseudo-GT file on its dataset (opens offline)."""

from __future__ import annotations

from pathlib import Path

import typer

from neuralannot.commands.annotate import JOINT_MAP
from neuralannot.commands.export import fail


def report_cmd(
    pred: Path = typer.Option(..., "--pred", help="Pseudo-GT file (.json or .npz) from annotate or fit."),
    data: Path = typer.Option(..., "--data", help="The dataset the pseudo-GTs were made for."),
    out: Path = typer.Option(..., "--out", help="Report folder (index.html, plots/, samples/)."),
    max_samples: int = typer.Option(50, "--max-samples", help="Samples rendered, worst first."),
    sort_by: str = typer.Option("auto", "--sort-by", help="auto | mpvpe_mm | mpjpe_mm | reproj_px | pa_*."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad samples and images."),
    joint_map: Path | None = JOINT_MAP,
) -> None:
    """Mesh overlays, side views, GT vs model joints, error histograms, per-joint errors, metrics."""
    from neuralannot.data.sample import SampleError
    from neuralannot.io.pseudo_gt import PseudoGTError
    from neuralannot.io.writable import check_output_dir
    from neuralannot.report import build_report

    try:
        check_output_dir(out)
        r = build_report(pred, data, out, max_samples, skip_bad, sort_by, joint_map=joint_map)
    except (PseudoGTError, SampleError, FileNotFoundError, ValueError) as err:
        raise fail(err) from None
    typer.echo(f"report of {r['n']} samples ({r['rendered']} rendered, {r['missing']} without pseudo-GT) "
               f"→ {r['index']}")  # fmt: skip
