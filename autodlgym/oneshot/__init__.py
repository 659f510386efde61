"""One-shot evaluation: score many architectures of a sub-space without training each one.

``SupernetEvaluator`` (shared weights, single-path one-shot) and ``HypernetEvaluator``
(weights generated from the spec, SMASH-style) share the layout of
:mod:`autodlgym.oneshot.layout` and the training and scoring of :mod:`autodlgym.oneshot.base`.
"""

from __future__ import annotations

from autodlgym.oneshot.base import OneShotEvaluator, OneShotScore
from autodlgym.oneshot.hypernet import HypernetEvaluator
from autodlgym.oneshot.supernet import SupernetEvaluator

EVALUATORS = {"supernet": SupernetEvaluator, "hypernet": HypernetEvaluator}

__all__ = [
    "EVALUATORS",
    "HypernetEvaluator",
    "OneShotEvaluator",
    "OneShotScore",
    "SupernetEvaluator",
]
