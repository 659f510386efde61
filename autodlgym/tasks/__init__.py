"""Tasks: what a candidate is trained and scored on.

:mod:`autodlgym.tasks.base` holds the :class:`Task` type and its registry;
:mod:`autodlgym.tasks.datasets` the built-in data sets. Importing this package does not
import torch.
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
]
