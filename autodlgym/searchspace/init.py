"""Deprecated: the init laws moved to :mod:`autodlgym.nn.init`; this path is removed in 0.3.0.

Reading a name from this old path warns with a ``DeprecationWarning`` and hands back the
object of :mod:`autodlgym.nn.init`. Importing the path itself imports neither that module nor
torch.
"""

from autodlgym.utils import moved_module

__getattr__, __dir__ = moved_module(__name__, "autodlgym.nn.init")
