"""IOSpec: the shape of a task's inputs and outputs, as the model builder needs it."""

from __future__ import annotations

from dataclasses import dataclass

from autodlgym.errors import AutoDLError

MODALITIES = ("vector", "sequence", "image", "node", "graph")
#: modalities whose inputs are graphs: ``node`` (a label per node) and ``graph`` (per graph)
GRAPH_MODALITIES = ("node", "graph")


@dataclass(frozen=True)
class IOSpec:
    """Inputs and outputs of a task.

    Args:
        modality: ``"vector"`` (shape ``(F,)``), ``"sequence"`` (a 1-D signal or sequence,
            shape ``(C, L)``: channels x length), ``"image"`` (shape ``(C, H, W)``), or a
            graph task: ``"node"`` (node classification) or ``"graph"`` (graph
            classification), shape ``(F,)``, the features of one node.
        shape: one example's shape, without the batch dimension (a node's, for graphs).
        n_outputs: number of classes (classification) or of regression targets.
    """

    modality: str
    shape: tuple[int, ...]
    n_outputs: int

    def __post_init__(self) -> None:
        want = {"vector": 1, "sequence": 2, "image": 3, "node": 1, "graph": 1}
        if self.modality not in want:
            raise AutoDLError(
                f"modality {self.modality!r} is unknown; use one of {', '.join(MODALITIES)}"
            )
        if len(self.shape) != want[self.modality] or any(int(s) < 1 for s in self.shape):
            raise AutoDLError(
                f"a {self.modality} input needs a shape of {want[self.modality]} positive sizes, got {self.shape}"
            )
        if self.n_outputs < 1:
            raise AutoDLError(f"n_outputs must be positive, got {self.n_outputs}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def is_graph(self) -> bool:
        """Whether inputs are graphs (modality ``node`` or ``graph``)."""
        return self.modality in GRAPH_MODALITIES
