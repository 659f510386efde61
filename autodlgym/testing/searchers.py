"""Conformance suite for searchers, built-in and third-party.

Subclass :class:`SearcherConformance` in a pytest module and override one fixture::

    import pytest
    from autodlgym.testing.searchers import SearcherConformance
    from myplugin import MySearcher


    class TestMySearcher(SearcherConformance):
        @pytest.fixture
        def searcher_factory(self):
            return lambda space, seed, run_dir: MySearcher(space, seed=seed, run_dir=run_dir)

Every test then runs on your searcher: ``ask`` returns the requested number of specs inside
the space (the default space and a narrowed user space), ``tell`` accepts every trial status
and specs it never proposed, the same seed gives the same first proposals, ``state_dict``
pickles and loading it into a fresh searcher continues the search exactly, and the global
random state (``random``, ``numpy.random``, torch's) is left alone, and what
:meth:`~autodlgym.Searcher.propose` (the runner's entry) returns fits the space's budget.

No training happens: results come from :func:`synthetic_result`, a cheap deterministic function
of the spec. A searcher that takes a ``context`` gets one from its factory, e.g.
``SearchContext(score_at_init=init_scorer("digits"))``, what the runner gives a run on
digits (:class:`~autodlgym.searchers.base.SearchContext`,
:func:`~autodlgym.training.diagnostics.init_scorer`).
"""

from __future__ import annotations

import math
import pickle
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from autodlgym.searchers.base import Searcher
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import FAILURES, OK, PRUNED, STATUSES, STOPPED, TrialResult

#: ``(space, seed, run_dir) -> Searcher``; run_dir is a fresh directory or None
SearcherFactory = Callable[[SearchSpace, int, "Path | None"], Searcher]

#: a user space narrowed from the default one, as a space file would give it
NARROWED_CONFIG = {
    "base": "default",
    "max_stages": 2,
    "globals": {
        "n_stages": {"options": [1, 2]},
        "optimizer": {"options": ["adam", "sgd"]},
        "lr": {"options": [1e-3, 1e-2]},
        "batch_size": {"options": [64, 128]},
    },
    "stage": {
        "block": {"options": ["mlp", "conv", "residual", "recurrent"]},
        "kernel": {"when": {"block": ["conv", "residual"]}},
        "width": {"options": [16, 32, 64]},
        "depth": {"options": [1, 2]},
    },
    "remove": ["grad_clip", "weight_decay", "growth", "heads"],
}


#: the budget of the conformance test of budgets: about a third of the narrowed space's
#: candidates for MNIST-1D-sized inputs fit it
BUDGET_PARAMS = 20_000
BUDGET_IO = IOSpec("sequence", (1, 40), 10)


def synthetic_score(space: SearchSpace, spec: ArchSpec) -> float:
    """A deterministic score in (0, 1): a logistic function of a fixed random weighting of the
    spec's normalised option indices (inactive decisions count zero)."""
    vec = space.encode(spec).astype(float)
    scale = np.maximum(space.nvec - 1, 1)
    active = np.array([c.name in spec for c in space.choices], dtype=float)
    weights = np.random.default_rng(0).normal(size=len(vec))
    z = float((weights * active * vec / scale).sum())
    return 1.0 / (1.0 + math.exp(-z))


def synthetic_result(space: SearchSpace, spec: ArchSpec, status: str = OK) -> TrialResult:
    """A TrialResult with the given status, as training would report it, without training.

    ``ok`` results have a two-epoch curve ending at :func:`synthetic_score` and a parameter
    count that grows with the option indices; ``pruned`` and ``stopped`` ones stop after one epoch; failures
    have no scores.
    """
    score = synthetic_score(space, spec)
    params = int(1000 * (1 + space.encode(spec).sum()))
    if status == OK:
        curve = [{"epoch": 1, "val_score": 0.8 * score}, {"epoch": 2, "val_score": score}]
        return TrialResult(
            OK, val_score=score, test_score=score, params=params, epochs_run=2, curve=curve
        )
    if status in (PRUNED, STOPPED):
        curve = [{"epoch": 1, "val_score": 0.8 * score}]
        return TrialResult(
            status,
            val_score=0.8 * score,
            params=params,
            epochs_run=1,
            curve=curve,
            message=f"synthetic {status}",
        )
    if status in FAILURES:
        return TrialResult.failure(status, f"synthetic {status} failure")
    raise ValueError(f"unknown status {status!r}")


def _run_dir(base: Path, name: str) -> Path:
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _global_random_state() -> tuple:
    try:
        import torch

        torch_state = torch.random.get_rng_state()
    except ImportError:  # pragma: no cover - torch is a dependency of autodlgym
        torch_state = None
    return random.getstate(), np.random.get_state(), torch_state


def _same_random_state(a: tuple, b: tuple) -> bool:
    py_a, np_a, t_a = a
    py_b, np_b, t_b = b
    same_np = np_a[0] == np_b[0] and all(np.array_equal(x, y) for x, y in zip(np_a[1:], np_b[1:]))
    same_torch = (t_a is None and t_b is None) or bool((t_a == t_b).all())
    return py_a == py_b and same_np and same_torch


class SearcherConformance:
    """Contracts every searcher keeps (see the module docstring). Override
    :meth:`searcher_factory`."""

    #: trials told before a state is saved in the in-memory resume test (enough for
    #: model-based searchers to leave their random start-up phase); the run-directory variant,
    #: which checks what persists on disk, tells ``resume_warmup_trials_on_disk``
    resume_warmup_trials: int = 12
    resume_warmup_trials_on_disk: int = 4

    @pytest.fixture
    def searcher_factory(self) -> SearcherFactory:
        """``(space, seed, run_dir) -> Searcher``. Override this in your subclass."""
        raise NotImplementedError("override the searcher_factory fixture in your test class")

    @pytest.fixture(params=["default", "narrowed"])
    def space(self, request: pytest.FixtureRequest) -> SearchSpace:
        if request.param == "default":
            return SearchSpace.default()
        return SearchSpace.from_config(NARROWED_CONFIG)

    # ask ----------------------------------------------------------------------------------
    def test_ask_returns_n_specs_inside_the_space(
        self, searcher_factory: SearcherFactory, space: SearchSpace, tmp_path: Path
    ) -> None:
        searcher = searcher_factory(space, 0, _run_dir(tmp_path, "run"))
        for n in (1, 3, 2):
            specs = searcher.ask(n)
            assert len(specs) == n
            for spec in specs:
                assert isinstance(spec, ArchSpec)
                space.validate(spec)  # raises naming the offending decision
            for spec in specs:
                searcher.tell(spec, synthetic_result(space, spec))

    def test_same_seed_gives_the_same_first_asks(
        self, searcher_factory: SearcherFactory, space: SearchSpace
    ) -> None:
        runs = []
        for _ in range(2):
            searcher = searcher_factory(space, 3, None)
            asked = []
            for _ in range(3):
                spec = searcher.ask(1)[0]
                searcher.tell(spec, synthetic_result(space, spec))
                asked.append(spec)
            runs.append(asked + searcher.ask(2))
        assert runs[0] == runs[1]

    # budget -------------------------------------------------------------------------------
    def test_proposals_fit_the_budget(
        self, searcher_factory: SearcherFactory, tmp_path: Path
    ) -> None:
        """What the runner trains (:meth:`Searcher.propose`) fits the space's budget."""
        space = SearchSpace.from_config(NARROWED_CONFIG).with_constraints(
            max_params=BUDGET_PARAMS, io=BUDGET_IO
        )
        searcher = searcher_factory(space, 0, _run_dir(tmp_path, "run"))
        for _ in range(4):
            for spec in searcher.propose(2):
                space.validate(spec)
                assert space.fits(spec, count=False), space.over_budget(spec)
                searcher.tell(spec, synthetic_result(space, spec))

    # tell ---------------------------------------------------------------------------------
    def test_tell_accepts_every_status(
        self, searcher_factory: SearcherFactory, space: SearchSpace
    ) -> None:
        searcher = searcher_factory(space, 0, None)
        for status, spec in zip(STATUSES, searcher.ask(len(STATUSES))):
            searcher.tell(spec, synthetic_result(space, spec, status))
        for status in STATUSES:  # one at a time too, in case a searcher batches its asks
            spec = searcher.ask(1)[0]
            searcher.tell(spec, synthetic_result(space, spec, status))
        for spec in searcher.ask(2):  # the search goes on after any status
            space.validate(spec)

    def test_tell_of_a_spec_it_did_not_ask_is_accepted(
        self, searcher_factory: SearcherFactory, space: SearchSpace
    ) -> None:
        searcher = searcher_factory(space, 0, None)
        rng = np.random.default_rng(1)
        for status in (OK, OK, PRUNED, "error"):
            spec = space.sample(rng)
            searcher.tell(spec, synthetic_result(space, spec, status))
        for spec in searcher.ask(2):
            space.validate(spec)

    # state --------------------------------------------------------------------------------
    @pytest.mark.parametrize("in_memory", [False, True], ids=["run_dir", "in_memory"])
    def test_state_dict_resumes_the_same_search(
        self,
        searcher_factory: SearcherFactory,
        space: SearchSpace,
        tmp_path: Path,
        in_memory: bool,
    ) -> None:
        dir_a = None if in_memory else _run_dir(tmp_path, "a")
        original = searcher_factory(space, 0, dir_a)
        warmup = self.resume_warmup_trials if in_memory else self.resume_warmup_trials_on_disk
        for _ in range(warmup):
            spec = original.ask(1)[0]
            original.tell(spec, synthetic_result(space, spec))
        # a checkpoint taken while a trial is still in flight, as the runner saves one
        in_flight = original.ask(2)
        original.tell(in_flight[0], synthetic_result(space, in_flight[0]))
        state = pickle.loads(pickle.dumps(original.state_dict()))
        dir_b = None if in_memory else Path(shutil.copytree(dir_a, tmp_path / "b"))
        resumed = searcher_factory(space, 0, dir_b)
        resumed.load_state_dict(state)

        late = synthetic_result(space, in_flight[1])
        original.tell(in_flight[1], late)
        resumed.tell(in_flight[1], late)
        for _ in range(3):
            a, b = original.ask(1), resumed.ask(1)
            assert a == b
            original.tell(a[0], synthetic_result(space, a[0]))
            resumed.tell(b[0], synthetic_result(space, b[0]))

    # randomness ---------------------------------------------------------------------------
    def test_global_random_state_is_left_alone(
        self, searcher_factory: SearcherFactory, space: SearchSpace
    ) -> None:
        before = _global_random_state()
        searcher = searcher_factory(space, 0, None)
        for status in (OK, PRUNED, "nan", OK, OK):
            spec = searcher.ask(1)[0]
            searcher.tell(spec, synthetic_result(space, spec, status))
        searcher.load_state_dict(pickle.loads(pickle.dumps(searcher.state_dict())))
        searcher.ask(2)
        searcher.close()
        assert _same_random_state(before, _global_random_state())
