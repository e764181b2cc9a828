"""Report plots as PNG bytes (matplotlib's Agg canvas directly: no pyplot state, no global backend)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np

LABELS = {
    "mpjpe_mm": "MPJPE (mm)",
    "pa_mpjpe_mm": "PA-MPJPE (mm)",
    "reproj_px": "2D reprojection (px)",
    "mpvpe_mm": "MPVPE (mm)",
    "pa_mpvpe_mm": "PA-MPVPE (mm)",
}


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def error_histograms(rows: Sequence[dict], keys: Sequence[str]) -> bytes | None:
    """One histogram per metric key that has values in ``rows``; None when no metric has any."""
    from matplotlib.figure import Figure

    series = {k: np.array([r[k] for r in rows if not math.isnan(r[k])]) for k in keys}
    series = {k: v for k, v in series.items() if v.size}
    if not series:
        return None
    fig = Figure(figsize=(3.2 * len(series), 2.8), layout="constrained")
    for i, (k, v) in enumerate(series.items()):
        ax = fig.add_subplot(1, len(series), i + 1)
        ax.hist(v, bins=min(30, max(5, v.size // 2)), color="#4a7fc1", edgecolor="white")
        ax.axvline(float(v.mean()), color="#d33", linestyle="--", label=f"mean {v.mean():.1f}")
        ax.set_xlabel(LABELS.get(k, k))
        ax.set_ylabel("samples")
        ax.legend(fontsize=8)
    return _png(fig)


def per_joint_bars(names: Sequence[str], errors: np.ndarray, unit: str, title: str) -> bytes | None:
    """Bar plot of the mean per-joint error; ``errors`` (N, J) with NaN where unmeasured."""
    from matplotlib.figure import Figure

    errors = np.asarray(errors, dtype=np.float64)
    if errors.size == 0 or np.isnan(errors).all():
        return None
    counts = (~np.isnan(errors)).sum(0)
    means = np.where(counts > 0, np.nansum(errors, 0) / np.maximum(counts, 1), 0.0)
    fig = Figure(figsize=(max(6.0, 0.28 * len(names) + 1.5), 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(np.arange(len(names)), means, color=np.where(counts > 0, "#4a7fc1", "#bbbbbb"))
    ax.set_xticks(np.arange(len(names)), list(names), rotation=90, fontsize=7)
    ax.set_ylabel(f"mean error ({unit})")
    ax.set_title(title, fontsize=10)
    return _png(fig)
