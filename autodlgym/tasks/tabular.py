"""Tabular benchmarks: tasks whose evaluation is a lookup in a table of results.

A tabular task carries a :class:`Blackbox` (after Syne Tune's blackbox repository) instead of
arrays: it brings its own search space, its fidelities and its metrics, and
``objective_function(spec, epochs, seed)`` returns the stored outcome of a candidate as the
trainer would have returned it (a :class:`~autodlgym.trial.TrialResult`). The executors
dispatch such tasks to :func:`evaluate_lookup` instead of the trainer, so searches, the
Gymnasium environments, the store and ``load_results`` work on them unchanged, at
microseconds per evaluation.

Built-in tabular tasks:

- ``nasbench-graph:DATASET`` (DATASET one of :data:`NASBENCH_GRAPH_DATASETS`): NAS-Bench-Graph
  (Qin et al., NeurIPS 2022 Datasets and Benchmarks), the "light" tables shipped in the
  ``nas-bench-graph`` package: 26,206 unique GNN architectures (2,021 on proteins) with
  validation and test accuracy, inference latency and parameter count. The space has one
  decision ``links`` (9 input-link patterns of the 4 computing nodes) and ``op1`` .. ``op4``
  (the operation of each node: 9 GNN operations, 5 on proteins). Isomorphic specs map to one
  table entry through the package's canonical ``Arch.valid_hash()``. Every spec of the space is
  in the table except the 9 all-``skip`` ones, which the benchmark excludes: they end with
  status ``error`` and a message that says so. The light tables have no learning curves, so
  the fidelity (``epochs``) is ignored.
- ``mnist1d-table``: the table shipped with autodlgym (``autodlgym/data/lookup_mnist1d.json``,
  made by ``benchmarks/make_lookup_table.py``): all 384 architectures of a small corner of the
  default space trained on MNIST-1D for 5 epochs, with per-epoch validation curves (the
  fidelities: ``epochs`` 1 to 5), test accuracy at 5 epochs, parameter count and seconds.
- ``table:RUN_DIR``: a finished autodlgym run as a lookup task over the run's own space;
  each evaluated architecture replays its stored result, and its per-epoch curve gives the
  lower fidelities. Architectures the run did not evaluate end with status ``error``.

Options of every tabular task: ``max_params`` (and ``max_latency`` in seconds where the table
has latency): a candidate above the limit ends with status ``error`` and a message naming
the limit (a constraint; 0 means none). ``nas-bench-graph`` is an optional dependency
(``pip install 'autodlgym[nasbench]'``), imported only when a NAS-Bench-Graph table is used.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import importlib.util
import itertools
import json
import math
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from autodlgym.errors import AutoDLError, SpecError
from autodlgym.results.store import DB_NAME, ResultStore
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks.base import Task, get_task, register_task
from autodlgym.trial import BASELINE, ERROR, OK, PRUNED, Fidelity, TrialResult, rung_fidelities

NASBENCH_GRAPH_DATASETS = (
    "cora",
    "citeseer",
    "pubmed",
    "cs",
    "physics",
    "photo",
    "computers",
    "arxiv",
    "proteins",
)
NASBENCH_GRAPH_HINT = (
    "NAS-Bench-Graph tasks need the nas-bench-graph package: pip install 'autodlgym[nasbench]'"
)
MNIST1D_TABLE = Path(__file__).resolve().parents[1] / "data" / "lookup_mnist1d.json"


@dataclass(frozen=True)
class Outcomes:
    """The entries of a table that a search over its space can reach, at one fidelity.

    Args:
        val: validation score of each distinct architecture with status ok.
        test: its test score (NaN where the table has none at this fidelity).
        mass: the probability that ``space.sample`` draws it (isomorphic specs add up);
            ``1 - mass.sum()`` is the probability of drawing a candidate that fails.
    """

    val: np.ndarray
    test: np.ndarray
    mass: np.ndarray

    @property
    def best_val(self) -> float:
        """The table's optimum by validation score."""
        return float(self.val.max())

    @property
    def test_at_best_val(self) -> float:
        """Test score of the best architecture by validation (the mean over ties)."""
        return float(np.nanmean(self.test[self.val == self.val.max()]))

    def top_threshold(self, q: float = 0.01) -> float:
        """Validation score of the ``ceil(q * N)``-th best of the N architectures: a candidate
        scoring at least this is in the top ``q`` by validation."""
        k = max(1, math.ceil(q * len(self.val)))
        return float(np.sort(self.val)[::-1][k - 1])

    def top_mass(self, q: float = 0.01) -> float:
        """Probability that one uniform draw from the space lands in the top ``q``."""
        return float(self.mass[self.val >= self.top_threshold(q)].sum())

    def random_top_probability(self, n: int, q: float = 0.01) -> float:
        """Probability that random search finds a top-``q`` architecture within ``n`` draws:
        ``1 - (1 - p)^n`` with ``p`` = :meth:`top_mass`."""
        return 1.0 - (1.0 - self.top_mass(q)) ** n

    def random_expected_regret(self, n: int) -> float:
        """Expected validation regret of the best of ``n`` independent uniform draws from the
        space (given at least one draw succeeds)."""
        order = np.argsort(self.val)
        val, mass = self.val[order], self.mass[order]
        fail = max(0.0, 1.0 - float(mass.sum()))
        cdf = fail + np.cumsum(mass)
        below = np.concatenate([[fail], cdf[:-1]])
        p_best = cdf**n - below**n
        expected = float((val * p_best).sum() / (1.0 - fail**n))
        return self.best_val - expected


class Blackbox(ABC):
    """A tabular benchmark (see the module docstring).

    Attributes:
        name: the task name.
        space: the search space whose specs the table answers.
        max_epochs: the largest fidelity (epochs) with a learning curve; None when the table
            holds one fidelity only (then ``epochs`` is ignored).
        objectives: the metrics :meth:`objective_function` fills in.
    """

    name: str
    space: SearchSpace
    max_epochs: int | None = None
    objectives: tuple[str, ...] = ("val_score", "test_score", "params")

    @property
    def fidelities(self) -> tuple[int, ...]:
        """The epochs a lookup can be asked for (empty: one fidelity only)."""
        return tuple(range(1, self.max_epochs + 1)) if self.max_epochs else ()

    @property
    def default_epochs(self) -> int:
        """The table's full fidelity."""
        return self.max_epochs or 1

    @abstractmethod
    def objective_function(
        self, spec: Mapping[str, Any], epochs: int | None = None, seed: int | None = None
    ) -> TrialResult:
        """The stored outcome of ``spec`` after ``epochs`` (None: the full fidelity); the
        curve holds the per-epoch validation scores up to ``epochs`` where the table has
        them. ``seed`` is accepted for the Blackbox protocol; these tables hold one seed."""

    @abstractmethod
    def outcomes(self, epochs: int | None = None) -> Outcomes:
        """Every architecture the space reaches in the table, with its sampling mass."""

    def _epochs(self, epochs: int | None) -> int | None:
        if self.max_epochs is None:
            return None
        if epochs is None:
            return self.max_epochs
        if not 1 <= int(epochs) <= self.max_epochs:
            raise AutoDLError(
                f"task {self.name!r} has learning curves for 1 to {self.max_epochs} epochs; "
                f"got epochs={epochs}"
            )
        return int(epochs)


def sample_mass(space: SearchSpace, spec: Mapping[str, Any]) -> float:
    """Probability that ``space.sample`` draws ``spec``: one over the option count of every
    decision active in it."""
    return float(np.prod([1.0 / len(space[name].options) for name in spec]))


def _did_you_mean(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# NAS-Bench-Graph -------------------------------------------------------------------------------
def _nas_bench_graph() -> Any:
    try:
        return importlib.import_module("nas_bench_graph")
    except ImportError:
        raise AutoDLError(NASBENCH_GRAPH_HINT) from None


_MISSING = -1


class NasBenchGraph(Blackbox):
    """NAS-Bench-Graph's light table of one data set (see the module docstring)."""

    max_epochs = None
    objectives = ("val_score", "test_score", "params", "latency")

    def __init__(self, dataset: str) -> None:
        nbg = _nas_bench_graph()
        self.name = f"nasbench-graph:{dataset}"
        self.dataset = dataset
        self._arch = nbg.Arch
        ops = list(nbg.gnn_list_proteins if dataset == "proteins" else nbg.gnn_list)
        self.links = tuple("-".join(str(i) for i in link) for link in nbg.link_list)
        self.ops = tuple(ops)
        choices = [
            {
                "name": "links",
                "options": list(self.links),
                "doc": "input of each of the 4 computing nodes (0: the graph's features, "
                "i: node i's output); nodes that feed no other node are summed into the output",
            }
        ] + [
            {"name": f"op{i}", "options": list(self.ops), "doc": f"operation of node {i}"}
            for i in range(1, 5)
        ]
        self.space = SearchSpace.from_config({"choices": choices})
        bench = nbg.light_read(dataset)
        keys = sorted(bench)
        self._row = {k: i for i, k in enumerate(keys)}
        self.val = np.array([float(bench[k]["valid_perf"]) for k in keys])
        self.test = np.array([float(bench[k]["perf"]) for k in keys])
        self.latency = np.array([float(bench[k]["latency"]) for k in keys])
        # the table gives millions of parameters
        self.params = np.array([round(float(bench[k]["para"]) * 1e6) for k in keys], dtype=int)
        self._memo: dict[tuple[Any, ...], int] = {}
        self._lock = threading.Lock()
        self._outcomes: Outcomes | None = None

    def __len__(self) -> int:
        return len(self._row)

    def table_key(self, links: str, ops: list[str]) -> int:
        """The package's canonical hash of an architecture (equal for isomorphic ones)."""
        return self._arch([int(i) for i in links.split("-")], list(ops)).valid_hash()

    def row_of(self, spec: Mapping[str, Any]) -> int | None:
        """Index of the table entry ``spec`` stands for; None for the all-skip specs.

        Raises:
            SpecError: ``spec`` is not in this space.
        """
        try:
            key = (spec["links"], spec["op1"], spec["op2"], spec["op3"], spec["op4"])
            row = self._memo.get(key)
        except (KeyError, TypeError):
            key, row = None, None
        if row is None:
            spec = self.space.validate(spec)
            key = (spec["links"], spec["op1"], spec["op2"], spec["op3"], spec["op4"])
            row = self._row.get(self.table_key(key[0], list(key[1:])), _MISSING)
            with self._lock:
                self._memo[key] = row
        return None if row == _MISSING else row

    def objective_function(
        self, spec: Mapping[str, Any], epochs: int | None = None, seed: int | None = None
    ) -> TrialResult:
        row = self.row_of(spec)
        if row is None:
            return TrialResult.failure(
                ERROR,
                "NAS-Bench-Graph holds no all-skip architecture (it has no GNN operation); "
                "such a spec scores nothing",
            )
        params = int(self.params[row])
        return TrialResult(
            status=OK,
            val_score=float(self.val[row]),
            test_score=float(self.test[row]),
            params=params,
            trainable_params=params,
            latency=float(self.latency[row]),
        )

    def outcomes(self, epochs: int | None = None) -> Outcomes:
        # every spec of the space is equally likely: count the specs behind each entry
        if self._outcomes is None:
            counts = np.zeros(len(self._row))
            total = 0
            for links, *ops in itertools.product(self.links, *[self.ops] * 4):
                total += 1
                row = self._row.get(self.table_key(links, ops))
                if row is not None:
                    counts[row] += 1
            self._outcomes = Outcomes(self.val, self.test, counts / total)
        return self._outcomes


# A table file (the shipped MNIST-1D table) -------------------------------------------------
class TableFile(Blackbox):
    """A table as ``benchmarks/make_lookup_table.py`` writes it: ``settings`` (task, epochs,
    space) and one row per architecture with its per-epoch validation scores ``val``, final
    ``test`` score, ``params``, ``seconds`` (training and scoring, all epochs) and status."""

    def __init__(self, path: str | Path, name: str) -> None:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            settings = data["settings"]
            rows = data["rows"]
        except (OSError, ValueError, KeyError) as exc:
            raise AutoDLError(f"cannot read the lookup table {str(path)!r}: {exc}") from None
        self.name = name
        self.path = path
        self.space = SearchSpace.from_config(settings["space"])
        self.max_epochs = int(settings["epochs"])
        self.rows: dict[str, dict[str, Any]] = {}
        for row in rows:
            try:
                spec = self.space.validate(ArchSpec(row["spec"]))
            except SpecError as exc:
                raise AutoDLError(
                    f"lookup table {str(path)!r} holds a spec outside its own space ({exc}); "
                    "the space has changed since the table was made: regenerate it"
                ) from None
            self.rows[spec.arch_id] = row
        if len(self.rows) != self.space.cardinality():
            raise AutoDLError(
                f"lookup table {str(path)!r} holds {len(self.rows)} architectures but its space "
                f"has {self.space.cardinality()}; regenerate it"
            )

    def objective_function(
        self, spec: Mapping[str, Any], epochs: int | None = None, seed: int | None = None
    ) -> TrialResult:
        e = self._epochs(epochs)
        assert e is not None
        arch_id = spec.arch_id if isinstance(spec, ArchSpec) else ArchSpec(spec).arch_id
        row = self.rows.get(arch_id)
        if row is None:
            self.space.validate(spec)  # raises naming the bad decision
            raise AutoDLError(f"spec {arch_id} is missing from the table {str(self.path)!r}")
        vals = row["val"][:e]
        curve = [{"epoch": i + 1, "val_score": v} for i, v in enumerate(vals) if v is not None]
        if row["status"] != OK or len(curve) < e:
            return TrialResult.failure(
                row["status"] if row["status"] != OK else ERROR,
                row.get("message") or f"the table has no score after {e} epochs",
                curve=curve,
                epochs_run=len(curve),
            )
        return TrialResult(
            status=OK,
            val_score=float(vals[-1]),
            # the table scored the test set after the last epoch only
            test_score=float(row["test"]) if e == self.max_epochs else None,
            params=int(row["params"]),
            trainable_params=int(row["params"]),
            train_seconds=float(row["seconds"]) * e / self.max_epochs,
            epochs_run=e,
            curve=curve,
        )

    def outcomes(self, epochs: int | None = None) -> Outcomes:
        e = self._epochs(epochs)
        assert e is not None
        val, test, mass = [], [], []
        for row in self.rows.values():
            if row["status"] == OK and len(row["val"]) >= e and row["val"][e - 1] is not None:
                val.append(float(row["val"][e - 1]))
                test.append(float(row["test"]) if e == self.max_epochs else math.nan)
                mass.append(sample_mass(self.space, row["spec"]))
        return Outcomes(np.array(val), np.array(test), np.array(mass))


# A finished run --------------------------------------------------------------------------
class RunTable(Blackbox):
    """A finished autodlgym run replayed as a table (see the module docstring).

    For each architecture and number of epochs the earliest trial counts. A lookup at fewer
    epochs than any trial of the architecture ran reads the validation score off the longest
    trial's curve (no test score: the run measured it after the last epoch only).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.name = f"table:{self.run_dir}"
        with ResultStore(self.run_dir, create=False) as store:
            config = store.load_config() or {}
            fidelities = store.fidelities()
            # networks only: a run's scikit-learn baselines are no architecture of its space
            trials = [t for t in store.results() if fidelities[t[0]].phase != BASELINE]
            # the space the run searched, as stored with it (a run of 0.1 stored none: its
            # task's own space then)
            space = store.load_space()
        if not trials:
            raise AutoDLError(f"run {str(self.run_dir)!r} has no finished trials to look up")
        if space is None:
            task = get_task(config.get("task", "mnist1d"), **(config.get("task_kwargs") or {}))
            space = task.default_space()
        # the run's budget was checked when it ran: a replay answers what it evaluated
        self.space = space.with_constraints(max_params=None, max_flops=None)
        epochs = {t: f.epochs for t, f in fidelities.items()}
        self.entries: dict[tuple[str, int], TrialResult] = {}
        self.longest: dict[str, TrialResult] = {}
        self.specs: dict[str, ArchSpec] = {}
        for trial_id, spec, result in trials:
            e = int(epochs[trial_id])
            self.entries.setdefault((spec.arch_id, e), result)
            self.specs.setdefault(spec.arch_id, spec)
            best = self.longest.get(spec.arch_id)
            if best is None or len(result.curve) > len(best.curve):
                self.longest[spec.arch_id] = result
        self.max_epochs = max(e for _, e in self.entries)
        self.config = config

    def objective_function(
        self, spec: Mapping[str, Any], epochs: int | None = None, seed: int | None = None
    ) -> TrialResult:
        e = self._epochs(epochs)
        assert e is not None
        arch_id = spec.arch_id if isinstance(spec, ArchSpec) else ArchSpec(spec).arch_id
        stored = self.entries.get((arch_id, e))
        if stored is not None:
            return dataclasses.replace(stored, curve=[dict(p) for p in stored.curve])
        longest = self.longest.get(arch_id)
        curve = [dict(p) for p in (longest.curve if longest is not None else [])[:e]]
        if longest is None or len(curve) < e or curve[-1].get("val_score") is None:
            return TrialResult.failure(
                ERROR,
                f"architecture {arch_id} was not evaluated for {e} epochs in {self.run_dir}",
            )
        return TrialResult(
            status=OK,
            val_score=float(curve[-1]["val_score"]),
            params=longest.params,
            trainable_params=longest.trainable_params,
            flops=longest.flops,
            train_seconds=float(sum(p.get("seconds") or 0.0 for p in curve)),
            epochs_run=e,
            curve=curve,
        )

    def outcomes(self, epochs: int | None = None) -> Outcomes:
        e = self._epochs(epochs)
        val, test, mass = [], [], []
        for spec in self.specs.values():
            r = self.objective_function(spec, e)
            if r.ok and r.val_score is not None:
                val.append(r.val_score)
                test.append(math.nan if r.test_score is None else r.test_score)
                mass.append(sample_mass(self.space, spec) if self.space.contains(spec) else 0.0)
        if not val:
            raise AutoDLError(f"run {str(self.run_dir)!r} has no ok trial at {e} epochs")
        return Outcomes(np.array(val), np.array(test), np.array(mass))


# The lookup kind of task -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LookupTask(Task):
    """A task whose evaluation is a lookup in its :attr:`table` (a :class:`Blackbox`): the
    same protocol as a task that trains, answered by the table. It brings its own space, its
    fidelities are the epochs its table has learning curves for (one fidelity when it has
    none), and evaluating a candidate needs neither torch nor data."""

    kind: ClassVar[str] = "lookup"

    def default_space(self) -> SearchSpace:
        return self.lookup().space

    def default_fidelity(self) -> Fidelity:
        return Fidelity(epochs=self.lookup().default_epochs)

    def epoch_range(self) -> tuple[int, int]:
        return 1, self.lookup().default_epochs

    def default_fidelities(
        self, full: Fidelity, first_time_limit: float | None = None
    ) -> list[Fidelity]:
        """The table's epochs from 1 up to ``full``, three times more per rung (``[1, 3, 5]``
        for a table of 5 epochs); ``[full]`` for a table without learning curves."""
        if self.lookup().max_epochs is None:
            return [full]
        return rung_fidelities(full, 1, min_epochs=1)

    def prepare(self, warm_up: Callable[[], None] | None = None) -> None:
        self.lookup()  # a lookup needs neither torch nor data: no warm-up

    def evaluate(
        self,
        spec: Mapping[str, Any],
        fidelity: Fidelity,
        seed: int = 0,
        *,
        callback: Callable[[int, float], bool | None] | None = None,
        train: Callable[..., TrialResult] | None = None,
        **options: Any,
    ) -> TrialResult:
        """The table's answer for ``spec`` at ``fidelity.epochs`` (ignored by tables without
        curves). A ``callback(epoch, val_score)`` sees each epoch of the stored curve in
        turn, as the trainer's does; returning False ends the trial ``pruned`` with the
        epochs seen so far. Candidates above the task's ``max_params`` / ``max_latency`` end
        ``error``. ``train`` and the trainer's ``options`` are ignored."""
        table = self.lookup()
        result = table.objective_function(spec, fidelity.epochs, seed)
        limits = dict(self.kwargs)
        if result.ok:
            for option, value in (("max_params", result.params), ("max_latency", result.latency)):
                limit = limits.get(option)
                if limit and value is not None and value > limit:
                    name = option.removeprefix("max_")
                    return TrialResult.failure(
                        ERROR, f"{name} {value:g} exceeds the task's {option}={limit:g}"
                    )
        if callback is not None and result.ok:
            for i, point in enumerate(result.curve):
                keep_going = callback(int(point.get("epoch", i + 1)), float(point["val_score"]))
                if keep_going is not None and not keep_going:
                    return dataclasses.replace(
                        result,
                        status=PRUNED,
                        val_score=float(point["val_score"]),
                        test_score=None,
                        epochs_run=i + 1,
                        curve=result.curve[: i + 1],
                        train_seconds=result.train_seconds * (i + 1) / len(result.curve),
                        message=f"stopped by the callback after epoch {i + 1}",
                    )
        return result

    def outcomes(self, epochs: int | None = None) -> Outcomes:
        """Every architecture the space reaches in the table, with its sampling mass (what
        random search's expectation is computed from)."""
        return self.lookup().outcomes(epochs)


def space_of(task: Task) -> SearchSpace:
    """Deprecated (0.2.0): ``task.default_space()``."""
    warnings.warn(
        "autodlgym.tasks.tabular.space_of(task) is deprecated and will be removed in 0.3.0; "
        "use task.default_space()",
        DeprecationWarning,
        stacklevel=2,
    )
    return task.default_space()


def evaluate_lookup(
    task: Task,
    spec: Mapping[str, Any],
    fidelity: Fidelity,
    seed: int = 0,
    callback: Callable[[int, float], bool | None] | None = None,
) -> TrialResult:
    """Evaluate ``spec`` on a lookup task (:meth:`LookupTask.evaluate`)."""
    if task.kind != "lookup":
        raise AutoDLError(f"task {task.name!r} trains its candidates; it has no lookup table")
    return task.evaluate(spec, fidelity, seed, callback=callback)


def _tabular_task(name: str, description: str, make: Callable[[], Blackbox]) -> Task:
    return LookupTask(
        name=name,
        kwargs=(),
        io=None,
        loss="cross_entropy",
        metric="accuracy",
        description=description,
        table=make,
    )


_NBG_DESC = (
    "NAS-Bench-Graph lookup (Qin et al. 2022): 26,206 GNNs (proteins 2,021), val/test "
    "accuracy, latency, params; needs nas-bench-graph"
)


@register_task(
    "nasbench-graph",
    description=_NBG_DESC,
    prefix=True,
    arg="DATASET",
    choices=NASBENCH_GRAPH_DATASETS,
    tabular=True,
    env_name="NASBenchGraph",
)
def nasbench_graph(dataset: str, max_params: int = 0, max_latency: float = 0.0) -> Task:
    if dataset not in NASBENCH_GRAPH_DATASETS:
        raise AutoDLError(
            f"NAS-Bench-Graph has no data set {dataset!r}; choose one of "
            f"{', '.join(NASBENCH_GRAPH_DATASETS)}{_did_you_mean(dataset, NASBENCH_GRAPH_DATASETS)}"
        )
    if importlib.util.find_spec("nas_bench_graph") is None:
        raise AutoDLError(NASBENCH_GRAPH_HINT)
    return _tabular_task(
        f"nasbench-graph:{dataset}", _NBG_DESC, functools.partial(NasBenchGraph, dataset)
    )


_TABLE_DESC = (
    "lookup of the shipped table: 384 architectures trained on MNIST-1D, curves over 5 epochs"
)


@register_task("mnist1d-table", description=_TABLE_DESC, tabular=True, env_name="MNIST1DTable")
def mnist1d_table(max_params: int = 0) -> Task:
    return _tabular_task(
        "mnist1d-table", _TABLE_DESC, functools.partial(TableFile, MNIST1D_TABLE, "mnist1d-table")
    )


_RUN_DESC = "lookup of a finished autodlgym run: its space, its scores, its curves as fidelities"


@register_task("table", description=_RUN_DESC, prefix=True, arg="RUN_DIR", tabular=True)
def run_table(run_dir: str, max_params: int = 0) -> Task:
    path = Path(run_dir).expanduser().resolve()
    if not (path / DB_NAME).is_file():
        raise AutoDLError(
            f"table:{run_dir}: no autodlgym run in {str(path)!r}; give the --out directory "
            "of a finished search"
        )
    return _tabular_task(f"table:{path}", _RUN_DESC, functools.partial(RunTable, path))
