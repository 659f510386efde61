"""A spec built one decision at a time.

:class:`DecisionSequence` walks the decisions of a :class:`~autodlgym.searchspace.space.SearchSpace`
in the space's order, skipping those inactive for the options chosen so far (a kernel size only
for conv-like blocks). At each step it gives the decision to make and the mask of its legal
options over ``space.max_options`` slots (:meth:`SearchSpace.next_decision`); once the last
active decision is made, :meth:`DecisionSequence.spec` is the finished
:class:`~autodlgym.searchspace.spec.ArchSpec`.

:class:`~autodlgym.envs.sequential_env.SequentialAutoDLEnv` steps through one, and the
REINFORCE searcher samples along one, so both see the same decisions, in the same order, with
the same masks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.space import Decision, SearchSpace
from autodlgym.searchspace.spec import ArchSpec

#: :attr:`DecisionSequence.chosen` of a decision not made yet, or inactive
NOT_MADE = -1


class DecisionSequence:
    """The decisions of one spec, made one at a time; starts at the first decision.

    Attributes:
        space: the search space.
        values: decision name -> the option chosen so far.
        chosen: the option index chosen for each decision of ``space.choices`` (int64,
            :data:`NOT_MADE` while not made and for inactive decisions).
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.values: dict[str, Any] = {}
        self.chosen = np.full(len(space), NOT_MADE, dtype=np.int64)
        self._current = space.next_decision(self.values)

    @property
    def current(self) -> Decision | None:
        """The decision to make now, with its mask; None once the spec is complete."""
        return self._current

    @property
    def done(self) -> bool:
        """Whether every active decision is made."""
        return self._current is None

    @property
    def position(self) -> int:
        """The index in ``space.choices`` of the decision to make now; ``len(space)`` once
        the spec is complete."""
        return len(self.space) if self._current is None else self._current.position

    def mask(self) -> np.ndarray:
        """The legal options of the decision to make now (bool, ``max_options`` long; a
        copy); all False once the spec is complete."""
        if self._current is None:
            return np.zeros(self.space.max_options, dtype=bool)
        return self._current.mask.copy()

    def choose(self, option: int, mask: np.ndarray | None = None) -> tuple[int, bool]:
        """Make the current decision: option ``option`` (an index in ``[0, max_options)``).

        An index the mask rules out is not an error: it is mapped onto the legal option number
        ``option % n_legal`` (legal options counted in order). ``mask`` narrows the decision's
        own mask (a budget's; bool, ``max_options`` long, at least one legal option).

        Returns:
            ``(index, ruled_out)``: the option index applied and whether ``option`` was ruled
            out by the mask.

        Raises:
            AutoDLError: the spec is complete, or ``option`` is outside ``[0, max_options)``.
        """
        decision = self._current
        if decision is None:
            raise AutoDLError("the spec is complete; there is no decision left to make")
        k = self.space.max_options
        if not 0 <= option < k:
            raise AutoDLError(f"option {option} is outside [0, {k - 1}]")
        allowed = decision.mask if mask is None else decision.mask & np.asarray(mask, bool)
        if not allowed.any():
            allowed = decision.mask
        legal = np.flatnonzero(allowed)
        ruled_out = not bool(allowed[option])
        index = int(legal[option % len(legal)]) if ruled_out else int(option)
        choice = decision.choice
        self.values[choice.name] = choice.options[index]
        self.chosen[decision.position] = index
        self._current = self.space.next_decision(self.values)
        return index, ruled_out

    def spec(self) -> ArchSpec:
        """The finished spec, checked against the space.

        Raises:
            AutoDLError: decisions remain to be made.
        """
        if self._current is not None:
            raise AutoDLError(
                f"the spec is not complete; decision {self._current.choice.name!r} is next"
            )
        return self.space.validate(ArchSpec(self.values))
