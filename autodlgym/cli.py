"""The ``autodlgym`` command.

``autodlgym search | eval | leaderboard | tasks | searchers | space show | space sample``.
Bad input prints one line, ``autodlgym: error: ...``, and exits with code 2; nothing already
recorded is lost. Heavy libraries are imported only by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autodlgym import __version__
from autodlgym.errors import AutoDLError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _parse_value(text: str) -> Any:
    """``key=value`` values: JSON if it parses (numbers, true/false, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _key_values(items: Sequence[str] | None, flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AutoDLError(f"{flag} takes key=value, got {item!r}")
        out[key.replace("-", "_")] = _parse_value(value)
    return out


def _duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``2h``."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; write e.g. 600, 10m or 2h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _time_limit(text: str) -> float | str | None:
    return text if text in ("auto", "none") else _duration(text)


def _workers(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a worker count; give an integer or 'auto'"
        ) from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="autodlgym",
        description="Search deep-learning architectures as a Gymnasium environment.",
    )
    p.add_argument("--version", action="version", version=f"autodlgym {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("search", help="run or resume a search; every trial lands in --out")
    s.add_argument(
        "--out", required=True, help="run directory (results.sqlite and the searcher's files)"
    )
    s.add_argument(
        "--resume", action="store_true", help="continue the run in --out with its stored settings"
    )
    s.add_argument("--task", help="task name (see `autodlgym tasks`); default mnist1d")
    s.add_argument(
        "--task-opt", action="append", metavar="KEY=VALUE", help="task option, e.g. length=100"
    )
    s.add_argument(
        "--searcher", help="random, tpe, evolution, reinforce, ..., or package.module:Class"
    )
    s.add_argument(
        "--searcher-opt",
        action="append",
        metavar="KEY=VALUE",
        help="searcher option, e.g. population=32",
    )
    s.add_argument(
        "--space", help="YAML or JSON file narrowing or widening the default search space"
    )
    s.add_argument(
        "--trials", type=int, help="number of evaluations (default 20; with --resume: extend to N)"
    )
    s.add_argument(
        "--time-budget", type=_duration, help="stop starting trials after this long, e.g. 15m"
    )
    s.add_argument("--epochs", type=int, help="training epochs per trial (default 2)")
    s.add_argument("--max-train-samples", type=int, help="train each trial on at most N examples")
    s.add_argument(
        "--trial-time-limit",
        type=_duration,
        help="a trial training longer ends with status timeout",
    )
    s.add_argument("--seed", type=int, help="seeds the searcher and every trial (default 0)")
    s.add_argument(
        "--workers", type=_workers, help="trials in parallel; >1 or 'auto' uses Ray (default 1)"
    )
    s.add_argument("--cpus-per-trial", type=float, help="Ray CPUs per worker (default 1)")
    s.add_argument(
        "--gpus-per-trial", type=float, help="Ray GPUs per worker; 0.25 puts four trials on a GPU"
    )
    s.add_argument("--ray-address", help="join a Ray cluster: 'auto' or host:port")
    s.add_argument("--device", help="in-process device: cpu, cuda, cuda:N or auto (default cpu)")
    s.add_argument(
        "--pruner", choices=["none", "median", "sha", "hyperband"], help="stop poor trials early"
    )
    s.add_argument(
        "--max-retries", type=int, help="retries of a trial whose Ray worker died (default 2)"
    )
    s.add_argument("--amp", action="store_true", default=None, help="mixed precision on CUDA")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="train and score one architecture; prints the result as JSON")
    e.add_argument(
        "--arch", required=True, help="spec file (JSON, as `autodlgym space sample` writes)"
    )
    e.add_argument("--task", default="mnist1d")
    e.add_argument("--task-opt", action="append", metavar="KEY=VALUE")
    e.add_argument("--epochs", type=int, default=20)
    e.add_argument("--max-train-samples", type=int)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="cpu")
    e.add_argument(
        "--space", help="validate the spec against this space file (default space otherwise)"
    )
    e.add_argument(
        "--no-validate", action="store_true", help="train a spec outside the space as it is"
    )

    lb = sub.add_parser("leaderboard", help="the best trials of a run")
    lb.add_argument("run", help="run directory")
    lb.add_argument("--top", type=int, default=10)
    lb.add_argument("--by", default="val_score", help="column to rank by (default val_score)")
    lb.add_argument("--csv", help="also write all trials to this CSV file")
    lb.add_argument("--parquet", help="also write all trials to this Parquet file")

    sub.add_parser("tasks", help="list the tasks")
    sub.add_parser("searchers", help="list built-in and plugin searchers")

    sub.add_parser("experiments", help="list the experiments on what architectural priors do")
    ex = sub.add_parser("experiment", help="run one experiment: its table, figure and CSV")
    ex.add_argument("name", help="an experiment of `autodlgym experiments`")
    ex.add_argument("--quick", action="store_true", help="a small version (under a minute)")
    ex.add_argument("--out", help="folder for NAME.png and NAME.csv (default experiments/NAME)")
    ex.add_argument("--seed", type=int, default=0)

    sp = sub.add_parser("space", help="show or sample the search space")
    spsub = sp.add_subparsers(dest="space_command", metavar="show|sample", parser_class=_Parser)
    show = spsub.add_parser("show", help="decisions, options, conditions and cardinality")
    show.add_argument("--space", help="space file (default: the default space)")
    smp = spsub.add_parser("sample", help="random specs as JSON lines")
    smp.add_argument("--n", type=int, default=1)
    smp.add_argument("--seed", type=int, default=0)
    smp.add_argument("--space", help="space file (default: the default space)")
    return p


def _space(path: str | None):
    from autodlgym.searchspace.space import SearchSpace

    return SearchSpace.from_file(path) if path else SearchSpace.default()


def cmd_search(args: argparse.Namespace) -> int:
    from autodlgym.runner import RunConfig, SearchInterrupted, run_search

    given = {
        "task": args.task,
        "searcher": args.searcher,
        "space": args.space,
        "epochs": args.epochs,
        "max_train_samples": args.max_train_samples,
        "trial_time_limit": args.trial_time_limit,
        "seed": args.seed,
        "workers": args.workers,
        "cpus_per_trial": args.cpus_per_trial,
        "gpus_per_trial": args.gpus_per_trial,
        "ray_address": args.ray_address,
        "device": args.device,
        "pruner": args.pruner,
        "max_retries": args.max_retries,
        "amp": args.amp,
        "task_kwargs": args.task_opt,
        "searcher_options": args.searcher_opt,
    }
    if args.resume:
        fixed = [k for k, v in given.items() if v is not None]
        if fixed:
            flags = ", ".join(
                "--"
                + k.replace("_", "-")
                .replace("task-kwargs", "task-opt")
                .replace("searcher-options", "searcher-opt")
                for k in fixed
            )
            raise AutoDLError(
                f"--resume continues with the settings stored in {args.out}; drop {flags} "
                "(only --trials and --time-budget may change)"
            )
        config = None
        if args.trials is not None or args.time_budget is not None:
            config = RunConfig(out=args.out, trials=args.trials, time_budget=args.time_budget)
        summary_call = dict(config=config, resume=True, out=args.out)
    else:
        kw: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        kw["task_kwargs"] = _key_values(args.task_opt, "--task-opt")
        kw["searcher_options"] = _key_values(args.searcher_opt, "--searcher-opt")
        if args.space:
            kw["space"] = _space(args.space).to_config()
        if kw.get("workers") == "auto":
            kw["workers"] = None if args.ray_address else _auto_workers(kw)
        if args.trials is not None:
            kw["trials"] = args.trials
        elif args.time_budget is not None:
            kw["trials"] = None
        if args.time_budget is not None:
            kw["time_budget"] = args.time_budget
        config = RunConfig(out=args.out, **kw)
        summary_call = dict(config=config)
    try:
        summary = run_search(**summary_call, progress=not args.no_progress)
    except SearchInterrupted as exc:
        s = exc.summary
        print(
            f"interrupted: {s.finished} trials recorded in {s.run_dir}; continue with "
            f"autodlgym search --out {s.run_dir} --resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    best = (
        "none ok"
        if summary.best_val_score is None
        else f"{summary.best_val_score:.4f} (trial {summary.best_trial_id})"
    )
    print(
        f"{summary.finished} trials in {summary.run_dir}; best val score {best}; "
        f"stopped by {summary.stopped_by} after {summary.seconds:.1f} s"
    )
    print(f"leaderboard: autodlgym leaderboard {summary.run_dir}")
    return 0


def _auto_workers(kw: dict[str, Any]) -> int:
    """One worker per GPU when GPUs are asked for, else one per CPU core."""
    import os

    gpus = kw.get("gpus_per_trial") or 0
    if gpus > 0:
        import torch

        n = torch.cuda.device_count()
        if n == 0:
            raise AutoDLError(
                "--gpus-per-trial needs a GPU and torch sees none; drop it or use a GPU machine"
            )
        return max(1, int(n / gpus))
    return max(1, int((os.cpu_count() or 1) / (kw.get("cpus_per_trial") or 1)))


def cmd_eval(args: argparse.Namespace) -> int:
    from autodlgym.searchspace.spec import ArchSpec
    from autodlgym.tasks import get_task
    from autodlgym.training.trainer import train_and_score
    from autodlgym.trial import Fidelity

    path = Path(args.arch)
    if not path.is_file():
        raise AutoDLError(
            f"spec file {args.arch!r} does not exist; write one with autodlgym space sample > spec.json"
        )
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    spec = ArchSpec.from_json(lines[0] if len(lines) == 1 else "\n".join(lines))
    if not args.no_validate:
        spec = _space(args.space).validate(spec)
    task = get_task(args.task, **_key_values(args.task_opt, "--task-opt"))
    result = train_and_score(
        spec, task, Fidelity(args.epochs, args.max_train_samples), args.seed, device=args.device
    )
    out = {"arch_id": spec.arch_id, "task": task.name, "spec": spec.to_dict(), **result.to_dict()}
    print(json.dumps(out, indent=2, default=str))
    return 0 if result.ok else 1


def cmd_leaderboard(args: argparse.Namespace) -> int:
    import pandas as pd

    from autodlgym.analysis.leaderboard import export, leaderboard
    from autodlgym.results.store import load_results

    if not Path(args.run).is_dir():
        raise AutoDLError(f"run directory {args.run!r} does not exist")
    if args.top < 1:
        raise AutoDLError(f"--top must be positive, got {args.top}")
    df = load_results(args.run)
    if args.by not in df.columns:
        raise AutoDLError(
            f"cannot rank by {args.by!r}; columns include val_score, test_score, params, flops"
        )
    if args.csv:
        export(df, args.csv)
    if args.parquet:
        export(df, args.parquet)
    board = leaderboard(df, top=args.top, by=args.by)
    if len(board):
        from autodlgym.searchspace.spec import ArchSpec

        board = board.assign(arch=[ArchSpec.from_json(s).summary() for s in board["spec"]])
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    print(
        f"{len(df)} trials in {args.run}: "
        + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none yet")
    )
    if len(board):
        cols = [
            c
            for c in (
                "rank",
                "trial_id",
                "val_score",
                "test_score",
                "params",
                "train_seconds",
                "init",
                "arch",
            )
            if c in board.columns
        ]
        with pd.option_context("display.width", 200, "display.max_colwidth", 80):
            print(board[cols].to_string(index=False))
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from autodlgym.tasks import list_tasks

    for name, desc in list_tasks():
        print(f"{name:<18} {desc}")
    print("npz:PATH           your own arrays (x_train, y_train, x_test, y_test[, x_val, y_val])")
    return 0


def cmd_searchers(args: argparse.Namespace) -> int:
    from autodlgym.searchers.base import list_searchers

    for name, origin, desc in list_searchers():
        print(f"{name:<12} {origin:<10} {desc}")
    return 0


def cmd_space(args: argparse.Namespace) -> int:
    if args.space_command == "show":
        print(_space(args.space).describe())
        return 0
    if args.space_command == "sample":
        if args.n < 0:
            raise AutoDLError(f"--n must be 0 or more, got {args.n}")
        import numpy as np

        space = _space(args.space)
        rng = np.random.default_rng(args.seed)
        out = sys.stdout
        for _ in range(args.n):
            out.write(space.sample(rng).to_json() + "\n")
        return 0
    raise AutoDLError("space needs a subcommand: show or sample")


def cmd_experiments(args: argparse.Namespace) -> int:
    from autodlgym.experiments import base

    base.print_experiments()
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from autodlgym.experiments import base

    base.print_experiment(args.name, args.out, quick=args.quick, seed=args.seed)
    return 0


COMMANDS = {
    "search": cmd_search,
    "eval": cmd_eval,
    "leaderboard": cmd_leaderboard,
    "tasks": cmd_tasks,
    "searchers": cmd_searchers,
    "space": cmd_space,
    "experiments": cmd_experiments,
    "experiment": cmd_experiment,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except AutoDLError as exc:
        print(f"autodlgym: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `autodlgym space sample --n 1000 | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
