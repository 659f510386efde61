"""A small named registry used for blocks, init laws, tasks and searchers.

Entries are registered with a decorator (``@BLOCKS.register("conv")``); overwriting an entry
warns. ``lazy_module`` names the module whose import registers the built-ins, so the registry
itself stays importable without torch.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from autodlgym.errors import AutoDLError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, lazy_module: str | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._lazy_module = lazy_module
        self._loaded = lazy_module is None

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            importlib.import_module(self._lazy_module)  # registers the built-ins

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: ``@registry.register("name", key=value...)``."""

        def deco(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return deco

    def add(self, name: str, obj: T, **meta: Any) -> None:
        if not isinstance(name, str) or not name:
            raise AutoDLError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if name in self._entries and self._entries[name] is not obj:
            warnings.warn(
                f"{self.kind} {name!r} is registered again; the new one replaces it", stacklevel=3
            )
        self._entries[name] = obj
        self._meta[name] = meta

    def remove(self, name: str) -> None:
        """Forget an entry (no error if it is not there)."""
        self._entries.pop(name, None)
        self._meta.pop(name, None)

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise AutoDLError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._entries))}"
            ) from None

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._meta[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
