"""The files the docs name exist.

docs/architecture.md names source files in its prose (``autodlgym/registry.py``, or
``tasks/datasets.py`` in a code span, relative to the package) and in its layout blocks: a tree under ``autodlgym/`` whose entries are indented two spaces per folder
level, a name (or several names on one line) followed by a description; description lines
that wrap are indented further and name nothing. docs/api.md names the module of each export.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: a description starts at this column or later; an entry's names start before it
DESCRIPTION_COLUMN = 16
NAME = re.compile(r"[\w.*-]+(?:/[\w.*-]+)*/?")
PROSE_PATH = re.compile(r"(?<![\w/])autodlgym/[\w/]+\.py\b")
#: a path in a code span, relative to the package (``tasks/datasets.py``) or not
CODE_PATH = re.compile(r"`((?:autodlgym/)?[\w]+/[\w/]*\w\.py)`")


def code_blocks(text: str) -> list[str]:
    """Fenced blocks without a language (the layout blocks and the data-flow sketch)."""
    return re.findall(r"^```\n(.*?)^```", text, re.M | re.S)


def layout_entries(block: str) -> list[str]:
    """The paths (relative to the repository) that a layout block names.

    A block that starts with ``autodlgym/`` is a tree: an entry's folder is given by its
    indentation. Any other block lists paths relative to ``autodlgym/``, one entry per line
    that starts with a path (lines that do not, such as ``run_search:``, are not entries).
    """
    lines = [ln for ln in block.splitlines() if ln.strip()]
    tree = bool(lines) and lines[0].rstrip() == "autodlgym/"
    parents: list[str] = []  # folder at each indentation level (tree only)
    out: list[str] = []
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        if indent >= DESCRIPTION_COLUMN:
            continue  # a wrapped description
        names = []
        for token in line.split():
            if not NAME.fullmatch(token) or not (token.endswith("/") or token.endswith(".py")):
                break
            names.append(token)
        if not names:
            continue
        if tree:
            level = indent // 2
            parents[level:] = []
            folder = "".join(parents)
            out.extend(folder + n for n in names)
            if names[-1].endswith("/"):
                parents.append(names[-1])
        else:
            out.extend("autodlgym/" + n for n in names)
    return out


def doc_paths(doc: str) -> list[str]:
    text = (DOCS / doc).read_text()
    paths = set(PROSE_PATH.findall(text))
    for path in CODE_PATH.findall(text):
        paths.add(path if path.startswith("autodlgym/") else "autodlgym/" + path)
    for block in code_blocks(text):
        paths.update(layout_entries(block))
    return sorted(paths)


def test_the_layout_parser_reads_a_tree():
    block = (
        "autodlgym/\n"
        "  runner.py            RunConfig\n"
        "  searchspace/         WHAT can be built\n"
        "    spec.py            ArchSpec: frozen; see notes.py below\n"
        "                       wrapped words.py name nothing\n"
        "    a.py b.py          two files on one line\n"
        "  testing/\n"
        "    searchers.py       conformance\n"
    )
    assert layout_entries(block) == [
        "autodlgym/",
        "autodlgym/runner.py",
        "autodlgym/searchspace/",
        "autodlgym/searchspace/spec.py",
        "autodlgym/searchspace/a.py",
        "autodlgym/searchspace/b.py",
        "autodlgym/testing/",
        "autodlgym/testing/searchers.py",
    ]
    flat = "tasks/files.py     csv:PATH\n                   preprocessing.py here\nretrain.py   x\n"
    assert layout_entries(flat) == ["autodlgym/tasks/files.py", "autodlgym/retrain.py"]
    assert layout_entries("run_search:\n  searcher.ask(1) -> ArchSpec\n") == []


def test_architecture_has_a_layout_tree():
    blocks = code_blocks((DOCS / "architecture.md").read_text())
    trees = [b for b in blocks if b.startswith("autodlgym/\n")]
    assert trees and len(layout_entries(trees[0])) > 40


@pytest.mark.parametrize("doc", ["architecture.md", "api.md"])
def test_every_file_the_doc_names_exists(doc):
    paths = doc_paths(doc)
    assert paths, f"docs/{doc} names no files"
    missing = [p for p in paths if not list(ROOT.glob(p.rstrip("/")))]
    assert not missing, f"docs/{doc} names files that do not exist: {missing}"
