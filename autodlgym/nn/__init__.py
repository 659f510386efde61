"""How a spec becomes torch: the blocks, the builder and the init laws.

:mod:`autodlgym.nn.blocks` holds the built-in blocks and the state kinds they read,
:mod:`autodlgym.nn.build` turns an :class:`~autodlgym.searchspace.spec.ArchSpec` into a network
(``build_model``) and chooses which of its weights train, and :mod:`autodlgym.nn.init` holds the
init laws and ``apply_init``. What can be built (the space, the registries of blocks and init
laws, the cost model) lives in :mod:`autodlgym.searchspace`, which does not import torch; this
package does, so importing it is left to the modules that build networks.
"""
