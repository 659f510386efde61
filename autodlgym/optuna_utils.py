"""Optuna study storage shared by the Optuna searchers and the pruning service."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError

if TYPE_CHECKING:
    import optuna


def quiet_optuna() -> None:
    """Stop Optuna logging one INFO line per trial (keeps a stricter level a user has set)."""
    import optuna

    if optuna.logging.get_verbosity() < optuna.logging.WARNING:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def open_study(
    run_dir: str | Path | None,
    filename: str,
    study_name: str,
    directions: list[str],
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Create or load a study in ``run_dir/filename`` (sqlite), or in memory for None.

    Raises:
        AutoDLError: the database holds a study of that name with other directions.
    """
    import optuna

    quiet_optuna()
    storage = None
    if run_dir is not None:
        path = Path(run_dir)
        path.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.RDBStorage(f"sqlite:///{(path / filename).resolve()}")
        _write_ahead_log(storage)
    study = optuna.create_study(
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        study_name=study_name,
        directions=directions,
        load_if_exists=storage is not None,
    )
    have = [d.name.lower() for d in study.directions]
    if have != [d.lower() for d in directions]:
        raise AutoDLError(
            f"{run_dir}/{filename} holds study {study_name!r} with directions {have}, not "
            f"{directions}; use another run directory or the same objectives"
        )
    return study


def _write_ahead_log(storage: optuna.storages.RDBStorage) -> None:
    """Switch a sqlite study to write-ahead logging with ``synchronous=NORMAL``.

    Each ask and tell commits several times; with the default rollback journal every commit
    waits for the disk (about 3x slower per trial where that was measured). An application
    crash loses nothing; a power cut may lose the last commits, never the file's consistency.
    """
    from sqlalchemy import event

    def on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()  # connections opened while creating the tables lack the pragmas


def live_trial(study: optuna.Study, number: int) -> optuna.Trial:
    """A :class:`optuna.Trial` handle on the trial ``number`` of ``study`` (for ``report`` and
    ``should_prune`` on a trial opened in another process or before a pickle round trip).

    Optuna offers no public lookup from trial number to trial; this uses its storage's.
    """
    import optuna

    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.trial.Trial(study, trial_id)


def import_importance() -> Any:
    """``optuna.importance``, without importing scikit-learn until a forest is built.

    ``optuna.importance`` imports ``sklearn.ensemble`` for its fANOVA and MDI evaluators as
    soon as it is imported, about a second of scikit-learn and scipy.stats, which a report
    that ranks decisions by PED-ANOVA never uses. While Optuna imports, ``sklearn.ensemble``
    is a stand-in whose ``RandomForestRegressor`` imports the real class when it is called
    (the only use Optuna makes of it); the stand-in is gone once Optuna is imported, so
    every other import of scikit-learn is the real one. fANOVA and MDI work as before.
    """
    import sys
    import types

    if "optuna.importance" in sys.modules or "sklearn.ensemble" in sys.modules:
        import optuna.importance

        return optuna.importance

    def RandomForestRegressor(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - its name
        from sklearn.ensemble import RandomForestRegressor as forest

        return forest(*args, **kwargs)

    stand_in = types.ModuleType("sklearn.ensemble")
    stand_in.RandomForestRegressor = RandomForestRegressor  # type: ignore[attr-defined]
    sys.modules["sklearn.ensemble"] = stand_in
    try:
        import optuna.importance
    finally:
        if sys.modules.get("sklearn.ensemble") is stand_in:
            del sys.modules["sklearn.ensemble"]
    return optuna.importance
