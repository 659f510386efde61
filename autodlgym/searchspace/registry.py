"""Registries of the search space's building blocks and init laws, and their decorators.

Kept free of torch: the built-in blocks and laws are declared from the table in
:mod:`autodlgym.searchspace.builtins` (names, ``reads``, ``uses``, docs), so listing them and
reading their registrations imports nothing; their torch code (:mod:`autodlgym.nn.blocks`,
:mod:`autodlgym.nn.init`) is imported when an entry itself is asked for, to build a network.
Plugins come from the ``autodlgym.blocks`` and ``autodlgym.init_laws`` entry-point groups (see
:mod:`autodlgym.registry`).

A block's registration is all the space needs to know about it: its name becomes a ``block``
option, and ``uses`` names the stage decisions it reads (``kernel``, ``dilation``, ...), which
are active exactly for the blocks that use them. A new block is one ``@register_block`` line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from autodlgym.errors import SpecError
from autodlgym.registry import Registry
from autodlgym.searchspace import builtins

#: what a block factory reads; see :mod:`autodlgym.nn.blocks`.
READS = ("any", "vector", "spatial", "sequence", "graph")


def _adopt_block(name: str, obj: Any) -> None:
    register_block(name)(obj)


def _adopt_init(name: str, obj: Any) -> None:
    register_init(name)(obj)


#: name -> block factory; see :mod:`autodlgym.nn.blocks` for the contract. The built-ins'
#: classes are imported from there when first asked for.
BLOCKS: Registry = Registry(
    "block",
    lazy_module="autodlgym.nn.blocks",
    group="autodlgym.blocks",
    adopt=_adopt_block,
    declared={
        name: (b.cls, {"reads": b.reads, "uses": b.uses, "doc": b.doc, "modalities": b.modalities})
        for name, b in builtins.BLOCKS.items()
    },
)
#: name -> init law; see :mod:`autodlgym.nn.init`. The built-in laws are imported from there
#: when first asked for.
INIT_LAWS: Registry = Registry(
    "init law",
    lazy_module="autodlgym.nn.init",
    group="autodlgym.init_laws",
    adopt=_adopt_init,
    declared=builtins.INIT_LAWS,
)


def register_block(
    name: str,
    *,
    reads: str = "any",
    uses: Iterable[str] = (),
    doc: str = "",
    modalities: Iterable[str] | None = None,
) -> Callable[[Any], Any]:
    """Decorator registering a block factory ``factory(in_shape, ctx) -> nn.Module``.

    Args:
        name: the name used as a ``block`` option in search spaces.
        reads: ``"vector"``, ``"spatial"``, ``"sequence"``, ``"graph"`` or ``"any"``: the
            state kind the factory receives (see :mod:`autodlgym.nn.blocks`; a ``"graph"``
            block reads node features ``(D,)`` and is called ``forward(x, graph)``, see
            :mod:`autodlgym.nn.graph`). Graph blocks are left out of the default space of
            tasks that are not graphs.
        uses: the stage decisions the block reads from ``ctx`` (e.g. ``("kernel",)``); in a
            space, each is active exactly when the stage's block is one that uses it.
        doc: one line shown in listings.
        modalities: the task modalities (``vector``, ``sequence``, ``image``) whose prior
            the block fits: a task's default space offers it only there (a space that names
            it offers it anywhere). None: every modality (registrations from before this
            existed keep working everywhere).
    """
    if reads not in READS:
        raise SpecError(
            f"block {name!r}: reads={reads!r} is unknown; use one of {', '.join(READS)}"
        )
    if isinstance(uses, str):
        uses = (uses,)
    if modalities is None:
        modalities = builtins.ALL
    elif isinstance(modalities, str):
        modalities = (modalities,)
    unknown = [m for m in modalities if m not in builtins.ALL]
    if unknown:
        raise SpecError(
            f"block {name!r}: modality {unknown[0]!r} is unknown; use {', '.join(builtins.ALL)}"
        )
    return BLOCKS.register(
        name, reads=reads, uses=tuple(uses), doc=doc, modalities=tuple(modalities)
    )


def block_modalities(name: str) -> tuple[str, ...]:
    """The modalities whose default space offers block ``name`` (every one for a block
    registered without them)."""
    return tuple(BLOCKS.meta(name).get("modalities") or builtins.ALL)


def register_init(name: str, **meta: Any) -> Callable[[Any], Any]:
    """Decorator that registers an init law ``law(weight, gain) -> None`` under ``name``.

    ``meta`` is stored with the entry; ``keeps_torch_init=True`` means the law leaves weights
    and biases as torch made them.
    """
    return INIT_LAWS.register(name, **meta)


def blocks_using(decision: str, blocks: Iterable[str]) -> list[str]:
    """Those of ``blocks`` whose registration lists ``decision`` in ``uses``."""
    return [b for b in blocks if decision in BLOCKS.meta(b).get("uses", ())]


def block_decisions(blocks: Iterable[str]) -> set[str]:
    """Every stage decision some of ``blocks`` uses."""
    return {d for b in blocks for d in BLOCKS.meta(b).get("uses", ())}


def loaded_blocks() -> list[str]:
    """Blocks registered so far (built-ins, from Python, plugins already loaded); imports
    nothing."""
    return list(BLOCKS._entries)
