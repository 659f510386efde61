"""ResultStore: round trips, pending lifecycle, duplicates, lookup, state, schema versions."""

from __future__ import annotations

import json
import math
import sqlite3
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autodlgym.errors import AutoDLError
from autodlgym.results import store as store_module
from autodlgym.results.store import DB_NAME, PendingTrial, ResultStore, load_results
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import ERROR, NAN, OK, STATUSES, TIMEOUT, WORKER_LOST, Fidelity, TrialResult


def test_new_store_is_empty_and_in_wal_mode(tmp_path):
    run = tmp_path / "run"
    with ResultStore(run) as store:
        assert store.path == run / DB_NAME and store.path.is_file()
        assert store.next_trial_id() == 0
        assert store.n_finished() == 0
        assert store.finished_ids() == set()
        assert store.pending() == []
        assert store.results() == []
        assert store.best() is None
        assert store.load_config() is None
    conn = sqlite3.connect(run / DB_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_trials_round_trip_across_reopen(tmp_path, space, make_result, fidelity):
    specs = [space.sample(i) for i in range(4)]
    results = [make_result(0), make_result(1, NAN), make_result(2), make_result(3, ERROR)]
    with ResultStore(tmp_path) as store:
        for i, (spec, result) in enumerate(zip(specs, results)):
            assert store.append(i, spec, fidelity, 7, result)
    with ResultStore(tmp_path, create=False) as store:
        back = store.results()
    assert [t for t, _, _ in back] == [0, 1, 2, 3]
    assert [s for _, s, _ in back] == specs
    assert [r for _, _, r in back] == results  # every field, curve and diagnostics included


def test_curves_are_stored_per_epoch(tmp_path, space, make_result, fidelity):
    with ResultStore(tmp_path) as store:
        store.append(0, space.sample(0), fidelity, 0, make_result(0, epochs=4))
        store.append(1, space.sample(1), fidelity, 0, make_result(1, NAN))
        store.append(2, space.sample(2), fidelity, 0, make_result(2, epochs=2))
        curves = store.curves()
    assert curves["trial_id"].tolist() == [0, 0, 0, 0, 2, 2]
    assert curves["epoch"].tolist() == [1, 2, 3, 4, 1, 2]
    np.testing.assert_allclose(curves["train_loss"], [1, 1 / 2, 1 / 3, 1 / 4, 1, 1 / 2])
    np.testing.assert_allclose(curves["seconds"], [0.5, 1.0, 1.5, 2.0, 0.5, 1.0])


def test_curve_points_keep_extra_keys_and_drop_non_finite_values(tmp_path, space, fidelity):
    curve = [{"epoch": 1, "val_score": float("nan"), "lr": 0.1}, {"epoch": 2, "train_loss": 0.5}]
    with ResultStore(tmp_path) as store:
        store.append(0, space.sample(0), fidelity, 0, TrialResult(NAN, curve=curve))
        ((_, _, back),) = store.results()
    assert back.curve == [{"epoch": 1, "lr": 0.1}, {"epoch": 2, "train_loss": 0.5}]


def test_numpy_values_are_stored_as_plain_numbers(tmp_path, space, fidelity):
    result = TrialResult(
        OK,
        val_score=np.float32(0.75),
        params=np.int64(12),
        diagnostics={"gain": np.float64(1.25), "per_layer": np.array([1.0, 2.0])},
    )
    with ResultStore(tmp_path) as store:
        store.append(0, space.sample(0), fidelity, 0, result)
        ((_, _, back),) = store.results()
    assert back.val_score == 0.75 and type(back.val_score) is float
    assert back.params == 12 and type(back.params) is int
    assert back.diagnostics == {"gain": 1.25, "per_layer": [1.0, 2.0]}


_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_result = st.builds(
    TrialResult,
    status=st.sampled_from(STATUSES),
    val_score=st.none() | _finite,
    test_score=st.none() | _finite,
    params=st.none() | st.integers(0, 2**62),
    train_seconds=st.floats(0, 1e6),
    epochs_run=st.integers(0, 100),
    curve=st.lists(
        st.fixed_dictionaries({"epoch": st.integers(1, 50), "val_score": _finite}), max_size=4
    ),
    diagnostics=st.dictionaries(
        st.text("abcdefgh_", min_size=1, max_size=8),
        _finite | st.booleans() | st.lists(_finite, max_size=3),
        max_size=4,
    ),
    message=st.text(max_size=40),
    worker=st.text(max_size=10),
)


@settings(max_examples=40)
@given(results=st.lists(_result, min_size=1, max_size=4), seed=st.integers(0, 2**31 - 1))
def test_any_result_round_trips_exactly(space, results, seed):
    with tempfile.TemporaryDirectory() as d:
        with ResultStore(d) as store:
            for i, r in enumerate(results):
                store.append(i, space.sample(i), Fidelity(2, max_train_samples=100), seed, r)
        with ResultStore(d, create=False) as store:
            assert [r for _, _, r in store.results()] == results


def test_pending_lifecycle(tmp_path, space, make_result, fidelity):
    a, b, c = (space.sample(i) for i in range(3))
    with ResultStore(tmp_path) as store:
        store.add_pending(0, a, fidelity, 1)
        store.add_pending(2, c, Fidelity(1, max_train_samples=50), 1)
        store.add_pending(1, b, fidelity, 1)
        store.add_pending(1, b, fidelity, 1)  # idempotent
        assert store.pending() == [
            PendingTrial(0, a, fidelity, 1),
            PendingTrial(1, b, fidelity, 1),
            PendingTrial(2, c, Fidelity(1, max_train_samples=50), 1),
        ]
        assert store.next_trial_id() == 3  # pending ids are taken
        assert store.append(1, b, fidelity, 1, make_result(1))
        assert [p.trial_id for p in store.pending()] == [0, 2]  # finished: no longer pending
        store.discard_pending(2)
        store.discard_pending(99)  # nothing to discard: no error
        assert [p.trial_id for p in store.pending()] == [0]
        assert store.next_trial_id() == 2
        with pytest.raises(ValueError, match="already finished"):
            store.add_pending(1, b, fidelity, 1)
    with ResultStore(tmp_path, create=False) as store:  # pending trials survive a restart
        assert store.pending() == [PendingTrial(0, a, fidelity, 1)]


def test_duplicate_append_is_refused_and_writes_nothing(tmp_path, space, make_result, fidelity):
    spec = space.sample(0)
    with ResultStore(tmp_path) as store:
        assert store.append(5, spec, fidelity, 0, make_result(5))
        before = store.to_dataframe()
        curves_before = store.curves()
        assert not store.append(5, space.sample(1), fidelity, 0, make_result(6, epochs=5))
        assert store.n_finished() == 1 and store.finished_ids() == {5}
        assert store.to_dataframe().equals(before)
        assert store.curves().equals(curves_before)
        assert store.next_trial_id() == 6


def test_lookup_finds_the_first_reusable_evaluation(tmp_path, space, make_result):
    spec, other = space.sample(0), space.sample(1)
    fid, fid2 = Fidelity(3), Fidelity(3, max_train_samples=100)
    with ResultStore(tmp_path) as store:
        assert store.lookup(spec.arch_id, fid, 0) is None
        store.append(0, spec, fid, 0, TrialResult.failure(WORKER_LOST, "worker died"))
        store.append(1, spec, fid, 0, TrialResult.failure(TIMEOUT, "time limit"))
        assert store.lookup(spec.arch_id, fid, 0) is None  # says nothing about the candidate
        store.append(2, spec, fid, 0, make_result(2))
        store.append(3, spec, fid, 0, make_result(2), reused_from=2)
        store.append(4, other, fid, 0, make_result(4, ERROR))
        hit = store.lookup(spec.arch_id, fid, 0)
        assert hit == (2, make_result(2))
        assert store.lookup(spec.arch_id, fid, 1) is None  # another seed
        assert store.lookup(spec.arch_id, fid2, 0) is None  # another fidelity
        assert store.lookup(other.arch_id, fid, 0) == (4, make_result(4, ERROR))  # errors repeat
        assert store.to_dataframe()["reused_from"].tolist()[3] == 2


def test_best_is_the_highest_ok_or_stopped_score_earliest_on_ties(tmp_path, space, fidelity):
    with ResultStore(tmp_path) as store:
        store.append(0, space.sample(0), fidelity, 0, TrialResult(ERROR, val_score=None))
        assert store.best() is None
        store.append(1, space.sample(1), fidelity, 0, TrialResult(OK, val_score=0.5))
        store.append(2, space.sample(2), fidelity, 0, TrialResult(OK, val_score=0.75))
        store.append(3, space.sample(3), fidelity, 0, TrialResult("pruned", val_score=0.9))
        store.append(4, space.sample(4), fidelity, 0, TrialResult(OK, val_score=0.75))
        assert store.best() == (2, 0.75)
        # a trial stopped by the deadline counts with the score it reached
        store.append(5, space.sample(5), fidelity, 0, TrialResult("stopped", val_score=0.8))
        store.append(6, space.sample(6), fidelity, 0, TrialResult("stopped", val_score=None))
        assert store.best() == (5, 0.8)


def test_state_blobs(tmp_path):
    with ResultStore(tmp_path) as store:
        assert store.load_state("searcher") is None
        store.save_state("searcher", b"\x00first")
        store.save_state("searcher", bytearray(b"\x00second"))
        store.save_state("pruner", b"")
    with ResultStore(tmp_path, create=False) as store:
        assert store.load_state("searcher") == b"\x00second"
        assert store.load_state("pruner") == b""


def test_config_round_trip_keeps_key_order(tmp_path, space):
    config = {"task": "mnist1d", "space": space.to_config(), "budget": {"trials": 4}, "z": None}
    with ResultStore(tmp_path) as store:
        store.save_config(config)
        store.save_config({**config, "budget": {"trials": 8}})  # replaces, not merges
        back = store.load_config()
    assert back == {**config, "budget": {"trials": 8}}
    assert json.dumps(back["space"]) == json.dumps(config["space"])  # same order, too


def test_config_that_is_not_json_is_a_user_error(tmp_path):
    with ResultStore(tmp_path) as store, pytest.raises(AutoDLError, match="JSON"):
        store.save_config({"callback": object()})


def test_no_store_without_create_is_a_user_error_and_writes_nothing(tmp_path):
    with pytest.raises(AutoDLError) as info:
        ResultStore(tmp_path / "empty", create=False)
    assert str(info.value) == (
        f"no autodlgym run in {tmp_path / 'empty'}; "
        f"start one with autodlgym search --out {tmp_path / 'empty'}"
    )
    assert not (tmp_path / "empty").exists()
    with pytest.raises(AutoDLError, match="no autodlgym run"):
        load_results(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_store_is_a_user_error(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(AutoDLError, match="not a readable autodlgym results store"):
        ResultStore(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(AutoDLError, match="is a file"):
        ResultStore(tmp_path / "file")


def _set_version(path, version: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    conn.commit()
    conn.close()


def test_a_newer_schema_asks_to_upgrade(tmp_path):
    ResultStore(tmp_path).close()
    _set_version(tmp_path / DB_NAME, ResultStore.SCHEMA_VERSION + 1)
    for create in (True, False):
        with pytest.raises(AutoDLError, match="upgrade autodlgym"):
            ResultStore(tmp_path, create=create)


def test_an_older_schema_is_migrated_in_steps(tmp_path, monkeypatch, space, make_result, fidelity):
    with ResultStore(tmp_path) as store:
        store.append(0, space.sample(0), fidelity, 0, make_result(0))
    calls = []

    now = ResultStore.SCHEMA_VERSION

    def add_note(conn):
        calls.append(now + 1)
        conn.execute("ALTER TABLE trials ADD COLUMN note TEXT")

    def fill_note(conn):
        calls.append(now + 2)
        conn.execute("UPDATE trials SET note = 'migrated'")

    monkeypatch.setattr(ResultStore, "SCHEMA_VERSION", now + 2)
    steps = {**store_module._MIGRATIONS, now: add_note, now + 1: fill_note}
    monkeypatch.setattr(store_module, "_MIGRATIONS", steps)
    with ResultStore(tmp_path, create=False) as store:
        assert store.n_finished() == 1
    with ResultStore(tmp_path, create=False) as store:  # already current: not migrated again
        assert store.results()[0][2] == make_result(0)
    assert calls == [now + 1, now + 2]
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert conn.execute("SELECT note FROM trials").fetchall() == [("migrated",)]
    version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert version == (str(now + 2),)
    conn.close()


def test_a_version_1_store_keeps_its_gpu_peaks_and_drops_lifetime_cpu_peaks(tmp_path, space):
    # version 1 as it was written: one peak_memory_mb column, no environment table
    conn = sqlite3.connect(tmp_path / DB_NAME)
    for statement in store_module._SCHEMA_V1.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    spec = space.sample(0)
    fid = Fidelity(epochs=1)
    for trial_id, device, mem in ((0, "cuda:0", 812.5), (1, "cpu", 2048.0)):
        conn.execute(
            "INSERT INTO trials (trial_id, arch_id, spec, fidelity, epochs, seed, status, "
            "peak_memory_mb, device, finished_at) VALUES (?, ?, ?, ?, 1, 0, 'ok', ?, ?, 0)",
            (trial_id, spec.arch_id, spec.to_json(), fid.key(), mem, device),
        )
    conn.commit()
    conn.close()
    df = load_results(tmp_path)
    assert df["peak_gpu_mb"].tolist()[0] == 812.5 and math.isnan(df["peak_gpu_mb"][1])
    assert df["peak_rss_mb"].isna().all()  # lifetime peaks are no trial's own
    assert "peak_memory_mb" not in df.columns
    assert df.attrs["environment"] == []
    with ResultStore(tmp_path, create=False) as store:
        assert store.record_environment({"torch": "2.3.0"}) == 0
        assert store.environments()[0]["torch"] == "2.3.0"


def test_an_older_schema_without_a_migration_is_a_user_error(tmp_path, monkeypatch):
    ResultStore(tmp_path).close()
    monkeypatch.setattr(ResultStore, "SCHEMA_VERSION", ResultStore.SCHEMA_VERSION + 1)
    with pytest.raises(AutoDLError, match="cannot upgrade"):
        ResultStore(tmp_path)
    monkeypatch.undo()
    with ResultStore(tmp_path) as store:  # the failed attempt left the store as it was
        assert store.n_finished() == 0


def test_closed_store_says_so(tmp_path):
    store = ResultStore(tmp_path)
    store.close()
    store.close()
    with pytest.raises(AutoDLError, match="closed"):
        store.n_finished()


def test_non_finite_scores_are_stored_as_missing(tmp_path, space, fidelity):
    with ResultStore(tmp_path) as store:
        store.append(0, space.sample(0), fidelity, 0, TrialResult(NAN, train_loss=math.inf))
        ((_, _, back),) = store.results()
    assert back.train_loss is None


def test_spec_outside_any_space_is_stored_as_given(tmp_path, fidelity):
    spec = ArchSpec({"custom": "x", "width": 3})
    with ResultStore(tmp_path) as store:
        store.append(0, spec, fidelity, 0, TrialResult(ERROR, message="not in space"))
        assert store.results()[0][1] == spec
