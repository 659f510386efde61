"""The experiment registry, the outcome type and helpers shared by the experiments."""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from autodlgym.searchspace.space import SearchSpace
    from autodlgym.trial import TrialResult

#: name -> module under autodlgym.experiments, in the order of the README
EXPERIMENTS: dict[str, str] = {
    "gamma-l": "gamma_l",
    "hanin-sum": "hanin_sum",
    "random-features": "random_features",
    "conv-prior": "conv_prior",
    "chrono-init": "chrono_init",
    "skip-depth": "skip_depth",
    "spectral-bias": "spectral_bias",
    "rediscover": "rediscover",
    "graph-homophily": "graph_homophily",
    "oversmoothing": "oversmoothing",
}

SPACES = Path(__file__).with_name("spaces")


@dataclass
class Outcome:
    """What an experiment measured.

    Attributes:
        table: one row per measured setting; columns ``measured`` and ``published`` hold the
            numbers to compare where the paper gives one (text where it states a direction).
        figure: the experiment's plot.
        lines: a few sentences: what was measured against what was claimed.
    """

    table: pd.DataFrame
    figure: Figure
    lines: list[str] = field(default_factory=list)


def get_experiment(name: str) -> ModuleType:
    """The module of experiment ``name``.

    Raises:
        AutoDLError: unknown name (with the list of names).
    """
    if name not in EXPERIMENTS:
        import difflib

        close = difflib.get_close_matches(name, EXPERIMENTS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise AutoDLError(
            f"unknown experiment {name!r}; {hint}choose one of: {', '.join(EXPERIMENTS)}"
        )
    return importlib.import_module(f"autodlgym.experiments.{EXPERIMENTS[name]}")


def list_experiments() -> list[tuple[str, str, str]]:
    """(name, claim, source) of every experiment."""
    out = []
    for name in EXPERIMENTS:
        mod = get_experiment(name)
        out.append((name, mod.CLAIM, mod.SOURCE))
    return out


def run_experiment(
    name: str, out: str | Path, quick: bool = False, seed: int = 0
) -> tuple[Outcome, Path, Path]:
    """Run experiment ``name``; write ``out/NAME.png`` and ``out/NAME.csv``.

    Returns:
        The outcome and the paths of the figure and the table.
    """
    import matplotlib

    matplotlib.use("Agg")
    mod = get_experiment(name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    outcome: Outcome = mod.run(quick=quick, seed=seed)
    seconds = time.perf_counter() - t0
    png, csv = out / f"{name}.png", out / f"{name}.csv"
    outcome.figure.savefig(png, dpi=110, bbox_inches="tight")
    outcome.table.to_csv(csv, index=False)
    outcome.lines.append(f"({'quick' if quick else 'full'} run, {seconds:.0f} s)")
    return outcome, png, csv


@cache
def load_space(name: str) -> SearchSpace:
    """A space file of this package's ``spaces/`` folder, by stem."""
    from autodlgym.searchspace.space import SearchSpace

    return SearchSpace.from_file(SPACES / f"{name}.yaml")


def train(
    space: SearchSpace,
    values: Mapping[str, Any],
    task: Any,
    epochs: int,
    seed: int = 0,
    max_train_samples: int | None = None,
) -> TrialResult:
    """Train the spec ``values`` (checked against ``space``) through ``train_and_score``."""
    from autodlgym.training.trainer import train_and_score
    from autodlgym.trial import Fidelity

    spec = space.validate(dict(values))
    fidelity = Fidelity(epochs=epochs, max_train_samples=max_train_samples)
    return train_and_score(spec, task, fidelity, seed=seed, diagnostics=False)


def figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6):
    """A matplotlib figure and its axes (a flat list), Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    plt.close(fig)
    return fig, list(axes.flat)


def pct(x: float | None) -> float | None:
    """A score in [0, 1] as a percentage rounded to 0.1 (None stays None)."""
    return None if x is None else round(100.0 * float(x), 1)


#: training settings of the experiments unless one says otherwise (the MNIST-1D paper's)
DEFAULTS: dict[str, Any] = {
    "optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0, "batch_size": 100, "grad_clip": 0.0,
    "activation": "relu", "norm": "none", "dropout": 0.0, "init": "he_normal",
    "zero_init_residual": False, "trainable": "all", "connections": "chain",
    "head_pool": "flatten",
}  # fmt: skip


def make_spec(space: SearchSpace, **values: Any):
    """A spec of ``space`` from the given decisions, :data:`DEFAULTS` for the training
    settings, and the first option of any other active decision; checked by ``validate``."""
    chosen: dict[str, Any] = {}
    for choice in space.choices:
        if not space.is_active(choice, chosen):
            continue
        name = choice.name
        if name in values:
            chosen[name] = values[name]
        elif name in DEFAULTS and DEFAULTS[name] in choice.options:
            chosen[name] = DEFAULTS[name]
        else:
            chosen[name] = choice.options[0]
    unknown = set(values) - set(chosen)
    if unknown:
        raise AutoDLError(f"decisions {sorted(unknown)} are not active in this spec")
    return space.validate(chosen)


def print_experiments() -> None:
    """``autodlgym experiments``: one aligned line per experiment."""
    rows = list_experiments()
    width = max(len(name) for name, _, _ in rows)
    for name, claim, source in rows:
        print(f"{name:<{width}}  {claim}  [{source}]")


def print_experiment(name: str, out: str | Path | None, quick: bool, seed: int) -> None:
    """``autodlgym experiment NAME``: run it, print its table and what it found."""
    import pandas as pd

    mod = get_experiment(name)
    out = Path(out) if out else Path("experiments") / name
    print(f"{name}: {mod.CLAIM} [{mod.SOURCE}]", flush=True)
    outcome, png, csv = run_experiment(name, out, quick=quick, seed=seed)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(outcome.table.to_string(index=False))
    print()
    for line in outcome.lines:
        print(line)
    print(f"wrote {png} and {csv}")
