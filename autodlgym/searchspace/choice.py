"""A decision of a search space: :class:`Choice`, and :class:`Decision`, a choice as a
one-decision-per-step agent sees it.

A choice has a finite, ordered list of options and at most one condition: it is active only when
its parent is active and the parent's value is one of ``parent_values``. The space that orders
choices and derives everything from them is :class:`~autodlgym.searchspace.space.SearchSpace`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autodlgym.errors import SpecError
from autodlgym.searchspace.spec import Scalar

#: how a decision's options are read (and how Optuna suggests them)
KINDS = ("categorical", "int", "float")


def same_type(a: Any, b: Any) -> bool:
    """Whether two option values are of one type for matching: booleans only match booleans,
    numbers match numbers (``1 == 1.0``), anything else its own type."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return True
    return type(a) is type(b)


@dataclass(frozen=True)
class Choice:
    """One decision.

    Args:
        name: unique name, e.g. ``"stage2.kernel"``.
        options: allowed values, in order (numeric options ascending).
        kind: ``"categorical"``, ``"int"`` or ``"float"``; decides how Optuna suggests it.
        log: whether numeric options are spread on a log scale.
        parent: name of the choice this one depends on, or None.
        parent_values: values of ``parent`` for which this choice is active.
        doc: one line for ``autodlgym space show``.
    """

    name: str
    options: tuple[Scalar, ...]
    kind: str = "categorical"
    log: bool = False
    parent: str | None = None
    parent_values: tuple[Scalar, ...] = ()
    doc: str = ""

    def index(self, value: Any) -> int:
        for i, o in enumerate(self.options):
            if o == value and same_type(o, value):
                return i
        raise SpecError(
            f"{self.name}={value!r} is not allowed; choose one of {', '.join(map(repr, self.options))}"
        )

    def snap(self, value: float) -> Scalar:
        """The option nearest to a number (on a log scale for log choices)."""
        nums = np.asarray(self.options, dtype=float)
        if self.log and value > 0 and (nums > 0).all():
            i = int(np.argmin(np.abs(np.log(nums) - math.log(value))))
        else:
            i = int(np.argmin(np.abs(nums - value)))
        return self.options[i]


@dataclass(frozen=True)
class Decision:
    """A choice as seen by a one-decision-per-step agent: its position and valid option mask."""

    choice: Choice
    position: int
    mask: np.ndarray = field(compare=False)
