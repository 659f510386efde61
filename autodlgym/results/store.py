"""ResultStore: every evaluation of a run, in one SQLite file, read back as pandas.

A run directory holds ``results.sqlite`` with six tables:

- ``run``: the run settings (key -> JSON), so a run can be resumed and its space rebuilt;
- ``environment``: what each session of the run ran on (versions, devices, CPUs, host; see
  :mod:`autodlgym.results.environment`), one row per start or resume;
- ``trials``: one row per finished trial (metrics, status, timings, diagnostics, spec);
- ``curves``: one row per epoch of a finished trial;
- ``pending``: trials handed to workers but not finished yet (re-submitted on resume);
- ``state``: named blobs, such as the searcher's pickled state.

Crash safety: the database runs in WAL mode and each finished trial is written in a single
transaction (its trial row, its curve rows and the removal of its pending row) that commits
before the searcher hears of it. A process killed at any moment, SIGKILL included, leaves
either the whole trial or none of it; re-opening the directory continues the run. With
``synchronous=NORMAL`` a power cut may drop the last few commits but never corrupts the file.

Concurrency: one connection per :class:`ResultStore`, used from one thread. Other processes
may read (``load_results``) while a search writes: WAL readers never block the writer, and a
busy timeout covers the short moments when SQLite needs a lock.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import (
    OK,
    OOM,
    PHASES,
    SEARCH,
    STOPPED,
    TIMEOUT,
    WORKER_LOST,
    Fidelity,
    TrialResult,
)
from autodlgym.utils import finite_or_none

if TYPE_CHECKING:  # pragma: no cover
    import pandas

DB_NAME = "results.sqlite"
#: the name of the resolved search space in the ``state`` table
SPACE_STATE = "space"

#: Seconds a connection waits for a lock held by another connection before giving up.
BUSY_TIMEOUT_S = 30.0

#: Trial statuses that say nothing certain about the candidate itself, so
#: :meth:`ResultStore.lookup` never reuses them: the same evaluation may well succeed when tried
#: again (``stopped``: cut off by the search's deadline). ``oom`` is one: free memory depends on the machine and on what shares it (trials on
#: a fractional GPU, other workers on the host), so a neighbour may have caused it.
_NOT_REUSABLE = (WORKER_LOST, TIMEOUT, STOPPED, OOM)

#: Status given to pending trials in ``to_dataframe(include_pending=True)``.
RUNNING = "running"

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_id INTEGER PRIMARY KEY,
    arch_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    fidelity TEXT NOT NULL,
    epochs INTEGER NOT NULL,
    max_train_samples INTEGER,
    time_limit REAL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    val_score REAL,
    test_score REAL,
    train_loss REAL,
    params INTEGER,
    trainable_params INTEGER,
    flops INTEGER,
    train_seconds REAL,
    eval_seconds REAL,
    peak_memory_mb REAL,
    epochs_run INTEGER,
    message TEXT NOT NULL DEFAULT '',
    worker TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '',
    diagnostics TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    reused_from INTEGER,
    finished_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS trials_by_eval ON trials (arch_id, fidelity, seed);
CREATE TABLE IF NOT EXISTS curves (
    trial_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    epoch REAL,
    train_loss REAL,
    val_score REAL,
    seconds REAL,
    extra TEXT,
    PRIMARY KEY (trial_id, step)
);
CREATE TABLE IF NOT EXISTS pending (
    trial_id INTEGER PRIMARY KEY,
    spec TEXT NOT NULL,
    fidelity TEXT NOT NULL,
    seed INTEGER NOT NULL,
    submitted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, blob BLOB NOT NULL);
"""

#: Upgrade steps: ``_MIGRATIONS[v]`` turns a store of schema version ``v`` into version
#: ``v + 1``. It runs inside the transaction that also records the new version, so a store is
#: never left half-migrated. Add an entry here whenever SCHEMA_VERSION grows.
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Per-trial memory under names that say what they measure, and the environment table.

    Version 1 had one ``peak_memory_mb``: CUDA's peak allocated memory of the trial on a GPU,
    but the process's lifetime peak resident set on CPU, which is no trial's own. The GPU
    values move to ``peak_gpu_mb``; the column becomes ``peak_rss_mb`` and the CPU values are
    dropped (NULL) rather than passed off as per-trial peaks.
    """
    conn.execute("ALTER TABLE trials ADD COLUMN peak_gpu_mb REAL")
    conn.execute("UPDATE trials SET peak_gpu_mb = peak_memory_mb WHERE device LIKE 'cuda%'")
    conn.execute("ALTER TABLE trials RENAME COLUMN peak_memory_mb TO peak_rss_mb")
    conn.execute("UPDATE trials SET peak_rss_mb = NULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS environment ("
        "session INTEGER PRIMARY KEY, recorded_at REAL NOT NULL, value TEXT NOT NULL)"
    )


_MIGRATIONS[1] = _v1_to_v2

# TrialResult fields with a column of their own in ``trials``; any other field (a newer
# TrialResult) goes to the ``extra`` JSON column so nothing is dropped.
_RESULT_COLUMNS = (
    "status", "val_score", "test_score", "train_loss", "params", "trainable_params", "flops",
    "train_seconds", "eval_seconds", "peak_rss_mb", "peak_gpu_mb", "epochs_run", "message",
    "worker", "device",
)  # fmt: skip
_INT_FIELDS = {"params", "trainable_params", "flops", "epochs_run"}
_CURVE_KEYS = ("epoch", "train_loss", "val_score", "seconds")

#: DataFrame columns every run has, in order, with their pandas dtypes.
BASE_COLUMNS: dict[str, str] = {
    "trial_id": "int64",
    "arch_id": "str",
    "status": "str",
    "val_score": "float64",
    "test_score": "float64",
    "train_loss": "float64",
    "params": "Int64",
    "trainable_params": "Int64",
    "flops": "Int64",
    "train_seconds": "float64",
    "eval_seconds": "float64",
    "peak_rss_mb": "float64",
    "peak_gpu_mb": "float64",
    "epochs_run": "Int64",
    "epochs": "Int64",
    "max_train_samples": "Int64",
    "time_limit": "float64",
    "phase": "str",
    "seed": "int64",
    "message": "str",
    "worker": "str",
    "device": "str",
    "reused_from": "Int64",
    "finished_at": "datetime64[ns, UTC]",
}
#: Columns of ``to_dataframe(diagnostics="layers")``.
_LAYER_DTYPES = {
    "trial_id": "int64", "layer": "int64", "block": "str", "gain": "float64",
    "grad_norm": "float64",
}  # fmt: skip
#: Columns that close every frame, after the choice and ``diag_*`` columns.
TAIL_COLUMNS: dict[str, str] = {"diagnostics": "str", "spec": "str"}


@dataclass(frozen=True)
class PendingTrial:
    """A trial submitted to a worker whose result is not in the store yet."""

    trial_id: int
    spec: ArchSpec
    fidelity: Fidelity
    seed: int


class ResultStore:
    """The results of one run, stored in ``run_dir/results.sqlite``.

    Args:
        run_dir: the run directory (made if missing and ``create`` is true).
        create: make a new store when there is none. With ``create=False`` a directory without
            a store raises :class:`~autodlgym.errors.AutoDLError`, and nothing is written.

    Raises:
        AutoDLError: no store and ``create=False``; a file that is not a store; a damaged
            store (SQLite finds it malformed, or not a database, where opening reads it; see
            :func:`store_damage` for damage found later); a store written by a newer autodlgym
            (schema version above :attr:`SCHEMA_VERSION`).

    The connection belongs to the thread that opened the store. Use it as a context manager or
    call :meth:`close`.
    """

    SCHEMA_VERSION: int = 2

    def __init__(self, run_dir: str | Path, *, create: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        self._conn: sqlite3.Connection | None = None
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise AutoDLError(f"run directory {str(self.run_dir)!r} is a file; give a directory")
        if not self.path.is_file():
            if not create:
                raise _no_run(self.run_dir)
            self.run_dir.mkdir(parents=True, exist_ok=True)
        # mode=rw never creates a file: a reader must not leave an empty database behind
        uri = f"{self.path.resolve().as_uri()}?mode={'rwc' if create else 'rw'}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.OperationalError as exc:
            raise AutoDLError(f"cannot open results store {str(self.path)!r}: {exc}") from None
        self._conn = conn
        try:
            self._open(create)
        except BaseException:
            self.close()
            raise

    # Opening ------------------------------------------------------------------------------
    def _open(self, create: bool) -> None:
        try:
            self._open_schema(create)
        except sqlite3.DatabaseError as exc:  # a damaged file, or one SQLite cannot read now
            if is_damaged(exc):
                raise unreadable_store(self.path, exc) from None
            raise AutoDLError(f"cannot read results store {str(self.path)!r} ({exc})") from None

    def _open_schema(self, create: bool) -> None:
        conn = self._db
        version = self._schema_version()
        if version is None:
            foreign = self._foreign_tables()
            if foreign:
                raise AutoDLError(
                    f"{self.path} is not an autodlgym results store (it holds the table(s) "
                    f"{', '.join(foreign[:3])}); move it away or choose another --out directory"
                )
            if not create:
                raise _no_run(self.run_dir)
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: later connections inherit it
            with self._transaction():
                # statement by statement: executescript would commit the open transaction
                for statement in _SCHEMA_V1.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                # a new store is made as version 1 and upgraded like an old one, so every
                # store, new or old, goes through the same migrations
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', '1')")
                conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('created_at', ?)", (repr(time.time()),)
                )
            version = self._schema_version()
        assert version is not None
        if version > self.SCHEMA_VERSION:
            raise AutoDLError(
                f"results store {str(self.path)!r} has schema version {version}, newer than this "
                f"autodlgym reads ({self.SCHEMA_VERSION}); upgrade autodlgym (pip install -U autodlgym)"
            )
        if version < self.SCHEMA_VERSION:
            self._migrate(version)
        conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable against process crashes

    def _schema_version(self) -> int | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        if row is None:
            return None
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise unreadable_store(self.path, f"schema version {row[0]!r}") from None

    def _foreign_tables(self) -> list[str]:
        """Tables of a database that has no autodlgym ``meta`` table (not a results store)."""
        rows = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def _migrate(self, version: int) -> None:
        with self._transaction():
            # re-read under the write lock: another process may have migrated meanwhile
            current = self._schema_version() or version
            for v in range(current, self.SCHEMA_VERSION):
                step = _MIGRATIONS.get(v)
                if step is None:
                    raise AutoDLError(
                        f"results store {str(self.path)!r} has schema version {v}, which this "
                        f"autodlgym cannot upgrade to {self.SCHEMA_VERSION}; start a new run"
                    )
                step(self._db)
            self._db.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                (str(self.SCHEMA_VERSION),),
            )

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise AutoDLError(f"results store {str(self.path)!r} is closed; open it again")
        return self._conn

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # Run settings and named state ---------------------------------------------------------
    def save_config(self, config: Mapping[str, Any]) -> None:
        """Store the run settings, replacing any saved before.

        Args:
            config: JSON-serialisable mapping (task, searcher, space config, budget, ...).
                A ``"space"`` entry lets :meth:`to_dataframe` name the choice columns.
        """
        try:
            items = [
                # key order kept: a space config lists parents before their children
                (str(k), json.dumps(v, default=_json_default))
                for k, v in config.items()
            ]
        except (TypeError, ValueError) as exc:
            raise AutoDLError(f"run config cannot be written as JSON: {exc}") from None
        with self._transaction():
            self._db.execute("DELETE FROM run")
            self._db.executemany("INSERT INTO run VALUES (?, ?)", items)

    def load_config(self) -> dict[str, Any] | None:
        """The saved run settings, or None if none were saved."""
        rows = self._db.execute("SELECT key, value FROM run").fetchall()
        return {k: json.loads(v) for k, v in rows} if rows else None

    def meta(self) -> dict[str, str]:
        """The store's own facts: ``schema_version``, ``created_at`` (Unix seconds), ..."""
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def record_environment(self, environment: Mapping[str, Any]) -> int:
        """Append what this session runs on (see :mod:`autodlgym.results.environment`).

        Returns:
            The session number (0 for the first session of the run).
        """
        try:
            value = json.dumps(dict(environment), sort_keys=True, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise AutoDLError(f"environment cannot be written as JSON: {exc}") from None
        with self._transaction():
            row = self._db.execute("SELECT COALESCE(MAX(session) + 1, 0) FROM environment")
            session = int(row.fetchone()[0])
            self._db.execute(
                "INSERT INTO environment VALUES (?, ?, ?)", (session, time.time(), value)
            )
        return session

    def environments(self) -> list[dict[str, Any]]:
        """Every recorded session, oldest first, each with ``session`` and ``recorded_at``
        (Unix seconds) beside the recorded fields."""
        rows = self._db.execute(
            "SELECT session, recorded_at, value FROM environment ORDER BY session"
        ).fetchall()
        return [{"session": s, "recorded_at": t, **json.loads(v)} for s, t, v in rows]

    def save_state(self, name: str, blob: bytes) -> None:
        """Store (or replace) a named blob, e.g. ``"searcher"``; committed at once."""
        self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (name, bytes(blob)))

    def load_state(self, name: str) -> bytes | None:
        """The blob saved under ``name``, or None."""
        row = self._db.execute("SELECT blob FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    # Trials -------------------------------------------------------------------------------
    def next_trial_id(self) -> int:
        """One more than the largest trial id finished or pending (0 for a new run)."""
        row = self._db.execute(
            "SELECT MAX(m) FROM (SELECT MAX(trial_id) AS m FROM trials "
            "UNION ALL SELECT MAX(trial_id) FROM pending)"
        ).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def add_pending(self, trial_id: int, spec: ArchSpec, fidelity: Fidelity, seed: int) -> None:
        """Record a trial handed to a worker (idempotent: a second call replaces the first).

        Raises:
            ValueError: the trial is already finished.
        """
        with self._transaction():
            if self._is_finished(trial_id):
                raise ValueError(f"trial {trial_id} is already finished; it cannot be pending")
            self._db.execute(
                "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?)",
                (int(trial_id), spec.to_json(), fidelity.key(), int(seed), time.time()),
            )

    def discard_pending(self, trial_id: int) -> None:
        """Forget a pending trial that will not be run (no error if there is none)."""
        self._db.execute("DELETE FROM pending WHERE trial_id = ?", (int(trial_id),))

    def pending(self) -> list[PendingTrial]:
        """Submitted but unfinished trials, by trial id."""
        rows = self._db.execute(
            "SELECT trial_id, spec, fidelity, seed FROM pending ORDER BY trial_id"
        ).fetchall()
        return [
            PendingTrial(int(t), ArchSpec.from_json(s), Fidelity.from_key(f), int(seed))
            for t, s, f, seed in rows
        ]

    def append(
        self,
        trial_id: int,
        spec: ArchSpec,
        fidelity: Fidelity,
        seed: int,
        result: TrialResult,
        *,
        reused_from: int | None = None,
    ) -> bool:
        """Commit a finished trial: its row, its curve and the removal of its pending row.

        All of it happens in one transaction, so a crash leaves all or nothing. Call this
        before telling the searcher.

        Args:
            reused_from: the trial whose result this one copies (see :meth:`lookup`).

        Returns:
            True if written; False, writing nothing, if ``trial_id`` is already finished.
        """
        trial_id = int(trial_id)
        values = _result_values(result)
        diagnostics = _dumps(result.diagnostics or {})
        extra = _dumps(_extra_fields(result))
        curve = [_curve_row(trial_id, i, point) for i, point in enumerate(result.curve or [])]
        row = (
            trial_id, spec.arch_id, spec.to_json(), fidelity.key(), fidelity.epochs,
            fidelity.max_train_samples, fidelity.time_limit, int(seed), *values, diagnostics,
            extra, None if reused_from is None else int(reused_from), time.time(),
        )  # fmt: skip
        with self._transaction():
            if self._is_finished(trial_id):
                return False
            self._db.execute(_INSERT_TRIAL, row)
            if curve:
                self._db.executemany("INSERT INTO curves VALUES (?, ?, ?, ?, ?, ?, ?)", curve)
            self._db.execute("DELETE FROM pending WHERE trial_id = ?", (trial_id,))
        return True

    def _is_finished(self, trial_id: int) -> bool:
        row = self._db.execute("SELECT 1 FROM trials WHERE trial_id = ?", (int(trial_id),))
        return row.fetchone() is not None

    def finished_ids(self) -> set[int]:
        """Ids of all finished trials."""
        return {int(r[0]) for r in self._db.execute("SELECT trial_id FROM trials")}

    def n_finished(self, phase: str | None = None) -> int:
        """Number of finished trials (every status counts); of one fidelity phase
        (``"search"``, ``"retrain"``) when ``phase`` is given."""
        where = f" WHERE {_phase_clause(phase)}" if phase else ""
        return int(self._db.execute(f"SELECT COUNT(*) FROM trials{where}").fetchone()[0])

    def lookup(self, arch_id: str, fidelity: Fidelity, seed: int) -> tuple[int, TrialResult] | None:
        """An earlier evaluation of the same architecture, fidelity and seed, if any.

        Trials that ended ``worker_lost``, ``timeout`` or ``oom`` do not count: they say
        nothing certain about the candidate. Of several matches the earliest (the original, not a copy) is returned.

        Returns:
            ``(trial_id, result)`` or None.
        """
        marks = ", ".join("?" * len(_NOT_REUSABLE))
        row = self._db.execute(
            f"SELECT {_SELECT_TRIAL} FROM trials WHERE arch_id = ? AND fidelity = ? AND seed = ? "
            f"AND status NOT IN ({marks}) ORDER BY trial_id LIMIT 1",
            (arch_id, fidelity.key(), int(seed), *_NOT_REUSABLE),
        ).fetchone()
        if row is None:
            return None
        trial_id = int(row[0])
        return trial_id, _result_from_row(row, self._curves_of([trial_id]).get(trial_id, []))

    def results(self, phase: str | None = None) -> list[tuple[int, ArchSpec, TrialResult]]:
        """Every finished trial (of ``phase`` when given) as ``(trial_id, spec, result)``, by
        trial id."""
        where = f" WHERE {_phase_clause(phase)}" if phase else ""
        rows = self._db.execute(
            f"SELECT {_SELECT_TRIAL} FROM trials{where} ORDER BY trial_id"
        ).fetchall()
        curves = self._curves_of(None)
        return [
            (int(r[0]), ArchSpec.from_json(r[1]), _result_from_row(r, curves.get(int(r[0]), [])))
            for r in rows
        ]

    def fidelities(self) -> dict[int, Fidelity]:
        """The fidelity of every finished trial, by trial id."""
        rows = self._db.execute("SELECT trial_id, fidelity FROM trials").fetchall()
        return {int(t): Fidelity.from_key(f) for t, f in rows}

    def best(self, phase: str | None = None) -> tuple[int, float] | None:
        """``(trial_id, val_score)`` of the best trial with a usable score (``ok``, or
        ``stopped`` by the search's deadline with the finite score it reached; of ``phase``
        when given; earliest on ties), or None."""
        where = f" AND {_phase_clause(phase)}" if phase else ""
        row = self._db.execute(
            # scores are stored finite or NULL (_result_values)
            "SELECT trial_id, val_score FROM trials WHERE status IN (?, ?)"
            f" AND val_score IS NOT NULL{where} ORDER BY val_score DESC, trial_id LIMIT 1",
            (OK, STOPPED),
        ).fetchone()
        return None if row is None else (int(row[0]), float(row[1]))

    def _curves_of(self, trial_ids: Iterable[int] | None) -> dict[int, list[dict[str, Any]]]:
        query = "SELECT trial_id, epoch, train_loss, val_score, seconds, extra FROM curves"
        args: tuple[int, ...] = ()
        if trial_ids is not None:
            args = tuple(int(t) for t in trial_ids)
            query += f" WHERE trial_id IN ({', '.join('?' * len(args))})"
        out: dict[int, list[dict[str, Any]]] = {}
        for trial_id, *vals, extra in self._db.execute(query + " ORDER BY trial_id, step", args):
            point = {k: v for k, v in zip(_CURVE_KEYS, vals) if v is not None}
            if "epoch" in point and float(point["epoch"]).is_integer():
                point["epoch"] = int(point["epoch"])
            if extra:
                point.update(json.loads(extra))
            out.setdefault(int(trial_id), []).append(point)
        return out

    # pandas -------------------------------------------------------------------------------
    def curves(self) -> pandas.DataFrame:
        """Learning curves in long form: ``trial_id, epoch, train_loss, val_score, seconds``.

        One row per epoch a trial recorded, by trial and epoch; a pruned trial's rows stop where
        it was stopped, and a trial that failed before its first epoch has none. ``seconds``:
        since the trial's training began, at the end of that epoch. Extra keys a trainer put in a curve
        point are not columns here (:meth:`results` returns them).
        """
        import pandas as pd

        rows = self._db.execute(
            "SELECT trial_id, epoch, train_loss, val_score, seconds FROM curves ORDER BY trial_id, step"
        ).fetchall()
        cols = ["trial_id", *_CURVE_KEYS]
        df = pd.DataFrame(rows, columns=cols)
        return df.astype({"trial_id": "int64", **{c: "float64" for c in _CURVE_KEYS}})

    def to_dataframe(
        self, include_pending: bool = False, diagnostics: str = "columns", space: Any = None
    ) -> pandas.DataFrame:
        """One row per finished trial with flat columns, sorted by ``trial_id``.

        Columns: :data:`BASE_COLUMNS` (with ``max_examples`` after ``max_train_samples``
        when a trial's fidelity has one: a first ASHA rung); then one column per TrialResult
        field that has no column of its own in the database (``latency``) when any trial has
        a value for it; then one column per decision of the run's search space
        (``SearchSpace.columns``, None where inactive; one per spec key when the run config
        has no ``"space"``); then ``diag_<name>`` for each scalar diagnostic; then
        ``diagnostics`` (all diagnostics, per-layer lists included, as JSON) and ``spec``
        (canonical JSON). A decision whose name clashes with another column is prefixed
        ``choice_``. ``peak_rss_mb`` and ``peak_gpu_mb`` are per-trial peaks (see
        :class:`~autodlgym.trial.TrialResult`). ``df.attrs["environment"]`` lists what each
        session of the run ran on (:meth:`environments`).

        Args:
            include_pending: add submitted, unfinished trials with status ``"running"``.
            diagnostics: ``"columns"`` (the frame above) or ``"layers"``: instead, the per-layer
                diagnostics as a tidy frame, one row per trial and block: ``trial_id``,
                ``layer`` (0-based, forward order), ``block`` (its name), ``gain``
                (``E[out^2] / E[in^2]`` at initialisation) and ``grad_norm`` (the loss
                gradient's norm over the block's parameters); trials without diagnostics have
                no rows. See :mod:`autodlgym.training.diagnostics`.

            space: the :class:`~autodlgym.SearchSpace` that names the decision columns;
                None: the space stored with the run (:meth:`load_space`).

        The frame is built by :mod:`autodlgym.results.frames`; the store only reads rows.

        Raises:
            AutoDLError: an unknown ``diagnostics`` value.
        """
        from autodlgym.results import frames

        if diagnostics == "layers":
            return frames.layers_frame(self)
        if diagnostics != "columns":
            raise AutoDLError(f"diagnostics={diagnostics!r} is unknown; use columns or layers")
        return frames.trials_frame(
            self, self.load_space() if space is None else space, include_pending
        )

    def frame_rows(self, include_pending: bool = False) -> list[tuple[Any, ...]]:
        """The raw trial rows the frame is built from (``include_pending``: with the
        submitted, unfinished trials as status ``running``), by trial id."""
        sql = f"SELECT {_SELECT_FRAME} FROM trials"
        if include_pending:
            sql += (
                " UNION ALL SELECT p.trial_id, NULL, p.spec, p.fidelity, p.seed, ?, NULL, NULL, "
                "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '', '', '', '{}', NULL, NULL, '{}' "
                "FROM pending p WHERE p.trial_id NOT IN (SELECT trial_id FROM trials)"
            )
        return self._db.execute(
            sql + " ORDER BY 1", (RUNNING,) if include_pending else ()
        ).fetchall()

    def diagnostics_rows(self) -> list[tuple[int, str]]:
        """``(trial_id, diagnostics JSON)`` of every finished trial, by trial id."""
        return self._db.execute(
            "SELECT trial_id, diagnostics FROM trials ORDER BY trial_id"
        ).fetchall()

    def save_space(self, space_config: Mapping[str, Any]) -> None:
        """Store the resolved search space of the run (``SearchSpace.to_config()``, the budget
        included), so every reader gets the space the run searched, not a rebuild."""
        try:
            text = json.dumps(dict(space_config), default=_json_default)
        except (TypeError, ValueError) as exc:
            raise AutoDLError(f"search space cannot be written as JSON: {exc}") from None
        self.save_state(SPACE_STATE, text.encode())

    def load_space(self) -> Any:
        """The search space stored with the run; for a run stored before spaces were (0.1),
        the space config of its settings; None when neither is there or it cannot be built
        here (a block of a module that is not importable: the frame then has one column per
        spec key)."""
        blob = self.load_state(SPACE_STATE)
        config = json.loads(blob) if blob is not None else (self.load_config() or {}).get("space")
        if not config:
            return None
        from autodlgym.registry import import_modules
        from autodlgym.searchspace.space import SearchSpace

        try:
            import_modules((self.load_config() or {}).get("imports") or [])  # its own blocks
            return SearchSpace.from_config(config)
        except AutoDLError as exc:
            warnings.warn(f"the run's search space cannot be rebuilt ({exc})", stacklevel=3)
            return None

    # Lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"ResultStore({str(self.run_dir)!r}, {state})"


def load_results(
    run_dir: str | Path, include_pending: bool = False, diagnostics: str = "columns"
) -> pandas.DataFrame:
    """The trials of a run as a DataFrame (see :meth:`ResultStore.to_dataframe`); with
    ``diagnostics="layers"`` the per-layer diagnostics as a tidy frame instead.

    Safe to call while a search is writing to ``run_dir``. Writes nothing, unless the store
    has an older schema version, which is upgraded first.

    Raises:
        AutoDLError: ``run_dir`` holds no autodlgym run.
    """
    with ResultStore(run_dir, create=False) as store:
        return store.to_dataframe(include_pending=include_pending, diagnostics=diagnostics)


# Helpers ----------------------------------------------------------------------------------
class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error).

    IMMEDIATE takes the write lock up front, so a check-then-write (the duplicate test in
    ``append``) cannot interleave with another writer.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _phase_clause(phase: str) -> str:
    """SQL selecting the trials of one fidelity phase. Fidelity keys are canonical JSON that
    names the phase only when it is not the search phase (see :meth:`Fidelity.key`)."""
    if phase not in PHASES:
        raise AutoDLError(f"phase {phase!r} is unknown; use {' or '.join(PHASES)}")
    if phase == SEARCH:
        return "instr(fidelity, '\"phase\":') = 0"
    return f'instr(fidelity, \'"phase":"{phase}"\') > 0'


def _no_run(run_dir: Path) -> AutoDLError:
    return AutoDLError(
        f"no autodlgym run in {str(run_dir)}; start one with autodlgym search --out {str(run_dir)}"
    )


def is_damaged(exc: BaseException) -> bool:
    """True for SQLite's errors about a damaged database: "database disk image is
    malformed" (SQLITE_CORRUPT) and "file is not a database" (SQLITE_NOTADB)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if name:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    text = str(exc)
    return "malformed" in text or "not a database" in text


def unreadable_store(path: str | Path, reason: object) -> AutoDLError:
    """The one-line error for a damaged results store at ``path``."""
    return AutoDLError(
        f"{path} is not a readable autodlgym results store ({reason}); restore it from a "
        "backup, or start a new run in another directory (autodlgym search --out NEW_DIR)"
    )


def store_damage(path: str | Path) -> str | None:
    """Why the SQLite file at ``path`` is damaged (SQLite's quick check, read-only), or None
    when the check finds nothing wrong or cannot run. Reads the whole file: for error paths,
    not for every open."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return None
    try:
        rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc) if is_damaged(exc) else None
    finally:
        conn.close()
    first = str(rows[0][0]) if rows else "ok"
    return None if first == "ok" else "database disk image is malformed"


_TRIAL_COLUMNS = (
    "trial_id", "arch_id", "spec", "fidelity", "epochs", "max_train_samples", "time_limit",
    "seed", *_RESULT_COLUMNS, "diagnostics", "extra", "reused_from", "finished_at",
)  # fmt: skip
_INSERT_TRIAL = f"INSERT INTO trials ({', '.join(_TRIAL_COLUMNS)}) VALUES ({', '.join('?' * len(_TRIAL_COLUMNS))})"
# columns read back into a TrialResult: trial_id, spec, the result columns, diagnostics, extra
_SELECT_TRIAL = ", ".join(("trial_id", "spec", *_RESULT_COLUMNS, "diagnostics", "extra"))
_SELECT_FRAME = (
    "trial_id, arch_id, spec, fidelity, seed, status, val_score, test_score, train_loss, params, "
    "trainable_params, flops, train_seconds, eval_seconds, peak_rss_mb, peak_gpu_mb, epochs_run, "
    "message, worker, device, diagnostics, reused_from, finished_at, extra"
)


def _result_values(result: TrialResult) -> list[Any]:
    out: list[Any] = []
    for name in _RESULT_COLUMNS:
        v = getattr(result, name)
        if name in _INT_FIELDS:
            v = None if v is None else int(v)
        elif name in ("status", "message", "worker", "device"):
            v = "" if v is None else str(v)
        else:
            v = finite_or_none(v)
        out.append(v)
    return out


def _extra_fields(result: TrialResult) -> dict[str, Any]:
    skip = {*_RESULT_COLUMNS, "curve", "diagnostics"}
    return {f.name: getattr(result, f.name) for f in fields(result) if f.name not in skip}


def _result_from_row(row: tuple[Any, ...], curve: list[dict[str, Any]]) -> TrialResult:
    values = dict(zip(_RESULT_COLUMNS, row[2 : 2 + len(_RESULT_COLUMNS)]))
    for name in ("train_seconds", "eval_seconds"):
        if values[name] is None:
            values[name] = 0.0
    if values["epochs_run"] is None:
        values["epochs_run"] = 0
    diagnostics, extra = row[-2], row[-1]
    return TrialResult.from_dict(
        {
            **(json.loads(extra) if extra else {}),
            **values,
            "curve": curve,
            "diagnostics": json.loads(diagnostics) if diagnostics else {},
        }
    )


def _curve_row(trial_id: int, step: int, point: Mapping[str, Any]) -> tuple[Any, ...]:
    known = [finite_or_none(point.get(k)) for k in _CURVE_KEYS]
    rest = {k: v for k, v in point.items() if k not in _CURVE_KEYS}
    return (trial_id, step, *known, _dumps(rest) if rest else None)


def _json_default(o: Any) -> Any:
    # numpy scalars and arrays (diagnostics are often computed with numpy or torch)
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=_json_default)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def _typed_series(values: list[Any], hint: Iterable[Any] = ()) -> Any:
    """A Series with the narrowest nullable dtype that holds ``values`` and ``hint``."""
    import pandas as pd

    kinds = {type(v) for v in values} | {type(v) for v in hint}
    kinds.discard(type(None))
    if float in kinds and any(isinstance(v, float) and math.isnan(v) for v in values):
        values = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    if kinds == {bool}:
        dtype = "boolean"
    elif kinds == {int}:
        dtype = "Int64"
    elif kinds and kinds <= {int, float}:
        dtype = "float64"
    elif kinds <= {str}:  # also the all-missing case
        dtype = "str"
    else:
        dtype = "object"  # mixed kinds in one decision: keep the values as they are
    if dtype == "float64":
        values = [None if v is None else float(v) for v in values]
    return pd.Series(values, dtype=dtype)
