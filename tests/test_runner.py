"""run_search: budgets, resume, reuse of evaluated specs, failure kinds, bad settings."""

from __future__ import annotations

import numpy as np
import pytest

from autodlgym import AutoDLError, load_results
from autodlgym.runner import RunConfig, run_search
from autodlgym.searchers.base import Searcher
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec


def _config(tmp_path, space, **kw) -> RunConfig:
    base = dict(
        out=str(tmp_path / "run"), space=space, trials=3, epochs=1, max_train_samples=128, seed=0
    )
    base.update(kw)
    return RunConfig(**base)


class FixedSearcher(Searcher):
    """Proposes a fixed list of specs in order (then repeats the last)."""

    specs: list[dict] = []

    def __init__(self, space, seed=0, run_dir=None, **options):
        super().__init__(space, seed=seed, run_dir=run_dir)
        self.i = 0
        self.told: list[str] = []

    def ask(self, n=1):
        out = []
        for _ in range(n):
            out.append(ArchSpec(self.specs[min(self.i, len(self.specs) - 1)]))
            self.i += 1
        return out

    def tell(self, spec, result):
        self.told.append(result.status)


def test_search_records_every_trial_and_reads_back(tmp_path, tiny_space_config):
    summary = run_search(_config(tmp_path, tiny_space_config, trials=3))
    assert summary.finished == 3 and summary.stopped_by == "trials"
    df = load_results(summary.run_dir)
    assert list(df.trial_id) == [0, 1, 2]
    assert set(df.status) <= {"ok", "nan", "error", "timeout", "oom", "pruned"}
    assert (df.status == "ok").sum() >= 2
    assert df.loc[df.status == "ok", "val_score"].between(0, 1).all()
    assert summary.best_val_score == pytest.approx(df.val_score.max())
    # the space's choice columns are there
    assert "stage1.block" in df.columns and set(df["stage1.block"]) <= {"mlp", "conv"}


def test_resume_extends_budget_without_losing_or_duplicating(tmp_path, tiny_space_config):
    cfg = _config(tmp_path, tiny_space_config, trials=2, searcher="evolution")
    run_search(cfg)
    first = load_results(cfg.out)
    more = run_search(RunConfig(out=cfg.out, trials=4), resume=True)
    df = load_results(cfg.out)
    assert more.finished == 4 and len(df) == 4
    assert not df.trial_id.duplicated().any()
    # finished trials were kept as they were
    assert (
        df.set_index("trial_id")
        .loc[first.trial_id, "val_score"]
        .equals(first.set_index("trial_id").val_score)
    )


def test_a_run_directory_is_not_overwritten(tmp_path, tiny_space_config):
    cfg = _config(tmp_path, tiny_space_config, trials=1)
    run_search(cfg)
    with pytest.raises(AutoDLError, match="already holds a run"):
        run_search(cfg)
    assert len(load_results(cfg.out)) == 1


def test_resume_of_an_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(AutoDLError, match="no autodlgym run"):
        run_search(resume=True, out=tmp_path / "nothing")


def test_same_spec_is_not_trained_twice(tmp_path, tiny_space_config):
    space = SearchSpace.from_config(tiny_space_config)
    spec = space.sample(np.random.default_rng(0))
    FixedSearcher.specs = [spec.to_dict()]
    searcher = FixedSearcher(space)
    summary = run_search(_config(tmp_path, tiny_space_config, trials=3), searcher=searcher)
    df = load_results(summary.run_dir)
    assert len(df) == 3 and df.arch_id.nunique() == 1
    assert df.reused_from.isna().sum() == 1  # only the first one trained
    assert (df.reused_from.dropna() == 0).all()
    assert df.val_score.nunique() == 1
    assert len(searcher.told) == 3


def test_failures_are_kept_apart_and_the_search_goes_on(tmp_path, tiny_space_config):
    cfg = dict(tiny_space_config)
    cfg["globals"] = dict(
        cfg["globals"],
        lr={"options": [1e-3, 1e12]},
        optimizer={"options": ["sgd"]},
        grad_clip={"options": [0.0]},
    )
    space = SearchSpace.from_config(cfg)
    good = space.sample(np.random.default_rng(1)).replace(lr=1e-3)
    diverging = good.replace(lr=1e12, **{"stage1.block": "mlp", "norm": "none"}).to_dict()
    outside = dict(good.to_dict(), **{"stage1.width": 7})
    FixedSearcher.specs = [good.to_dict(), diverging, outside, good.to_dict()]
    searcher = FixedSearcher(space)
    summary = run_search(_config(tmp_path, cfg, trials=4), searcher=searcher)
    df = load_results(summary.run_dir)
    assert list(df.status) == ["ok", "nan", "error", "ok"]
    assert "outside the space" in df.message[2]
    assert searcher.told == ["ok", "nan", "error", "ok"]


def test_trial_time_limit_gives_timeout_status(tmp_path, tiny_space_config):
    summary = run_search(
        _config(
            tmp_path,
            tiny_space_config,
            trials=2,
            trial_time_limit=1e-4,
            max_train_samples=None,
            epochs=3,
        )
    )
    df = load_results(summary.run_dir)
    assert list(df.status) == ["timeout", "timeout"]


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"trials": -1}, "--trials"),
        ({"trials": None, "time_budget": None}, "budget"),
        ({"epochs": 0}, "epochs"),
        ({"pruner": "bogus"}, "pruner"),
        ({"workers": 0}, "workers"),
    ],
)
def test_bad_settings_are_rejected(tmp_path, kw, match):
    with pytest.raises(AutoDLError, match=match):
        RunConfig(out=str(tmp_path), **kw)


def test_unknown_task_or_searcher_creates_nothing(tmp_path):
    with pytest.raises(AutoDLError, match="unknown task"):
        run_search(RunConfig(out=str(tmp_path / "a"), task="no-such-task"))
    assert not (tmp_path / "a").exists()
    with pytest.raises(AutoDLError, match="unknown searcher"):
        run_search(RunConfig(out=str(tmp_path / "b"), searcher="no-such-searcher"))


def test_time_budget_stops_the_search(tmp_path, tiny_space_config):
    summary = run_search(_config(tmp_path, tiny_space_config, trials=None, time_budget=0.5))
    assert summary.stopped_by == "time"
    assert summary.finished >= 1
