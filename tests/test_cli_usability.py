"""Small things a new user meets first: listings, messages, hints."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from autodlgym.cli import _columns, _seconds, main
from autodlgym.errors import AutoDLError, SpecError
from autodlgym.searchspace.space import SearchSpace


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _aligned(text: str) -> None:
    """Every row's second column starts at the same offset."""
    starts = {re.match(r"\S+\s+", line).end() for line in text.splitlines()}
    assert len(starts) == 1, text


def test_tasks_lists_each_task_once_in_aligned_columns(capsys):
    from autodlgym.tasks.base import TASKS, get_task, register_task

    @register_task("a_task_with_a_rather_long_name", description="digits again")
    def long_name():
        return get_task("digits")

    try:
        code, out, _ = run(capsys, "tasks")
    finally:
        TASKS.remove("a_task_with_a_rather_long_name")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names.count("npz:PATH") == 1 and len(names) == len(set(names))
    assert "a_task_with_a_rather_long_name" in names
    _aligned(out)


def test_searchers_are_aligned_whatever_the_name_lengths(capsys):
    from autodlgym.searchers.base import SEARCHERS, register_searcher
    from autodlgym.searchers.random import RandomSearcher

    register_searcher("a_searcher_with_a_long_name")(RandomSearcher)
    try:
        code, out, _ = run(capsys, "searchers")
    finally:
        SEARCHERS.remove("a_searcher_with_a_long_name")
    assert code == 0
    _aligned(out)
    rows = [line.split() for line in out.splitlines()]
    assert len({len(" ".join(r[:2])) for r in rows}) > 1  # names differ in length
    col = {out.splitlines()[i].index(r[1]) for i, r in enumerate(rows)}
    assert len(col) == 1  # the origin column lines up too


def test_columns_pads_every_column_but_the_last():
    assert _columns([("a", "bb", "x"), ("ccc", "d", "y")]).splitlines() == [
        "a    bb  x",
        "ccc  d   y",
    ]


def test_a_malformed_yaml_space_file_keeps_line_and_column(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("base: default\nstage:\n  block: {options: [conv, mlp}\n")
    with pytest.raises(AutoDLError, match=r"line 3, column \d+"):
        SearchSpace.from_file(path)


def test_eval_of_several_specs_says_how_to_pick_one(tmp_path, capsys):
    specs = tmp_path / "specs.jsonl"
    assert run(capsys, "space", "sample", "--n", "3", "--seed", "0")[0] == 0
    space = SearchSpace.default()
    specs.write_text("".join(space.sample(i).to_json() + "\n" for i in range(3)))
    code, _, err = run(capsys, "eval", "--arch", str(specs), "--epochs", "1")
    assert code == 2
    assert "holds 3 specs" in err and "--line N (1 to 3)" in err
    code, _, err = run(capsys, "eval", "--arch", str(specs), "--line", "4")
    assert code == 2 and "holds 3 specs" in err


def test_eval_line_picks_that_spec(tmp_path, capsys, tiny_space_file):
    space = SearchSpace.from_file(tiny_space_file)
    specs = [space.sample(i) for i in range(3)]
    path = tmp_path / "specs.jsonl"
    path.write_text("".join(s.to_json() + "\n" for s in specs))
    code, out, err = run(
        capsys, "eval", "--arch", str(path), "--line", "2", "--space", str(tiny_space_file),
        "--task", "digits", "--epochs", "1", "--max-train-samples", "64",
    )  # fmt: skip
    assert code in (0, 1), err
    assert json.loads(out)["arch_id"] == specs[1].arch_id


def test_a_mistyped_name_gets_did_you_mean(capsys):
    code, _, err = run(capsys, "search", "--out", "x", "--task", "mnist1dd")
    assert code == 2 and "did you mean 'mnist1d'" in err
    space = SearchSpace.default()
    with pytest.raises(SpecError, match=r"did you mean 'stage1\.width'"):
        space["stage1.widht"]
    from autodlgym.searchers.base import get_searcher

    with pytest.raises(AutoDLError, match="did you mean 'evolution'"):
        get_searcher("evolutoin")


def test_an_unknown_decision_does_not_list_every_name():
    space = SearchSpace.default()
    spec = dict(space.sample(0))
    spec["lrr"] = 0.1
    with pytest.raises(SpecError) as info:
        space.validate(spec)
    message = str(info.value)
    assert "did you mean 'lr'" in message and "autodlgym space show" in message
    assert "stage4.chrono_init" not in message and len(message) < 200


def test_space_show_omits_conditions_that_always_hold():
    text = SearchSpace.default().describe()
    assert "[if n_stages in {1, 2, 3, 4}]" not in text
    assert "[if n_stages in {2, 3, 4}]" in text  # stage 2 exists only with 2+ stages
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("stage1.block"))
    assert "[if" not in line
    narrowed = SearchSpace.from_config(
        {"base": "default", "globals": {"n_stages": {"options": [2]}}}
    )
    assert narrowed.always_active("stage2.block") and "[if n_stages" not in narrowed.describe()


def test_nvec_is_an_attribute_like_multidiscrete():
    space = SearchSpace.default()
    assert isinstance(space.nvec, np.ndarray)
    assert np.array_equal(space.nvec, space.gymnasium_space().nvec)
    assert np.array_equal(space.nvec, [len(c.options) for c in space.choices])


@pytest.mark.parametrize(
    ("value", "shown"), [(12.3456789, "12.3"), (0.041234, "0.0412"), (float("nan"), ""), (None, "")]
)
def test_train_seconds_are_shown_rounded(value, shown):
    assert _seconds(value) == shown


def test_the_leaderboard_prints_rounded_seconds(tmp_path, capsys, tiny_space_file):
    from autodlgym import load_results

    out = tmp_path / "run"
    code, _, err = run(
        capsys, "search", "--out", str(out), "--space", str(tiny_space_file), "--task", "digits",
        "--trials", "2", "--epochs", "1", "--max-train-samples", "64", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    code, text, _ = run(capsys, "leaderboard", str(out))
    assert code == 0
    df = load_results(out)
    for v in df["train_seconds"]:
        assert _seconds(v) in text
        assert f"{v:.6f}" not in text


def test_top_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["leaderboard", "--help"])
    out = capsys.readouterr().out
    assert re.search(r"--top TOP\s+how many rows", out)


def test_every_command_takes_import():
    from autodlgym.cli import build_parser

    parser = build_parser()
    for argv in (
        ["search", "--out", "x"],
        ["eval", "--arch", "a.json"],
        ["leaderboard", "run"],
        ["tasks"],
        ["searchers"],
        ["space", "show"],
        ["space", "sample"],
    ):
        args = parser.parse_args([*argv, "--import", "m1", "--import", "m2"])
        assert args.imports == ["m1", "m2"], argv


def test_the_readme_links_the_architecture_notes():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "docs/architecture.md" in readme
