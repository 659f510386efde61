"""Take a model away from a run: ``autodlgym export`` and ``autodlgym predict``.

:func:`export_model` writes a directory that runs without autodlgym::

    spec.json            the architecture (ArchSpec JSON)
    weights.pt           the trained weights (a state_dict; rebuild with build_model(spec, io))
    preprocessing.json   how raw inputs become model inputs (autodlgym.tasks.preprocessing)
    program.pt2          the network as a torch.export program (torch.export.load(...).module());
                         program.ts (TorchScript) where torch.export cannot take the model
    model.onnx           the same network in ONNX, when the onnx package is installed
    predict.py           python predict.py --input FILE: needs torch and numpy only
    model.json           where it came from: run, trial, fidelity, seed, scores

A graph task's model (node or graph classification) gets spec.json, weights.pt,
preprocessing.json (kind ``graph``) and model.json, and program.pt2 where torch.export takes
the network over ``(x, edge_index)`` (node level) with any number of nodes and edges; where
it cannot, and for every graph-level model (PyG's readouts and top-k pooling count the graphs
from the data, ``batch.max() + 1``, which torch.export cannot trace), the weights and spec
stand for the program and autodlgym rebuilds the network from them. Its predictions come from ``autodlgym predict DIR --input
FILE`` (a .pt / .npz graph file, read as ``graph:PATH`` reads it) or
``autodlgym.load_model(DIR).predict(data)`` (a PyG ``Data``, or a list of them): there is no
predict.py (reading graphs needs PyTorch Geometric).

The weights are those of a retrained evaluation of the trial's architecture (``autodlgym
retrain``) when one was kept, else the trial's spec is trained now at its own fidelity and seed
(or ``epochs``) and recorded as a retrained evaluation. Before anything is reported, the saved
program is loaded back and checked against the model on the task's test inputs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.tasks import preprocessing as pp
from autodlgym.trial import OK, RETRAIN, STOPPED, Fidelity

#: files an export writes (a re-export into the same directory replaces all of them)
EXPORT_FILES = (
    "spec.json", "weights.pt", "preprocessing.json", "program.pt2", "program.ts", "model.onnx",
    "predict.py", "model.json",
)  # fmt: skip
#: how closely the saved program must reproduce the model's outputs
RTOL, ATOL = 1e-4, 1e-5


@dataclass
class ExportSummary:
    """What :func:`export_model` wrote."""

    out: Path
    trial_id: int
    weights_from: int  # the retrained trial whose weights were exported
    trained_now: bool
    program: str  # "program.pt2" or "program.ts"
    onnx: str  # "model.onnx", or why there is none
    files: list[str] = field(default_factory=list)
    #: a line on how the weights relate to the trial, when that needs saying (a ``stopped``
    #: trial's architecture trained for its whole fidelity); empty otherwise
    note: str = ""


def preprocessing_for(task: Any) -> dict[str, Any]:
    """A task's preprocessing description; tasks whose arrays are their inputs (the built-in
    data sets) get an ``array`` description without standardisation."""
    if task.preprocessing is not None:
        pre = json.loads(json.dumps(task.preprocessing))  # a copy, JSON-clean
    else:
        pre = {
            "format": pp.FORMAT,
            "version": pp.VERSION,
            "kind": "array",
            "modality": task.io.modality,
            "input_shape": list(task.io.shape),
            "problem": "classification" if task.is_classification else "regression",
            "mean": None,
            "std": None,
        }
        if task.is_classification:
            pre["labels"] = [str(i) for i in range(task.io.n_outputs)]
        else:
            pre["target"] = {"name": "y", "mean": None, "std": None}
    pre["task"] = task.key
    return pre


def _pick_weights(store: Any, df: Any, row: Any, epochs: int | None) -> int | None:
    """The retrained trial whose saved weights stand for ``row``'s architecture, or None."""
    from autodlgym.retrain import model_path

    same = df[(df["arch_id"] == row["arch_id"]) & (df["phase"] == RETRAIN) & (df["status"] == OK)]
    if row["phase"] == RETRAIN:
        same = same[same["trial_id"] == row["trial_id"]]
    if epochs is not None:
        same = same[same["epochs"] == epochs]
    same = same.sort_values(["val_score", "trial_id"], ascending=[False, True], kind="stable")
    for trial_id in same["trial_id"]:
        if model_path(store.run_dir, int(trial_id)).is_file():
            return int(trial_id)
    return None


def export_model(
    run_dir: str | Path,
    trial_id: int,
    out: str | Path,
    epochs: int | None = None,
    device: str = "cpu",
    allow_changed_data: bool = False,
) -> ExportSummary:
    """Write trial ``trial_id`` of a run as a self-contained model directory ``out``.

    Args:
        run_dir: a run directory written by ``autodlgym search``.
        trial_id: any ``ok`` trial of the run (a search trial or a retrained one), or a
            ``stopped`` one (the search's time budget, or its time limit, ended its training):
            a stopped trial's architecture is exported trained for its whole fidelity (kept
            retrained weights, else trained now), not as far as the trial got.
        out: the directory to write (made if missing; earlier export files in it are replaced).
        epochs: use (or train) weights at this many epochs; None takes the best kept
            retrained weights of the architecture, else trains at the trial's own epochs.
        device: torch device for training, when training is needed.
        allow_changed_data: export although the run's data file changed since the run was
            made (see ``Run.open``).

    Raises:
        AutoDLError: no such run or trial, a trial that failed (``error``, ``nan``,
            ``timeout``, ...) or was pruned, training that fails, or a program that does not
            reproduce the model.
    """
    import torch

    from autodlgym.nn.build import build_model
    from autodlgym.retrain import model_path, train_and_keep
    from autodlgym.run import Run
    from autodlgym.searchspace.spec import ArchSpec

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AutoDLError(f"--out {str(out)!r} is a file; give a directory")
    with Run.open(run_dir, allow_changed_data=allow_changed_data) as run:
        store = run.store
        task = run.task
        if task.kind != "trained":
            raise AutoDLError(
                f"task {task.name!r} is a lookup table: its trials have no model to export; "
                "export a trial of a run whose task trains"
            )
        df = run.frame()
        rows = df[df["trial_id"] == int(trial_id)]
        if rows.empty and int(trial_id) in set(run.baselines()["trial_id"]):
            raise AutoDLError(
                f"trial {trial_id} is a scikit-learn baseline, not a network; export a trial "
                f"of the leaderboard (autodlgym leaderboard {run_dir})"
            )
        if rows.empty:
            ids = df["trial_id"]
            have = f"{ids.min()}..{ids.max()}" if len(ids) else "none"
            raise AutoDLError(
                f"{run_dir} has no trial {trial_id} (trial ids: {have}); see autodlgym leaderboard {run_dir}"
            )
        row = rows.iloc[0]
        if row["status"] not in (OK, STOPPED):
            raise AutoDLError(
                f"trial {trial_id} ended with status {row['status']}; export an ok or stopped "
                f"trial (autodlgym leaderboard {run_dir} lists them)"
            )
        spec = ArchSpec.from_json(row["spec"])
        source = _pick_weights(store, df, row, epochs)
        trained_now = source is None
        if source is None:
            fidelity = Fidelity(epochs=int(epochs or row["epochs"]), phase=RETRAIN)
            source, result = train_and_keep(store, task, spec, fidelity, int(row["seed"]), device)
            if result.status != OK:
                raise AutoDLError(
                    f"training trial {trial_id}'s spec for export ended {result.status}: {result.message}"
                )
        info_row = run.frame().set_index("trial_id").loc[source]
        note = ""
        if row["status"] == STOPPED:
            reached = int(row["epochs_run"]) if row["epochs_run"] == row["epochs_run"] else 0
            note = (
                f"trial {trial_id} was stopped after {reached} of its {int(row['epochs'])} "
                f"epochs ({row['message']}); its architecture is exported trained for "
                f"{int(info_row['epochs'])} epochs (trial {source})"
            )
    state = torch.load(model_path(run_dir, source), map_location="cpu", weights_only=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the build draws initial weights, which the state replaces
        model = build_model(spec, task.io)
    try:
        model.load_state_dict(state)
    except RuntimeError:  # the data's columns changed since the weights were kept
        raise AutoDLError(
            f"the weights of trial {source} do not fit the network built for the data as it "
            f"is now (its inputs changed); export from the data the run was made with"
        ) from None
    model.eval()

    out.mkdir(parents=True, exist_ok=True)
    for name in EXPORT_FILES:
        (out / name).unlink(missing_ok=True)
    graph = task.io.is_graph
    pre = graph_preprocessing(task) if graph else preprocessing_for(task)
    (out / "spec.json").write_text(spec.to_json() + "\n")
    torch.save(state, out / "weights.pt")
    (out / "preprocessing.json").write_text(json.dumps(pre, indent=2) + "\n")
    if graph:  # a graph model's predictions need PyG's reading of graphs: autodlgym predict
        program = _save_graph_program(model, graph_example(task), out)
        onnx = "no ONNX file: a graph model is exported as a torch.export program or its weights"
    else:
        shutil.copyfile(pp.__file__, out / "predict.py")
        data = task.load()
        example = torch.tensor(data.x_test[:256])  # a copy: the task arrays are read-only
        program = _save_program(model, example, out)
        onnx = _save_onnx(model, example, out)
    meta = {
        "run": str(Path(run_dir).resolve()),
        "trial_id": int(trial_id),
        "weights_from_trial": int(source),
        "arch_id": spec.arch_id,
        "task": task.key,
        "io": {
            "modality": task.io.modality,
            "shape": list(task.io.shape),
            "n_outputs": task.io.n_outputs,
        },
        "epochs": int(info_row["epochs"]),
        "seed": int(info_row["seed"]),
        "val_score": _num(info_row["val_score"]),
        "test_score": _num(info_row["test_score"]),
        "program": program,
        "onnx": onnx if onnx == "model.onnx" else None,
        "torch": torch.__version__,
    }
    (out / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    files = sorted(p.name for p in out.iterdir() if p.name in EXPORT_FILES)
    return ExportSummary(out, int(trial_id), int(source), trained_now, program, onnx, files, note)


# Graph models ---------------------------------------------------------------------------------
#: what a graph model's directory holds in place of a program, when torch.export cannot take
#: the network (a graph-level readout's number of graphs depends on the data): spec.json and
#: weights.pt, rebuilt through autodlgym (``build_model(spec, io)``)
GRAPH_FALLBACK = "weights.pt"


def graph_preprocessing(task: Any) -> dict[str, Any]:
    """A graph task's ``preprocessing.json``: no transformation of the inputs (node
    features as they are), what the model reads and the class labels."""
    return {
        "format": pp.FORMAT, "version": pp.VERSION, "kind": "graph",
        "modality": task.io.modality, "input_shape": list(task.io.shape),
        "problem": "classification", "labels": [str(i) for i in range(task.io.n_outputs)],
        "task": task.key,
    }  # fmt: skip


def graph_example(task: Any) -> tuple[Any, ...]:
    """The arguments a graph model is exported with and checked on: the task's graph
    ``(x, edge_index)`` (node level) or its first test graphs batched ``(x, edge_index,
    batch)`` (graph level)."""
    data = task.load()
    if data.level == "node":
        g = data.graphs[0]
        return (g.x, g.edge_index)
    from torch_geometric.data import Batch

    b = Batch.from_data_list([data.graphs[int(i)] for i in data.test[:64]])
    return (b.x, b.edge_index, b.batch)


def _save_graph_program(model: Any, example: tuple[Any, ...], out: Path) -> str:
    """torch.export of a node-level network over ``(x, edge_index)`` with any number of
    nodes and edges, saved, loaded back and checked on ``example``; where torch.export
    cannot take it, and for a graph-level network, :data:`GRAPH_FALLBACK` (the weights
    beside spec.json)."""
    import torch

    if len(example) == 3:  # PyG's readouts count the graphs from the data (batch.max() + 1)
        return GRAPH_FALLBACK
    nodes, edges = torch.export.Dim("nodes", min=2), torch.export.Dim("edges", min=1)
    dims = ({0: nodes}, {1: edges})
    with torch.no_grad():
        want = model(*example)
    try:
        with _quiet_torch(logging.CRITICAL + 1):
            program = torch.export.export(model, example, dynamic_shapes=dims, strict=False)
            torch.export.save(program, str(out / "program.pt2"))
            loaded = pp.load_program(out)
        with torch.no_grad():
            got = loaded(*example)
    except Exception:  # noqa: BLE001 - e.g. a readout whose graph count is data-dependent
        (out / "program.pt2").unlink(missing_ok=True)
        return GRAPH_FALLBACK
    if not torch.allclose(got, want, rtol=RTOL, atol=ATOL):
        raise AutoDLError(
            f"the saved program.pt2 does not reproduce the model's outputs (max difference "
            f"{float((got - want).abs().max()):.3g}); please report this architecture"
        )
    return "program.pt2"


def _graph_network(model_dir: Path, pre: dict[str, Any]) -> Any:
    """A graph model directory's network: its program.pt2, or the network rebuilt from
    spec.json and weights.pt (:data:`GRAPH_FALLBACK`)."""
    import torch

    if (model_dir / "program.pt2").is_file():
        return pp.load_program(model_dir)
    from autodlgym.nn.build import build_model
    from autodlgym.searchspace.io import IOSpec
    from autodlgym.searchspace.spec import ArchSpec

    try:
        spec = ArchSpec.from_json((model_dir / "spec.json").read_text())
        state = torch.load(model_dir / "weights.pt", map_location="cpu", weights_only=True)
    except (OSError, ValueError) as exc:
        raise AutoDLError(f"{str(model_dir)!r} holds no readable graph model: {exc}") from None
    io = IOSpec(pre["modality"], tuple(pre["input_shape"]), len(pre["labels"]))
    with torch.random.fork_rng(devices=[]):
        model = build_model(spec, io)
    model.load_state_dict(state)
    return model.eval()


def graph_inputs(pre: dict[str, Any], x: Any) -> tuple[tuple[Any, ...], int]:
    """A graph model's arguments from ``x`` (a PyG ``Data``, a list of them or a ``Batch``
    for a graph-level model, or a .pt / .npz path as ``graph:PATH`` reads), and how many
    predictions they give (nodes, or graphs). Labels are not needed."""
    import torch

    from autodlgym.tasks.graphs import _GRAPH_FIX, _read_graphs

    if isinstance(x, str | Path):
        p = Path(x).expanduser().resolve()
        if not p.is_file():
            raise AutoDLError(f"graph file {str(p)!r} does not exist; {_GRAPH_FIX}")
        x = _read_graphs(p, labels=False)
        x = x[0] if pre["modality"] == "node" and len(x) == 1 else x
    graphs = list(x) if isinstance(x, list | tuple) else [x]
    if hasattr(x, "to_data_list") and hasattr(x, "batch") and x.batch is not None:
        graphs = x.to_data_list()
    if pre["modality"] == "node" and len(graphs) != 1:
        raise AutoDLError(f"a node model predicts on one graph; got {len(graphs)}")
    width = int(pre["input_shape"][0])
    checked = []
    for i, g in enumerate(graphs):
        gx, ei = getattr(g, "x", None), getattr(g, "edge_index", None)
        if gx is None or ei is None:
            raise AutoDLError(f"graph {i} needs x and edge_index; {_GRAPH_FIX}")
        gx = torch.as_tensor(gx, dtype=torch.float32)
        gx = gx[:, None] if gx.ndim == 1 else gx
        ei = torch.as_tensor(ei, dtype=torch.long)
        if gx.ndim != 2 or gx.shape[1] != width:
            raise AutoDLError(
                f"graph {i} has node features of shape {tuple(gx.shape)}; the model reads "
                f"{width} features per node"
            )
        if (
            ei.ndim != 2
            or ei.shape[0] != 2
            or (ei.numel() and (ei.min() < 0 or ei.max() >= len(gx)))
        ):
            raise AutoDLError(f"graph {i}: edge_index must be (2, edges) of nodes 0..{len(gx) - 1}")
        checked.append((gx, ei))
    if pre["modality"] == "node":
        return checked[0], len(checked[0][0])
    offsets = np.cumsum([0] + [len(gx) for gx, _ in checked[:-1]])
    xs = torch.cat([gx for gx, _ in checked])
    eis = torch.cat([ei + int(o) for (_, ei), o in zip(checked, offsets, strict=True)], dim=1)
    batch = torch.cat(
        [torch.full((len(gx),), i, dtype=torch.long) for i, (gx, _) in enumerate(checked)]
    )
    return (xs, eis, batch), len(checked)


def graph_outputs(network: Any, pre: dict[str, Any], x: Any) -> Any:
    """A graph model's logits (numpy, one row per node or per graph) for ``x``
    (:func:`graph_inputs`)."""
    import torch

    args, n = graph_inputs(pre, x)
    with torch.no_grad():
        out = network(*args).float().numpy()
    return out[:n]


def _num(x: Any) -> float | None:
    from autodlgym.utils import finite_or_none

    return None if x is None else finite_or_none(x)


def _save_program(model: Any, example: Any, out: Path) -> str:
    """torch.export with a dynamic batch size (TorchScript tracing where export fails), saved
    and loaded back; its outputs must match the model's."""
    import torch

    with torch.no_grad():
        want = model(example)
        want_one = model(example[:1])
    errors = []
    try:
        batch = torch.export.Dim("batch", min=1)
        with _quiet_torch():
            program = torch.export.export(
                model, (example,), dynamic_shapes=({0: batch},), strict=False
            )
        torch.export.save(program, str(out / "program.pt2"))
        name = "program.pt2"
    except Exception as exc:  # noqa: BLE001 - any export failure falls back to tracing
        errors.append(f"torch.export: {type(exc).__name__}: {exc}".splitlines()[0])
        (out / "program.pt2").unlink(missing_ok=True)
        try:
            with torch.no_grad(), _quiet_torch():
                traced = torch.jit.trace(model, example, check_trace=False)
                torch.jit.save(traced, str(out / "program.ts"))
            name = "program.ts"
        except Exception as exc2:  # noqa: BLE001
            errors.append(f"TorchScript: {type(exc2).__name__}: {exc2}".splitlines()[0])
            raise AutoDLError(
                "the model could not be saved as a program; " + "; ".join(errors)
            ) from None
    with _quiet_torch():
        loaded = pp.load_program(out)
    with torch.no_grad():
        got, got_one = loaded(example), loaded(example[:1])
    if not (
        torch.allclose(got, want, rtol=RTOL, atol=ATOL)
        and torch.allclose(got_one, want_one, rtol=RTOL, atol=ATOL)
    ):
        raise AutoDLError(
            f"the saved {name} does not reproduce the model's outputs (max difference "
            f"{float((got - want).abs().max()):.3g}); please report this architecture"
        )
    return name


@contextlib.contextmanager
def _quiet_torch(level: int = logging.ERROR) -> Iterator[None]:
    """torch's exporters log what they traced (a failed torch.export logs the whole graph,
    tens of KB) and warn about their own internals; an export's output is one line of ours."""
    logger = logging.getLogger("torch")
    before = logger.level
    logger.setLevel(level)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(before)


def _save_onnx(model: Any, example: Any, out: Path) -> str:
    """``model.onnx`` when the ``onnx`` package is installed; else (or on failure) why not."""
    if importlib.util.find_spec("onnx") is None:
        return 'no ONNX file: pip install "autodlgym[export]" (onnx, onnxscript) to write one'
    import torch

    try:
        # the exporter reports its steps on stdout, which belongs to the command's own output
        with _quiet_torch():
            torch.onnx.export(
                model,
                (example,),
                str(out / "model.onnx"),
                input_names=["x"],
                output_names=["y"],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                verbose=False,
            )
    except Exception as exc:  # noqa: BLE001 - ONNX is optional: report and go on
        (out / "model.onnx").unlink(missing_ok=True)
        return f"no ONNX file: the exporter failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
    return "model.onnx"


def predict_lines(model_dir: str | Path, input_path: str | Path, scores: bool = False) -> list[str]:
    """What ``autodlgym predict`` prints: one line per example (see
    :func:`autodlgym.tasks.preprocessing.main`, the same code as the model's ``predict.py``).
    Values of the input that the training split did not have (new categories) are counted
    and reported in one ``UserWarning``.

    Raises:
        AutoDLError: no model directory, or input that cannot be read or does not fit.
    """
    if not Path(model_dir).is_dir():
        raise AutoDLError(
            f"model directory {str(model_dir)!r} does not exist; write one with autodlgym export"
        )
    unseen: dict[str, dict[str, int]] = {}
    try:
        pre = pp.load_preprocessing(model_dir)
        if pre.get("kind") == "graph":  # one line per node (or graph) of the input file
            outputs = graph_outputs(_graph_network(Path(model_dir), pre), pre, input_path)
            labels = pre["labels"]
            predictions = [labels[int(i)] for i in outputs.argmax(axis=1)]
            return pp.format_predictions(pre, predictions, outputs, None, scores)
        predictions, outputs, names = pp.predict(model_dir, input_path, pre=pre, unseen=unseen)
    except pp.InputError as exc:
        raise AutoDLError(str(exc)) from None
    note = pp.unseen_note(unseen)
    if note:
        warnings.warn(note, UserWarning, stacklevel=2)
    return pp.format_predictions(pre, predictions, outputs, names, scores)


class ExportedModel:
    """A model directory written by :func:`export_model`, loaded for predictions in Python
    (:func:`load_model`). The same preprocessing and program as ``predict.py``.

    Attributes:
        dir: the model directory.
        preprocessing: its ``preprocessing.json`` as a dict.
        classes: the class names, in output order (None for regression).
    """

    def __init__(self, model_dir: str | Path) -> None:
        self.dir = Path(model_dir)
        if not self.dir.is_dir():
            raise AutoDLError(
                f"model directory {str(model_dir)!r} does not exist; write one with autodlgym export"
            )
        try:
            self.preprocessing = pp.load_preprocessing(self.dir)
            if self.preprocessing.get("kind") == "graph":
                self._program = _graph_network(self.dir, self.preprocessing)
            else:
                self._program = pp.load_program(self.dir)
        except pp.InputError as exc:
            raise AutoDLError(str(exc)) from None
        pre = self.preprocessing
        self.classes = list(pre.get("labels") or []) if pre["problem"] == "classification" else None

    def __repr__(self) -> str:
        return f"ExportedModel({str(self.dir)!r})"

    def inputs(self, x: Any) -> Any:
        """Model inputs (float32 ``(N, *input_shape)``) from ``x``:

        - a table model: a pandas DataFrame, or a mapping column -> cells, with the columns it
          was trained on (others, the target among them, are ignored);
        - an array model (``npz:``, ``from_arrays``, built-in tasks): an array
          ``(N, *input_shape)`` of raw inputs (standardised here as in training);
        - an image model: an array ``(N, C, H, W)`` of pixels in [0, 1] at the model's size;
        - any model: a path to a file (or folder of images), as ``autodlgym predict`` reads.

        A graph model takes a PyG ``Data`` (node level), a list of ``Data`` or a ``Batch``
        (graph level), or a .pt / .npz graph file (see :func:`graph_inputs`).

        Categories not seen in training are counted and reported in one ``UserWarning``.
        """
        if self.is_graph:
            return graph_inputs(self.preprocessing, x)[0]
        pre = self.preprocessing
        unseen: dict[str, dict[str, int]] = {}
        try:
            if isinstance(x, str | Path):
                out, _ = pp.read_inputs(pre, x, unseen)
            elif pre["kind"] == "table":
                if hasattr(x, "columns") and hasattr(x, "iloc"):
                    columns = pp.frame_columns(x)
                elif isinstance(x, dict):
                    columns = {str(k): list(v) for k, v in x.items()}
                else:
                    raise pp.InputError(
                        f"a table model takes a DataFrame or a dict of columns "
                        f"({pp._names(pre)}), not a {type(x).__name__}"
                    )
                out = pp.encode_table(pre, columns, unseen)
            else:
                arr = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)
                shape = tuple(pre["input_shape"])
                if arr.shape == shape:
                    arr = arr[None]  # one example
                if pre["modality"] == "sequence" and arr.ndim == 2 and shape[0] == 1:
                    arr = arr[:, None, :]
                if tuple(arr.shape[1:]) != shape:
                    raise pp.InputError(
                        f"inputs of shape {tuple(arr.shape[1:])}; the model reads {shape}"
                    )
                out = pp.standardise(pre, arr)
        except pp.InputError as exc:
            raise AutoDLError(str(exc)) from None
        note = pp.unseen_note(unseen)
        if note:
            warnings.warn(note, UserWarning, stacklevel=3)
        return out

    @property
    def is_graph(self) -> bool:
        """Whether the model reads graphs (``x`` a PyG ``Data``, list of them, or a graph
        file; one prediction per node, or per graph)."""
        return self.preprocessing.get("kind") == "graph"

    def outputs(self, x: Any) -> Any:
        """The network's raw outputs (logits, or standardised targets) for ``x``."""
        if self.is_graph:
            return graph_outputs(self._program, self.preprocessing, x)
        return pp.run_program(self._program, self.inputs(x), self.preprocessing)

    def predict(self, x: Any) -> Any:
        """One prediction per example: class names (an object array) for a classifier,
        target values in the training data's units (``(N,)``, or ``(N, T)``) for
        regression. ``x`` as :meth:`inputs` takes it."""
        import numpy as np

        pre = self.preprocessing
        raw = self.outputs(x)
        if pre["problem"] == "classification":
            labels = self.classes or [str(i) for i in range(raw.shape[1])]
            return np.array([labels[int(i)] for i in raw.argmax(axis=1)], dtype=object)
        target = pre.get("target") or {}
        values = raw.astype(np.float64)
        if target.get("mean") is not None:
            values = values * np.asarray(target["std"]) + np.asarray(target["mean"])
        return values[:, 0] if values.shape[1] == 1 else values

    def predict_proba(self, x: Any) -> Any:
        """Class probabilities ``(N, n_classes)``, columns in :attr:`classes` order.

        Raises:
            AutoDLError: the model is a regression model.
        """
        if self.preprocessing["problem"] != "classification":
            raise AutoDLError("predict_proba needs a classifier; this model does regression")
        return pp.probabilities(self.outputs(x))


def load_model(model_dir: str | Path) -> ExportedModel:
    """A model directory written by ``autodlgym export``, ready for ``.predict(x)`` and
    ``.predict_proba(x)`` in Python (see :class:`ExportedModel`)::

        model = autodlgym.load_model("model/")
        model.predict(pd.read_csv("new.csv"))       # class names (or values)
        model.predict_proba(df)                     # (N, n_classes)

    Raises:
        AutoDLError: no model directory, or one without a readable program.
    """
    return ExportedModel(model_dir)
