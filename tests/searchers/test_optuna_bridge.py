"""The Optuna bridge: every encoding but the legacy one gives each decision the prior of
``space.sample``; old studies resume with the encoding they were made with."""

from __future__ import annotations

from collections import Counter

import numpy as np
import optuna
import pytest
from scipy.stats import chisquare

from autodlgym.errors import AutoDLError
from autodlgym.searchers.tpe import DEFAULT_ENCODING, ENCODING_ATTR, OptunaSearcher
from autodlgym.searchspace.space import SearchSpace
from autodlgym.testing.searchers import synthetic_result

DRAWS = 5000
#: per-decision significance; with 25 decisions a faithful bridge fails one of them by chance
#: with probability < 1e-3 (and the seeds are fixed)
ALPHA = 1e-5

#: the default space's decisions with one stage: every numeric kind (int, float, log, a 0
#: option on a linear range) and conditional ones, at a fraction of the suggestion cost
ONE_STAGE = SearchSpace.from_config(
    {"base": "default", "max_stages": 1, "globals": {"n_stages": {"options": [1]}}}
)


def option_counts(space: SearchSpace, encoding: str, draws: int = DRAWS) -> dict[str, Counter]:
    """Counts of each decision's options over ``draws`` RandomSampler suggestions."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    counts: dict[str, Counter] = {c.name: Counter() for c in space.choices}
    for _ in range(draws):
        trial = study.ask()
        spec = space.suggest(trial, encoding)
        for name, value in spec.items():
            counts[name][space[name].index(value)] += 1
        study.tell(trial, 0.0)
    return counts


def worst_p_value(space: SearchSpace, counts: dict[str, Counter]) -> tuple[float, str]:
    worst = (1.0, "")
    for c in space.choices:
        observed = np.array([counts[c.name][i] for i in range(len(c.options))])
        if len(c.options) < 2 or observed.sum() < 50:  # rarely active: too few draws to test
            continue
        p = chisquare(observed).pvalue  # expected: uniform over the options, as sample() draws
        worst = min(worst, (float(p), c.name))
    return worst


@pytest.mark.parametrize("encoding", ["categorical", "index"])
def test_random_sampler_prior_over_options_is_space_sample_s(encoding):
    space = ONE_STAGE
    p, name = worst_p_value(space, option_counts(space, encoding))
    assert p > ALPHA, f"{name}: chi-square p = {p:.2g} against uniform options"


def test_the_legacy_snapping_encoding_fails_the_same_test():
    space = ONE_STAGE
    counts = option_counts(space, "snap", draws=1000)
    p, _ = worst_p_value(space, counts)
    assert p < ALPHA
    # weight_decay's 0 sits at the end of a long linear gap: almost never drawn
    assert counts["weight_decay"][0] < 1000 / 50


def test_index_encoding_stores_indices_and_reads_back_values():
    space = SearchSpace.default()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    spec = space.suggest(trial, "index")
    assert trial.params["lr"] == space["lr"].index(spec["lr"])
    assert isinstance(trial.distributions["lr"], optuna.distributions.IntDistribution)
    params, dists = space.optuna_params(spec, "index")
    assert params == trial.params and dists == trial.distributions
    replay = space.suggest(optuna.trial.FixedTrial(params), "index")
    assert replay == spec


def test_unknown_encoding_is_one_clear_error():
    with pytest.raises(AutoDLError, match="encoding"):
        OptunaSearcher(SearchSpace.default(), encoding="ordinal")


@pytest.mark.parametrize("sampler", sorted(DEFAULT_ENCODING))
def test_each_sampler_has_a_faithful_default_encoding(sampler):
    assert DEFAULT_ENCODING[sampler] in ("categorical", "index")


def test_a_foreign_spec_is_added_under_the_study_s_encoding():
    space = SearchSpace.default()
    searcher = OptunaSearcher(space, seed=0, encoding="index")
    spec = space.sample(np.random.default_rng(3))
    searcher.tell(spec, synthetic_result(space, spec))
    (trial,) = searcher.study.trials
    assert trial.params["lr"] == space["lr"].index(spec["lr"])
    space.validate(searcher.ask(1)[0])
    assert space.suggest(optuna.trial.FixedTrial(trial.params), "index") == spec


def test_a_study_from_before_encodings_resumes_with_snapping(tmp_path):
    space = SearchSpace.default()
    storage = f"sqlite:///{tmp_path}/optuna.db"
    old = optuna.create_study(storage=storage, study_name="autodlgym", direction="maximize")
    for _ in range(3):  # what the searcher wrote before the encoding was recorded
        trial = old.ask()
        spec = space.suggest(trial, "snap")
        old.tell(trial, synthetic_result(space, spec).val_score)
    searcher = OptunaSearcher(space, seed=0, run_dir=tmp_path)
    assert searcher.encoding == "snap"
    for spec in searcher.ask(2):
        searcher.tell(spec, synthetic_result(space, spec))
    assert len(searcher.study.trials) == 5
    with pytest.raises(AutoDLError, match="encoding=snap"):
        OptunaSearcher(space, seed=0, run_dir=tmp_path, encoding="categorical")


def test_a_new_study_records_its_encoding(tmp_path):
    searcher = OptunaSearcher(SearchSpace.default(), seed=0, run_dir=tmp_path, encoding="index")
    assert searcher.study.user_attrs[ENCODING_ATTR] == "index"
    again = OptunaSearcher(SearchSpace.default(), seed=0, run_dir=tmp_path)
    assert again.encoding == "index"
