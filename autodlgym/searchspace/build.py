"""Deprecated: the builder moved to :mod:`autodlgym.nn.build`; this path is removed in 0.3.0.

Reading a name from this old path warns with a ``DeprecationWarning`` and hands back the
object of :mod:`autodlgym.nn.build`. Importing the path itself imports neither that module nor
torch.
"""

from autodlgym.utils import moved_module

__getattr__, __dir__ = moved_module(__name__, "autodlgym.nn.build")
