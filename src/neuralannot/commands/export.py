"""`neuralannot export`: convert pseudo-GT files (release JSON ↔ compact npz ↔ HumanData npz)."""

from __future__ import annotations

from pathlib import Path

import typer

from neuralannot.commands.annotate import FORCE, OUTSIDE


def fail(err: Exception | str, code: int = 2) -> typer.Exit:
    """Print ``error: <message>`` as one line on stderr; return the Exit to raise (no traceback)."""
    typer.echo(f"error: {' '.join(str(err).split())}", err=True)
    return typer.Exit(code)


def export_cmd(
    pred: Path = typer.Option(..., "--pred", help="Pseudo-GT file: release .json, .npz or HumanData .npz."),
    to: str = typer.Option(..., "--to", help="json | npz | humandata (mmhuman3d HumanData .npz)."),
    out: Path = typer.Option(..., "--out", help="File to write (.json for json, .npz otherwise)."),
    data: Path | None = typer.Option(
        None, "--data", help="HumanData only: the dataset, to add image paths, boxes and keypoints."
    ),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="With --data: skip and count bad samples."),
    joint_map: Path | None = typer.Option(
        None, "--joint-map", help="With --data (folder format): JSON {dataset joint name: keypoint name}."
    ),
    force: bool = FORCE,
    allow_outside_root: bool = OUTSIDE,
) -> None:
    """Convert a pseudo-GT file between the NeuralAnnot release JSON, our npz and HumanData."""
    from neuralannot.data.sample import SampleError
    from neuralannot.io.export import FORMATS, export
    from neuralannot.io.guard import check_output
    from neuralannot.io.pseudo_gt import PseudoGTError
    from neuralannot.io.writable import check_output_file

    if to not in FORMATS:
        raise fail(f"--to must be one of {', '.join(FORMATS)}, got {to!r}")
    samples = None
    try:
        check_output_file(out)
        check_output(out, [pred, joint_map], [data], force=force)
        if data is not None:
            from neuralannot.data.loading import load_samples

            loaded, _ = load_samples(data, skip_bad=skip_bad, joint_map=joint_map,
                                     allow_outside_root=allow_outside_root)  # fmt: skip
            samples = {s.id: s for s in loaded}
        path, n = export(pred, to, out, samples, data,
                         warn=lambda w: typer.echo(f"warning: {pred}: {w}", err=True))  # fmt: skip
    except (PseudoGTError, SampleError, FileNotFoundError, ValueError) as err:
        raise fail(err) from None
    typer.echo(f"wrote {n} records as {to} → {path}")
