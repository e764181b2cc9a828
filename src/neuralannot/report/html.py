"""The report page: one static HTML file with inline CSS and relative image links (opens offline)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from neuralannot.evaluation import KEYS
from neuralannot.report.plots import LABELS

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; background: white; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; font-size: 0.9em; }
th { background: #eef; } td.l, th.l { text-align: left; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; } .plots figure { margin: 0; }
.plots img { max-width: 100%; border: 1px solid #ddd; background: white; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: white; border: 1px solid #ccc; border-radius: 4px; padding: 8px; }
.card img { width: 220px; height: 220px; margin-right: 2px; }
.card .id { font-family: monospace; font-size: 0.85em; word-break: break-all; max-width: 670px; }
.legend span { display: inline-block; width: 0.8em; height: 0.8em; border: 1px solid #000; }
.note { color: #a33; font-size: 0.85em; }
"""


@dataclass
class Card:
    """One sample in the page: rank (1 = worst), id, part, metrics row, images {kind: relative path}."""

    rank: int
    sample_id: str
    part: str
    row: Mapping[str, Any]
    images: Mapping[str, str]
    quality: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.2f}" if isinstance(v, float) else escape(str(v))


def _summary_table(summary: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{escape(LABELS[k])}</th>" for k in KEYS)
    means = "".join(f"<td>{_fmt(summary.get(k))}</td>" for k in KEYS)
    counts = "".join(f"<td>{summary.get(f'n_{k}', 0)}</td>" for k in KEYS)
    return (f"<table><tr><th class=l></th>{head}</tr><tr><th class=l>mean</th>{means}</tr>"
            f"<tr><th class=l>samples measured</th>{counts}</tr></table>")  # fmt: skip


def _info_table(info: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th class=l>{escape(str(k))}</th><td class=l>{_fmt(v)}</td></tr>"
                   for k, v in info.items())  # fmt: skip
    return f"<table>{rows}</table>"


def _card(c: Card) -> str:
    imgs = "".join(
        f'<img src="{escape(path)}" alt="{escape(kind)} of {escape(c.sample_id)}" title="{escape(kind)}">'
        for kind, path in c.images.items()
    )
    metrics = " · ".join(f"{LABELS[k]} {_fmt(c.row.get(k))}" for k in KEYS if not _missing(c.row.get(k)))
    conf = c.quality.get("confidence")
    extra = f" · confidence {conf:.2f}" if isinstance(conf, int | float) else ""
    note = f'<div class="note">{escape(c.note)}</div>' if c.note else ""
    return (f'<div class="card"><div class="id">#{c.rank} {escape(c.sample_id)} ({escape(c.part)})</div>'
            f"<div>{imgs}</div><div>{escape(metrics or 'no metric measurable')}{escape(extra)}</div>"
            f"{note}</div>")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def render_page(
    title: str,
    info: Mapping[str, Any],
    summary: Mapping[str, Any],
    plots: Sequence[tuple[str, str]],
    cards: Sequence[Card],
    sort_key: str | None,
) -> str:
    """The whole page. ``plots``: (caption, relative PNG path); ``cards`` in display order."""
    plot_html = "".join(
        f'<figure><img src="{escape(p)}" alt="{escape(cap)}"><figcaption>{escape(cap)}</figcaption></figure>'
        for cap, p in plots
    ) or "<p>No metric could be measured on these samples.</p>"
    order = f"worst first by {LABELS.get(sort_key, sort_key)}" if sort_key else "in dataset order"
    legend = ('<p class="legend">Each sample: mesh overlay on the image crop · the same mesh turned 90° '
              'about the vertical axis · joints: <span style="background:#28c83c"></span> GT, '
              '<span style="background:#e62828"></span> model, yellow lines join each pair.</p>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<link rel="icon" href="data:,"><style>{_CSS}</style></head>
<body><h1>{escape(title)}</h1>
{_info_table(info)}
<h2>Summary ({summary.get("n", 0)} samples, {summary.get("missing", 0)} without pseudo-GT)</h2>
{_summary_table(summary)}
<h2>Error distributions</h2><div class="plots">{plot_html}</div>
<h2>Samples ({len(cards)} shown, {order})</h2>{legend}
<div class="cards">{"".join(_card(c) for c in cards)}</div>
</body></html>
"""
