"""What each decision did: per-option effects with 95 % intervals, and decision importance.

Marginal means compare like with like only when the options were sampled independently of the
results (random or quasi-random search). An adaptive searcher (TPE, GP, evolution, REINFORCE,
...) samples the options it believes good more often, and later in the run, when the rest of
the architecture is better too; :func:`effects_note` says so, and the report prints it.

Importance comes from :mod:`optuna.importance` (PED-ANOVA by default, fANOVA on request) over
an in-memory study built from the run's ``ok`` trials, with the search space's Optuna encoding.
Like Optuna's evaluators, it covers the decisions every ``ok`` trial has: conditional ones
(a stage's kernel, stage 3 in a space of 1 to 3 stages) are left out.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import (
    empty_figure,
    is_adaptive,
    label_inches,
    new_axes,
    new_figure,
)
from autodlgym.analysis.leaderboard import _require, choice_columns
from autodlgym.errors import AutoDLError
from autodlgym.trial import OK

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from autodlgym.searchspace.space import SearchSpace

#: Importance evaluators by name.
EVALUATORS = ("ped-anova", "fanova")


def decision_effects(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean validation score per option of each decision, with a t confidence interval.

    Args:
        df: a results frame.
        level: the interval's coverage.

    Returns:
        One row per decision and option seen in an ``ok`` trial: ``decision``, ``option``,
        ``n`` (its ``ok`` trials), ``mean``, ``sd``, ``ci_low``, ``ci_high`` (NaN with fewer
        than 2 trials). Decisions in frame order, options by mean, best first.
    """
    from scipy import stats

    _require(df, "status", "val_score")
    ok = df[(df["status"] == OK) & df["val_score"].notna()]
    parts = []
    for col in choice_columns(df):
        vals = ok[col]
        sub = pd.DataFrame({"option": vals.astype(object), "score": ok["val_score"]})
        sub = sub[vals.notna().to_numpy()]
        if sub.empty:
            continue
        g = sub.groupby("option", sort=False)["score"].agg(["count", "mean", "std"])
        g = g.rename(columns={"count": "n", "std": "sd"}).reset_index()
        n = g["n"].to_numpy(dtype="float64")
        with np.errstate(invalid="ignore", divide="ignore"):
            half = stats.t.ppf(0.5 + level / 2, n - 1) * g["sd"].to_numpy() / np.sqrt(n)
        half = np.where(n >= 2, half, np.nan)
        g["ci_low"] = g["mean"] - half
        g["ci_high"] = g["mean"] + half
        g = g.sort_values("mean", ascending=False, kind="stable")
        g.insert(0, "decision", col)
        parts.append(g)
    cols = ["decision", "option", "n", "mean", "sd", "ci_low", "ci_high"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=_DTYPES[c]) for c in cols})
    return pd.concat(parts, ignore_index=True)[cols].astype(_DTYPES)


_DTYPES = {
    "decision": "str", "option": "object", "n": "int64", "mean": "float64", "sd": "float64",
    "ci_low": "float64", "ci_high": "float64",
}  # fmt: skip


def effects_note(searcher: str | None) -> str | None:
    """A caveat for marginal means under an adaptive searcher (None for random and qmc)."""
    if not is_adaptive(searcher):
        return None
    who = f"searcher {searcher!r}" if searcher else "the searcher"
    return (
        f"{who} adapts its proposals to earlier results (model-based or evolutionary): it "
        "proposed the options it believed good more often, and later in the run, when the rest "
        "of each architecture was better too. Per-option means are then biased; compare "
        "options on a random-search run."
    )


class _EffectsInfo(NamedTuple):
    effects: pd.DataFrame
    decisions: list[str]  # the ones drawn, largest spread of means first
    note: str | None


def _effects_info(df: pd.DataFrame, searcher: str | None, max_decisions: int) -> _EffectsInfo:
    eff = decision_effects(df)
    spread = eff.groupby("decision", sort=False)["mean"].agg(lambda m: m.max() - m.min())
    counts = eff.groupby("decision", sort=False).size()
    spread = spread[counts >= 2].sort_values(ascending=False, kind="stable")
    return _EffectsInfo(eff, list(spread.index[:max_decisions]), effects_note(searcher))


def plot_decision_effects(
    df: pd.DataFrame,
    searcher: str | None = None,
    max_decisions: int = 12,
    ax: Axes | None = None,
) -> Figure:
    """Per-option means with 95 % intervals for the decisions whose options differ most.

    Args:
        df: a results frame.
        searcher: the run's searcher; an adaptive one puts :func:`effects_note` under the plot.
        max_decisions: draw at most this many decisions (largest spread of means first).

    Returns:
        The figure; an empty one (and a warning) when no decision has two options in ``ok``
        trials.
    """
    info = _effects_info(df, searcher, max_decisions)
    title = "Effect of each option (mean, 95 % interval)"
    if not info.decisions:
        return empty_figure(title, "no decision has two options among ok trials", ax)
    eff = info.effects[info.effects["decision"].isin(info.decisions)]
    eff = eff.set_index("decision").loc[info.decisions].reset_index()
    labels = [f"{d} = {o}  (n={n})" for d, o, n in zip(eff["decision"], eff["option"], eff["n"])]
    if ax is None:
        fig = new_figure((8.0, 1.4 + 0.2 * len(eff)), left=label_inches(labels), bottom=0.9)
        ax = fig.add_subplot()
    y = np.arange(len(eff))[::-1]
    lo = (eff["mean"] - eff["ci_low"]).fillna(0.0)
    hi = (eff["ci_high"] - eff["mean"]).fillna(0.0)
    ax.errorbar(eff["mean"], y, xerr=[lo, hi], fmt="o", ms=4, color="#0072B2", capsize=2)
    ax.set_yticks(y, labels, fontsize="x-small")
    # separate decisions with faint lines
    starts = np.flatnonzero(eff["decision"].ne(eff["decision"].shift()).to_numpy())[1:]
    for s in starts:
        ax.axhline(y[s] + 0.5, color="#cccccc", lw=0.8)
    # intervals of options seen twice can be far wider than the scores themselves: keep the
    # axis on the observed scores so the means stay readable (clipped bars run off the edge)
    ok = df.loc[df["status"] == OK, "val_score"].astype("float64").dropna()
    lo_x, hi_x = float(ok.min()), float(ok.max())
    pad = 0.05 * (hi_x - lo_x) or 0.01
    ax.set_xlim(lo_x - pad, hi_x + pad)
    ax.set_xlabel("validation score of ok trials")
    ax.set_title(title)
    if info.note:
        ax.figure.text(0.01, 0.01, info.note, fontsize="x-small", color="#8a3b00", wrap=True)
    return ax.figure


def decision_importance(
    df: pd.DataFrame, space: SearchSpace, evaluator: str = "ped-anova", seed: int = 0
) -> pd.DataFrame:
    """How much each decision explains of the validation score, by :mod:`optuna.importance`.

    Args:
        df: a results frame.
        space: the run's search space (its Optuna encoding gives the distributions).
        evaluator: ``"ped-anova"`` (PED-ANOVA, Watanabe et al. 2023: fast, about the top 10 %
            of trials) or ``"fanova"`` (fANOVA over a random forest; slower).
        seed: seeds fANOVA's forest.

    Returns:
        ``decision``, ``importance`` (normalised to sum to 1), largest first. Empty when fewer
        than two ``ok`` trials or no decision that every ``ok`` trial has varies.

    Raises:
        AutoDLError: an unknown evaluator.
    """
    import json

    import optuna

    from autodlgym.analysis.optuna_export import frozen_trials
    from autodlgym.optuna_utils import quiet_optuna

    if evaluator not in EVALUATORS:
        raise AutoDLError(f"unknown evaluator {evaluator!r}; choose one of {', '.join(EVALUATORS)}")
    _require(df, "status", "val_score", "spec")
    empty = pd.DataFrame(
        {"decision": pd.Series(dtype="str"), "importance": pd.Series(dtype="float64")}
    )
    ok = df[(df["status"] == OK) & df["val_score"].notna()]
    if len(ok) < 2:
        return empty
    quiet_optuna()
    # numeric decisions on their own scale ("snap": ranges over the options), so both
    # evaluators can use their order; categories stay categorical
    trials = frozen_trials(ok, space, encoding="snap")
    # decisions every trial has, with more than one value seen: the only ones importance
    # evaluators can rank
    common = set.intersection(*(set(t.params) for t in trials)) if trials else set()
    varying = [p for p in common if len({json.dumps(t.params[p], default=str) for t in trials}) > 1]
    if len(trials) < 2 or not varying:
        return empty
    study = optuna.create_study(direction="maximize")
    study.add_trials([_shared(t) for t in trials])
    ev = (
        optuna.importance.PedAnovaImportanceEvaluator()
        if evaluator == "ped-anova"
        else optuna.importance.FanovaImportanceEvaluator(seed=seed)
    )
    with warnings.catch_warnings():
        # PED-ANOVA warns when its top quantile holds few trials; the numbers still stand
        warnings.simplefilter("ignore")
        try:
            imp = optuna.importance.get_param_importances(study, evaluator=ev, params=varying)
        except (ValueError, RuntimeError) as exc:
            warnings.warn(f"decision importance unavailable: {exc}", stacklevel=2)
            return empty
    imp = {k: v for k, v in imp.items() if math.isfinite(v)}
    out = pd.DataFrame({"decision": list(imp), "importance": list(imp.values())})
    out = out.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    return out.astype({"decision": "str", "importance": "float64"})


def _shared(trial: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
    """The trial, as an object that an in-memory storage adds without a deep copy.

    ``InMemoryStorage`` deep-copies every trial it is given, which took most of the time of
    an importance over 10,000 trials. These trials live only in a throw-away study, so the
    study may hold them as they are.
    """
    trial.__class__ = _shared_class()
    return trial


@functools.cache
def _shared_class() -> type:
    from optuna.trial import FrozenTrial

    class SharedTrial(FrozenTrial):
        def __deepcopy__(self, memo: dict) -> SharedTrial:
            return self

    return SharedTrial


def plot_decision_importance(
    df: pd.DataFrame,
    space: SearchSpace,
    evaluator: str = "ped-anova",
    top: int = 15,
    ax: Axes | None = None,
) -> Figure:
    """The ``top`` most important decisions as horizontal bars (see
    :func:`decision_importance`); an empty figure (and a warning) when none can be ranked."""
    return _draw_importance(decision_importance(df, space, evaluator), evaluator, top, ax)


def _draw_importance(imp: pd.DataFrame, evaluator: str, top: int, ax: Axes | None) -> Figure:
    imp = imp.head(top)
    name = "PED-ANOVA" if evaluator == "ped-anova" else "fANOVA"
    title = f"Decision importance ({name})"
    if imp.empty or not (imp["importance"] > 0).any():
        return empty_figure(title, "too few ok trials, or no shared decision varies", ax)
    ax = new_axes(ax, (6.4, 1.2 + 0.28 * len(imp)), left=label_inches(list(imp["decision"]), 9))
    y = np.arange(len(imp))[::-1]
    ax.barh(y, imp["importance"], color="#009E73")
    ax.set_yticks(y, imp["decision"], fontsize="small")
    ax.set_xlabel("share of explained variation")
    ax.set_title(title)
    return ax.figure
