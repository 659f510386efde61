"""The store across processes: a writer killed with SIGKILL, and readers beside a writer."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from autodlgym.results.store import DB_NAME, ResultStore, load_results
from autodlgym.trial import Fidelity

# Appends trials forever (or up to argv[2]); trial i has i % 5 + 1 curve points and val 0.001 * i,
# so a reader can check that every trial it sees is whole.
WRITER = r"""
import sys
import time
from autodlgym.results.store import ResultStore
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import Fidelity, TrialResult

limit = int(sys.argv[2]) if len(sys.argv) > 2 else 10**9
pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
fid = Fidelity(2)
def write(store, i):
    spec = ArchSpec(width=i % 7 + 1, block="mlp", n=i)
    store.add_pending(i, spec, fid, 0)
    curve = [{"epoch": e, "val_score": 0.001 * i} for e in range(1, i % 5 + 2)]
    result = TrialResult("ok", val_score=0.001 * i, params=i, curve=curve,
                         diagnostics={"i": i, "layers": [i] * 3})
    assert store.append(i, spec, fid, 0, result)
    store.save_state("searcher", str(i).encode() * 50)
    print(i, flush=True)
    time.sleep(pause)


with ResultStore(sys.argv[1]) as store:
    for p in store.pending():  # resume: first finish what a killed process left in flight
        write(store, p.trial_id)
    i = store.next_trial_id()
    while i < limit:
        write(store, i)
        i += 1
"""


def _start_writer(run_dir, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run_dir), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_lines(proc: subprocess.Popen, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(n):
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"writer stopped early: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("writer too slow")


def _check_consistent(run_dir) -> int:
    """Every finished trial is whole; pending holds at most the trial being written."""
    conn = sqlite3.connect(run_dir / DB_NAME)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    with ResultStore(run_dir, create=False) as store:
        results = store.results()
        ids = [t for t, _, _ in results]
        assert ids == list(range(len(ids)))  # no gap, no duplicate
        for i, spec, r in results:
            assert spec["n"] == i and r.val_score == pytest.approx(0.001 * i)
            assert len(r.curve) == i % 5 + 1  # no partial curve
            assert r.diagnostics == {"i": i, "layers": [i] * 3}
        pending = [p.trial_id for p in store.pending()]
        assert pending in ([], [len(ids)])  # only the trial in flight when killed
        assert store.next_trial_id() == len(ids) + len(pending)
        assert set(pending).isdisjoint(store.finished_ids())
        state = store.load_state("searcher")
        if ids:  # the searcher state is never behind by more than the trial in flight
            assert state in (str(ids[-1]).encode() * 50, str(ids[-1] - 1).encode() * 50)
        return len(ids)


def test_a_writer_killed_with_sigkill_leaves_whole_trials_and_can_continue(tmp_path):
    run = tmp_path / "run"
    finished = 0
    for round_ in range(6):
        proc = _start_writer(run)
        _wait_for_lines(proc, 15 + 7 * round_)
        time.sleep(0.0007 * round_)  # vary where in the loop the kill lands
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        n = _check_consistent(run)
        assert n >= finished + 15 + 7 * round_
        finished = n
    # the run re-opens and continues to a fixed budget
    proc = _start_writer(run, finished + 5)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert _check_consistent(run) == finished + 5


def test_readers_in_another_process_see_whole_trials_while_a_search_writes(tmp_path):
    run = tmp_path / "run"
    writer = _start_writer(run, 10**9, 0.002)  # runs until killed
    try:
        _wait_for_lines(writer, 1)
        seen = []
        for _ in range(20):
            df = load_results(run, include_pending=True)
            done = df[df["status"] == "ok"]
            assert done["trial_id"].tolist() == list(range(len(done)))
            assert done["val_score"].tolist() == pytest.approx([0.001 * i for i in done.trial_id])
            assert (df["status"] == "running").sum() <= 1
            seen.append(len(done))
            time.sleep(0.01)
        assert writer.poll() is None, writer.stderr.read()  # the readers never made it fail
    finally:
        writer.kill()
        writer.communicate()
    assert seen == sorted(seen) and seen[-1] > seen[0]
    assert _check_consistent(run) >= seen[-1]


def test_a_reader_process_does_not_block_this_writer(tmp_path, space):
    reader_code = (
        "import sys, time\n"
        "from autodlgym.results.store import load_results\n"
        "t = time.monotonic()\n"
        "n = 0\n"
        "while time.monotonic() - t < 1.5:\n"
        "    n = max(n, len(load_results(sys.argv[1])))\n"
        "print(n)\n"
    )
    from autodlgym.trial import TrialResult

    with ResultStore(tmp_path) as store:
        store.append(0, space.sample(0), Fidelity(1), 0, TrialResult("ok", 0.1))
        reader = subprocess.Popen(
            [sys.executable, "-c", reader_code, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        t = time.monotonic()
        i = 1
        while reader.poll() is None and time.monotonic() - t < 30:
            store.append(i, space.sample(i), Fidelity(1), 0, TrialResult("ok", 0.1))
            i += 1
        out, _ = reader.communicate(timeout=30)
    assert reader.returncode == 0
    assert 1 <= int(out) <= i
