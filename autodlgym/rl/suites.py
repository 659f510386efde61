"""Named task suites: folds of training tasks and held-out test tasks.

A learned searcher is for tasks it was not trained on, so a suite says which tasks an agent
may train on and which it is judged on:

- ``nbgraph-loo``: the 9 NAS-Bench-Graph tables, leave one out: fold ``cora`` trains on the
  other 8 and tests on cora, and so on for each of the 9.
- ``mnist1d``: train on the MNIST-1D lookup table (``mnist1d-table``), test on the trained
  ``mnist1d`` task (table to training: the same kind of architectures, scored for real).

``budget`` is the evaluations of a search on a test task (what the figures are reported at).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autodlgym.errors import AutoDLError
from autodlgym.utils import did_you_mean

#: NAS-Bench-Graph's datasets, in the package's order
NBGRAPH = (
    "cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv", "proteins",
)  # fmt: skip


@dataclass(frozen=True)
class Fold:
    """One split: an agent trains on ``train`` and is judged on ``test`` (task names)."""

    name: str
    train: tuple[str, ...]
    test: tuple[str, ...]


@dataclass(frozen=True)
class Suite:
    """Folds of one protocol; ``budget`` evaluations per search on a test task."""

    name: str
    description: str
    folds: tuple[Fold, ...]
    budget: int = 100

    def fold(self, name: str) -> Fold:
        """The fold called ``name`` (AutoDLError with the closest names otherwise)."""
        for f in self.folds:
            if f.name == name:
                return f
        names = [f.name for f in self.folds]
        raise AutoDLError(
            f"suite {self.name!r} has no fold {name!r}{did_you_mean(name, names)}; "
            f"folds: {', '.join(names)}"
        )

    @property
    def test_tasks(self) -> tuple[str, ...]:
        """Every test task of the suite, once, in fold order."""
        return tuple(dict.fromkeys(t for f in self.folds for t in f.test))


def _nbgraph_loo() -> Suite:
    tasks = [f"nasbench-graph:{d}" for d in NBGRAPH]
    folds = tuple(
        Fold(d, tuple(t for t in tasks if t != held), (held,)) for d, held in zip(NBGRAPH, tasks)
    )
    return Suite(
        "nbgraph-loo",
        "NAS-Bench-Graph, leave one table out: train on 8 tables, test on the 9th (9 folds)",
        folds,
    )


def _mnist1d() -> Suite:
    return Suite(
        "mnist1d",
        "train on the MNIST-1D lookup table, test on the trained MNIST-1D task",
        (Fold("mnist1d", ("mnist1d-table",), ("mnist1d",)),),
        budget=20,
    )


SUITES = {"nbgraph-loo": _nbgraph_loo, "mnist1d": _mnist1d}


def names() -> list[str]:
    """The suites' names."""
    return list(SUITES)


def get(name: str) -> Suite:
    """The suite called ``name``."""
    if name not in SUITES:
        raise AutoDLError(
            f"unknown suite {name!r}{did_you_mean(name, list(SUITES))}; suites: {', '.join(SUITES)}"
        )
    return SUITES[name]()


def train_env(tasks: Sequence[str] | Fold, num_envs: int = 1, **kwargs: Any) -> Any:
    """A vector env whose copies each sample a training task per episode
    (:class:`~autodlgym.envs.search_env.TaskSamplingEnv` in Gymnasium's ``SyncVectorEnv``);
    ``kwargs`` reach every task's :class:`~autodlgym.envs.search_env.SearchEpisodeEnv`."""
    from gymnasium.vector import SyncVectorEnv

    from autodlgym.envs.search_env import TaskSamplingEnv

    task_list = list(tasks.train if isinstance(tasks, Fold) else tasks)
    return SyncVectorEnv([lambda: TaskSamplingEnv(task_list, **kwargs) for _ in range(num_envs)])
