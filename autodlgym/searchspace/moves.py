"""Moves in a search space: mutating a spec, and listing its neighbours.

A move changes one active decision to another of its options; decisions the change makes
active are drawn from the generator, those it makes inactive are dropped.
:meth:`SearchSpace.mutate <autodlgym.searchspace.space.SearchSpace.mutate>` and
:meth:`~autodlgym.searchspace.space.SearchSpace.neighbours` call the functions here (and keep a
budget, see :mod:`autodlgym.searchspace.constraints`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from autodlgym.searchspace.spec import ArchSpec

if TYPE_CHECKING:  # pragma: no cover
    from autodlgym.searchspace.space import SearchSpace


def _draw(gen: np.random.Generator):
    return lambda ch: ch.options[int(gen.integers(len(ch.options)))]


def mutate(space: SearchSpace, spec: ArchSpec, gen: np.random.Generator) -> ArchSpec:
    """One mutation of a valid ``spec`` (see :meth:`SearchSpace.mutate`), without the budget:
    a random decision; for an ordered one, a neighbouring option with probability 1/2, else
    any other option."""
    mutable = [c for c in space.choices if c.name in spec and len(c.options) > 1]
    if not mutable:
        return spec
    c = mutable[int(gen.integers(len(mutable)))]
    i = c.index(spec[c.name])
    if c.kind != "categorical" and gen.random() < 0.5:
        j = i + (1 if gen.random() < 0.5 else -1)
        j = min(max(j, 0), len(c.options) - 1)
        if j == i:
            j = i - 1 if i > 0 else i + 1
    else:
        j = int(gen.integers(len(c.options) - 1))
        j = j if j < i else j + 1
    values = dict(spec)
    values[c.name] = c.options[j]
    return space._complete(values, _draw(gen))


def neighbours(space: SearchSpace, spec: ArchSpec, gen: np.random.Generator) -> list[ArchSpec]:
    """Every spec one decision away from a valid ``spec``, in decision order, each listed once
    (see :meth:`SearchSpace.neighbours`)."""
    out: dict[str, ArchSpec] = {}
    for c in space.choices:
        if c.name not in spec or len(c.options) < 2:
            continue
        i = c.index(spec[c.name])
        for j, option in enumerate(c.options):
            if j == i:
                continue
            values = dict(spec)
            values[c.name] = option
            n = space._complete(values, _draw(gen))
            out.setdefault(n.arch_id, n)
    return list(out.values())
