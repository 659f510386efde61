"""``--fidelity oneshot``: a search whose candidates are scored by a one-shot evaluator,
trained once per run, stored in the run directory and reused on resume; its trials are a
phase of their own."""

from __future__ import annotations

import pytest

from autodlgym.cli import main
from autodlgym.errors import AutoDLError
from autodlgym.execution.oneshot import ONESHOT_DIR
from autodlgym.oneshot import SupernetEvaluator
from autodlgym.run import Run
from autodlgym.runner import RunConfig, run_search
from tests.oneshot.tiny import TINY, mnist1d_slice


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return mnist1d_slice(tmp_path_factory.mktemp("slice") / "s.npz")


def config(out, task, trials, **kw):
    return RunConfig(
        out=str(out), task=task, space=TINY, trials=trials, epochs=1, oneshot="supernet",
        max_params="none", max_flops="none", **kw,
    )  # fmt: skip


@pytest.mark.slow  # two searches (a run and its resume)
def test_a_oneshot_search_records_the_evaluators_scores_in_their_own_phase(tmp_path, task):
    out = tmp_path / "run"
    summary = run_search(config(out, task, trials=4), progress=False)
    assert summary.finished == 4
    weights = out / ONESHOT_DIR / "supernet.pt"
    assert weights.is_file()
    run = Run.open(out)
    assert set(run.frame()["phase"]) == {"oneshot"} and len(run.frame()) == 4
    # each score is what the stored evaluator says for that spec
    ev = SupernetEvaluator(run.space, task, epochs=1, seed=0)
    assert ev.load(weights)
    trials = run.store.results(phase="oneshot")
    assert len(trials) == 4
    for _, spec, result in trials:
        scored = ev.score(spec)
        if scored.status == "ok":
            assert result.status == "ok" and result.val_score == pytest.approx(scored.val_score)
        else:  # trainable=head: reported, not mapped
            assert result.status == "error" and "trainable" in result.message
    # rankings of trained trials never see them
    assert Run.open(out).best().empty
    assert not Run.open(out).best(phase="oneshot").empty

    # a resume reuses the stored weights instead of training them again
    stamp = weights.stat().st_mtime_ns
    summary = run_search(RunConfig(out=str(out), trials=6), resume=True, progress=False)
    assert summary.finished == 6 and weights.stat().st_mtime_ns == stamp


def test_oneshot_refuses_a_pruner_and_a_space_too_large(tmp_path, task):
    with pytest.raises(AutoDLError, match="--pruner asha has nothing to stop"):
        config(tmp_path / "a", task, trials=2, pruner="asha")
    big = RunConfig(out=str(tmp_path / "b"), task=task, trials=2, oneshot="supernet")
    with pytest.raises(AutoDLError, match="declare a smaller sub-space"):
        run_search(big, progress=False)
    assert not (tmp_path / "b" / "results.sqlite").exists()


def test_cli_fidelity_oneshot_on_the_default_space_is_a_one_line_error(tmp_path, capsys):
    code = main(["search", "--out", str(tmp_path / "r"), "--trials", "2", "--fidelity", "oneshot"])
    err = capsys.readouterr().err
    assert code == 2 and "declare a smaller sub-space" in err and "Traceback" not in err
    code = main(["search", "--out", str(tmp_path / "s"), "--oneshot-evaluator", "hypernet"])
    assert code == 2 and "needs --fidelity oneshot" in capsys.readouterr().err
