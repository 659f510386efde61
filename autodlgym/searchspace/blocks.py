"""Deprecated: the built-in blocks moved to :mod:`autodlgym.nn.blocks`; this path is removed in 0.3.0.

Reading a name from this old path warns with a ``DeprecationWarning`` and hands back the
object of :mod:`autodlgym.nn.blocks`. Importing the path itself imports neither that module nor
torch.
"""

from autodlgym.utils import moved_module

__getattr__, __dir__ = moved_module(__name__, "autodlgym.nn.blocks")
