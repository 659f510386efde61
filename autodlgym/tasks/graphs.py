"""Graph tasks: node classification and graph classification, generated offline or read from
a user's file.

Built-in tasks (no download):

- ``csbm``: a contextual stochastic block model (Deshpande et al., 2018): ``nodes`` nodes in
  ``classes`` equal classes; each node has on average ``degree`` undirected edges, a share
  ``homophily`` of them to its own class (edge homophily; 1/classes is a random graph,
  0 a multipartite one); its ``features`` Gaussian features have the class mean
  ``mu_y`` plus unit noise, the means ``snr`` apart (``||mu_a - mu_b|| = snr``).
  Node classification; a stratified 60 / 20 / 20 split of the nodes.
- ``karate``: Zachary's karate club as PyTorch Geometric ships it (34 nodes, 4 communities,
  one-hot node identities as features); a stratified 50 / 25 / 25 split.
- ``motifs``: graph classification, motif detection as in BA-2Motifs (Luo et al., 2020):
  ``graphs`` Barabasi-Albert trees of ``nodes`` nodes, each with a 5-node motif attached by
  one edge: a house (label 1) or a 5-cycle (label 0). Node features are constant: only
  structure tells the classes apart.
- ``graph:PATH``: a user's graph: a ``.pt`` file holding a PyG ``Data`` (node
  classification: ``x``, ``edge_index``, ``y`` per node, optional ``train_mask``,
  ``val_mask``, ``test_mask``) or a list / dataset of ``Data`` (graph classification, one
  ``y`` per graph), or an ``.npz`` with ``x``, ``edge_index``, ``y`` and optional masks (node
  classification). Missing masks: a stratified 60 / 20 / 20 split drawn with ``seed``.

A graph task's :class:`GraphData` keeps PyG ``Data`` objects; the trainer batches graph-level
tasks with PyG's ``DataLoader`` and trains node-level tasks on the whole graph at once, one
step per epoch. Generation is deterministic (numpy Generators, networkx with integer seeds)
and leaves the global random states alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.constraints import Constraints
from autodlgym.searchspace.io import IOSpec
from autodlgym.tasks.base import Task, register_task
from autodlgym.trial import Fidelity, rung_fidelities

#: candidates a CPU trains in about a second (parameters; FLOPs per node)
GRAPH_BUDGET = Constraints(max_params=200_000, max_flops=2_000_000)
#: full-graph steps of a node-level task's full fidelity
NODE_EPOCHS = 100
#: epochs of a graph-level task's full fidelity
GRAPH_EPOCHS = 30
#: a multi-fidelity ladder on a node task starts at this share of the full epochs
NODE_FIRST_RUNG = 1 / 27


@dataclass(frozen=True)
class GraphData:
    """A graph task's data.

    Attributes:
        level: ``"node"`` (one graph, a label per node) or ``"graph"`` (a label per graph).
        graphs: PyG ``Data`` objects (one for a node-level task), float32 ``x``, int64
            ``edge_index`` and ``y``. Shared between callers: do not modify them.
        train, val, test: node indices (node level) or graph indices (graph level).
    """

    level: str
    graphs: tuple[Any, ...]
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> tuple[int, int, int]:
        """Numbers of train, validation and test nodes (node level) or graphs."""
        return len(self.train), len(self.val), len(self.test)


@dataclass(frozen=True)
class GraphTask(Task):
    """A task on graphs: its own default space (:func:`~autodlgym.searchspace.config.
    graph_config`), full fidelity (:data:`NODE_EPOCHS` full-graph steps, or
    :data:`GRAPH_EPOCHS` epochs) and multi-fidelity ladder."""

    def default_space(self) -> Any:
        from autodlgym.searchspace.config import graph_config
        from autodlgym.searchspace.space import SearchSpace

        return SearchSpace.from_config(graph_config(self.io.modality))

    def prepare(self, warm_up: Any = None) -> None:
        """The graphs, and PyTorch Geometric's import (seconds), before any trial's clock."""
        super().prepare(warm_up)
        import autodlgym.nn.graph  # noqa: F401

    def default_fidelity(self) -> Fidelity | None:
        return Fidelity(NODE_EPOCHS if self.io.modality == "node" else GRAPH_EPOCHS)

    def default_fidelities(
        self, full: Fidelity, first_time_limit: float | None = None
    ) -> list[Fidelity]:
        n_train = self.load().sizes()[0]
        if full.max_train_samples is not None:
            n_train = min(n_train, full.max_train_samples)
        if self.io.modality == "node":
            # one epoch is one step here: start the ladder at a few steps on every node
            first = max(1.0, full.epochs * NODE_FIRST_RUNG)
            return rung_fidelities(full, n_train, first, first_time_limit=first_time_limit)
        return rung_fidelities(full, n_train, first_time_limit=first_time_limit)


# Helpers ------------------------------------------------------------------------------------
def stratified_split(
    y: np.ndarray, shares: Sequence[float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / validation / test indices with ``shares`` of every class (sorted)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    strat = y if np.bincount(y).min() >= 3 else None
    train, rest = train_test_split(idx, train_size=shares[0], random_state=seed, stratify=strat)
    val_share = shares[1] / (shares[1] + shares[2])
    strat = y[rest] if strat is not None and np.bincount(y[rest]).min() >= 2 else None
    val, test = train_test_split(rest, train_size=val_share, random_state=seed, stratify=strat)
    return np.sort(train), np.sort(val), np.sort(test)


def _data(x: np.ndarray, edge_index: np.ndarray, y: np.ndarray) -> Any:
    import torch
    from torch_geometric.data import Data

    return Data(
        x=torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)),
        edge_index=torch.as_tensor(np.ascontiguousarray(edge_index, dtype=np.int64)),
        y=torch.as_tensor(np.ascontiguousarray(y, dtype=np.int64)),
    )


def _undirected(pairs: np.ndarray) -> np.ndarray:
    """Both directions of each unordered pair, self-loops and duplicates removed: (2, E)."""
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    return np.concatenate([pairs, pairs[:, ::-1]]).T


def _node_task(name: str, description: str, io: IOSpec, make: Any, budget: Constraints) -> Task:
    return GraphTask(name, (), io, "cross_entropy", "accuracy", description, make, budget=budget)


# CSBM -----------------------------------------------------------------------------------------
def csbm_graph(
    nodes: int, classes: int, homophily: float, degree: float, snr: float, features: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, edge_index, y)`` of a contextual SBM (see the module docstring)."""
    rng = np.random.default_rng(seed)
    y = np.arange(nodes) % classes
    rng.shuffle(y)
    members = [np.flatnonzero(y == c) for c in range(classes)]
    pairs = []
    for a in range(classes):
        for b in range(a, classes):
            na, nb = len(members[a]), len(members[b])
            if a == b:
                slots = na * (na - 1) / 2
                # each node's expected own-class edges: degree * homophily
                expected = na * degree * homophily / 2
            else:
                slots = na * nb
                expected = (na + nb) * degree * (1 - homophily) / (2 * (classes - 1))
            if slots <= 0 or expected <= 0:
                continue
            count = rng.binomial(int(slots), min(1.0, expected / slots))
            src = members[a][rng.integers(0, na, count)]
            dst = members[b][rng.integers(0, nb, count)]
            pairs.append(np.stack([src, dst], axis=1))
    edge_index = _undirected(np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=int))
    # class means on random orthogonal directions, snr apart pairwise
    q, _ = np.linalg.qr(rng.normal(size=(features, max(features, classes))))
    means = q[:, :classes].T * (snr / np.sqrt(2.0)) if features >= classes else None
    if means is None:
        means = rng.normal(size=(classes, features))
        means *= snr / np.sqrt(2.0) / np.linalg.norm(means, axis=1, keepdims=True)
    x = means[y] + rng.normal(size=(nodes, features))
    return x.astype(np.float32), edge_index, y


_CSBM_DESC = (
    "contextual stochastic block model: node classification, homophily= snr= nodes= classes= "
    "(no download)"
)


@register_task("csbm", description=_CSBM_DESC, env_name="CSBM")
def csbm(
    homophily: float = 0.8,
    snr: float = 1.0,
    nodes: int = 1000,
    classes: int = 2,
    degree: float = 5.0,
    features: int = 16,
    seed: int = 0,
) -> Task:
    if not 0.0 <= homophily <= 1.0:
        raise AutoDLError(f"csbm homophily={homophily!r} must lie in [0, 1]")
    if classes < 2 or nodes < 10 * classes:
        raise AutoDLError(
            f"csbm needs classes >= 2 and at least 10 nodes per class, got nodes={nodes}, "
            f"classes={classes}"
        )
    if snr < 0 or degree <= 0 or features < 1:
        raise AutoDLError("csbm needs snr >= 0, degree > 0 and features >= 1")

    def loader() -> GraphData:
        x, edge_index, y = csbm_graph(nodes, classes, homophily, degree, snr, features, seed)
        return GraphData(
            "node", (_data(x, edge_index, y),), *stratified_split(y, (0.6, 0.2, 0.2), seed)
        )

    return _node_task(
        "csbm", _CSBM_DESC, IOSpec("node", (features,), classes), loader, GRAPH_BUDGET
    )


_KARATE_DESC = "Zachary's karate club (PyG's 4 communities): node classification, 34 nodes"


@register_task("karate", description=_KARATE_DESC)
def karate(seed: int = 0) -> Task:
    def loader() -> GraphData:
        from torch_geometric.datasets import KarateClub

        g = KarateClub()[0]
        data = _data(g.x.numpy(), g.edge_index.numpy(), g.y.numpy())
        return GraphData("node", (data,), *stratified_split(g.y.numpy(), (0.5, 0.25, 0.25), seed))

    return _node_task("karate", _KARATE_DESC, IOSpec("node", (34,), 4), loader, GRAPH_BUDGET)


# Motifs -------------------------------------------------------------------------------------
HOUSE = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 4), (1, 4)]  # a square with a roof
CYCLE = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]

_MOTIFS_DESC = (
    "graph classification: Barabasi-Albert graphs with a house or a 5-cycle motif attached "
    "(no download)"
)


def motif_graph(nodes: int, house: bool, rng: np.random.Generator) -> np.ndarray:
    """Edges ``(2, E)`` of a BA tree of ``nodes`` nodes (one edge per new node) with a house
    (or a 5-cycle) attached to a random base node by one edge."""
    import networkx as nx

    base = nx.barabasi_albert_graph(nodes, 1, seed=int(rng.integers(2**31)))
    pairs = list(base.edges())
    motif = HOUSE if house else CYCLE
    pairs += [(nodes + a, nodes + b) for a, b in motif]
    pairs.append((int(rng.integers(nodes)), nodes + int(rng.integers(5))))
    return _undirected(np.array(pairs))


@register_task("motifs", description=_MOTIFS_DESC)
def motifs(graphs: int = 600, nodes: int = 20, seed: int = 0) -> Task:
    if graphs < 20 or nodes < 3:
        raise AutoDLError(f"motifs needs graphs >= 20 and nodes >= 3, got {graphs}, {nodes}")

    def loader() -> GraphData:
        rng = np.random.default_rng(seed)
        labels = np.arange(graphs) % 2
        rng.shuffle(labels)
        data = []
        for label in labels:
            edge_index = motif_graph(nodes, bool(label), rng)
            x = np.ones((nodes + 5, 1), dtype=np.float32)
            data.append(_data(x, edge_index, np.array([label])))
        return GraphData("graph", tuple(data), *stratified_split(labels, (0.6, 0.2, 0.2), seed))

    io = IOSpec("graph", (1,), 2)
    return GraphTask("motifs", (), io, "cross_entropy", "accuracy", _MOTIFS_DESC, loader,
                     budget=GRAPH_BUDGET)  # fmt: skip


# A user's graph -------------------------------------------------------------------------------
_GRAPH_FIX = (
    "give a .pt file with a torch_geometric Data (x, edge_index, y per node, optional "
    "train_mask/val_mask/test_mask) or a list of Data (one y per graph), or an .npz with x, "
    "edge_index, y and optional masks"
)


def _read_graphs(p: Path, labels: bool = True) -> list[Any]:
    """The ``Data`` objects a user's file holds (one-line errors); without ``labels`` an
    .npz needs no ``y`` (new graphs to predict on)."""
    import torch

    if p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except Exception as exc:  # noqa: BLE001 - any reader error is the file's
            raise AutoDLError(f"graph file {str(p)!r} cannot be read: {exc}") from None
        needed = ("x", "edge_index", "y") if labels else ("x", "edge_index")
        missing = [k for k in needed if k not in arrays]
        if missing:
            raise AutoDLError(f"graph file {str(p)!r} lacks {', '.join(missing)}; {_GRAPH_FIX}")
        from torch_geometric.data import Data

        g = Data(**{k: torch.as_tensor(v) for k, v in arrays.items()})
        return [g]
    if p.suffix != ".pt":
        raise AutoDLError(f"graph file {str(p)!r} must end in .pt or .npz; {_GRAPH_FIX}")
    try:
        obj = torch.load(p, weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise AutoDLError(f"graph file {str(p)!r} cannot be read: {exc}") from None
    items = [obj] if hasattr(obj, "edge_index") else obj
    try:
        graphs = list(items)
    except TypeError:
        graphs = []
    if not graphs or not all(hasattr(g, "edge_index") for g in graphs):
        raise AutoDLError(
            f"graph file {str(p)!r} holds {type(obj).__name__}, not graphs; {_GRAPH_FIX}"
        )
    return graphs


def _mask(g: Any, name: str, n: int) -> np.ndarray | None:
    m = getattr(g, name, None) if name in g else None
    if m is None:
        return None
    m = np.asarray(m).astype(bool).reshape(-1)
    if len(m) != n:
        raise AutoDLError(f"graph {name} has {len(m)} entries for {n} nodes; give one per node")
    return np.flatnonzero(m)


def _check_graph(g: Any, where: str, node_labels: bool) -> Any:
    x, ei, y = getattr(g, "x", None), getattr(g, "edge_index", None), getattr(g, "y", None)
    if x is None or y is None or ei is None:
        raise AutoDLError(f"{where} needs x, edge_index and y; {_GRAPH_FIX}")
    x, ei, y = np.asarray(x), np.asarray(ei), np.asarray(y).reshape(-1)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or ei.ndim != 2 or ei.shape[0] != 2:
        raise AutoDLError(
            f"{where}: x must be (nodes, features) and edge_index (2, edges), got "
            f"{x.shape} and {ei.shape}"
        )
    if ei.size and (ei.min() < 0 or ei.max() >= len(x)):
        raise AutoDLError(f"{where}: edge_index refers to nodes outside 0..{len(x) - 1}")
    if node_labels and len(y) != len(x):
        raise AutoDLError(f"{where}: y has {len(y)} labels for {len(x)} nodes; give one per node")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise AutoDLError(f"{where}: y must hold class labels 0, 1, ... (integers)")
    return _data(x, ei, y)


@register_task(
    "graph",
    description="your graph: a .pt PyG Data (node labels) or list of Data (graph labels), or .npz",
    prefix=True,
)
def graph_file(path: str, seed: int = 0) -> Task:
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise AutoDLError(f"graph file {str(p)!r} does not exist; {_GRAPH_FIX}")
    raw = _read_graphs(p)
    where = f"graph file {str(p)!r}"
    if len(raw) == 1 and np.asarray(raw[0].y).reshape(-1).size == raw[0].num_nodes:
        g = _check_graph(raw[0], where, node_labels=True)
        y = g.y.numpy()
        split = [_mask(raw[0], f"{s}_mask", len(y)) for s in ("train", "val", "test")]
        if any(s is None for s in split):
            split = list(stratified_split(y, (0.6, 0.2, 0.2), seed))
        if any(len(s) == 0 for s in split):
            raise AutoDLError(f"{where}: the train, val and test masks must each select nodes")
        data = GraphData("node", (g,), *split)
        io = IOSpec("node", (g.x.shape[1],), int(y.max()) + 1)
    else:
        graphs = [_check_graph(g, f"{where} graph {i}", False) for i, g in enumerate(raw)]
        if any(g.y.numel() != 1 for g in graphs):
            raise AutoDLError(f"{where}: each graph needs one label y; {_GRAPH_FIX}")
        widths = {g.x.shape[1] for g in graphs}
        if len(widths) != 1:
            raise AutoDLError(f"{where}: graphs have {sorted(widths)} features; give all the same")
        y = np.array([int(g.y) for g in graphs])
        if len(graphs) < 10:
            raise AutoDLError(f"{where} holds {len(graphs)} graphs; give at least 10")
        data = GraphData("graph", tuple(graphs), *stratified_split(y, (0.6, 0.2, 0.2), seed))
        io = IOSpec("graph", (widths.pop(),), int(y.max()) + 1)
    from autodlgym.tasks.files import fingerprint

    desc = f"your graph {p.name}"
    # the file it came from (a run notices it changing) and no array preprocessing: the
    # runner fits its baselines, as on any user's data
    pre = {"kind": "graph", "level": data.level, "source": str(p), "sha256": fingerprint(p)}
    return GraphTask(f"graph:{p}", (), io, "cross_entropy", "accuracy", desc, lambda: data,
                     preprocessing=pre, budget=GRAPH_BUDGET)  # fmt: skip
