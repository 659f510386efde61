"""Gymnasium ids of the tasks; imported by ``import autodlgym``.

Only ``gymnasium.register`` calls with string entry points: nothing heavy is imported until
``gymnasium.make``. Every task of the task registry (built-in, registered from Python, or an
``autodlgym.tasks`` plugin) that takes no ``:ARG`` has two ids, named by its registration's
``env_name`` (default: the task name in CamelCase):

- ``autodlgym/<Name>-v0``: :class:`~autodlgym.envs.autodl_env.AutoDLEnv` (one step = one
  architecture); ``gymnasium.make_vec`` builds an
  :class:`~autodlgym.envs.vector_env.AutoDLVectorEnv` for it, whose copies train in parallel
  on one executor.
- ``autodlgym/<Name>-Seq-v0``: :class:`~autodlgym.envs.sequential_env.SequentialAutoDLEnv`
  (one step = one decision).
- ``autodlgym/<Name>-Search-v0``: :class:`~autodlgym.envs.search_env.SearchEpisodeEnv` (one
  episode = one search of ``budget`` evaluations, the history in the observation).

Every id has a vector entry point (``gymnasium.make_vec``'s default mode): the whole-architecture
ids a batched env, the others Gymnasium's ``SyncVectorEnv`` over copies sharing one executor.
``spec.max_episode_steps`` is filled in by the env (the budget; ``len(space)`` for ``-Seq``).

Plugins are not loaded here: their ids use the entry point's name until the plugin loads.
Keyword arguments of ``make`` reach the constructor (``fidelity``, ``budget``, ``space``, ...).
Bump the version when reward or observation semantics change.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from autodlgym.errors import AutoDLError
from autodlgym.tasks.base import TASKS, camel

VERSION = 0
NAMESPACE = "autodlgym"


def env_names() -> dict[str, str]:
    """Task name -> the Name part of its ids, for every task that has ids (a prefix task with
    fixed arguments, e.g. ``nasbench-graph:cora``, has ids for each argument)."""
    out: dict[str, str] = {}
    for task in TASKS.names():
        out.update(_env_names_of(task))
    return out


def _env_names_of(task: str) -> dict[str, str]:
    if task in TASKS._entries:  # loaded: its registration says
        meta = TASKS._meta[task]
        name = meta.get("env_name") or camel(task)
        if not meta.get("prefix"):
            return {task: name}
        return {f"{task}:{c}": name + camel(c) for c in meta.get("choices", ())}
    if task in TASKS.plugins():  # not loaded yet: named after the entry point
        return {task: camel(task)}
    return {}


def _env_name(task: str) -> str | None:
    return _env_names_of(task.partition(":")[0]).get(task)


def env_id(task: str, sequential: bool = False, search: bool = False) -> str:
    """The Gymnasium id of a task, e.g. ``autodlgym/MNIST1D-Seq-v0`` (``sequential``) or
    ``autodlgym/MNIST1D-Search-v0`` (``search``)."""
    name = _env_name(task)
    if name is None:
        if task in TASKS:
            raise AutoDLError(f"task {task!r} takes an argument ({task}:ARG) and has no env id")
        raise TASKS.unknown(task)
    kind = "-Search" if search else "-Seq" if sequential else ""
    return f"{NAMESPACE}/{name}{kind}-v{VERSION}"


def register_task_ids(registered: str) -> None:
    """Register the three ids of each task a registration makes (no-op for ids that exist, or
    tasks that take any ``:ARG``)."""
    for task in _env_names_of(registered):
        _register_ids(task)


def _register_ids(task: str) -> None:
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
            vector_entry_point="autodlgym.envs.vector_env:sequential_vector_env",
            kwargs={"task": task},
        )
    search = env_id(task, search=True)
    if search not in registry:
        register(
            id=search,
            entry_point="autodlgym.envs.search_env:SearchEpisodeEnv",
            vector_entry_point="autodlgym.envs.vector_env:search_vector_env",
            kwargs={"task": task},
        )


def _register_all() -> None:
    for task in TASKS.names():
        register_task_ids(task)
    # a task registered later (a plugin, a module given to --import) gets its ids at once
    TASKS.subscribe(register_task_ids)


_register_all()
