"""Named registries (blocks, init laws, tasks, searchers), their plugins, and ``--import``.

Entries are registered with a decorator (``@BLOCKS.register("conv", reads="spatial")``);
overwriting an entry warns. Each registry has three sources, looked up in this order:

1. built-ins: ``lazy_module`` names the module whose import registers them, so the registry
   itself stays importable without torch. A registry may also be given its built-ins as
   ``declared``: each name with its metadata and the attribute of ``lazy_module`` that holds
   it; then names, metadata and origins are known without importing anything, and
   ``lazy_module`` is imported only when a declared entry itself is asked for (so a search
   space knows the blocks' ``reads`` and ``uses`` without torch);
2. entries registered from Python (a user's module, e.g. one named with ``--import``);
3. plugins: the entry points of ``group`` (``autodlgym.blocks``, ``autodlgym.tasks``,
   ``autodlgym.init_laws``, ``autodlgym.searchers``). A plugin is loaded only when its name is
   asked for (or when :meth:`Registry.load_plugins` lists them all). Loading imports the entry
   point's module; if that registered the name (with its metadata, through the usual
   decorator) nothing more is done, otherwise the loaded object is registered under the entry
   point's name by the registry's ``adopt`` function.

The same lookup runs in every process (a Ray worker included), so a plugin installed in the
worker's Python, or a module given to :func:`import_modules` there, resolves the same names.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from autodlgym.errors import AutoDLError
from autodlgym.utils import did_you_mean

T = TypeVar("T")

BUILTIN = "built-in"


class _Declared:
    """The entry of a declared built-in until it is first asked for: the attribute of the
    registry's ``lazy_module`` that holds it."""

    __slots__ = ("attr",)

    def __init__(self, attr: str) -> None:
        self.attr = attr


class Registry(Generic[T]):
    """Named entries with metadata, built-ins imported lazily, plugins from entry points.

    Args:
        kind: what an entry is, for messages (``"block"``, ``"task"``...).
        lazy_module: module whose import registers the built-ins, or that holds the
            ``declared`` ones (None: no built-ins).
        group: the entry-point group of plugins (None: no plugins).
        adopt: ``adopt(name, obj)`` registers an entry-point object that did not register
            itself (default: :meth:`add` with no metadata).
        declared: the built-ins by name, in order: ``(attribute of lazy_module, metadata)``.
            Given, ``lazy_module`` is not imported to list the registry, only by :meth:`get`
            of a declared name (its attribute is the entry).
    """

    def __init__(
        self,
        kind: str,
        lazy_module: str | None = None,
        group: str | None = None,
        adopt: Callable[[str, Any], Any] | None = None,
        declared: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._origin: dict[str, str] = {}
        self._lazy_module = lazy_module
        self._loaded = lazy_module is None or declared is not None
        self._loading_origin: str | None = None  # set while a plugin loads
        self._adopt = adopt
        self._listeners: list[Callable[[str], None]] = []
        self._declared: set[str] = set()  # declared built-ins not replaced since
        for name, (attr, meta) in (declared or {}).items():
            if lazy_module is None:
                raise ValueError(f"{kind} {name!r} is declared, but the registry has no module")
            self._entries[name] = _Declared(attr)  # type: ignore[assignment]
            self._meta[name] = dict(meta)
            self._origin[name] = BUILTIN
            self._declared.add(name)

    # Sources -----------------------------------------------------------------------------
    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            importlib.import_module(self._lazy_module)  # registers the built-ins

    def _resolve(self, name: str) -> T:
        """The object of a declared built-in, imported from ``lazy_module`` on first use."""
        entry = self._entries[name]
        if isinstance(entry, _Declared):
            module = importlib.import_module(self._lazy_module)
            entry = getattr(module, entry.attr)
            self._entries[name] = entry
        return entry

    def plugins(self) -> dict[str, EntryPoint]:
        """Entry points of this registry's group by name (not loaded). Read afresh each time:
        a package installed or put on ``sys.path`` meanwhile is seen."""
        if self.group is None:
            return {}
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def _load_plugin(self, name: str, ep: EntryPoint) -> None:
        origin = f"plugin {ep.value}"
        self._loading_origin = origin
        try:
            obj = ep.load()
            if name not in self._entries:
                (self._adopt or self.add)(name, obj)
        except AutoDLError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken plugin is the user's to fix
            raise AutoDLError(
                f"{self.kind} plugin {name!r} ({ep.value}) fails to load: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        finally:
            self._loading_origin = None
        self._origin[name] = origin

    def load_plugins(self) -> dict[str, str]:
        """Load every plugin not loaded yet; returns ``{name: error}`` for those that fail."""
        self._load()
        failed = {}
        for name, ep in sorted(self.plugins().items()):
            if name not in self._entries:
                try:
                    self._load_plugin(name, ep)
                except AutoDLError as exc:
                    failed[name] = str(exc)
        return failed

    # Registration ------------------------------------------------------------------------
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
        self._declared.discard(name)
        module = getattr(obj, "__module__", None) or "python"
        builtin = module.split(".")[0] == "autodlgym"
        self._origin[name] = self._loading_origin or (BUILTIN if builtin else module)
        for listener in list(self._listeners):
            listener(name)

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(name)`` after every later :meth:`add` (a higher layer follows a
        registry this way, e.g. the Gymnasium ids of the tasks); errors propagate."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove(self, name: str) -> None:
        """Forget an entry (no error if it is not there)."""
        self._entries.pop(name, None)
        self._meta.pop(name, None)
        self._origin.pop(name, None)
        self._declared.discard(name)

    def is_declared(self, name: str) -> bool:
        """Whether ``name`` is a declared built-in that nothing has replaced (see ``declared``);
        imports nothing."""
        return name in self._declared

    # Lookup ------------------------------------------------------------------------------
    def get(self, name: str) -> T:
        """The entry registered as ``name``, loading its plugin if need be.

        Raises:
            AutoDLError: unknown name (with the closest known names), or a plugin that fails
                to load.
        """
        self._load()
        if name not in self._entries:
            ep = self.plugins().get(name) if isinstance(name, str) else None
            if ep is None:
                raise self.unknown(name)
            self._load_plugin(name, ep)
        return self._resolve(name)

    def unknown(self, name: Any, hint: str = "") -> AutoDLError:
        """The error for a name that is not registered: the closest names and every name."""
        known = self.names()
        return AutoDLError(
            f"unknown {self.kind} {name!r}{did_you_mean(name, known)}; "
            f"choose one of: {', '.join(known)}{hint}"
        )

    def _known(self, name: str) -> None:
        """Load ``name``'s plugin if need be, without importing a declared built-in."""
        self._load()
        if name not in self._entries:
            self.get(name)

    def meta(self, name: str) -> dict[str, Any]:
        """The metadata ``name`` was registered with (a declared built-in's is known without
        importing it)."""
        self._known(name)
        return self._meta[name]

    def origin(self, name: str) -> str:
        """``"built-in"`` (defined in autodlgym), ``"plugin module:attr"``, or the module that
        defines an entry registered from Python."""
        self._known(name)
        return self._origin[name]

    def names(self) -> list[str]:
        """Every name: built-ins, registered ones and plugins (plugins are not loaded)."""
        self._load()
        return sorted(set(self._entries) | set(self.plugins()))

    def builtins(self) -> list[str]:
        """The names the built-in module registered, in the order it registered them."""
        self._load()
        return [n for n in self._entries if self._origin.get(n) == BUILTIN]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries or (isinstance(name, str) and name in self.plugins())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


# --import --------------------------------------------------------------------------------
_IMPORTED: list[str] = []


def imported_modules() -> list[str]:
    """The modules :func:`import_modules` imported in this process, in order (Ray workers
    started by this process import them too)."""
    return list(_IMPORTED)


def import_modules(modules: Iterable[str], search_path: Iterable[str] = ()) -> None:
    """Import a user's modules so that their registrations (blocks, tasks, init laws,
    searchers) run: what ``--import MODULE`` and ``RunConfig.imports`` do.

    Args:
        modules: dotted module names (found on ``sys.path``, ``PYTHONPATH`` or in the
            current directory), or paths of ``.py`` files.
        search_path: folders to look in too (a Ray worker gets its driver's working folder).

    Raises:
        AutoDLError: a module that cannot be found or fails while importing.
    """
    for folder in [*search_path, os.getcwd()]:
        if folder and folder not in sys.path:
            sys.path.append(folder)  # appended: never shadows an installed package
    for item in modules:
        name = _module_name(item)
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.split(".")[0] == exc.name.split(".")[0]:
                raise AutoDLError(
                    f"cannot import {item!r}: no module {exc.name!r} on the Python path; put its "
                    "folder on PYTHONPATH, run from that folder, or install the package"
                ) from None
            raise AutoDLError(f"importing {item!r} failed: {exc}") from None
        except AutoDLError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's module: one line, no traceback
            raise AutoDLError(f"importing {item!r} failed: {type(exc).__name__}: {exc}") from None
        if item not in _IMPORTED:
            _IMPORTED.append(item)


def _module_name(item: str) -> str:
    """The module to import for an ``--import`` value: a dotted name, or a ``.py`` file whose
    folder is put on ``sys.path``."""
    if not isinstance(item, str) or not item:
        raise AutoDLError(f"--import takes a module name such as mypkg.blocks, got {item!r}")
    if item.endswith(".py") or os.sep in item:
        path = Path(item)
        if not path.is_file() or path.suffix != ".py":
            raise AutoDLError(
                f"--import {item!r}: no such Python file; give a module name or a .py path"
            )
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.append(folder)
        return path.stem
    if not all(part.isidentifier() for part in item.split(".")):
        raise AutoDLError(f"--import {item!r} is not a module name; write e.g. mypkg.blocks")
    return item


def resolve_imports(modules: Iterable[str]) -> list[str]:
    """``--import`` values as they are stored with a run: ``.py`` paths made absolute (so a
    resume from another folder, or a worker, finds them), module names unchanged."""
    out = []
    for item in modules:
        if isinstance(item, str) and (item.endswith(".py") or os.sep in item):
            item = str(Path(item).resolve())
        if item not in out:
            out.append(item)
    return out
