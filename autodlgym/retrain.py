"""Re-evaluate the best specs of a search: ``autodlgym retrain RUN --top K --seeds S --epochs E``.

A search trains every candidate with one seed at a low fidelity, so a lucky seed can top its
leaderboard. :func:`retrain` trains the top-K specs (by search validation score, one per
architecture) with S seeds each at a final fidelity and records every evaluation in the run's
store under a fidelity of phase ``"retrain"``: searchers, budgets and ``--resume`` never see
them, and the default leaderboard leaves them out. The trained weights are kept as
``RUN/models/trial-<ID>.pt`` (a ``state_dict``) for ``autodlgym export``.

Retraining is resumable: an evaluation already recorded (same spec, fidelity and seed) is not
trained again. Trials run in this process, one after another.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import OK, RETRAIN, SEARCH, Fidelity, TrialResult

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from autodlgym.results.store import ResultStore
    from autodlgym.tasks import Task

MODELS_DIR = "models"


def model_path(run_dir: str | Path, trial_id: int) -> Path:
    """Where the weights of a retrained trial are kept."""
    return Path(run_dir) / MODELS_DIR / f"trial-{int(trial_id)}.pt"


def run_task(store: ResultStore) -> Task:
    """Deprecated (0.2.0): ``Run.open(run_dir).task``."""
    import warnings

    from autodlgym.run import Run

    warnings.warn(
        "autodlgym.retrain.run_task(store) is deprecated and will be removed in 0.3.0; use "
        "autodlgym.Run.open(run_dir).task",
        DeprecationWarning,
        stacklevel=2,
    )
    with Run.open(store.run_dir) as run:
        return run.task


def top_specs(df: pandas.DataFrame, top: int) -> pandas.DataFrame:
    """The ``top`` best ``ok`` search trials by validation score, one per architecture (the
    earliest trial of an architecture's best score), best first."""
    search = df[(df["phase"] == SEARCH) & (df["status"] == OK) & df["val_score"].notna()]
    ranked = search.sort_values(["val_score", "trial_id"], ascending=[False, True], kind="stable")
    return ranked.drop_duplicates("arch_id").head(top)


def train_and_keep(
    store: ResultStore,
    task: Task,
    spec: ArchSpec,
    fidelity: Fidelity,
    seed: int,
    device: str = "cpu",
) -> tuple[int, TrialResult]:
    """One evaluation of ``spec`` at ``fidelity`` and ``seed``, recorded in ``store`` with
    its weights under :func:`model_path`; an evaluation already recorded is returned as it is
    (and trained again only when its weights file is missing, to write that file).

    Returns:
        ``(trial_id, result)``.
    """
    hit = store.lookup(spec.arch_id, fidelity, seed)
    weights = task.kind == "trained"  # a lookup's answer comes with no model to keep
    if hit is not None and (
        hit[1].status != OK or not weights or model_path(store.run_dir, hit[0]).is_file()
    ):
        return hit
    models: list[Any] = []

    def train(spec: ArchSpec, task: Task, fidelity: Fidelity, seed: int, **_: Any) -> TrialResult:
        from autodlgym.training.trainer import train_model

        result, model = train_model(spec, task, fidelity, seed, device=device)
        models.append(model)
        return result

    result = task.evaluate(spec, fidelity, seed, train=train)
    model = models[0] if models else None
    trial_id = hit[0] if hit is not None else store.next_trial_id()
    if model is not None:
        # weights first: a crash before the trial commits leaves a file that is overwritten
        _save_state_dict(model, model_path(store.run_dir, trial_id))
    if hit is None:
        store.append(trial_id, spec, fidelity, seed, result)
    return trial_id, result


def retrain(
    run_dir: str | Path,
    top: int = 3,
    seeds: int = 3,
    epochs: int | None = None,
    device: str = "cpu",
    progress: bool = False,
    allow_changed_data: bool = False,
) -> pandas.DataFrame:
    """Train the ``top`` best specs of a search with ``seeds`` seeds each and record them.

    Args:
        run_dir: a run directory written by ``autodlgym search``.
        top: how many specs (distinct architectures, best search validation score first).
        seeds: seeds per spec: the run's seed, then the next ones (``seed``, ``seed + 1``, ...).
        epochs: the final fidelity's epochs (None: the search's); always on the whole training
            set and without a time limit.
        device: torch device of the training.
        progress: one line per evaluation on stderr.
        allow_changed_data: train on the run's data file although it changed since the run
            was made (see ``Run.open``).

    Returns:
        The retrained view of those specs at this fidelity
        (:func:`autodlgym.analysis.retrained.retrained`): mean and sd of validation and test
        scores per spec, ranked by mean validation score.

    Raises:
        AutoDLError: no run in ``run_dir``, bad counts, or no ``ok`` search trial.
    """
    from autodlgym.analysis.retrained import retrained
    from autodlgym.run import Run

    if not isinstance(top, int) or top < 1:
        raise AutoDLError(f"--top must be a positive integer, got {top!r}")
    if not isinstance(seeds, int) or seeds < 1:
        raise AutoDLError(f"--seeds must be a positive integer, got {seeds!r}")
    with Run.open(run_dir, allow_changed_data=allow_changed_data) as run:
        store = run.store
        config = run.settings
        task = run.task
        fidelity = Fidelity(
            epochs=int(epochs if epochs is not None else config.get("epochs", 1)), phase=RETRAIN
        )
        best = top_specs(run.frame(), top)
        if best.empty:
            raise AutoDLError(f"{run_dir} has no ok search trial to retrain; run a search first")
        base_seed = int(config.get("seed", 0))
        for rank, row in enumerate(best.itertuples(index=False), start=1):
            spec = ArchSpec.from_json(row.spec)
            for seed in range(base_seed, base_seed + seeds):
                trial_id, result = train_and_keep(store, task, spec, fidelity, seed, device)
                if progress:
                    print(
                        f"retrain {rank}/{len(best)} (search trial {row.trial_id}) seed {seed}: "
                        f"trial {trial_id} {result.status} val {_fmt(result.val_score)} "
                        f"test {_fmt(result.test_score)}",
                        file=sys.stderr,
                    )
        df = run.frame()
    view = retrained(df, epochs=fidelity.epochs)
    return view[view["arch_id"].isin(set(best["arch_id"]))].reset_index(drop=True)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _save_state_dict(model: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".pt.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
