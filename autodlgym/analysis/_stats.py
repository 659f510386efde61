"""Two statistics the report needs on every page, from ``scipy.special`` alone.

Importing ``scipy.stats`` costs about a second (it builds every distribution's docstring);
the report needs only Student's t and Spearman's rho, which ``scipy.special`` gives in a
fraction of that. Both agree with ``scipy.stats`` (tests/analysis/test_views.py checks).
"""

from __future__ import annotations

import numpy as np


def t_quantile(q: float, df: np.ndarray) -> np.ndarray:
    """Student's t quantile ``q`` at ``df`` degrees of freedom (``scipy.stats.t.ppf``);
    NaN where ``df < 1``."""
    from scipy.special import stdtrit

    df = np.asarray(df, dtype="float64")
    with np.errstate(invalid="ignore"):
        out = stdtrit(np.where(df >= 1, df, np.nan), q)
    return np.where(df >= 1, out, np.nan)


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rho of ``x`` and ``y`` and its two-sided p value, as
    ``scipy.stats.spearmanr`` computes them: Pearson's r of the average ranks, and the p
    value of Student's t with ``n - 2`` degrees of freedom. NaN for fewer than 3 pairs or a
    constant side."""
    import pandas as pd
    from scipy.special import stdtr

    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    n = len(x)
    if n < 3:
        return float("nan"), float("nan")
    rx = pd.Series(x).rank().to_numpy()
    ry = pd.Series(y).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan"), float("nan")
    rho = float(np.clip(np.corrcoef(rx, ry)[0, 1], -1.0, 1.0))
    dof = n - 2
    if abs(rho) == 1.0:  # a perfect ranking: t is infinite
        return rho, 0.0
    t = rho * np.sqrt(dof / ((1.0 + rho) * (1.0 - rho)))
    return rho, float(2 * stdtr(dof, -abs(t)))
