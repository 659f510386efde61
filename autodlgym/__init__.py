"""autodlgym: a Gymnasium-style environment for automated deep learning.

The public API is re-exported here lazily: ``import autodlgym`` imports neither torch nor ray.
Importing the package registers the ``autodlgym/<Task>-v0`` Gymnasium environments.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "ArchSpec": "autodlgym.searchspace.spec",
    "SearchSpace": "autodlgym.searchspace.space",
    "Choice": "autodlgym.searchspace.space",
    "AutoDLError": "autodlgym.errors",
    "SpecError": "autodlgym.errors",
    "Fidelity": "autodlgym.trial",
    "TrialResult": "autodlgym.trial",
    "IOSpec": "autodlgym.searchspace.io",
    "build_model": "autodlgym.nn.build",
    "register_block": "autodlgym.searchspace.registry",
    "apply_init": "autodlgym.nn.init",
    "register_init": "autodlgym.searchspace.registry",
    "diagnose": "autodlgym.training.diagnostics",
    "Diagnostics": "autodlgym.training.diagnostics",
    "Task": "autodlgym.tasks",
    "TaskData": "autodlgym.tasks",
    "get_task": "autodlgym.tasks",
    "list_tasks": "autodlgym.tasks",
    "register_task": "autodlgym.tasks",
    "train_and_score": "autodlgym.training.trainer",
    "LocalExecutor": "autodlgym.execution.local",
    "RayExecutor": "autodlgym.execution.ray_executor",
    "AutoDLEnv": "autodlgym.envs.autodl_env",
    "SequentialAutoDLEnv": "autodlgym.envs.sequential_env",
    "AutoDLVectorEnv": "autodlgym.envs.vector_env",
    "SearchEpisodeEnv": "autodlgym.envs.search_env",
    "ResultStore": "autodlgym.results.store",
    "load_results": "autodlgym.run",
    "leaderboard": "autodlgym.analysis.leaderboard",
    "Searcher": "autodlgym.searchers.base",
    "SearchContext": "autodlgym.searchers.base",
    "register_searcher": "autodlgym.searchers.base",
    "get_searcher": "autodlgym.searchers.base",
    "list_searchers": "autodlgym.searchers.base",
    "RunConfig": "autodlgym.runner",
    "run_search": "autodlgym.runner",
    "Run": "autodlgym.run",
    "load_model": "autodlgym.export",
    "SupernetEvaluator": "autodlgym.oneshot",
    "HypernetEvaluator": "autodlgym.oneshot",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'autodlgym' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


# register the Gymnasium ids: string entry points only, nothing heavy is imported. gymnasium
# is a dependency; an error here is a bug to see, not to hide.
from autodlgym.envs import registration as _registration  # noqa: E402, F401
