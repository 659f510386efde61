"""The searcher interface, its registry and plugin loading.

A searcher proposes candidates with ``ask(n)`` and learns from ``tell(spec, result)``; it never
trains anything itself and sees only validation scores. It owns a seeded numpy Generator
(``self.rng``). Its state is saved with the run after every ``tell`` (``state_dict`` /
``load_state_dict``; by default everything in ``__dict__`` that pickles), so ``--resume``
continues the same search.

Searchers are found by name in the registry (``@register_searcher("name")``), through the
``autodlgym.searchers`` entry-point group, or as ``package.module:Class``.

A searcher sees the space and, if its ``__init__`` takes a ``context`` keyword, a
:class:`SearchContext`: the task's inputs, the number of trials, and a way to score specs at
initialisation. It never imports environments, trainers or tasks.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.registry import Registry
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import OVER_BUDGET, TrialResult

ENTRY_POINT_GROUP = "autodlgym.searchers"


def _adopt(name: str, obj: Any) -> None:
    SEARCHERS.add(name, _check_class(name, obj))


SEARCHERS: Registry[type[Searcher]] = Registry(
    "searcher", lazy_module="autodlgym.searchers", group=ENTRY_POINT_GROUP, adopt=_adopt
)


class InitScorer(Protocol):
    """Scores specs at initialisation, untrained, on the run's task.

    ``scorer(specs, name, seed=..., batch=...)`` is the diagnostic ``name`` (one of
    ``scorer.names``) of each spec, in order: each model is initialised under ``seed`` and
    measured on ``batch`` training examples drawn from ``seed``; nan where a spec cannot be
    built or scored, or the value is missing or not finite.
    """

    #: the diagnostics it can score
    names: tuple[str, ...]

    def __call__(
        self, specs: Sequence[ArchSpec], name: str, *, seed: int, batch: int
    ) -> list[float]: ...


@dataclass(frozen=True)
class SearchContext:
    """What a run tells a searcher beyond the space (built by the runner).

    Attributes:
        io: the task's inputs and outputs, or None when unknown.
        trials: the evaluations the search will get (``--trials``), or None ("budget" is
            the word for cost limits only).
        score_at_init: scores specs at initialisation on the run's task (what the zero-cost
            pre-screen ranks by), or None.
    """

    io: IOSpec | None = None
    trials: int | None = None
    score_at_init: InitScorer | None = None


class Searcher(ABC):
    """Base class of all searchers.

    Args:
        space: the search space to propose from.
        seed: seeds ``self.rng``.
        run_dir: the run directory (a searcher may keep files there, e.g. an Optuna study),
            or None for an in-memory search.
        **options: searcher-specific settings (from ``--searcher-opt key=value``).

    Subclasses implement :meth:`ask` and usually :meth:`tell`.
    """

    #: one line for ``autodlgym searchers``
    description: str = ""

    def __init__(
        self, space: SearchSpace, seed: int = 0, run_dir: str | Path | None = None, **options: Any
    ) -> None:
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if options:
            raise AutoDLError(
                f"searcher {type(self).__name__} takes no option(s) {', '.join(sorted(options))}"
            )

    @abstractmethod
    def ask(self, n: int = 1) -> list[ArchSpec]:
        """Propose ``n`` candidates (each must be in ``self.space``)."""

    def propose(self, n: int = 1, space: SearchSpace | None = None) -> list[ArchSpec]:
        """``n`` candidates from :meth:`ask` that fit the budget of ``space`` (default
        ``self.space``); what the runner calls.

        Built-in searchers only ask candidates inside the budget; for any other searcher a
        candidate over it is never returned: the searcher is told an ``over_budget`` result
        (so it can learn to avoid such candidates) and asked again.

        Raises:
            AutoDLError: :data:`~autodlgym.searchspace.constraints.MUTATE_TRIES` candidates in
                a row were over the budget.
        """
        from autodlgym.searchspace.constraints import MUTATE_TRIES

        space = self.space if space is None else space
        out: list[ArchSpec] = []
        misses = 0
        while len(out) < n:
            for spec in self.ask(n - len(out)):
                try:
                    reason = space.over_budget(spec)
                except (AutoDLError, ValueError, TypeError, KeyError):
                    reason = None  # not a spec of this space: the runner records why
                if reason is None:
                    out.append(spec)
                    misses = 0
                    continue
                space.rejected += 1
                misses += 1
                self.tell(spec, TrialResult.failure(OVER_BUDGET, f"over budget: {reason}"))
            if misses >= MUTATE_TRIES:
                raise AutoDLError(
                    f"searcher {type(self).__name__} proposed {misses} candidates in a row over "
                    f"the budget ({space.constraints.describe()}); raise the limits "
                    "(--max-params / --max-flops) or use a searcher that samples the space"
                )
        return out

    def tell(self, spec: ArchSpec, result: TrialResult) -> None:  # noqa: B027 - optional hook
        """Learn from the evaluation of a candidate this searcher proposed (or any candidate)."""

    def discard(self, spec: ArchSpec) -> None:  # noqa: B027 - optional hook
        """Forget a candidate this searcher proposed that will never be evaluated (a wrapper
        such as the zero-cost pre-screen asked for more than it trains). Not a result: the
        searcher learns nothing from it; it only releases what it keeps for pending asks."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the search; must pickle. The space and a
        ``context`` attribute (the run's :class:`SearchContext`, given again on resume) are
        not included."""
        skip = ("space", "run_dir", "context")
        return {k: v for k, v in self.__dict__.items() if k not in skip}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (files, studies)."""


def register_searcher(name: str, **meta: Any):
    """Class decorator adding a searcher to the registry under ``name``."""
    return SEARCHERS.register(name, **meta)


def list_searchers() -> list[tuple[str, str, str]]:
    """``(name, origin, description)`` for built-ins, searchers registered from Python and
    entry-point plugins; a plugin that fails to load is listed with the reason."""
    failed = SEARCHERS.load_plugins()
    out = []
    for name in SEARCHERS.names():
        if name in failed:
            ep = SEARCHERS.plugins()[name]
            error = failed[name].split(" fails to load: ", 1)[-1]
            out.append((name, f"plugin {ep.value}", f"(fails to load: {error})"))
            continue
        cls = SEARCHERS.get(name)
        desc = cls.description or (cls.__doc__ or "").strip().split("\n")[0]
        out.append((name, SEARCHERS.origin(name), desc))
    return out


def get_searcher(name: str) -> type[Searcher]:
    """A searcher class by registry name, entry-point name or ``package.module:Class``; ``rl:PATH``
    is a trained policy (:mod:`autodlgym.searchers.learned`)."""
    if name.startswith("rl:"):
        from autodlgym.searchers.learned import searcher_for

        return searcher_for(name)
    if ":" in name:
        mod_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(mod_name)
        except ImportError as exc:
            raise AutoDLError(f"cannot import searcher module {mod_name!r}: {exc}") from None
        cls = getattr(module, attr, None)
        if cls is None:
            raise AutoDLError(f"module {mod_name!r} has no searcher class {attr!r}")
        return _check_class(name, cls)
    if name not in SEARCHERS:
        raise SEARCHERS.unknown(name, hint=", or give package.module:Class")
    return _check_class(name, SEARCHERS.get(name))


def _check_class(name: str, cls: Any) -> type[Searcher]:
    if not (isinstance(cls, type) and issubclass(cls, Searcher)):
        raise AutoDLError(f"{name!r} is not a subclass of autodlgym.Searcher")
    return cls


def takes_option(cls: type, name: str) -> bool:
    """Whether a searcher class accepts the keyword ``name`` (e.g. ``budget``, ``context``)."""
    import inspect

    return name in inspect.signature(cls.__init__).parameters


def make_searcher(
    name: str,
    space: SearchSpace,
    seed: int = 0,
    run_dir: str | Path | None = None,
    budget: int | None = None,
    context: SearchContext | None = None,
    **options: Any,
) -> Searcher:
    """Build a searcher by name. ``budget`` (the evaluations the search will get) and
    ``context`` (the run's :class:`SearchContext`) reach searchers that take a keyword of that
    name and are dropped for the others."""
    cls = get_searcher(name)
    if budget is not None and "budget" not in options and takes_option(cls, "budget"):
        options["budget"] = int(budget)
    if context is not None and "context" not in options and takes_option(cls, "context"):
        options["context"] = context
    try:
        return cls(space, seed=seed, run_dir=run_dir, **options)
    except TypeError as exc:
        raise AutoDLError(f"searcher {name!r} rejected its options: {exc}") from None
