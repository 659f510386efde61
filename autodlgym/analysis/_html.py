"""Pieces of the report pages: figures as embedded PNGs, tables, sections, the inline script.

Everything a page needs is inside it: images as ``data:`` URIs, the stylesheet and the small
script of ``report.js`` (sortable tables, the per-trial drill-down) inlined, nothing fetched.
"""

from __future__ import annotations

import functools
import html
import warnings
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING

import pandas as pd

from autodlgym.analysis._figures import figure_data_uri

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: Styles of the views added to the report (the sortable tables and the drill-down).
VIEW_CSS = """
th.sortable{cursor:pointer;user-select:none;white-space:nowrap}
th.sortable:hover{background:#e6eef7}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:.75em}
th[aria-sort=descending]::after{content:" \\25BC";font-size:.75em}
.scroll{max-height:70vh;overflow:auto;border:1px solid #ddd}
.scroll table{margin:0}.scroll thead th{position:sticky;top:0;z-index:1}
table.trials{white-space:nowrap}table.trials tr.trial{cursor:pointer}table.trials tr.trial:hover{background:#f0f6fc}
table.trials tr.open{background:#e6eef7}
tr.st-stopped td:nth-child(2){color:#0b6fa4}tr.st-pruned td:nth-child(2){color:#9a6700}
tr.st-timeout td:nth-child(2),tr.st-error td:nth-child(2),tr.st-nan td:nth-child(2),
tr.st-oom td:nth-child(2),tr.st-worker_lost td:nth-child(2){color:#b3261e}
.drill{padding:.4em .2em}.drill-cols{display:flex;flex-wrap:wrap;gap:18px}
.drill-cols>div{min-width:260px}.drill pre{max-height:320px;max-width:420px}
.drill h4{margin:.4em 0 .2em}.drill .message{color:#b3261e}
table.kv th{background:none;font-weight:600}
"""


@functools.cache
def script() -> str:
    """The page's script (``report.js``), ready to inline in a ``<script>`` element."""
    text = resources.files("autodlgym.analysis").joinpath("report.js").read_text("utf-8")
    return text.replace("</", "<\\/")


def figure(make: Callable[[], Figure], alt: str) -> str:
    """``make()``'s figure as an ``<img>`` with an embedded PNG."""
    # empty figures warn (for notebooks); in a page the figure itself says what is missing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig = make()
    return f'<img alt="{html.escape(alt)}" src="{figure_data_uri(fig)}">'


def table(df: pd.DataFrame, empty: str, floats: str = "{:.4g}") -> str:
    """``df`` as an HTML table (a note saying ``empty`` when it has no rows)."""
    if df.empty:
        return f'<p class="empty">{html.escape(empty)}</p>'
    return df.to_html(
        index=False,
        escape=True,
        na_rep="",
        border=0,
        float_format=lambda v: floats.format(v),
    )


def section(sid: str, title: str, body: str) -> str:
    """A ``<section id=sid>`` with its title."""
    return f'<section id="{sid}"><h2>{html.escape(title)}</h2>\n{body}\n</section>\n'


def note(text: str | None, nid: str | None = None) -> str:
    """A highlighted note (nothing for None)."""
    if not text:
        return ""
    at = f' id="{nid}"' if nid else ""
    return f'<p class="note"{at}>{html.escape(text)}</p>'
