"""Small helpers shared across the package: option parsing, finite-or-None numbers and the
"did you mean" hint for mistyped names."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from typing import Any

from autodlgym.errors import AutoDLError


def as_bool(name: str, value: Any) -> bool:
    """An option given as a bool or as text from ``--searcher-opt k=v``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise AutoDLError(f"option {name}={value!r} must be true or false")


def as_int(name: str, value: Any, minimum: int = 0) -> int:
    """An integer option given as a number or text, at least ``minimum``."""
    try:
        out = int(value)
        if isinstance(value, float) and out != value:
            raise ValueError
    except (TypeError, ValueError):
        raise AutoDLError(f"option {name}={value!r} must be an integer") from None
    if out < minimum:
        raise AutoDLError(f"option {name}={value!r} must be at least {minimum}")
    return out


def finite_or_none(x: Any) -> float | None:
    """``float(x)`` when it is finite, else None (for JSON and SQL, which lack NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the known names closest to a mistyped one, else ``""``.

    Every "unknown name" message (registries, space decisions, blocks) ends with this, so a
    typo is answered the same way everywhere.
    """
    close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)"


def moved_module(old: str, new: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a module path kept for one release after its code moved
    to ``new``: reading a name warns with a ``DeprecationWarning`` and hands back ``new``'s
    object; importing the old path imports nothing of ``new``."""
    import importlib
    import warnings

    def getattr_(name: str) -> Any:
        if name.startswith("__"):  # module probes (__path__, __all__...): not forwarded
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(new), name)
        warnings.warn(
            f"{old} is deprecated; import from {new} (removed in 0.3.0)",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    def dir_() -> list[str]:
        return sorted(n for n in dir(importlib.import_module(new)) if n[:2] != "__")

    return getattr_, dir_
