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
import json
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


def decision_effects(
    df: pd.DataFrame, level: float = 0.95, space: SearchSpace | None = None
) -> pd.DataFrame:
    """Mean validation score per option of each decision, with a t confidence interval.

    Args:
        df: a results frame.
        level: the interval's coverage.
        space: the run's search space, for its option order; without it, options that are all
            numbers are in ascending order and others in order of first appearance.

    Returns:
        One row per decision and option seen in an ``ok`` trial: ``decision``, ``option``,
        ``n`` (its ``ok`` trials), ``mean``, ``sd``, ``ci_low``, ``ci_high`` (NaN with fewer
        than 2 trials). Decisions in frame order, options in option order.
    """
    from autodlgym.analysis._stats import t_quantile

    _require(df, "status", "val_score")
    ok = df[(df["status"] == OK) & df["val_score"].notna()]
    names = set(space.names) if space is not None else set()
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
            half = t_quantile(0.5 + level / 2, n - 1) * g["sd"].to_numpy() / np.sqrt(n)
        half = np.where(n >= 2, half, np.nan)
        g["ci_low"] = g["mean"] - half
        g["ci_high"] = g["mean"] + half
        order = list(space[col].options) if col in names else None
        g = g.iloc[_option_order(list(g["option"]), order)]
        g.insert(0, "decision", col)
        parts.append(g)
    cols = ["decision", "option", "n", "mean", "sd", "ci_low", "ci_high"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=_DTYPES[c]) for c in cols})
    return pd.concat(parts, ignore_index=True)[cols].astype(_DTYPES)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _option_order(options: list, order: list | None) -> list[int]:
    """Positions of ``options`` in the space's ``order`` (unknown ones last), numbers
    ascending, or as they come."""
    if order is not None:
        rank = {json.dumps(o, default=str): i for i, o in enumerate(order)}
        keys = [rank.get(json.dumps(o, default=str), len(rank)) for o in options]
        return sorted(range(len(options)), key=lambda i: keys[i])
    if options and all(_is_number(o) for o in options):
        return sorted(range(len(options)), key=lambda i: float(options[i]))
    return list(range(len(options)))


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


#: Options with fewer ``ok`` trials than this get a point and no interval: a t interval from
#: 2-4 trials is mostly noise (and often wider than every score of the run).
MIN_INTERVAL_N = 5


class _EffectsInfo(NamedTuple):
    effects: pd.DataFrame
    decisions: list[str]  # the ones drawn, largest spread of means first
    n_decisions: int  # decisions with two options or more among ok trials
    note: str | None


def effects_to_draw(
    df: pd.DataFrame,
    space: SearchSpace | None = None,
    max_decisions: int = 20,
    min_n: int = MIN_INTERVAL_N,
) -> pd.DataFrame:
    """The rows of :func:`decision_effects` that :func:`plot_decision_effects` draws.

    The decisions with two options or more among ``ok`` trials, the ``max_decisions`` whose
    option means differ most first (spread over options with at least ``min_n`` trials, then
    over all options for decisions with fewer than two such options), options in option
    order. ``interval`` says whether the option's interval is drawn (``n >= min_n``).
    """
    info = _effects_info(df, None, max_decisions, space, min_n)
    return _drawn(info, min_n)


def _drawn(info: _EffectsInfo, min_n: int) -> pd.DataFrame:
    eff = info.effects[info.effects["decision"].isin(info.decisions)]
    order = {d: i for i, d in enumerate(info.decisions)}
    eff = eff.iloc[np.argsort([order[d] for d in eff["decision"]], kind="stable")]
    return eff.assign(interval=eff["n"] >= min_n).reset_index(drop=True)


def _effects_info(
    df: pd.DataFrame,
    searcher: str | None,
    max_decisions: int,
    space: SearchSpace | None = None,
    min_n: int = MIN_INTERVAL_N,
) -> _EffectsInfo:
    eff = decision_effects(df, space=space)
    counts = eff.groupby("decision", sort=False).size()
    many = counts[counts >= 2].index

    def spread(m: pd.Series) -> float:
        return float(m.max() - m.min()) if len(m) >= 2 else np.nan

    solid = eff[eff["n"] >= min_n].groupby("decision", sort=False)["mean"].agg(spread)
    every = eff.groupby("decision", sort=False)["mean"].agg(spread)
    rank = pd.DataFrame({"solid": solid.reindex(many), "every": every.reindex(many)})
    rank["has_solid"] = rank["solid"].notna()
    rank = rank.sort_values(
        ["has_solid", "solid", "every"], ascending=False, kind="stable", na_position="last"
    )
    return _EffectsInfo(eff, list(rank.index[:max_decisions]), len(rank), effects_note(searcher))


def plot_decision_effects(
    df: pd.DataFrame,
    searcher: str | None = None,
    max_decisions: int = 20,
    ax: Axes | None = None,
    space: SearchSpace | None = None,
    note: bool = True,
) -> Figure:
    """Per-option means with 95 % intervals, one small panel per decision.

    Each panel puts the options in their order: numeric options on their own scale (log when
    they span 10x or more), categories evenly spaced; each tick says how many ``ok`` trials
    the option has. Options with fewer than :data:`MIN_INTERVAL_N` trials are hollow points
    without an interval. The panels share a y axis that spans the drawn intervals and means.

    Args:
        df: a results frame.
        searcher: the run's searcher; an adaptive one puts :func:`effects_note` under the plot.
        max_decisions: draw at most this many decisions (largest spread of means first; see
            :func:`effects_to_draw`); the title says how many of how many.
        ax: ignored unless no decision can be drawn (the figure has a panel per decision).
        space: the run's search space, for the option order.
        note: put the adaptive searcher's caveat under the figure.

    Returns:
        The figure; an empty one (and a warning) when no decision has two options in ``ok``
        trials.
    """
    info = _effects_info(df, searcher, max_decisions, space)
    title = "Effect of each option (mean, 95 % interval)"
    if not info.decisions:
        return empty_figure(title, "no decision has two options among ok trials", ax)
    eff = _drawn(info, MIN_INTERVAL_N)
    k = len(info.decisions)
    ncols = min(4, k)
    nrows = -(-k // ncols)
    note_text = info.note if note else None
    bottom = 0.75 + (0.45 if note_text else 0.0)
    fig = new_figure((2.6 * ncols + 0.4, 2.5 * nrows + 0.9 + bottom), bottom=bottom, top=1.0)
    fig.subplots_adjust(hspace=1.0, wspace=0.15)
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    for a in axes[k:]:
        a.set_axis_off()
    for a, (dec, rows) in zip(axes, eff.groupby("decision", sort=False)):
        _effects_panel(a, str(dec), rows)
    # the shared y axis spans what is drawn: the means and the intervals shown
    shown = eff[eff["interval"]]
    vals = pd.concat([eff["mean"], shown["ci_low"], shown["ci_high"]]).dropna()
    lo, hi = float(vals.min()), float(vals.max())
    pad = 0.06 * (hi - lo) or 0.005
    axes[0].set_ylim(lo - pad, hi + pad)
    for r in range(nrows):
        axes[r * ncols].set_ylabel("validation score", fontsize="small")
    of = f"{k} of {info.n_decisions} decisions, " if k < info.n_decisions else ""
    fig.suptitle(
        f"{title}\n{of}largest difference between options first; hollow: fewer than "
        f"{MIN_INTERVAL_N} ok trials, no interval",
        fontsize="medium",
    )
    if note_text:
        fig.text(0.01, 0.01, note_text, fontsize="x-small", color="#8a3b00", wrap=True)
    return fig


def _effects_panel(ax: Axes, decision: str, rows: pd.DataFrame) -> None:
    opts = list(rows["option"])
    numeric = all(_is_number(o) for o in opts)
    x, scale = _positions(opts)
    if scale == "log":
        ax.set_xscale("log")
        ax.minorticks_off()
    labels = [f"{_short(o)}\nn={n}" for o, n in zip(opts, rows["n"])]
    full = rows["interval"].to_numpy()
    mean = rows["mean"].to_numpy()
    if full.any():
        err = [mean[full] - rows["ci_low"].to_numpy()[full],
               rows["ci_high"].to_numpy()[full] - mean[full]]  # fmt: skip
        ax.errorbar(x[full], mean[full], yerr=err, fmt="o", ms=4, color="#0072B2", capsize=2)
    if (~full).any():
        ax.plot(x[~full], mean[~full], "o", ms=4, mfc="white", mec="#0072B2", ls="none")
    if numeric and len(x) > 1:
        ax.plot(x, mean, color="#0072B2", lw=0.6, alpha=0.4)
    turn = len(opts) > 5 or max(len(_short(o)) for o in opts) * len(opts) > 30
    ax.set_xticks(x, labels, fontsize="x-small", rotation=90 if turn else 0)
    if scale == "even":
        ax.set_xlim(-0.5, len(x) - 0.5)
    ax.set_title(decision, fontsize="small")
    ax.tick_params(axis="y", labelsize="x-small")
    ax.grid(axis="y", color="#eeeeee", lw=0.6)


def _positions(options: list) -> tuple[np.ndarray, str]:
    """Where each option of a panel goes on its x axis, and the axis's scale: numbers on
    their own scale (``"linear"``, or ``"log"`` when they span 10x or more), evenly spaced
    in option order (``"even"``) for categories, for numbers that include 0 and span more
    than 10x, and for numbers so unevenly spread that their ticks would overlap."""
    k = len(options)
    even = (np.arange(k, dtype="float64"), "even")
    if not all(_is_number(o) for o in options):
        return even
    x = np.array([float(o) for o in options])
    if k < 2:
        return x, "linear"
    positive = x[x > 0]
    wide = len(positive) > 0 and positive.max() / positive.min() > 10 - 1e-9
    if wide and (x <= 0).any():
        return even
    scale = "log" if wide else "linear"
    t = np.log10(x) if wide else x
    gaps = np.diff(np.sort(t))
    span = t.max() - t.min()
    if span == 0 or gaps.min() < 0.4 * span / (k - 1):
        return even
    return x, scale


def _short(option: object, width: int = 10) -> str:
    text = f"{option:g}" if _is_number(option) else str(option)
    return text if len(text) <= width else text[: width - 1] + "…"


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
    from autodlgym.optuna_utils import import_importance, quiet_optuna

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
    importance = import_importance()  # scikit-learn only if fANOVA is asked for
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
        importance.PedAnovaImportanceEvaluator()
        if evaluator == "ped-anova"
        else importance.FanovaImportanceEvaluator(seed=seed)
    )
    with warnings.catch_warnings():
        # PED-ANOVA warns when its top quantile holds few trials; the numbers still stand
        warnings.simplefilter("ignore")
        try:
            imp = importance.get_param_importances(study, evaluator=ev, params=varying)
        except (ValueError, RuntimeError) as exc:
            warnings.warn(f"decision importance unavailable: {exc}", stacklevel=2)
            return empty
    imp = {k: v for k, v in imp.items() if math.isfinite(v)}
    out = pd.DataFrame({"decision": list(imp), "importance": list(imp.values())})
    out = out.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    return out.astype({"decision": "str", "importance": "float64"})


#: Below this many ``ok`` trials an importance is a rough guess, and the report says so.
MIN_IMPORTANCE_TRIALS = 30


def importance_note(df: pd.DataFrame, min_trials: int = MIN_IMPORTANCE_TRIALS) -> str | None:
    """A caveat for :func:`decision_importance` on thin or mixed evidence (None otherwise).

    Said when the run has fewer than ``min_trials`` ``ok`` trials, or when its ``ok`` trials
    were trained at more than one fidelity (distinct ``epochs``, ``max_train_samples`` or
    ``max_examples``):
    their scores are then not comparable, and a decision can look important only because
    it was tried at a higher fidelity.
    """
    _require(df, "status", "val_score")
    ok = df[(df["status"] == OK) & df["val_score"].notna()]
    said = []
    if len(ok) < min_trials:
        said.append(
            f"only {len(ok)} ok trial{'' if len(ok) == 1 else 's'} (fewer than {min_trials}): "
            "the ranking is a rough guess and can change with a few more trials"
        )
    mixed = []
    for col, what in (
        ("epochs", "epochs"),
        ("max_train_samples", "training-set sizes"),
        ("max_examples", "caps on examples"),
    ):
        if col in ok.columns:
            values = ok[col].astype(object).where(ok[col].notna(), "all").unique()
            if len(values) > 1:
                mixed.append(f"{len(values)} {what}")
    if mixed:
        said.append(
            "the ok trials were trained at several fidelities ("
            + " and ".join(mixed)
            + "), whose scores do not compare: a decision tried more at a higher fidelity "
            "looks more important than it is"
        )
    if not said:
        return None
    return "Small or mixed sample: " + "; ".join(said) + "."


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
