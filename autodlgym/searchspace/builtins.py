"""The built-in blocks and init laws as data: what a search space needs to know of them.

A block's row gives its name (a ``block`` option), the class in :mod:`autodlgym.nn.blocks`
that builds it, the state kind it reads, the stage decisions it uses (each is active in a space
exactly for the blocks that use it) and a line for listings. An init law's row gives its name,
the function in :mod:`autodlgym.nn.init` and its metadata. :mod:`autodlgym.searchspace.registry`
declares them from here, so building a space, sampling it and costing a built-in spec know
every built-in without importing torch; the torch code is imported when a network is built.

A new built-in block is a class in ``nn/blocks.py`` and a row here (a new decision it reads also
goes in the stage template of ``searchspace/config.py``); a new built-in law is a function in
``nn/init.py`` and a row here.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class BuiltinBlock(NamedTuple):
    """One built-in block: see the module docstring."""

    cls: str
    reads: str
    uses: tuple[str, ...]
    doc: str
    #: the task modalities whose default space offers the block (its prior fits them)
    modalities: tuple[str, ...] = ("vector", "sequence", "image")


#: The priors each modality's default space keeps. Columns of a table have no order and no
#: neighbourhood, so locality and order priors (convolutions over columns, recurrence,
#: WaveNet, attention over positions) are left out for vectors; a residual or SE block reads
#: a vector as one position with its features as channels (a residual MLP, squeeze-excitation
#: over features), with kernel 1. Images keep the convolution family and attention over
#: positions; sequences every block.
ALL = ("vector", "sequence", "image")
SPATIAL = ("sequence", "image")
#: decisions whose options a modality narrows in its default space (stage or global). On a
#: vector (a table's row): kernel 1; the optimisers, learning rates and weight decays of the
#: tabular-MLP literature (AdamW or Adam, 1e-4 to 1e-2, decay up to 0.1: Kadra et al. 2021,
#: Gorishniy et al. 2021), where SGD without momentum and learning rates of 0.05-0.1 trained
#: few-hundred-row tables to a worse test score than logistic regression (breast_cancer,
#: 2-minute searches); ``instance`` norm is left out (on one position it is ``layer``).
MODALITY_OPTIONS: dict[str, dict[str, list[Any]]] = {
    "vector": {
        "kernel": [1],
        "dilation": [1],
        "norm": ["none", "batch", "layer"],
        "optimizer": ["adamw", "adam"],
        "lr": [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2],
        "weight_decay": [0.0, 1e-4, 1e-3, 1e-2, 1e-1],
    }
}
#: decisions a modality's default space leaves out, each for a reason: on a vector nothing
#: is pooled (``downsample`` and its ``lp_p`` / ``lse_r``, ``head_pool``: a vector has no
#: positions, the builder skips them), and every weight trains (``trainable``: random
#: features are a research question, not a prior for a table); ``momentum`` belongs to the
#: optimisers a vector does not offer
MODALITY_DROPPED: dict[str, tuple[str, ...]] = {
    "vector": ("downsample", "lp_p", "lse_r", "head_pool", "trainable", "momentum"),
}


#: name -> block, in the order the default space offers them
BLOCKS: dict[str, BuiltinBlock] = {
    "mlp": BuiltinBlock("MLPBlock", "vector", (), "fully connected layer", ALL),
    "conv": BuiltinBlock(
        "ConvBlock", "spatial", ("kernel", "dilation"), "convolution (kernel, dilation)", SPATIAL
    ),
    "residual": BuiltinBlock(
        "ResidualBlock",
        "spatial",
        ("kernel", "dilation"),
        "two-conv residual block (on a vector: a residual MLP)",
        ALL,
    ),
    "highway": BuiltinBlock("HighwayBlock", "vector", ("gate_bias",), "gated highway layer", ALL),
    "dense": BuiltinBlock(
        "DenseBlock",
        "spatial",
        ("kernel", "growth"),
        "DenseNet block (growth), transition",
        SPATIAL,
    ),
    "inception": BuiltinBlock(
        "InceptionBlock", "spatial", (), "parallel 1/3/5 convs and pool branch", SPATIAL
    ),
    "se": BuiltinBlock(
        "SEBlock",
        "spatial",
        ("kernel", "reduction"),
        "conv with squeeze-excitation (on a vector: SE over features)",
        ALL,
    ),
    "attention": BuiltinBlock(
        "AttentionBlock",
        "sequence",
        ("heads",),
        "pre-norm transformer layer (heads)",
        SPATIAL,
    ),
    "recurrent": BuiltinBlock(
        "RecurrentBlock",
        "sequence",
        ("cell", "bidirectional"),
        "rnn/gru/lstm/minimal cell, bidirectional",
        ("sequence",),
    ),
    "wavenet": BuiltinBlock(
        "WaveNetBlock",
        "sequence",
        ("kernel",),
        "dilated causal gated conv, residual and skip",
        ("sequence",),
    ),
    # graph blocks (nn/graph.py, on PyTorch Geometric): offered by the graph tasks' spaces,
    # not by the default space of other tasks
    "gcn": BuiltinBlock("GCNBlock", "graph", (), "graph convolution (Kipf & Welling)", ("graph",)),
    "gat": BuiltinBlock("GATBlock", "graph", ("heads",), "graph attention (heads)", ("graph",)),
    "gin": BuiltinBlock(
        "GINBlock", "graph", (), "graph isomorphism network layer, GIN-0", ("graph",)
    ),
    "sage": BuiltinBlock("SAGEBlock", "graph", (), "GraphSAGE, mean aggregation", ("graph",)),
    "cheb": BuiltinBlock(
        "ChebBlock", "graph", ("cheb_k",), "Chebyshev spectral filter (K)", ("graph",)
    ),
    "arma": BuiltinBlock("ARMABlock", "graph", (), "ARMA graph filter, one stack", ("graph",)),
    "graphconv": BuiltinBlock("GraphConvBlock", "graph", (), "k-GNN graph convolution", ("graph",)),
    "fc": BuiltinBlock("FCBlock", "graph", (), "linear layer on each node", ("graph",)),
    "skip": BuiltinBlock("SkipBlock", "graph", (), "identity (NAS-Bench-Graph's skip)", ("graph",)),
}

#: the blocks that read a graph (modality "graph", not one of ALL): offered by the graph
#: spaces, left out of the default spaces
GRAPH_BLOCKS: tuple[str, ...] = tuple(n for n, b in BLOCKS.items() if b.reads == "graph")

#: name -> (function in autodlgym.nn.init, metadata), in the order they are listed
INIT_LAWS: dict[str, tuple[str, dict[str, Any]]] = {
    "glorot_uniform": ("glorot_uniform", {}),
    "glorot_normal": ("glorot_normal", {}),
    "he_uniform": ("he_uniform", {}),
    "he_normal": ("he_normal", {}),
    "lecun_normal": ("lecun_normal", {}),
    "orthogonal": ("orthogonal", {}),
    # the law leaves weights and biases as torch made them
    "torch_default": ("torch_default", {"keeps_torch_init": True}),
}
