"""The scikit-learn baselines of a run, as the leaderboard, the report and ``search`` show them.

A run on a user's data records yardsticks fitted on the same split as its networks
(:mod:`autodlgym.training.baselines`, read back by :meth:`Run.baselines
<autodlgym.run.Run.baselines>`); this module puts them beside the search's best.
"""

from __future__ import annotations

import math
from typing import Any

#: how each baseline is named on screen
LABELS = {
    "hist_gradient_boosting": "HistGradientBoosting",
    "logistic_regression": "LogisticRegression",
    "ridge": "Ridge",
}


def _num(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(v) else f"{v:.4f}"


def baseline_lines(rows: Any, best: tuple[float | None, float | None] | None = None) -> list[str]:
    """Lines that show the baselines (a :meth:`Run.baselines` frame, or ``(name, status,
    val, test)`` tuples) and, given ``best`` = (val, test) of the search's answer, how it
    compares: ``baselines (scikit-learn, same split): HistGradientBoosting val 0.9630 test
    0.9259 | LogisticRegression val ...``. No lines when there are no baselines."""
    if hasattr(rows, "itertuples"):
        rows = [(r.baseline, r.status, r.val_score, r.test_score) for r in rows.itertuples()]
    rows = list(rows)
    if not rows:
        return []
    parts = []
    for name, status, val, test in rows:
        label = LABELS.get(str(name), str(name))
        if status != "ok":
            parts.append(f"{label} {status}")
        else:
            parts.append(f"{label} val {_num(val)} test {_num(test)}")
    lines = ["baselines (scikit-learn, same split): " + " | ".join(parts)]
    scored = [(float(t), LABELS.get(str(n), str(n))) for n, s, _, t in rows if s == "ok" and t == t]
    if best is not None and best[1] is not None and scored:
        top, label = max(scored)
        diff = float(best[1]) - top
        verdict = "above" if diff > 0 else ("level with" if diff == 0 else "below")
        lines.append(
            f"search's best test {_num(best[1])}: {abs(diff):.4f} {verdict} the best baseline "
            f"({label})"
        )
    return lines
