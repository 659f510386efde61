"""Optuna searchers: conditional suggestions, the study file, status mapping, resume, quality."""

from __future__ import annotations

import math
import pickle
import shutil
import sys

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import make_searcher
from autodlgym.searchers.tpe import OptunaSearcher
from autodlgym.searchspace.space import Choice, SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.testing.searchers import NARROWED_CONFIG, synthetic_result
from autodlgym.trial import TrialResult

DEFAULT = SearchSpace.default()


def objective(spec: ArchSpec) -> float:
    """Cheap and structured: adam, two stages, a conv first stage of width 64, lr 1e-3."""
    return (
        -abs(math.log2(spec["stage1.width"]) - 6) / 3
        + (spec["optimizer"] == "adam")
        + 0.5 * (spec["n_stages"] == 2)
        - abs(math.log10(spec["lr"]) + 3) / 2
        + (spec["stage1.block"] == "conv")
    )


def ok(score: float, params: int | None = 1000) -> TrialResult:
    return TrialResult("ok", val_score=score, params=params)


def test_suggestions_are_made_only_for_active_decisions():
    tpe = OptunaSearcher(DEFAULT, seed=0, n_startup_trials=3)
    specs = []
    for _ in range(12):  # past the random start-up: the TPE model suggests
        spec = tpe.ask(1)[0]
        specs.append(spec)
        tpe.tell(spec, ok(objective(spec)))
    for spec, trial in zip(specs, tpe.study.trials):
        DEFAULT.validate(spec)
        assert set(trial.params) == set(spec)  # inactive decisions were never suggested
    assert any("stage1.kernel" in s for s in specs) and any("stage1.kernel" not in s for s in specs)


def test_study_lives_in_run_dir_and_dashboard_can_open_it(tmp_path):
    tpe = make_searcher("tpe", DEFAULT, seed=0, run_dir=tmp_path)
    specs = tpe.ask(3)
    for i, spec in enumerate(specs):
        tpe.tell(spec, ok(0.1 * i))
    assert (tmp_path / "optuna.db").is_file()
    study = optuna.load_study(study_name="autodlgym", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.value for t in study.trials] == pytest.approx([0.0, 0.1, 0.2])
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert optuna.logging.get_verbosity() >= optuna.logging.WARNING


def test_statuses_reach_the_study_as_trial_states():
    tpe = OptunaSearcher(DEFAULT, seed=0)
    specs = tpe.ask(4)
    tpe.tell(specs[0], synthetic_result(DEFAULT, specs[0], "ok"))
    tpe.tell(specs[1], synthetic_result(DEFAULT, specs[1], "pruned"))
    tpe.tell(specs[2], synthetic_result(DEFAULT, specs[2], "oom"))
    tpe.tell(specs[3], TrialResult("ok", val_score=float("nan")))  # a non-finite score fails
    t = tpe.study.trials
    assert [x.state for x in t] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
        TrialState.FAIL,
    ]
    pruned = synthetic_result(DEFAULT, specs[1], "pruned")
    assert t[1].intermediate_values == {1: pytest.approx(pruned.curve[0]["val_score"])}
    assert t[1].value == pytest.approx(pruned.val_score)  # Optuna keeps the last report


def test_repeated_specs_are_told_first_in_first_out():
    one = SearchSpace([Choice("only", ("x",))])
    tpe = OptunaSearcher(one, seed=0)
    specs = tpe.ask(3)
    assert len({s.arch_id for s in specs}) == 1
    for score in (0.1, 0.2, 0.3):
        tpe.tell(specs[0], ok(score))
    assert [t.value for t in tpe.study.trials] == pytest.approx([0.1, 0.2, 0.3])


def test_tell_of_an_unasked_spec_adds_a_finished_trial():
    tpe = OptunaSearcher(DEFAULT, seed=0)
    spec = DEFAULT.sample(np.random.default_rng(5))
    tpe.tell(spec, ok(0.7))
    tpe.tell(DEFAULT.sample(np.random.default_rng(6)), synthetic_result(DEFAULT, spec, "pruned"))
    (done, pruned) = tpe.study.trials
    assert done.state == TrialState.COMPLETE and done.value == pytest.approx(0.7)
    assert done.params == dict(spec)
    assert pruned.state == TrialState.PRUNED and pruned.intermediate_values


def test_tpe_beats_random_search_on_a_cheap_objective():
    n = 60
    tpe = OptunaSearcher(DEFAULT, seed=0, n_startup_trials=10)
    rnd = make_searcher("random", DEFAULT, seed=0)
    scores = {"tpe": [], "random": []}
    for name, searcher in (("tpe", tpe), ("random", rnd)):
        for _ in range(n):
            spec = searcher.ask(1)[0]
            scores[name].append(objective(spec))
            searcher.tell(spec, ok(scores[name][-1]))
    # the model's proposals (the last 20) are far better than uniform ones
    assert np.mean(scores["tpe"][-20:]) > np.mean(scores["random"][-20:]) + 1.0
    assert max(scores["tpe"]) > max(scores["random"])


def test_resume_adopts_trials_asked_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    tpe = OptunaSearcher(DEFAULT, seed=0, run_dir=run)
    first = tpe.ask(2)
    tpe.tell(first[0], ok(0.5))
    state = pickle.dumps(tpe.state_dict())
    late = tpe.ask(1)[0]  # in flight when the process stopped; not in the saved state
    shutil.copytree(run, tmp_path / "copy")
    resumed = OptunaSearcher(DEFAULT, seed=0, run_dir=tmp_path / "copy")
    resumed.load_state_dict(pickle.loads(state))
    resumed.tell(first[1], ok(0.6))
    pruned = TrialResult(
        "pruned", val_score=0.2, epochs_run=1, curve=[{"epoch": 1, "val_score": 0.2}]
    )
    resumed.tell(late, pruned)  # the runner re-runs it under the same trial id
    trials = resumed.study.trials
    assert len(trials) == 3  # told into the trials that were open, none added
    assert [t.value for t in trials] == pytest.approx([0.5, 0.6, 0.2])
    assert trials[2].state == TrialState.PRUNED and trials[2].intermediate_values == {1: 0.2}


def test_resume_restores_the_sampler_random_state(tmp_path):
    a = OptunaSearcher(DEFAULT, seed=0, run_dir=tmp_path / "a")
    for _ in range(4):
        spec = a.ask(1)[0]
        a.tell(spec, ok(objective(spec)))
    state = pickle.loads(pickle.dumps(a.state_dict()))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    b = OptunaSearcher(DEFAULT, seed=0, run_dir=tmp_path / "b")
    fresh_first = b.ask(1)  # a fresh sampler restarts its random stream
    b.tell(fresh_first[0], TrialResult.failure("error", "discarded"))
    b.load_state_dict(state)
    assert b.ask(2) == a.ask(2)


def test_nsga2_maximises_score_and_minimises_params():
    nsga = make_searcher("nsga2", DEFAULT, seed=0, population_size=4)
    assert [d.name for d in nsga.study.directions] == ["MAXIMIZE", "MINIMIZE"]
    specs = nsga.ask(2)
    nsga.tell(specs[0], ok(0.9, params=5000))
    nsga.tell(specs[1], ok(0.9, params=None))  # the second objective is missing
    t = nsga.study.trials
    assert t[0].values == [0.9, 5000] and t[1].state == TrialState.FAIL


@pytest.mark.parametrize("name", ["gp", "qmc"])
def test_other_samplers_propose_valid_specs(name):
    space = SearchSpace.from_config(NARROWED_CONFIG)  # GP fits take seconds on the default one
    options = {"n_startup_trials": 2} if name == "gp" else {}
    searcher = make_searcher(name, space, seed=0, **options)
    for _ in range(3):  # the third is the model's (gp)
        spec = searcher.ask(1)[0]
        space.validate(spec)
        searcher.tell(spec, synthetic_result(space, spec))
    assert [t.state for t in searcher.study.trials] == [TrialState.COMPLETE] * 3


@pytest.mark.parametrize(
    "options",
    [
        {"objectives": "params"},
        {"objectives": "val_score,colour"},
        {"objectives": "val_score,params,params"},
        {"n_startup_trials": "many"},
        {"group": "perhaps"},
        {"colour": "red"},
    ],
)
def test_bad_options_are_user_errors(options):
    with pytest.raises(AutoDLError):
        make_searcher("tpe", DEFAULT, **options)


def test_options_from_the_command_line_are_parsed():
    tpe = make_searcher("tpe", DEFAULT, n_startup_trials="3", group="true")
    assert tpe.study.sampler._n_startup_trials == 3 and tpe.study.sampler._group


def test_cmaes_without_its_package_says_how_to_install_it(monkeypatch):
    # a None entry in sys.modules makes ``import cmaes`` raise ImportError, as on a machine
    # without the package, whether or not it is installed here
    monkeypatch.setitem(sys.modules, "cmaes", None)
    with pytest.raises(AutoDLError, match="pip install cmaes"):
        make_searcher("cmaes", DEFAULT)


def test_cmaes_with_its_package_proposes_specs_of_the_space():
    pytest.importorskip("cmaes")
    searcher = make_searcher("cmaes", DEFAULT, seed=0)
    for _ in range(3):
        (spec,) = searcher.ask(1)
        DEFAULT.validate(spec)
        searcher.tell(spec, synthetic_result(DEFAULT, spec))


def test_a_run_dir_with_other_objectives_is_refused(tmp_path):
    make_searcher("tpe", DEFAULT, run_dir=tmp_path)
    with pytest.raises(AutoDLError, match="directions"):
        make_searcher("tpe", DEFAULT, run_dir=tmp_path, objectives="val_score,params")
