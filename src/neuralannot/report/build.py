"""Build the static HTML report of a pseudo-GT file on its dataset (``neuralannot report``).

Layout of ``out``: ``index.html`` (written last), ``metrics.json`` (summary + per-sample rows, worst
first), ``plots/*.png`` and ``samples/NNNN_{overlay,side,joints}.jpg``. The report is built in a temp
folder that replaces ``out`` as a whole when it is complete, so a failed run leaves the previous report
untouched (never a mix of old and new files). ``out`` must be new, empty or an earlier report.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from neuralannot.data.fingerprint import other_samples
from neuralannot.data.sample import Sample, SampleError, to_jsonable
from neuralannot.evaluation import KEYS, ModelCache, evaluate
from neuralannot.io.atomic import atomic_folder, atomic_write_bytes, atomic_write_json, atomic_write_text
from neuralannot.io.pseudo_gt import PseudoGT
from neuralannot.report.html import Card, render_page
from neuralannot.report.overlays import BACKGROUND, render_tiles
from neuralannot.report.plots import error_histograms, per_joint_bars
from neuralannot.report.posing import camera_matrix, per_joint_errors, pose_records

#: Default ranking metrics, the first one measured on some sample is used.
SORT_KEYS = ("mpvpe_mm", "mpjpe_mm", "reproj_px")
TILE = 256


def sort_key(rows: list[dict], sort_by: str = "auto") -> str | None:
    """The metric to rank by: ``sort_by`` (one of evaluation KEYS) or, for ``auto``, the first of
    :data:`SORT_KEYS` measured on some row (None if none is)."""
    if sort_by != "auto":
        if sort_by not in KEYS:
            raise ValueError(f"--sort-by must be auto or one of {', '.join(KEYS)}, got {sort_by!r}")
        return sort_by
    return next((k for k in SORT_KEYS if any(not math.isnan(r[k]) for r in rows)), None)


def worst_first(rows: list[dict], key: str | None) -> list[dict]:
    """Rows by decreasing ``key``; rows where it is unmeasured go last (stable)."""
    if key is None:
        return list(rows)
    return sorted(rows, key=lambda r: (math.isnan(r[key]), -r[key] if not math.isnan(r[key]) else 0.0))


def _jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _image(s: Sample, skip_bad: bool) -> tuple[np.ndarray, str]:
    """The sample's image, or a grey canvas and a note (no image, or unreadable with ``skip_bad``)."""
    from neuralannot.data.transforms import load_image

    note = "no image" if not s.image else ""
    if s.image:
        try:
            return load_image(s.image, s.id, s.image_size), ""
        except SampleError as err:
            if not skip_bad:
                raise
            note = f"image unreadable ({err.problem})"
    w, h = s.image_size or (int(s.bbox[0] + s.bbox[2]) + 1, int(s.bbox[1] + s.bbox[3]) + 1)
    return np.full((h, w, 3), BACKGROUND, np.uint8), note


def check_report_folder(out: str | Path) -> None:
    """Refuse an ``out`` that is a file or a non-empty folder other than an earlier report (it would be
    replaced as a whole)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; the report needs a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").is_file():
        raise ValueError(f"--out {out} is a non-empty folder but not a report (no index.html); "
                         "use a new or empty folder")  # fmt: skip


def build_report(
    pred: str | Path,
    data: str | Path,
    out: str | Path,
    max_samples: int = 50,
    skip_bad: bool = False,
    sort_by: str = "auto",
    progress: bool = True,
    joint_map: str | Path | dict | None = None,
    allow_outside_root: bool = False,
) -> dict[str, Any]:
    """Evaluate ``pred`` on ``data`` and write the report to ``out``; returns a short summary.

    Raises PseudoGTError / SampleError / ValueError (bad files or arguments, naming them).
    """
    from tqdm import tqdm

    from neuralannot.data.loading import load_samples
    from neuralannot.io.pseudo_gt import read_pseudo_gt
    from neuralannot.render import MeshRenderer

    if max_samples < 0:
        raise ValueError(f"--max-samples must be >= 0, got {max_samples}")
    pred, data, out = Path(pred), Path(data), Path(out)
    check_report_folder(out)
    records, meta = read_pseudo_gt(pred, as_dict=True)
    samples, load_report = load_samples(data, skip_bad=skip_bad, joint_map=joint_map,
                                        allow_outside_root=allow_outside_root)  # fmt: skip
    warning = other_samples(meta, records, samples)  # the CLI prints it; the page and metrics.json keep it
    cache = ModelCache()
    rows, summary = evaluate(records, samples, cache)
    key = sort_key(rows, sort_by)
    rows = worst_first(rows, key)
    shown = [r["id"] for r in rows[:max_samples]]
    posed = pose_records(records, samples, cache, keep=set(shown))

    with atomic_folder(out) as dst:  # replaces out only once complete
        plots = _write_plots(dst, rows, *per_joint_errors(samples, records, posed))
        by_id = {s.id: s for s in samples}
        row_by_id = {r["id"]: r for r in rows}
        cards, unreadable = [], 0
        renderer = MeshRenderer(TILE, TILE, samples=4, smooth=True)
        try:
            for rank, sid in enumerate(tqdm(shown, desc="rendering", unit="sample", disable=not progress), 1):
                s, rec = by_id[sid], records[sid]
                image, note = _image(s, skip_bad)
                unreadable += note.startswith("image unreadable")
                K = camera_matrix(rec.camera)
                if K is None:
                    note = "; ".join(filter(None, [note, "the pseudo-GT has no camera: mesh not overlaid"]))
                tiles = render_tiles(renderer, image, s.bbox, posed.vertices[sid], posed.faces[sid],
                                     posed.keypoints[sid], K, s.joints_2d, TILE)  # fmt: skip
                images = {}
                for kind in ("overlay", "side", "joints"):
                    rel = f"samples/{rank:04d}_{kind}.jpg"
                    atomic_write_bytes(dst / rel, _jpeg(getattr(tiles, kind)))
                    images[kind] = rel
                cards.append(Card(rank, sid, _part(rec), row_by_id[sid], images, rec.quality, note))
        finally:
            renderer.release()

        info = {
            "pseudo-GT": str(pred), "dataset": str(data), "method": meta.get("method"),
            "models": ", ".join(sorted({f"{r.model} ({_part(r)})" for r in records.values()})),
            "samples in dataset": len(samples), "skipped while loading": load_report.num_skipped,
            "unreadable images (skipped)": unreadable,
            **({"WARNING": warning} if warning else {}),
        }  # fmt: skip
        result = {"index": str(out / "index.html"), "rendered": len(cards), "sort_by": key,
                  "unreadable_images": unreadable, **({"warning": warning} if warning else {}),
                  **summary}  # fmt: skip
        atomic_write_json(dst / "metrics.json", to_jsonable({"summary": result, "info": info, "rows": rows}))
        title = f"NeuralAnnot report: {pred.name} on {data.name}"
        atomic_write_text(dst / "index.html", render_page(title, info, summary, plots, cards, key))
    return result


def _part(r: PseudoGT) -> str:
    return f"{r.part}, {r.side}" if r.side else r.part


def _write_plots(out: Path, rows: list[dict], names: list[str], e3: np.ndarray, e2: np.ndarray
                 ) -> list[tuple[str, str]]:  # fmt: skip
    """Histograms and per-joint bars as PNG files; returns (caption, relative path) of those written."""
    made = [
        ("Per-sample error histograms (dashed: mean)", "plots/error_histograms.png",
         error_histograms(rows, KEYS)),
        ("Mean 3D error per joint (root-aligned, vs annotated 3D joints)", "plots/joint_errors_3d.png",
         per_joint_bars(names, e3, "mm", "3D joint error")),
        ("Mean 2D reprojection error per joint", "plots/joint_errors_2d.png",
         per_joint_bars(names, e2, "px", "2D reprojection error")),
    ]  # fmt: skip
    written = []
    for caption, rel, png in made:
        if png is not None:
            atomic_write_bytes(out / rel, png)
            written.append((caption, rel))
    return written
