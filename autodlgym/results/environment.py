"""What a run ran on: package versions, Python, devices, CPUs and host.

:func:`collect_environment` describes the current process; the runner records it in the run's
store each time a search starts or resumes (the ``environment`` table, one row per session),
:func:`~autodlgym.results.store.load_results` hands the rows back as
``df.attrs["environment"]`` and ``autodlgym leaderboard`` prints :func:`describe` of them.
A run resumed on another machine or after an upgrade therefore shows both sessions.

Versions are read with :mod:`importlib.metadata`, so packages such as ray are not imported;
torch is imported (the trainer needs it anyway) to name its CUDA devices.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

#: Distributions whose versions decide what a trial computes or how a searcher proposes.
PACKAGES = (
    "autodlgym", "torch", "numpy", "pandas", "optuna", "gymnasium", "ray", "scikit-learn",
    "scipy", "mnist1d", "cmaes",
)  # fmt: skip


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def collect_environment() -> dict[str, Any]:
    """The current process's environment as a JSON-ready dict.

    Keys: ``autodlgym``, ``torch`` (``torch.__version__``, which names the build, e.g.
    ``2.13.0+cpu``), ``python``, ``packages`` (distribution -> version, installed ones of
    :data:`PACKAGES`), ``platform``, ``hostname``, ``cpu_count`` (logical CPUs of the machine),
    ``cpus_usable`` (those this process may run on), ``torch_threads``, ``cuda`` (torch's CUDA
    version or None), ``devices`` (the CUDA device names torch sees; empty on CPU) and
    ``device_capabilities`` (their compute capabilities as ``"major.minor"``).
    """
    import torch

    from autodlgym import __version__

    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on macOS or Windows
        usable = os.cpu_count()
    packages = {name: v for name in PACKAGES if (v := _version(name)) is not None}
    return {
        "autodlgym": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "packages": packages,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(n_gpus)],
        "device_capabilities": [
            "{}.{}".format(*torch.cuda.get_device_capability(i)) for i in range(n_gpus)
        ],
        "executable": sys.executable,
    }


def describe(sessions: Sequence[Mapping[str, Any]]) -> str:
    """One line for a leaderboard: the latest session's versions, devices and host, and how
    many sessions differ from it (e.g. a resume after an upgrade)."""
    if not sessions:
        return "environment: not recorded (a run made before autodlgym recorded it)"
    env = sessions[-1]
    devices = env.get("devices") or []
    where = ", ".join(sorted(set(devices))) if devices else "cpu"
    line = (
        f"environment: autodlgym {env.get('autodlgym')}, torch {env.get('torch')}, "
        f"Python {env.get('python')}, {where}, {env.get('cpu_count')} CPUs, "
        f"host {env.get('hostname')}"
    )
    keys = ("autodlgym", "torch", "python", "packages", "devices", "hostname")
    differ = sum(any(s.get(k) != env.get(k) for k in keys) for s in sessions[:-1])
    if differ:
        line += f" ({differ} earlier session(s) ran elsewhere or with other versions)"
    return line
