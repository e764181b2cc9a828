"""`neuralannot report`: a static HTML report of a pseudo-GT file on its dataset (opens offline)."""

from __future__ import annotations

from pathlib import Path

import typer

from neuralannot.commands.annotate import JOINT_MAP, OUTSIDE
from neuralannot.commands.export import fail


def report_cmd(
    pred: Path = typer.Option(..., "--pred", help="Pseudo-GT file (.json or .npz) from annotate or fit."),
    data: Path = typer.Option(..., "--data", help="The dataset the pseudo-GTs were made for."),
    out: Path = typer.Option(..., "--out", help="Report folder (index.html, plots/, samples/)."),
    max_samples: int = typer.Option(50, "--max-samples", help="Samples rendered, worst first."),
    sort_by: str = typer.Option("auto", "--sort-by", help="auto | mpvpe_mm | mpjpe_mm | reproj_px | pa_*."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad samples and images."),
    joint_map: Path | None = JOINT_MAP,
    allow_outside_root: bool = OUTSIDE,
) -> None:
    """Mesh overlays, side views, GT vs model joints, error histograms, per-joint errors, metrics.

    The report folder is replaced as a whole once complete (a failed run leaves the old one)."""
    from neuralannot.data.sample import SampleError
    from neuralannot.io.guard import check_output
    from neuralannot.io.pseudo_gt import PseudoGTError
    from neuralannot.io.writable import check_output_dir
    from neuralannot.report import build_report

    try:
        check_output_dir(out)
        check_output(out, [pred, joint_map], [data], replaces_folder=True)
        r = build_report(pred, data, out, max_samples, skip_bad, sort_by, joint_map=joint_map,
                         allow_outside_root=allow_outside_root)  # fmt: skip
    except (PseudoGTError, SampleError, OSError, ValueError) as err:
        raise fail(err) from None
    if r.get("warning"):
        typer.echo(f"warning: {pred}: {r['warning']}", err=True)
    typer.echo(f"report of {r['n']} samples ({r['rendered']} rendered, {r['missing']} without pseudo-GT) "
               f"→ {r['index']}")  # fmt: skip
