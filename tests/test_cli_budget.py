"""--max-params / --max-flops on the command line: space sample, eval and search."""

from __future__ import annotations

import json
import subprocess
import sys

from autodlgym import IOSpec, SearchSpace, load_results
from autodlgym.searchspace.cost import estimate_cost
from autodlgym.tasks import get_task


def run(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "autodlgym.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


MNIST1D = IOSpec("sequence", (1, 40), 10)


def _samples(*args: str) -> list[dict]:
    r = run("space", "sample", "--n", "8", "--seed", "0", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_space_sample_honours_flags_and_the_task_default():
    for spec in _samples("--max-params", "8k", "--max-flops", "none"):
        assert estimate_cost(spec, MNIST1D).params <= 8000
    budget = get_task("mnist1d").budget
    for spec in _samples():  # the task's default budget
        cost = estimate_cost(spec, MNIST1D)
        assert cost.params <= budget.max_params and cost.flops <= budget.max_flops
    lifted = _samples("--max-params", "none", "--max-flops", "none")
    assert lifted == [SearchSpace.default().sample(0).to_dict()] + lifted[1:]


def test_space_file_constraints_apply(tmp_path):
    p = tmp_path / "space.yaml"
    p.write_text("base: default\nconstraints: {max_flops: 50k}\n")
    for spec in _samples("--space", str(p), "--task", "digits"):
        assert estimate_cost(spec, get_task("digits").io).flops <= 50_000


def test_an_empty_budget_and_a_bad_limit_are_one_line_errors(tmp_path):
    for args in (["--max-params", "20"], ["--max-params", "lots"]):
        r = run("space", "sample", *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run("search", "--out", str(tmp_path / "run"), "--trials", "1", "--max-params", "20")
    assert r.returncode == 2 and "fits the budget" in r.stderr
    assert not (tmp_path / "run").exists()


def test_eval_refuses_an_over_budget_spec(tmp_path):
    spec = SearchSpace.default().sample(0)
    spec = spec.replace(**{"stage1.width": 512, "stage1.depth": 4})
    assert estimate_cost(spec, MNIST1D).params > 10_000
    (tmp_path / "spec.json").write_text(spec.to_json())
    r = run("eval", "--arch", str(tmp_path / "spec.json"), "--max-params", "10k", "--epochs", "1")
    assert r.returncode == 2 and "over the budget" in r.stderr and "--max-params none" in r.stderr


def test_search_with_a_budget_trains_only_what_fits(tmp_path, tiny_space_file):
    out = tmp_path / "run"
    args = ["--trials", "4", "--epochs", "1", "--max-train-samples", "64", "--no-progress"]
    # the tiny space's mlp of width 16 (826 parameters) is over this budget; width 8 fits
    r = run(
        "search", "--out", str(out), "--space", str(tiny_space_file), "--max-params", "500", *args
    )
    assert r.returncode == 0, r.stderr
    df = load_results(out)
    assert len(df) == 4 and (df["params"] <= 500).all()
