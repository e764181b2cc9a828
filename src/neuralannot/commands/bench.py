"""``neuralannot bench --suite NAME [-- ARGS]``: run a benchmark script of ``bench/`` (in a clone).

Each suite is one script, run unchanged in a child process with this Python, from the clone's root;
it writes the same JSON as when run by hand (``bench/results/<name>.json`` unless the script's own
``--out`` says otherwise). Arguments after ``--`` go to the script (``neuralannot bench --suite
compare -- --help`` lists them).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from neuralannot.commands.annotate import fail

#: suite → (script in bench/, the results file it writes by default)
SUITES: dict[str, tuple[str, str]] = {
    "compare": ("compare.py", "compare.json"),
    "gpu": ("gpu.py", "gpu.json"),
    "memory": ("memory.py", "memory.json"),
    "synth": ("synth.py", "synth.json"),
    "body": ("body_forward.py", "body_forward.json"),
    "neural": ("neural.py", "neural.json"),
    "backbones": ("backbones.py", "backbones.json"),
    "render": ("render.py", "render.json"),
}


def bench_dir() -> Path | None:
    """The ``bench/`` folder of the clone this package runs from (src layout), else of the working
    directory; None when neither has one (e.g. an installed wheel)."""
    import neuralannot

    for root in (Path(neuralannot.__file__).resolve().parents[2], Path.cwd()):
        if (root / "bench" / "common.py").is_file():
            return root / "bench"
    return None


def bench_command(suite: str, args: list[str]) -> tuple[list[str], Path, Path]:
    """(argv, working directory, default results file) of ``suite``; exits 2 on a bad suite."""
    if suite not in SUITES:
        fail(f"--suite must be one of {', '.join(SUITES)}; got {suite!r}")
    folder = bench_dir()
    if folder is None:
        fail("the bench/ scripts ship with the source clone, not the package: run from a clone")
    script, results = SUITES[suite]
    if not (folder / script).is_file():
        fail(f"suite {suite!r}: {folder / script} does not exist in this clone")
    return [sys.executable, str(folder / script), *args], folder.parent, folder / "results" / results


def bench_cmd(
    ctx: typer.Context,
    suite: str = typer.Option(..., help=f"Benchmark: {' | '.join(SUITES)}."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the command, run nothing."),
) -> None:
    """Run a benchmark script of bench/ (same JSON results); arguments after -- go to the script."""
    argv, cwd, results = bench_command(suite, list(ctx.args))
    line = " ".join(argv)
    if dry_run:
        typer.echo(f"cd {cwd} && {line}")
        return
    typer.echo(f"running: {line}", err=True)
    rc = subprocess.call(argv, cwd=cwd)
    if rc != 0:
        typer.echo(f"error: bench suite {suite!r} exited with code {rc}", err=True)
        raise typer.Exit(rc)
    if "--out" not in argv and "--help" not in argv and "-h" not in argv:
        typer.echo(f"results: {results}")
