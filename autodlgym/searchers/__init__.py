"""Searchers. Importing this package registers the built-ins: every module of the package
(a new searcher is one module with one ``@register_searcher`` line; nothing to list here)."""

import importlib as _importlib
import pkgutil as _pkgutil

for _module in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    _importlib.import_module(f"{__name__}.{_module}")
