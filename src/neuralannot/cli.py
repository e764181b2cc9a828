"""Command line: ``neuralannot <command> --help``.

Commands appear here only once they work end to end.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    """Open, reproducible NeuralAnnot: 3D pseudo-GT body/hand/face parameters from images + GT joints."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )


@app.command()
def demo(out: Path = typer.Option(Path("out/demo"), help="Output folder.")) -> None:
    """Build Anny, pose a few people, write meshes + a keypoint overlay and print a summary."""
    from neuralannot.demo import run_demo

    summary = run_demo(out)
    table = Table(title=f"Anny demo ({summary['vertices']} vertices, {summary['joints']} joints)")
    table.add_column("person / pose")
    table.add_column("vertical extent (m)", justify="right")
    for p in summary["people"]:
        table.add_row(p["label"], f"{p['extent_y_m']:.3f}")
    console.print(table)
    console.print(
        f"model build {summary['build_s']} s, forward of {len(summary['people'])} bodies "
        f"{summary['forward_ms_batch']} ms"
    )
    console.print(f"meshes: {summary['files']['meshes']}  overlay: {summary['files']['overlay']}")


@app.command()
def models(
    name: str = typer.Argument("anny", help="anny | smpl | smplx | mano | flame | model path"),
    part: str = typer.Option("body", help="body | wholebody | hand | lhand | face"),
) -> None:
    """Show a body model's parameters, joints and keypoint sets."""
    from neuralannot.bodies import BodyModelError, load_body_model

    try:
        model = load_body_model(name, part=part)
    except BodyModelError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    table = Table(title=f"{model.name} ({model.part}): {model.num_vertices} vertices")
    for col in ("parameter", "shape", "kind", "default", "optional", "description"):
        table.add_column(col)
    for s in model.param_specs.values():
        table.add_row(
            s.name, str(list(s.shape)), s.kind, str(s.default), "yes" if s.optional else "", s.description
        )
    console.print(table)
    console.print(f"joints ({len(model.joint_names)}): {', '.join(model.joint_names)}")
    console.print(f"keypoint sets: {', '.join(model.joint_sets)}")


if __name__ == "__main__":
    app()
