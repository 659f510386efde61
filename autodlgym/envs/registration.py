"""Gymnasium ids of the built-in tasks; imported by ``import autodlgym``.

Only ``gymnasium.register`` calls with string entry points: nothing heavy is imported until
``gymnasium.make``. Each task has two ids:

- ``autodlgym/<Name>-v0``: :class:`~autodlgym.envs.autodl_env.AutoDLEnv` (one step = one
  architecture); ``gymnasium.make_vec`` builds an
  :class:`~autodlgym.envs.vector_env.AutoDLVectorEnv` for it, whose copies train in parallel
  on one executor.
- ``autodlgym/<Name>-Seq-v0``: :class:`~autodlgym.envs.sequential_env.SequentialAutoDLEnv`
  (one step = one decision).

Keyword arguments of ``make`` reach the constructor (``fidelity``, ``budget``, ``space``, ...).
Bump the version when reward or observation semantics change.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

#: task name -> the Name part of its ids; must list every built-in task (a test checks it).
TASK_IDS: dict[str, str] = {
    "mnist1d": "MNIST1D",
    "mnist1d_shuffled": "MNIST1DShuffled",
    "digits": "Digits",
    "adding": "Adding",
    # tabular benchmarks: a step is a lookup (microseconds), so RL agents can take millions
    "mnist1d-table": "MNIST1DTable",
    "nasbench-graph:cora": "NASBenchGraphCora",
    "nasbench-graph:citeseer": "NASBenchGraphCiteseer",
    "nasbench-graph:pubmed": "NASBenchGraphPubmed",
    "nasbench-graph:cs": "NASBenchGraphCS",
    "nasbench-graph:physics": "NASBenchGraphPhysics",
    "nasbench-graph:photo": "NASBenchGraphPhoto",
    "nasbench-graph:computers": "NASBenchGraphComputers",
    "nasbench-graph:arxiv": "NASBenchGraphArxiv",
    "nasbench-graph:proteins": "NASBenchGraphProteins",
}

VERSION = 0
NAMESPACE = "autodlgym"


def env_id(task: str, sequential: bool = False) -> str:
    """The Gymnasium id of a built-in task, e.g. ``autodlgym/MNIST1D-Seq-v0``."""
    return f"{NAMESPACE}/{TASK_IDS[task]}{'-Seq' if sequential else ''}-v{VERSION}"


def _register_all() -> None:
    for task in TASK_IDS:
        whole, seq = env_id(task), env_id(task, sequential=True)
        if whole not in registry:  # re-importing must not warn about overriding
            register(
                id=whole,
                entry_point="autodlgym.envs.autodl_env:AutoDLEnv",
                vector_entry_point="autodlgym.envs.vector_env:AutoDLVectorEnv",
                kwargs={"task": task},
            )
        if seq not in registry:
            register(
                id=seq,
                entry_point="autodlgym.envs.sequential_env:SequentialAutoDLEnv",
                kwargs={"task": task},
            )


_register_all()
