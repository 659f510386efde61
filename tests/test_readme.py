"""Every ```python block of the README runs unchanged against the code.

Each block runs in a fresh interpreter in a folder that holds what the README's commands
before it leave behind (``runs/demo`` and ``runs/tpe``, made here with tiny budgets).
A block that starts with ``# path/to/file.py`` is a file the reader writes: it is written
there, and a ``tests/`` file is run with pytest, as the README says to.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.S)
FILE_HEADER = re.compile(r"# ([\w./-]+\.py)\n")
#: blocks that train real candidates (seconds to a minute each on a laptop CPU)
TRAINS = ("run_search(", "train_and_score(", "gym.make(")


def _params():
    for i, code in enumerate(SNIPPETS):
        header = FILE_HEADER.match(code)
        name = header.group(1) if header else code.strip().splitlines()[0][:40]
        marks = [pytest.mark.slow] if any(t in code for t in TRAINS) else []
        yield pytest.param(i, id=f"{i}:{name}", marks=marks)


def test_the_readme_has_python_snippets():
    assert len(SNIPPETS) >= 4


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    """A folder as a reader has it after the README's commands (``runs/demo``, ``runs/tpe``)."""
    from autodlgym import RunConfig, run_search

    folder = tmp_path_factory.mktemp("reader")
    space = {
        "base": "default",
        "max_stages": 1,
        "stage": {"block": {"options": ["mlp", "conv"]}, "width": {"options": [8, 16]}},
    }
    for run, searcher in (("demo", "evolution"), ("tpe", "tpe")):  # the tour's two runs
        run_search(
            RunConfig(
                out=str(folder / "runs" / run),
                searcher=searcher,
                space=space,
                trials=4,
                epochs=2,
                max_train_samples=128,
            )
        )
    for code in SNIPPETS:  # the files the README asks to write
        header = FILE_HEADER.match(code)
        if header:
            path = folder / header.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
            if header.group(1).count("/") == 1 and not header.group(1).startswith("tests/"):
                (path.parent / "__init__.py").touch()
    return folder


@pytest.mark.parametrize("index", list(_params()))
def test_readme_snippet_runs(index, reader):
    code = SNIPPETS[index]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(reader), str(ROOT)])
    header = FILE_HEADER.match(code)
    if header and header.group(1).startswith("tests/"):
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", header.group(1)]
    else:
        cmd = [sys.executable, "-c", code]
    r = subprocess.run(cmd, cwd=reader, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"README snippet {index} failed:\n{code}\n{r.stdout}\n{r.stderr}"
