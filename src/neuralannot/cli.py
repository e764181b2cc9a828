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
def demo(
    out: Path = typer.Option(Path("out/demo"), help="Output folder."),
    n: int = typer.Option(200, help="Synthetic MoCap samples to annotate (0 = only the posing demo)."),
    steps: int = typer.Option(800, help="Minimum training steps of the annotator."),
) -> None:
    """Pose Anny (meshes + overlay), then synthesize a MoCap set, annotate it with NeuralAnnot, 3D
    SMPLify-X, the hybrid and the two-stage annotator, and compare all against the GT meshes."""
    from neuralannot.demo import run_annotation_demo, run_demo

    summary = run_demo(out)
    table = Table(title=f"Anny demo ({summary['vertices']} vertices, {summary['joints']} joints)")
    table.add_column("person / pose")
    table.add_column("vertical extent (m)", justify="right")
    for p in summary["people"]:
        table.add_row(p["label"], f"{p['extent_y_m']:.3f}")
    console.print(table)
    console.print(f"meshes: {summary['files']['meshes']}  overlay: {summary['files']['overlay']}")
    if n <= 0:
        return
    result = run_annotation_demo(out, n=n, min_steps=steps)
    table = Table(title=f"Direct annotation error on {result['n']} synthetic MoCap samples (GT meshes)")
    table.add_column("annotator", justify="right", no_wrap=True)
    table.caption = f"ratio: MPVPE over {result['best_baseline']}'s (the strongest SMPLify-X row)"
    for col in ("MPJPE mm", "PA-MPJPE mm", "MPVPE mm", "PA-MPVPE mm", "ratio", "samples/s"):
        table.add_column(col, justify="right")
    for name, m in result["metrics"].items():
        table.add_row(
            name,
            *(f"{m[k]:.1f}" for k in ("mpjpe_mm", "pa_mpjpe_mm", "mpvpe_mm", "pa_mpvpe_mm")),
            f"{m['mpvpe_ratio_to_best_baseline']:.2f}",
            f"{m['samples_per_s']:.1f}",
        )
    console.print(table)
    console.print(f"Verdict: {result['verdict']}")
    console.print(f"lowest MPVPE: {result['best']}; files in {out} (comparison.json, compare/pseudo_gt/)")


@app.command()
def models(
    name: str = typer.Argument("anny", help="anny | smpl | smplx | mano | flame | model path"),
    part: str = typer.Option("body", help="body | wholebody | hand | lhand | face"),
) -> None:
    """Show a body model's parameters, joints and keypoint sets."""
    from neuralannot.bodies import BodyModelError, load_body_model
    from neuralannot.commands.annotate import fail

    try:
        model = load_body_model(name, part=part)
    except BodyModelError as err:
        fail(err)
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


@app.command()
def synth(
    kind: str = typer.Option(..., help="mocap | wild | wild3d | hand | face | face3d | wholebody"),
    n: int = typer.Option(..., "--n", help="Number of samples."),
    out: Path = typer.Option(..., help="Output folder (re-running the same command resumes it)."),
    seed: int = typer.Option(0, help="Dataset seed (same seed → identical files)."),
    workers: int = typer.Option(1, help="Processes (each builds its own model, ~5 s; for long runs)."),
    shard_size: int = typer.Option(500, help="Samples per shard file."),
    masks: bool = typer.Option(True, help="Also write subject masks (PNG)."),
) -> None:
    """Render a synthetic benchmark set from Anny with known GT (images + samples in shard folders)."""
    from neuralannot.commands.annotate import check_outputs
    from neuralannot.data.synthetic.generator import SynthError, generate

    check_outputs(dirs={"--out": out})
    try:
        s = generate(kind, n, out, seed=seed, workers=workers, shard_size=shard_size, masks=masks)
    except SynthError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    table = Table(title=f"synth {s['kind']} → {s['out']}")
    table.add_column("samples", justify="right")
    table.add_column("generated now", justify="right")
    table.add_column("shards (skipped)", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("samples/s (steady)", justify="right")
    rate = "-" if s["samples_per_s"] is None else f"{s['samples_per_s']} ({s['steady_samples_per_s'] or '-'})"
    table.add_row(str(s["num_samples"]), str(s["generated"]), f"{s['shards']} ({s['shards_skipped']})",
                  str(s["seconds"]), rate)  # fmt: skip
    console.print(table)


def _register() -> None:
    """Commands implemented in :mod:`neuralannot.commands` (kept out of this file to keep it small)."""
    from neuralannot.commands import annotate as ann
    from neuralannot.commands import bench, fit
    from neuralannot.commands import evaluate as ev
    from neuralannot.commands import export as exp
    from neuralannot.commands import report as rep

    app.command("annotate")(ann.annotate)
    app.command("train")(ann.train_cmd)
    app.command("predict")(ann.predict_cmd)
    app.command("fit")(fit.fit_cmd)
    app.command("eval")(ev.eval_cmd)
    app.command("export")(exp.export_cmd)
    app.command("report")(rep.report_cmd)
    app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
        bench.bench_cmd
    )


_register()


if __name__ == "__main__":
    app()
