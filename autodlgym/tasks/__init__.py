"""Tasks: what a candidate is trained and scored on.

:mod:`autodlgym.tasks.base` holds the :class:`Task` type and its registry;
:mod:`autodlgym.tasks.datasets` the built-in data sets; :mod:`autodlgym.tasks.files` tasks on
a user's own data (CSV / Parquet tables, image folders, arrays, torch Datasets) and
:mod:`autodlgym.tasks.preprocessing` how their raw inputs become model inputs. Importing this
package does not import torch.
"""

from __future__ import annotations

from autodlgym.tasks.base import (
    DEFAULT_TASK,
    LOSSES,
    METRICS,
    TASKS,
    Task,
    TaskData,
    get_task,
    list_tasks,
    register_task,
)


def __getattr__(name: str):
    # from_arrays / from_dataset live with the file tasks, imported on first use so that
    # importing this package registers nothing and stays light
    if name in ("from_arrays", "from_dataset"):
        from autodlgym.tasks import files

        return getattr(files, name)
    raise AttributeError(f"module 'autodlgym.tasks' has no attribute {name!r}")


__all__ = [
    "DEFAULT_TASK",
    "LOSSES",
    "METRICS",
    "TASKS",
    "Task",
    "TaskData",
    "get_task",
    "list_tasks",
    "register_task",
    "from_arrays",
    "from_dataset",
]
