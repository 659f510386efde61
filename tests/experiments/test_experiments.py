"""Every experiment runs with --quick through the command line (``autodlgym.cli.main``, in
this process: the subprocess start is tested once, by the list) and writes its PNG and CSV."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from autodlgym.experiments import EXPERIMENTS, get_experiment

#: columns each experiment's table must have beside measured / published
COLUMNS = {
    "gamma-l": {"activation", "scale", "depth"},
    "hanin-sum": {"part", "widths", "hanin_sum"},
    "random-features": {"model", "norm", "trainable"},
    "conv-prior": {"task", "model", "params"},
    "chrono-init": {"length", "cell", "chrono_init"},
    "skip-depth": {"block", "depth", "grad_ratio_at_init"},
    "spectral-bias": {"frequency", "final_amplitude"},
    "rediscover": {"task", "trials", "best_val"},
    "graph-homophily": {"homophily", "model"},
    "oversmoothing": {"connections", "depth", "energy_ratio"},
}
ROWS = {
    "gamma-l": 6,
    "hanin-sum": 14,
    "random-features": 24,
    "conv-prior": 6,
    "chrono-init": 4,
    "skip-depth": 8,
    "spectral-bias": 6,
    "rediscover": 2,
    "graph-homophily": 12,
    "oversmoothing": 4,
}


def test_the_test_tables_cover_every_experiment():
    assert set(COLUMNS) == set(EXPERIMENTS) == set(ROWS)


def test_the_list_names_every_experiment_once():
    out = subprocess.run(
        [sys.executable, "-m", "autodlgym", "experiments"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    names = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    assert names == list(EXPERIMENTS)


@pytest.fixture
def one_thread():
    """The experiments train with one torch thread, as ``OMP_NUM_THREADS=1`` gives a CLI."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: examples each training of an experiment's test run sees at most
TINY_TRAIN = 256


@pytest.fixture
def tiny_trainings(monkeypatch, fake_clock):
    """Every candidate an experiment trains sees at most TINY_TRAIN examples, and time passes
    by readings of a fake clock (the rediscover experiment's searches have a time budget): the
    tests check what an experiment writes, not what it finds."""
    import dataclasses

    from autodlgym.training import trainer
    from autodlgym.trial import Fidelity

    real = trainer.train_and_score

    def tiny(spec, task="mnist1d", fidelity=1, *args, **kwargs):
        if not isinstance(fidelity, Fidelity):
            fidelity = Fidelity(epochs=fidelity)
        cap = min(fidelity.max_train_samples or TINY_TRAIN, TINY_TRAIN)
        return real(
            spec, task, dataclasses.replace(fidelity, max_train_samples=cap), *args, **kwargs
        )

    monkeypatch.setattr(trainer, "train_and_score", tiny)
    fake_clock.tick = 0.002  # the trainer reads the clock before every module's forward


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_run_writes_figure_and_table(name, tmp_path, capsys, one_thread, tiny_trainings):
    from autodlgym.cli import main

    out = tmp_path / name
    code = main(["experiment", name, "--quick", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    png, csv = out / f"{name}.png", out / f"{name}.csv"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    table = pd.read_csv(csv)
    assert len(table) == ROWS[name]
    assert {"measured", "published"} | COLUMNS[name] <= set(table.columns)
    assert table["measured"].notna().any()
    # the printed table is the CSV's: its header names the same columns
    header = next(line for line in captured.out.splitlines() if "measured" in line)
    assert set(header.split()) == set(table.columns)
    assert f"wrote {png}" in captured.out


def test_an_unknown_experiment_is_a_one_line_error():
    proc = subprocess.run(
        [sys.executable, "-m", "autodlgym", "experiment", "gama-l"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "did you mean 'gamma-l'" in proc.stderr and "Traceback" not in proc.stderr


def test_gamma_l_measures_the_scaled_laws():
    """ReLU + He keeps gamma near 1; 0.5x and 2x of it give gamma near 0.5 and 2."""
    outcome = get_experiment("gamma-l").run(quick=True)
    relu = outcome.table[outcome.table.activation == "relu"].set_index("scale").measured
    assert relu[1.0] == pytest.approx(1.0, abs=0.15)
    assert relu[0.5] == pytest.approx(0.5, abs=0.1)
    assert relu[2.0] == pytest.approx(2.0, abs=0.3)
