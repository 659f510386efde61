"""Regenerate the shipped lookup table ``autodlgym/data/lookup_mnist1d.json``.

Every architecture of a small corner of the default space (:data:`TABLE_SPACE`, a few hundred
architectures) is trained for real with :func:`autodlgym.training.trainer.train_and_score` on
MNIST-1D at a small fidelity, and its per-epoch validation curve, test score, parameter count
and training time are stored. ``benchmarks/bench_search.py`` then runs searchers against the
table in seconds (a tabular benchmark, as NAS-Bench-201 does for cells), pruning included,
since the curves are stored.

The run is incremental: each finished trial is appended to ``<out>.partial.jsonl`` and a rerun
skips what is there (and what a previous table with the same settings holds), so it can be
stopped and restarted. On a shared 2-core machine run it in the background with one thread::

    OMP_NUM_THREADS=1 nohup python benchmarks/make_lookup_table.py > /tmp/table.log 2>&1 &

Options: ``--epochs`` (default 5), ``--seed`` (0), ``--out``, ``--limit N`` (only the first N
architectures, to try it out).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec

TASK = "mnist1d"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "autodlgym" / "data" / "lookup_mnist1d.json"

#: 384 architectures: 4 block types x depth {1, 2} x width {16, 64} x 2 activations x 4 init
#: laws x 3 learning rates; every other decision is pinned to one option.
TABLE_SPACE: dict[str, Any] = {
    "base": "default",
    "max_stages": 1,
    "remove": ["growth", "heads", "momentum"],
    "globals": {
        "n_stages": {"options": [1]},
        "connections": {"options": ["chain"]},
        "activation": {"options": ["relu", "tanh"]},
        "norm": {"options": ["none"]},
        "dropout": {"options": [0.0]},
        "init": {"options": ["he_normal", "glorot_uniform", "lecun_normal", "orthogonal"]},
        "zero_init_residual": {"options": [False]},
        "trainable": {"options": ["all"]},
        "head_pool": {"options": ["avg"]},
        "optimizer": {"options": ["adam"]},
        "lr": {"options": [1e-3, 1e-2, 1e-1]},
        "weight_decay": {"options": [0.0]},
        "batch_size": {"options": [128]},
        "grad_clip": {"options": [0.0]},
    },
    "stage": {
        "block": {"options": ["mlp", "conv", "residual", "recurrent"]},
        "depth": {"options": [1, 2]},
        "width": {"options": [16, 64]},
        "kernel": {"options": [5], "when": {"block": ["conv", "residual"]}},
        "dilation": {"options": [1]},
        "cell": {"options": ["gru"]},
        "bidirectional": {"options": [False]},
        "chrono_init": {"options": [False], "when": {"cell": ["gru"]}},
    },
}


def enumerate_space(space: SearchSpace) -> list[ArchSpec]:
    """Every architecture of ``space``, in a fixed order (depth-first over the choices)."""
    out: list[ArchSpec] = []

    def walk(i: int, values: dict[str, Any]) -> None:
        if i == len(space.choices):
            out.append(ArchSpec(values))
            return
        choice = space.choices[i]
        if not space.is_active(choice, values):
            walk(i + 1, values)
            return
        for option in choice.options:
            walk(i + 1, {**values, choice.name: option})

    walk(0, {})
    return out


def settings_of(epochs: int, seed: int) -> dict[str, Any]:
    """What a row depends on besides its spec: rows made under other settings are not reused."""
    return {"task": TASK, "epochs": epochs, "seed": seed, "space": TABLE_SPACE}


def evaluate(spec: ArchSpec, epochs: int, seed: int) -> dict[str, Any]:
    from autodlgym.training.trainer import train_and_score
    from autodlgym.trial import Fidelity

    result = train_and_score(spec, TASK, Fidelity(epochs=epochs), seed, diagnostics=False)
    return {
        "arch_id": spec.arch_id,
        "spec": spec.to_dict(),
        "status": result.status,
        "val": [_round(c.get("val_score")) for c in result.curve],
        "test": _round(result.test_score),
        "params": result.params,
        "seconds": round(result.train_seconds + result.eval_seconds, 3),
        "message": result.message,
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 5)


def load_done(out: Path, partial: Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if out.is_file():
        table = json.loads(out.read_text())
        if table.get("settings") == settings:
            done.update({row["arch_id"]: row for row in table["rows"]})
    if partial.is_file():
        lines = partial.read_text().splitlines()
        if lines and json.loads(lines[0]) == settings:
            for line in lines[1:]:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a stopped run
                    continue
                done[row["arch_id"]] = row
        else:
            partial.unlink()
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)

    space = SearchSpace.from_config(TABLE_SPACE)
    specs = enumerate_space(space)
    assert len(specs) == space.cardinality()
    if args.limit is not None:
        specs = specs[: args.limit]
    settings = settings_of(args.epochs, args.seed)
    partial = args.out.with_name(args.out.name + ".partial.jsonl")
    done = load_done(args.out, partial, settings)
    todo = [s for s in specs if s.arch_id not in done]
    print(
        f"{len(specs)} architectures, {len(specs) - len(todo)} already done, {len(todo)} to train "
        f"({args.epochs} epochs on {TASK}, seed {args.seed})",
        flush=True,
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not partial.is_file():
        partial.write_text(json.dumps(settings) + "\n")
    start = time.perf_counter()
    with partial.open("a") as f:
        for i, spec in enumerate(todo, 1):
            row = evaluate(spec, args.epochs, args.seed)
            done[row["arch_id"]] = row
            f.write(json.dumps(row) + "\n")
            f.flush()
            elapsed = time.perf_counter() - start
            eta = elapsed / i * (len(todo) - i)
            val = "-" if not row["val"] else f"{row['val'][-1]:.3f}"
            print(
                f"[{i}/{len(todo)}] {row['status']:<6} val {val:<6} {row['seconds']:6.2f}s  "
                f"elapsed {elapsed / 60:5.1f} min, eta {eta / 60:5.1f} min",
                flush=True,
            )

    rows = sorted((done[s.arch_id] for s in specs), key=lambda r: r["arch_id"])
    table = {
        "description": "every architecture of settings.space trained on settings.task for "
        "settings.epochs epochs (seed settings.seed): per-epoch validation accuracy (val), test "
        "accuracy, parameter count, train+eval seconds; made by benchmarks/make_lookup_table.py",
        "settings": settings,
        "rows": rows,
    }
    args.out.write_text(json.dumps(table, separators=(",", ":")) + "\n")
    if args.limit is None or args.limit >= space.cardinality():
        partial.unlink(missing_ok=True)
    statuses = {k: len(list(g)) for k, g in itertools.groupby(sorted(r["status"] for r in rows))}
    best = max((r for r in rows if r["val"]), key=lambda r: r["val"][-1], default=None)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): {len(rows)} rows, "
        f"statuses {statuses}",
        flush=True,
    )
    if best is not None:
        print(f"best final val {best['val'][-1]:.4f} (test {best['test']}) {best['arch_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
