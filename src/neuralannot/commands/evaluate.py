"""`neuralannot eval`: metrics of a pseudo-GT file against a dataset's ground truth."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from neuralannot.commands.annotate import (
    FORCE,
    JOINT_MAP,
    OUTSIDE,
    USER_ERRORS,
    check_outputs,
    err_console,
    fail,
    guard_output,
)
from neuralannot.io.atomic import atomic_write, atomic_write_json

console = Console()


def eval_cmd(
    pred: Path = typer.Option(..., "--pred", help="Pseudo-GT file (.json or .npz) from annotate or fit."),
    data: Path = typer.Option(..., "--data", help="The dataset the pseudo-GTs were made for."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the summary as JSON."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Write the per-sample table as CSV."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad samples."),
    joint_map: Path | None = JOINT_MAP,
    force: bool = FORCE,
    allow_outside_root: bool = OUTSIDE,
    decompose: bool = typer.Option(
        True, help="With GT parameters: pose-only / shape-only MPVPE and shape error (2 extra forwards)."
    ),
    body_model: str | None = typer.Option(
        None,
        "--body-model",
        help="SMPL-family model file/folder of the records (default: the one "
        "annotate/fit was given, if it still exists; else $NEURALANNOT_MODELS/<type>/).",
    ),
) -> None:
    """MPJPE / PA-MPJPE (3D joints), reprojection px (2D joints), MPVPE / PA-MPVPE (GT meshes); with GT
    parameters also where the mesh error lives (pose-only / shape-only MPVPE, shape MAE); faces: the
    3D surface error (rigid / similarity aligned)."""
    from neuralannot.annotators.pipeline import load_samples
    from neuralannot.data.fingerprint import other_samples
    from neuralannot.evaluation import (
        DECOMPOSED,
        HAND_AUC,
        KEYS,
        PART_MPVPE,
        POSE_ONLY_REGIONS,
        SURFACE,
        ModelCache,
        evaluate,
    )
    from neuralannot.io.pseudo_gt import read_pseudo_gt

    check_outputs({"--json": json_out, "--csv": csv_out})
    guard_output(json_out, data, pred, joint_map, force=force, option="--json")
    guard_output(csv_out, data, pred, joint_map, force=force, option="--csv")
    try:
        records, meta = read_pseudo_gt(pred, as_dict=True)
        samples, report = load_samples(data, skip_bad=skip_bad, joint_map=joint_map,
                                       allow_outside_root=allow_outside_root)  # fmt: skip
        files = _model_files(body_model, meta)
    except USER_ERRORS as err:  # PseudoGTError is a ValueError
        fail(err)
    warning = other_samples(meta, records, samples)
    if warning:
        err_console.print(f"[yellow]warning:[/yellow] {pred}: {warning}", highlight=False)
    rows, summary = evaluate(records, samples, cache=ModelCache(files), decompose=decompose)
    summary = {**summary, "pred": str(pred), "data": str(data), "method": meta.get("method"),
               **({"warning": warning} if warning else {})}  # fmt: skip
    keys = KEYS + tuple(k for k in SURFACE + DECOMPOSED if summary.get(k) is not None)
    table = Table(title=f"{pred.name} vs {data} ({summary['n']} samples, {summary['missing']} missing)")
    for k in keys:
        table.add_column(k, justify="right")
    table.add_row(*("n/a" if summary[k] is None else f"{summary[k]:.2f}" for k in keys))
    if summary.get("shape_mae_per_dim"):
        console.print(
            f"shape MAE per dimension {summary['shape_mae_per_dim']}; best constant guess (GT median): "
            f"{summary['shape_mae_constant_guess']:.3f}"
        )
    console.print(table)
    if summary.get("auc_j") is not None:  # hand parts (FreiHAND protocol)
        console.print(
            "hand AUC of the PCK curve over 0-50 mm: joints {} (PA {}), vertices {} (PA {})".format(
                *(("n/a" if summary.get(k) is None else f"{summary[k]:.3f}") for k in HAND_AUC)
            )
        )
    regions = [(k[16:-3], summary[k]) for k in POSE_ONLY_REGIONS if summary.get(k) is not None]
    if regions:  # mpvpe_pose_only_<region>_mm
        console.print("pose-only MPVPE by region (mm): " + ", ".join(f"{r} {v:.2f}" for r, v in regions))
    if summary.get("mpvpe_face_mm") is not None:  # Anny whole-body records
        console.print(
            "whole-body parts, MPVPE (mm, each part aligned at its centroid): left hand {}, right hand {}, "
            "face {}".format(
                *(("n/a" if summary.get(k) is None else f"{summary[k]:.2f}") for k in PART_MPVPE)
            )
        )
    if json_out:
        atomic_write_json(json_out, summary)
    if csv_out:
        with atomic_write(csv_out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["id", *(k for k in rows[0] if k != "id")] if rows else ["id"])
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})


def _model_files(body_model: str | None, meta: dict) -> dict[str, str]:
    """``{model type: user file}`` for the records' SMPL-family model: ``--body-model``, else the model
    path in the pseudo-GT's config when it still exists (names such as ``flame`` use the default lookup)."""
    from neuralannot.bodies import BodyModelError
    from neuralannot.bodies.parts import MODEL_NAMES
    from neuralannot.bodies.smplx_family import infer_model_type

    given = body_model or (meta.get("config") or {}).get("body_model")
    if not given or str(given).lower() in MODEL_NAMES:
        return {}
    if not Path(given).exists():
        if body_model:
            raise FileNotFoundError(f"--body-model {body_model}: no such file or folder")
        return {}
    try:
        return {infer_model_type(Path(given)): str(given)}
    except BodyModelError as e:
        raise ValueError(f"--body-model {given}: {e}") from None
