"""What a run ran on: recorded per session, exposed by load_results and the leaderboard."""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata

import torch

import autodlgym
from autodlgym import load_results
from autodlgym.analysis.leaderboard import leaderboard
from autodlgym.results.environment import collect_environment, describe
from autodlgym.results.store import ResultStore
from autodlgym.runner import RunConfig, run_search


def test_the_environment_is_the_process_own():
    env = collect_environment()
    assert env["autodlgym"] == autodlgym.__version__
    assert env["torch"] == torch.__version__
    assert env["python"] == platform.python_version()
    assert env["hostname"] == socket.gethostname()
    assert env["cpu_count"] == os.cpu_count() and 1 <= env["cpus_usable"] <= os.cpu_count()
    assert env["packages"]["numpy"] == metadata.version("numpy")
    assert env["packages"]["optuna"] == metadata.version("optuna")
    assert env["cuda"] == torch.version.cuda
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert len(env["devices"]) == len(env["device_capabilities"]) == n


def test_every_session_of_a_run_is_recorded_and_exposed(tmp_path, tiny_space_config):
    cfg = RunConfig(
        out=str(tmp_path / "run"), space=tiny_space_config, trials=1, epochs=1,
        max_train_samples=64, seed=0,
    )  # fmt: skip
    run_search(cfg)
    run_search(RunConfig(out=cfg.out, trials=2), resume=True)
    df = load_results(cfg.out)
    sessions = df.attrs["environment"]
    assert [s["session"] for s in sessions] == [0, 1]
    assert all(s["torch"] == torch.__version__ for s in sessions)
    assert leaderboard(df).attrs["environment"] == sessions
    line = describe(sessions)
    assert f"torch {torch.__version__}" in line and socket.gethostname() in line
    assert "earlier session" not in line  # both sessions ran here
    import html

    from autodlgym.analysis.report import build_report

    ran_on = html.escape(line.removeprefix("environment: "))
    assert f"<dt>ran on</dt><dd>{ran_on}</dd>" in build_report(cfg.out)


def test_a_session_elsewhere_is_pointed_out(tmp_path):
    with ResultStore(tmp_path) as store:
        store.record_environment({**collect_environment(), "torch": "2.3.0"})
        store.record_environment(collect_environment())
        sessions = store.environments()
    assert "1 earlier session(s)" in describe(sessions)
    assert describe([]).startswith("environment: not recorded")
