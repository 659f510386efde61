"""What a search has seen so far, as a fixed-length vector: the search-episode env's
observation, computed here so that a searcher (which may not import the envs) running a
trained policy sees exactly what the policy was trained on.

:class:`SearchHistory` keeps the evaluations of one search (spec and validation score, None
for a failure) and builds the vector from them alone: no table, no test score. Layout for a
space of ``n`` decisions and ``top_k`` remembered bests:

====================  ===========================================================================
``[0, n)``            the last candidate's encoding, each option index / (options - 1), in [0, 1]
``n``                 the last candidate's score clipped to [-1, 1]; :data:`NO_SCORE` if none
``n + 1``             the best score so far, clipped likewise; :data:`NO_SCORE` if none
``n + 2``             the fraction of the search's evaluations left, in [0, 1]
``n + 3``             the fraction of this search's earlier scores below the last one (0 if none)
``n + 4``             1 if the last evaluation raised the best so far, else 0
``n + 5``             1 if the last evaluation failed (no score), else 0
then ``top_k`` times  the encoding of the i-th best so far and its score (zeros, NO_SCORE: none)
====================  ===========================================================================
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec

#: score written where there is none (before the first evaluation, for a failure); real
#: scores are clipped to [-1, 1], so this stays apart from all of them
NO_SCORE = -2.0
#: entries after the last candidate's encoding (score, best, left, rank, improved, failed)
N_SUMMARY = 6


def clip_score(score: float | None) -> float:
    """A score as the observation shows it: clipped to [-1, 1]; :data:`NO_SCORE` for None
    or a non-finite value."""
    if score is None or not math.isfinite(score):
        return NO_SCORE
    return float(min(1.0, max(-1.0, score)))


class SearchHistory:
    """The evaluations of one search of ``budget`` evaluations over ``space``.

    Args:
        space: the search space (its encoding gives the spec part of the vector).
        budget: evaluations the search may make.
        top_k: the number of best candidates the vector also carries.
    """

    def __init__(self, space: SearchSpace, budget: int, top_k: int = 0) -> None:
        self.space = space
        self.budget = int(budget)
        self.top_k = int(top_k)
        self._scale = np.maximum(space.nvec - 1, 1).astype(np.float32)
        #: (spec, score or None) of every evaluation, in order
        self.evaluations: list[tuple[ArchSpec, float | None]] = []
        self._sorted: list[float] = []  # scores so far, ascending
        self._top: list[tuple[float, np.ndarray]] = []  # (score, encoding), best first
        self._last = np.zeros(len(space), dtype=np.float32)
        self._summary = np.array([NO_SCORE, NO_SCORE, 1.0, 0.0, 0.0, 0.0], dtype=np.float32)

    @property
    def size(self) -> int:
        """Length of :meth:`vector`."""
        n = len(self.space)
        return n + N_SUMMARY + self.top_k * (n + 1)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of every entry of :meth:`vector` (float32)."""
        n = len(self.space)
        low = np.concatenate([np.zeros(n), [NO_SCORE, NO_SCORE, 0, 0, 0, 0]])
        high = np.ones(n + N_SUMMARY)
        top_low = np.tile(np.append(np.zeros(n), NO_SCORE), self.top_k)
        top_high = np.ones(self.top_k * (n + 1))
        return (
            np.concatenate([low, top_low]).astype(np.float32),
            np.concatenate([high, top_high]).astype(np.float32),
        )

    @property
    def best(self) -> float | None:
        """The best score so far (None until one evaluation succeeds)."""
        return self._sorted[-1] if self._sorted else None

    @property
    def left(self) -> int:
        """Evaluations left."""
        return max(0, self.budget - len(self.evaluations))

    def add(self, spec: ArchSpec, score: float | None, encoding: np.ndarray | None = None) -> bool:
        """Record one evaluation (``score`` None or NaN: it failed); returns whether it raised
        the best so far. ``encoding``: the spec's option indices, when the caller has them."""
        if score is not None and not math.isfinite(score):
            score = None
        code = self.space.encode(spec) if encoding is None else encoding
        code = np.asarray(code, dtype=np.float32) / self._scale
        before = self.best
        improved = score is not None and (before is None or score > before)
        rank = 0.0
        if score is not None:
            if self._sorted:
                rank = bisect.bisect_left(self._sorted, score) / len(self._sorted)
            bisect.insort(self._sorted, score)
            if self.top_k:
                self._top.append((score, code))
                self._top.sort(key=lambda t: -t[0])
                del self._top[self.top_k :]
        self.evaluations.append((spec, score))
        self._last = code
        self._summary = np.array(
            [
                clip_score(score),
                clip_score(self.best),
                self.left / self.budget,
                rank,
                float(improved),
                float(score is None),
            ],
            dtype=np.float32,
        )
        return improved

    def summary(self) -> np.ndarray:
        """The entries after the last encoding: score, best, left, rank, improved, failed."""
        return self._summary.copy()

    def scores(self) -> list[float]:
        """The scores so far (failures left out), ascending."""
        return list(self._sorted)

    def vector(self) -> np.ndarray:
        """The history as one float32 vector (layout in the module docstring)."""
        parts = [self._last, self._summary]
        n = len(self.space)
        for i in range(self.top_k):
            if i < len(self._top):
                score, code = self._top[i]
                parts.append(np.append(code, clip_score(score)).astype(np.float32))
            else:
                parts.append(np.append(np.zeros(n), NO_SCORE).astype(np.float32))
        return np.concatenate(parts).astype(np.float32)
