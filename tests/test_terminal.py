"""What a search, the leaderboard and a damaged run look like in a terminal, a pipe and a log.

The progress display: a bar in a terminal (at 80 columns too), plain lines in a pipe; the
leaderboard: 100 columns unless --wide; a damaged results store: one line naming the file.
"""

from __future__ import annotations

import io
import os
import random
import re
import select
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from autodlgym.cli import BOARD_WIDTH, format_board, main
from autodlgym.errors import AutoDLError
from autodlgym.progress import (
    SearchProgress,
    epochs_text,
    plural,
    progress_style,
    short_seconds,
    shorten,
)
from autodlgym.trial import ERROR, OK, TrialResult

CLI = [sys.executable, "-m", "autodlgym.cli"]
TABLE_TASK = "nasbench-graph:cora"  # a lookup table: hundreds of trials in seconds


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


@pytest.fixture(scope="module")
def table_run(tmp_path_factory) -> Path:
    """A finished run of 40 table lookups."""
    out = tmp_path_factory.mktemp("table") / "run"
    args = ["search", "--task", TABLE_TASK, "--searcher", "tpe", "--trials", "40"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    return out


# The progress display, piece by piece ---------------------------------------------------------
def test_counts_and_epochs_read_naturally():
    assert plural(1, "trial") == "1 trial" and plural(0, "trial") == "0 trials"
    assert plural(2, "trial") == "2 trials"
    assert epochs_text(0.2143, 2) == "0.2/2" and epochs_text(1.0, 3) == "1/3"
    assert epochs_text(2.99, 3) == "2.9/3"  # never more than trained
    assert short_seconds(4.7) == "4s" and short_seconds(65) == "1m05s"
    assert shorten("conv x2 (64) > gru x1 (32)", 16) == "conv x2 (64)…"
    assert len(shorten("links=0-1-2-3 op1=sage", 10)) == 10


def test_status_shows_trials_in_flight_compactly(fake_clock):
    bar = SearchProgress(True, trials=None, time_budget=60, file=io.StringIO(), style="lines")
    assert bar.status() == "0 trials · no ok trial yet"
    bar.started(12, "conv x2 (32)", epochs=3)
    bar.trained(12, 1.0, 100)
    bar.started(13, "links=0-1-2-3 op1=sage", epochs=1)  # a lookup: reports no training
    status = bar.status()
    assert "#12 conv x2 (32) e1/3 0s" in status
    assert "#13 links=0-1-2-3 op1=sage 0s" in status and "e0" not in status
    fake_clock.advance(65)
    assert "#12 conv x2 (32) e1/3 1m05s" in bar.status()
    bar.ended(12, TrialResult(OK, val_score=0.9))
    bar.ended(13, TrialResult.failure(ERROR, "boom"))
    assert bar.status() == "2 trials · best 0.9000 · 1 failed"
    bar.close()
    both = SearchProgress(True, trials=50, time_budget=60, file=io.StringIO(), style="lines")
    assert both.status() == "0/50 trials · no ok trial yet"  # beside a bar that counts time


@pytest.mark.parametrize("width", [30, 44, 60, 200])
def test_status_fits_the_room_it_is_given(width, fake_clock):
    bar = SearchProgress(True, trials=300, time_budget=None, file=io.StringIO(), style="lines")
    bar.ended(0, TrialResult(OK, val_score=0.81))
    for i in range(1, 6):
        bar.started(i, "residual x2 (64) > attention x1 (32)", epochs=20)
        bar.trained(i, 2.5)
    text = bar.status(width)
    assert len(text) <= width
    if width >= 44:
        assert re.search(r"#1 \S.* e2\.5/20 0s", text) and "more" in text
    if width == 200:
        assert text.endswith("+2 more")  # three shown, the rest counted


def test_lines_in_a_pipe_every_tenth_of_the_trials(fake_clock):
    log = io.StringIO()
    progress = SearchProgress(True, trials=300, time_budget=None, file=log)  # not a terminal
    assert progress.style == "lines" and progress.bar is None
    for i in range(300):
        progress.started(i, "mlp x1 (16)", epochs=1)
        ok = i % 50 != 7
        result = TrialResult(OK, val_score=i / 1000) if ok else TrialResult.failure(ERROR, "x")
        progress.ended(i, result)
    progress.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 10
    assert lines[0] == "trial 30/300 · best 0.0290 (#29) · 1 failed · 0:00 elapsed"
    assert lines[-1].startswith("trial 300/300 · best 0.2990 (#299) · 6 failed")


def test_a_chosen_bar_counts_time_when_there_is_a_time_budget(fake_clock):
    log = io.StringIO()
    with progress_style("bar"):
        progress = SearchProgress(True, trials=None, time_budget=900, file=log)
    progress.started(3, "conv x1 (8)", epochs=2)
    fake_clock.advance(125)
    progress.ended(3, TrialResult(OK, val_score=0.5))
    progress.close()
    drawn = log.getvalue()
    assert (
        "\r" in drawn and "2:05/15:00 |" in drawn and "12:55 left · 1 trial · best 0.5000" in drawn
    )
    with pytest.raises(AutoDLError, match="progress style"):
        with progress_style("fancy"):
            pass


# A search as a person sees it ------------------------------------------------------------------
def _in_pty(argv: list[str], columns: int, cwd: Path) -> str:
    """Run the CLI in a pseudo-terminal ``columns`` wide; everything it drew."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [*CLI, *argv], stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=_env()
    )
    os.close(slave)
    out = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
    finally:
        proc.wait(timeout=300)
        os.close(master)
    assert proc.returncode == 0, out.decode(errors="replace")
    return out.decode()


@pytest.mark.skipif(os.name != "posix", reason="needs a POSIX pseudo-terminal")
def test_the_bar_fits_80_columns_and_shows_trials_in_flight(tmp_path):
    argv = ["search", "--task", TABLE_TASK, "--trials", "50", "--out", "run"]
    drawn = _in_pty(argv, 80, tmp_path)
    pieces = [p for p in re.split(r"[\r\n]", drawn) if "|" in p]
    assert pieces, drawn
    assert max(len(p.rstrip()) for p in pieces) <= 80
    bars = [re.search(r"\|([^|]*)\|", p).group(1) for p in pieces]
    assert {len(b) for b in bars} == {10}  # a usable bar that keeps its width
    in_flight = [p for p in pieces if re.search(r" · #\d+ \S", p)]
    assert in_flight, pieces[:5]
    # table lookups report no training: no epoch counter, just the seconds
    assert all(re.search(r"#\d+ \S+( \S+)* \d+s$", p.rstrip()) for p in in_flight), in_flight[:3]
    assert not any(re.search(r" e\d", p) for p in in_flight)
    assert "no ok trial yet" in drawn and "trials | best" not in drawn
    assert "50 trials in run" in drawn


def test_a_piped_search_writes_plain_lines(tmp_path):
    argv = ["search", "--task", TABLE_TASK, "--trials", "300", "--out", "run"]
    r = subprocess.run(
        [*CLI, *argv], capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=600
    )
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and len(r.stderr.encode()) < 2000, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 10
    assert all(
        re.fullmatch(r"trial \d+/300 · best 0\.\d{4} \(#\d+\) · \d+:\d\d elapsed", x) for x in lines
    )
    assert r.stdout.startswith("300 trials in run (300 ok this session); best val score 0.")


def test_the_summary_line_says_when_no_trial_is_ok():
    from autodlgym.cli import _search_summary
    from autodlgym.runner import SearchSummary

    s = SearchSummary(Path("r"), 1, None, None, "trials", 1.0, {"error": 1}, rejected=1)
    assert _search_summary(s) == (
        "1 trial in r (1 error this session); no ok trial yet; stopped by trials after 1.0 s; "
        "1 over-budget candidate skipped"
    )


# The leaderboard ---------------------------------------------------------------------------------
def test_the_leaderboard_fits_100_columns(table_run, capsys, tmp_path):
    from autodlgym import load_results

    code, out, _ = run(capsys, "leaderboard", str(table_run), "--csv", str(tmp_path / "all.csv"))
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= BOARD_WIDTH
    header = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    table = lines[header:]
    assert len(table) == 11 and "val_score" in table[0] and "arch" in table[0]
    for row in table[1:]:
        assert re.match(r"\s*\d+\s+\d+\s+0\.\d{4}\s+0\.\d{4}\s", row), row
    start = table[0].index("arch")  # the summaries are left-aligned under their header
    assert all(row[start] != " " and row[start - 1] == " " for row in table[1:])
    df = load_results(table_run)
    ranked = pd.read_csv(tmp_path / "all.csv")  # the ten rows shown, with every column
    assert len(ranked) == 10 and ranked["arch_id"].is_unique
    assert set(df.columns) <= set(ranked.columns)


def test_wide_shows_every_column(table_run, capsys):
    from autodlgym import load_results
    from autodlgym.analysis.leaderboard import choice_columns

    code, out, _ = run(capsys, "leaderboard", str(table_run), "--wide", "--top", "3")
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("rank"))
    names = header.split()
    for column in [*choice_columns(load_results(table_run)), "arch_id", "flops", "seed"]:
        assert column in names, column
    assert "spec" not in names  # the JSON stays in --csv


def test_the_leaderboard_prints_columns_it_does_not_know():
    board = pd.DataFrame(
        {
            "rank": [1, 2],
            "trial_id": [7, 3],
            "val_score": [0.81, 0.793667],
            "test_score": [0.95, None],
            "n_evals": [3, 1],
            "rung": [2, 0],
            "params": [1629959, 812],
            "arch": ["conv x2 (64) > " * 8, "mlp x1 (16)"],
            "arch_id": ["83b94f2397c597d7", "bb562755fce847ec"],
            "epochs": [5, 5],
            "train_seconds": [0.0, 0.0],  # table lookups
        }
    )
    text = format_board(board)
    header, first, second = text.splitlines()
    assert header.split()[:7] == [
        "rank",
        "trial",
        "val_score",
        "test_score",
        "n_evals",
        "rung",
        "params",
    ]
    assert max(len(line) for line in text.splitlines()) <= BOARD_WIDTH
    assert "0.8100" in first and "0.9500" in first and "1.63M" in first and "0.7937" in second
    assert first.rstrip().endswith("~") or first.rstrip().endswith("…")
    assert "epochs" not in header and "train_s" not in header  # nothing to tell apart
    assert "epochs" in format_board(board.assign(epochs=[5, 1])).splitlines()[0]
    wide = format_board(board, width=None)
    assert "83b94f2397c597d7" in wide and "1629959" in wide and "~" not in wide


def test_an_empty_run_and_an_all_failed_run_say_so(tmp_path, capsys, space, fidelity):
    from autodlgym.results.store import ResultStore

    empty, failed = tmp_path / "empty", tmp_path / "failed"
    ResultStore(empty).close()
    code, out, _ = run(capsys, "leaderboard", str(empty))
    assert (
        code == 0
        and out == f"no trials in {empty} yet: a search records each trial as it finishes\n"
    )
    rng = __import__("numpy").random.default_rng(0)
    with ResultStore(failed) as store:
        for i in range(3):
            result = TrialResult.failure(ERROR, f"RuntimeError: shapes do not match ({i % 2})")
            store.append(i, space.sample(rng), fidelity, 0, result)
    code, out, _ = run(capsys, "leaderboard", str(failed))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"3 trials in {failed}: 3 error"
    assert "no trial finished ok, so none is ranked" in out
    assert not any(line.startswith("rank") for line in lines)  # no empty table
    assert re.search(r"^error\s+3\s+100%\s+RuntimeError: shapes do not match", out, re.M)


# A damaged results store ----------------------------------------------------------------------------
def _garble(run_dir: Path, dest: Path, page: int = 1) -> Path:
    """A copy of ``run_dir`` whose results.sqlite has random bytes in place of page ``page``
    (0-based: page 0 holds SQLite's header and schema)."""
    shutil.copytree(run_dir, dest)
    store = dest / "results.sqlite"
    data = bytearray(store.read_bytes())
    rnd = random.Random(page)
    data[page * 4096 : (page + 1) * 4096] = bytes(rnd.randrange(256) for _ in range(4096))
    store.write_bytes(bytes(data))
    return store


COMMANDS = {
    "leaderboard": ["leaderboard", "{run}"],
    "leaderboard-file": ["leaderboard", "{run}/results.sqlite"],
    "report": ["report", "{run}", "--out", "{tmp}/r.html"],
    "compare": ["compare", "{good}", "{run}", "--out", "{tmp}/c.html"],
    "export-optuna": ["export-optuna", "{run}", "--out", "{tmp}/o.db"],
    "retrain": ["retrain", "{run}", "--top", "1", "--seeds", "1"],
    "export": ["export", "{run}", "--trial", "1", "--out", "{tmp}/model"],
    "resume": ["search", "--out", "{run}", "--resume", "--trials", "50"],
    "search": ["search", "--out", "{run}", "--task", TABLE_TASK, "--trials", "5"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_damaged_store_is_one_line_naming_the_file(command, table_run, tmp_path, capsys):
    store = _garble(table_run, tmp_path / "bad")
    argv = [a.format(run=store.parent, good=table_run, tmp=tmp_path) for a in COMMANDS[command]]
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"{store} is not a readable autodlgym results store (" in lines[0]


def test_damage_met_after_the_store_opened_is_one_line_too(table_run, tmp_path, capsys):
    from autodlgym.results.store import ResultStore

    conn = sqlite3.connect(table_run / "results.sqlite")
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'trials'").fetchone()
    conn.close()
    store = _garble(table_run, tmp_path / "bad", page=root - 1)  # the trials, not the meta table
    ResultStore(store.parent, create=False).close()  # it opens: the damage is further in
    for argv in (
        ["leaderboard", str(store.parent)],
        ["export-optuna", str(store), "--out", str(tmp_path / "o.db")],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"{store} is not a readable autodlgym results store (" in err


def test_a_damaged_store_in_a_subprocess_prints_no_traceback(table_run, tmp_path):
    store = _garble(table_run, tmp_path / "bad")
    r = subprocess.run(
        [*CLI, "report", str(store)], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"autodlgym: error: {store} is not a readable autodlgym results")


def test_a_store_file_opens_the_run_and_other_files_are_refused(table_run, tmp_path, capsys):
    code, out, err = run(capsys, "leaderboard", str(table_run / "results.sqlite"), "--top", "1")
    assert code == 0 and out.startswith("40 trials in"), err
    other = tmp_path / "notes.txt"
    other.write_text("x")
    code, _, err = run(capsys, "leaderboard", str(other))
    assert code == 2 and "is a file, not a run directory" in err


def test_the_store_names_what_it_cannot_read(tmp_path):
    from autodlgym.results.store import ResultStore

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    conn = sqlite3.connect(foreign / "results.sqlite")
    conn.execute("CREATE TABLE studies (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(AutoDLError, match="not an autodlgym results store .*studies"):
        ResultStore(foreign, create=False)
    with pytest.raises(AutoDLError, match="not an autodlgym results store"):
        ResultStore(foreign)  # nor is one made over it
    text = tmp_path / "text"
    text.mkdir()
    (text / "results.sqlite").write_text("not a database at all, " * 400)
    with pytest.raises(AutoDLError, match=r"not a readable autodlgym results store \(file is not"):
        ResultStore(text, create=False)
