"""Registries of the search space's building blocks and init laws.

Kept free of torch so that the space (and ``import autodlgym``) stays light: the built-in
blocks and laws register themselves when ``blocks.py`` / ``init.py`` are first needed.
"""

from __future__ import annotations

from autodlgym.registry import Registry

#: name -> block factory; see :mod:`autodlgym.searchspace.blocks` for the contract.
BLOCKS: Registry = Registry("block", lazy_module="autodlgym.searchspace.blocks")
#: name -> init law; see :mod:`autodlgym.searchspace.init`.
INIT_LAWS: Registry = Registry("init law", lazy_module="autodlgym.searchspace.init")


def known_blocks() -> set[str]:
    """Names a space may use as block options, without importing torch for the built-ins."""
    from autodlgym.searchspace.space import BUILTIN_BLOCKS

    return set(BUILTIN_BLOCKS) | set(BLOCKS._entries)
