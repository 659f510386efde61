"""Shared pieces of the analysis figures: bare figures, empty figures, PNG export.

matplotlib is imported only when a figure is drawn. Figures are bare
:class:`~matplotlib.figure.Figure` objects, never pyplot's: they render to PNG through the
Agg canvas whatever backend a notebook has selected, leave pyplot's global state alone, and
are freed as soon as nobody holds them. Jupyter shows them as any figure.
"""

from __future__ import annotations

import base64
import io
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Line colours per trial status (the colour-blind-safe Okabe-Ito palette).
STATUS_COLORS = {
    "ok": "#0072B2",
    "pruned": "#E69F00",
    "nan": "#CC79A7",
    "oom": "#D55E00",
    "timeout": "#009E73",
    "error": "#000000",
    "worker_lost": "#999999",
    "running": "#56B4E9",
}

#: Searchers whose proposals do not depend on earlier results: under them the trials of each
#: option are an unbiased sample of the space, so marginal means compare like with like.
NON_ADAPTIVE_SEARCHERS = frozenset({"random", "qmc"})


def new_figure(
    figsize: tuple[float, float] = (6.4, 4.0),
    left: float = 0.75,
    bottom: float = 0.6,
    right: float = 0.2,
    top: float = 0.4,
) -> Figure:
    """A bare :class:`~matplotlib.figure.Figure` with margins given in inches.

    Not ``plt.figure()``: notebooks and reports never leak pyplot's global state. Fixed
    margins instead of a layout engine: constrained layout measured about a quarter of the
    time of a report.
    """
    from matplotlib.figure import Figure

    w, h = figsize
    fig = Figure(figsize=figsize)
    fig.subplots_adjust(
        left=min(left / w, 0.7), right=1 - right / w, bottom=min(bottom / h, 0.5), top=1 - top / h
    )
    return fig


def new_axes(
    ax: Axes | None = None, figsize: tuple[float, float] = (6.4, 4.0), left: float = 0.75
) -> Axes:
    """``ax`` itself, or the axes of a new figure of ``figsize`` inches (``left`` inches of
    margin for the y tick labels)."""
    if ax is not None:
        return ax
    return new_figure(figsize, left=left).add_subplot()


def label_inches(labels: list[str], points: float = 7.0) -> float:
    """About how wide the longest label is, in inches, at a font of ``points``."""
    longest = max((len(s) for s in labels), default=0)
    return 0.3 + longest * points * 0.6 / 72


def empty_figure(title: str, reason: str, ax: Axes | None = None) -> Figure:
    """Warn with ``reason`` and return a figure that says it, with no data drawn."""
    warnings.warn(f"{title}: {reason}", stacklevel=3)
    ax = new_axes(ax)
    ax.set_title(title)
    ax.text(0.5, 0.5, reason, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_axis_off()
    return ax.figure


def time_unit(seconds: float) -> tuple[float, str]:
    """A readable unit for times up to ``seconds``: the factor to multiply seconds by and its
    name (``ms`` under a second, ``s`` under 2 minutes, ``min`` under 2 hours, else ``h``)."""
    if not seconds or seconds != seconds or seconds < 1:
        return (1000.0, "ms") if seconds and seconds == seconds else (1.0, "s")
    if seconds < 120:
        return 1.0, "s"
    if seconds < 7200:
        return 1 / 60, "min"
    return 1 / 3600, "h"


def figure_png(fig: Figure, dpi: int = 96, pad_inches: float = 0.1) -> bytes:
    """The figure as PNG bytes, trimmed to what is drawn (no label cut at an edge).

    Drawn once: the canvas is rendered, then cropped to the drawn artists' box plus
    ``pad_inches``. ``savefig(bbox_inches="tight")`` draws a figure twice to find that box,
    which was about a third of the time of a report. When something is drawn outside the
    canvas (a legend placed beyond it), that path is taken, so nothing is cut.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig.get_tightbbox(canvas.get_renderer())
    w, h = fig.get_size_inches()
    inside = box is not None and box.x0 >= 0 and box.y0 >= 0 and box.x1 <= w and box.y1 <= h
    if not inside:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=pad_inches,
                    pil_kwargs={"compress_level": 1})  # fmt: skip
        return buf.getvalue()
    pixels = np.asarray(canvas.buffer_rgba())
    rows, cols = pixels.shape[:2]
    x0 = max(int(np.floor((box.x0 - pad_inches) * dpi)), 0)
    x1 = min(int(np.ceil((box.x1 + pad_inches) * dpi)), cols)
    y0 = max(rows - int(np.ceil((box.y1 + pad_inches) * dpi)), 0)  # pixel rows run downwards
    y1 = min(rows - int(np.floor((box.y0 - pad_inches) * dpi)), rows)
    buf = io.BytesIO()
    # zlib level 1: a quarter of the encoding time of the default, files about a tenth larger
    Image.fromarray(pixels[y0:y1, x0:x1]).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def figure_data_uri(fig: Figure, dpi: int = 96) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (for self-contained HTML)."""
    return "data:image/png;base64," + base64.b64encode(figure_png(fig, dpi)).decode("ascii")


def is_adaptive(searcher: str | None) -> bool:
    """Whether a searcher's proposals depend on earlier results (unknown names count as so)."""
    return searcher not in NON_ADAPTIVE_SEARCHERS
