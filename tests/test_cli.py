"""The autodlgym command, run as a user runs it: as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autodlgym import load_results
from autodlgym.searchers.evolution import EvolutionSearcher

CLI = [sys.executable, "-m", "autodlgym.cli"]


def run(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, **kw)


def _search_args(out, space_file, trials=3, *extra):
    return [
        "search",
        "--out",
        str(out),
        "--space",
        str(space_file),
        "--trials",
        str(trials),
        "--epochs",
        "1",
        "--max-train-samples",
        "128",
        *extra,
    ]


def test_import_and_help_stay_light():
    code = (
        "import sys, autodlgym, autodlgym.cli; "
        "heavy = [m for m in ('torch', 'ray', 'optuna', 'pandas') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert run("--help").returncode == 0


def test_search_then_leaderboard_and_export(tmp_path, tiny_space_file):
    out = tmp_path / "run"
    r = run(*_search_args(out, tiny_space_file, 3, "--seed", "1"))
    assert r.returncode == 0, r.stderr
    assert "3 trials" in r.stdout
    df = load_results(out)
    assert len(df) == 3 and list(df.trial_id) == [0, 1, 2]
    lb = run(
        "leaderboard",
        str(out),
        "--top",
        "2",
        "--csv",
        str(tmp_path / "t.csv"),
        "--parquet",
        str(tmp_path / "t.parquet"),
    )
    assert lb.returncode == 0, lb.stderr
    assert "val_score" in lb.stdout
    assert f"environment: autodlgym {df.attrs['environment'][0]['autodlgym']}, torch " in lb.stdout
    import pandas as pd

    ranked = pd.read_csv(tmp_path / "t.csv")  # the ranked rows shown, every column
    assert len(ranked) == min(2, df["arch_id"].nunique()) and ranked["arch_id"].is_unique
    assert set(df.columns) <= set(ranked.columns)
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == len(ranked)
    every = run(
        "leaderboard", str(out), "--per", "trial", "--top", "0", "--csv", str(tmp_path / "a.csv")
    )
    assert every.returncode == 0, every.stderr
    assert sorted(pd.read_csv(tmp_path / "a.csv")["trial_id"]) == [0, 1, 2]  # every trial


class StallingEvolution(EvolutionSearcher):
    """Regularised evolution that, when ``STALL_MARKER`` names a file, writes it and stops
    proposing (hangs in ``ask``) once it has heard of 3 trials in this process: a search killed
    while it waits cannot have finished, whatever the machine's speed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.heard = 0

    def tell(self, spec, result):
        super().tell(spec, result)
        self.heard += 1

    def ask(self, n=1):
        marker = os.environ.get("STALL_MARKER")
        if marker and self.heard >= 3:
            Path(marker).touch()
            while True:
                time.sleep(1)
        return super().ask(n)


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path, tiny_space_file):
    out, marker = tmp_path / "run", tmp_path / "stalled"
    searcher = ["--searcher", "tests.test_cli:StallingEvolution"]
    proc = subprocess.Popen(
        [*CLI, *_search_args(out, tiny_space_file, 8, *searcher, "--epochs", "3")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, STALL_MARKER=str(marker)),
    )
    n = 0
    while proc.poll() is None:  # killed at its first result or later (often mid-trial)
        try:
            n = len(load_results(out))
        except Exception:  # noqa: BLE001 - the store may not exist yet
            n = 0
        if n >= 1:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # it was still running: it cannot finish alone
    assert 1 <= len(load_results(out)) <= 3
    r = run("search", "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    df = load_results(out)
    assert len(df) == 8
    assert not df.trial_id.duplicated().any()
    assert sorted(df.trial_id) == list(range(8))


@pytest.mark.slow  # two searches, one interrupted mid-trial
def test_ctrl_c_stops_cleanly_and_resume_continues(tmp_path, tiny_space_file):
    # the searcher stalls after 3 trials, so Ctrl-C always comes before the search could end
    out, marker = tmp_path / "run", tmp_path / "stalled"
    searcher = ["--searcher", "tests.test_cli:StallingEvolution"]
    proc = subprocess.Popen(
        [*CLI, *_search_args(out, tiny_space_file, 50, *searcher)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, STALL_MARKER=str(marker)),
        # pytest-xdist's workers ignore SIGINT and a child inherits that: give it Python's
        # own Ctrl-C back, as a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    while proc.poll() is None and not marker.exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "--resume" in err and "Traceback" not in err
    done = len(load_results(out))
    r = run("search", "--out", str(out), "--resume", "--trials", str(done + 1))
    assert r.returncode == 0, r.stderr
    df = load_results(out)
    assert len(df) == done + 1 and not df.trial_id.duplicated().any()


@pytest.mark.slow  # trains in several subprocesses
def test_eval_prints_the_result_as_json(tmp_path, tiny_space_file):
    spec = run("space", "sample", "--n", "1", "--seed", "3", "--space", str(tiny_space_file))
    (tmp_path / "spec.json").write_text(spec.stdout)
    r = run(
        "eval",
        "--arch",
        str(tmp_path / "spec.json"),
        "--epochs",
        "1",
        "--max-train-samples",
        "128",
        "--space",
        str(tiny_space_file),
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["status"] == "ok" and 0 <= res["val_score"] <= 1 and res["params"] > 0


def test_space_sample_and_show(tmp_path):
    r = run("space", "sample", "--n", "5", "--seed", "0")
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and len(lines) == 5
    from autodlgym import SearchSpace

    space = SearchSpace.default()
    for line in lines:
        assert space.contains(json.loads(line))
    # same seed, same samples
    assert run("space", "sample", "--n", "5", "--seed", "0").stdout == r.stdout
    show = run("space", "show")
    assert show.returncode == 0 and "distinct architectures" in show.stdout


def test_tasks_and_searchers_are_listed():
    t = run("tasks")
    assert t.returncode == 0
    for name in ("mnist1d", "mnist1d_shuffled", "digits", "adding", "npz:"):
        assert name in t.stdout
    s = run("searchers")
    assert s.returncode == 0
    for name in ("random", "tpe", "evolution", "reinforce"):
        assert name in s.stdout.split()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["search", "--out", "{tmp}/a", "--task", "no-such-task", "--trials", "1"], "unknown task"),
        (["search", "--out", "{tmp}/a", "--searcher", "nope", "--trials", "1"], "unknown searcher"),
        (["search", "--out", "{tmp}/a", "--trials", "-3"], "--trials"),
        (["search", "--out", "{tmp}/a", "--space", "{tmp}/missing.yaml"], "does not exist"),
        (["search", "--out", "{tmp}/a", "--searcher-opt", "novalue"], "key=value"),
        (["search", "--out", "{tmp}/nothing", "--resume"], "no autodlgym run"),
        (["eval", "--arch", "{tmp}/missing.json"], "does not exist"),
        (["eval", "--arch", "{tmp}/bad.json"], "not valid JSON"),
        (["eval", "--arch", "{tmp}/outside.json"], "not allowed"),
        (["leaderboard", "{tmp}/nothing"], "does not exist"),
        (["space", "sample", "--n", "-1"], "--n"),
        (["space", "show", "--space", "{tmp}/bad.yaml"], "cannot be parsed"),
        (["search", "--out", "{tmp}/a", "--workers", "many"], "worker count"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, needle):
    (tmp_path / "bad.json").write_text('{"not": "a spec"')
    (tmp_path / "bad.yaml").write_text("{unclosed: [")
    (tmp_path / "outside.json").write_text(json.dumps({"n_stages": 9}))
    r = run(*[a.format(tmp=tmp_path) for a in args], timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], r.stderr


@pytest.mark.slow  # a search, then bad resumes
def test_bad_input_loses_nothing_already_recorded(tmp_path, tiny_space_file):
    out = tmp_path / "run"
    assert run(*_search_args(out, tiny_space_file, 1)).returncode == 0
    before = load_results(out)
    again = run(*_search_args(out, tiny_space_file, 1))
    assert again.returncode == 2 and "already holds a run" in again.stderr
    changed = run("search", "--out", str(out), "--resume", "--task", "digits")
    assert changed.returncode == 2 and "--task" in changed.stderr
    assert load_results(out).equals(before)


@pytest.mark.skipif(os.name != "posix", reason="uses POSIX signals")
@pytest.mark.slow  # a search, then a resume
def test_resume_of_a_finished_run_is_a_no_op(tmp_path, tiny_space_file):
    out = tmp_path / "run"
    assert run(*_search_args(out, tiny_space_file, 2)).returncode == 0
    r = run("search", "--out", str(out), "--resume")
    assert r.returncode == 0 and len(load_results(out)) == 2


def test_a_search_in_which_no_trial_scored_exits_1_with_the_reason(
    tmp_path, tiny_space_file, capsys
):
    from autodlgym.cli import EXIT_NO_SCORE, main

    out = tmp_path / "run"
    rc = main([*_search_args(out, tiny_space_file, 2), "--trial-time-limit", "0.000000001"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_NO_SCORE == 1
    assert err[-1].startswith("error: no trial finished with a score (2 trials; 2 ended timeout")
    assert "--trial-time-limit" in err[-1]
    assert len(load_results(out)) == 2  # everything recorded is kept
