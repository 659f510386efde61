"""Deprecated: the builder moved to :mod:`autodlgym.nn.build`; this path is removed in 0.3.0.

Reading a name from this old path warns with a ``DeprecationWarning`` and hands back the
object of :mod:`autodlgym.nn.build`. Importing the path itself imports neither that module nor
torch.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # module probes (__path__, __all__...): not forwarded
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("autodlgym.nn.build"), name)
    warnings.warn(
        "autodlgym.searchspace.build is deprecated; import from autodlgym.nn.build "
        "(removed in 0.3.0)",
        DeprecationWarning,
        stacklevel=2,
    )
    return value


def __dir__() -> list[str]:
    return sorted(n for n in dir(importlib.import_module("autodlgym.nn.build")) if n[:2] != "__")
