"""The Optuna bridge: a space's decisions as define-by-run suggestions, and a spec as the
parameters and distributions Optuna stores.

:meth:`SearchSpace.suggest <autodlgym.searchspace.space.SearchSpace.suggest>` and
:meth:`~autodlgym.searchspace.space.SearchSpace.optuna_params` call the functions here; the
encodings are described there. Optuna itself is imported only by :func:`optuna_params` (a trial
handed to :func:`suggest` brings it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.spec import ArchSpec, Scalar

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from autodlgym.searchspace.space import SearchSpace

#: how :meth:`SearchSpace.suggest` hands decisions to Optuna (see there)
OPTUNA_ENCODINGS = ("categorical", "index", "snap")


def suggest(space: SearchSpace, trial: optuna.Trial, encoding: str = "categorical") -> ArchSpec:
    """The spec ``trial`` suggests in ``space``, each active decision suggested under
    ``encoding`` (see :meth:`SearchSpace.suggest`)."""
    if encoding not in OPTUNA_ENCODINGS:
        raise AutoDLError(
            f"unknown Optuna encoding {encoding!r}; choose one of {', '.join(OPTUNA_ENCODINGS)}"
        )
    values: dict[str, Scalar] = {}
    for c in space.choices:
        if not space.is_active(c, values):
            continue
        if c.kind == "categorical" or len(c.options) == 1 or encoding == "categorical":
            values[c.name] = trial.suggest_categorical(c.name, list(c.options))
        elif encoding == "index":
            values[c.name] = c.options[trial.suggest_int(c.name, 0, len(c.options) - 1)]
        elif c.kind == "int":
            lo, hi = int(min(c.options)), int(max(c.options))
            log = c.log and lo > 0
            values[c.name] = c.snap(trial.suggest_int(c.name, lo, hi, log=log))
        else:
            lo, hi = float(min(c.options)), float(max(c.options))
            log = c.log and lo > 0
            values[c.name] = c.snap(trial.suggest_float(c.name, lo, hi, log=log))
    return ArchSpec(values)


def optuna_params(
    space: SearchSpace, spec: Mapping[str, Any], encoding: str = "categorical"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, distributions)`` of ``spec`` under ``encoding`` (see
    :meth:`SearchSpace.optuna_params`): the suggestions replayed on a ``FixedTrial``."""
    import optuna

    spec = space.validate(spec)
    fixed: dict[str, Any] = {}
    for c in space.choices:
        if c.name not in spec:
            continue
        if encoding == "index" and c.kind != "categorical" and len(c.options) > 1:
            fixed[c.name] = c.index(spec[c.name])
        else:
            fixed[c.name] = spec[c.name]
    trial = optuna.trial.FixedTrial(fixed)
    suggest(space, trial, encoding)
    return trial.params, trial.distributions
