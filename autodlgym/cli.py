"""The ``autodlgym`` command.

``autodlgym search | eval | leaderboard | retrain | export | predict | report | compare |
export-optuna | bench | tasks | searchers | space show | space sample``.
Bad input prints one line, ``autodlgym: error: ...``, and exits with code 2; nothing already
recorded is lost. So does a damaged results store, named. A command that reads a run takes its
directory or the directory's ``results.sqlite``. Heavy libraries are imported only by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autodlgym import __version__
from autodlgym.errors import AutoDLError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: a search in which no trial finished with a score
EXIT_NO_SCORE = 1


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


def _add_budget(parser: argparse.ArgumentParser) -> None:
    """--max-params / --max-flops (see autodlgym.searchspace.constraints)."""
    parser.add_argument(
        "--max-params",
        metavar="N",
        help="most parameters a candidate may have, e.g. 250k; 'none' lifts the task's default",
    )
    parser.add_argument(
        "--max-flops",
        metavar="N",
        help="most forward FLOPs per example, e.g. 20M; 'none' lifts the task's default",
    )


def _budgeted_space(args: argparse.Namespace, task: Any, widest: bool = False):
    """The --space space with the budget resolved for ``task``; without --space, ``task``'s
    default space (its modality's blocks; a graph task's graph space), or with ``widest``
    every array block for an array task (what ``eval`` accepts)."""
    from autodlgym.searchspace.constraints import resolve_budget

    if args.space:
        space = _space(args.space)
    elif widest and not (task.io is not None and task.io.is_graph):
        space = _space(None)
    else:
        space = task.default_space()
    return resolve_budget(space, task, args.max_params or "default", args.max_flops or "default")


def _add_changed_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-changed-data",
        action="store_true",
        help="use the run's data file although it changed since the run was made",
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _common() -> argparse.ArgumentParser:
    """Options every command takes."""
    c = argparse.ArgumentParser(add_help=False)
    c.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (repeatable): a module or .py file that registers blocks, "
        "tasks, init laws or searchers; a search records it and its Ray workers import it too",
    )
    return c


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    p = _Parser(
        prog="autodlgym",
        description="Search deep-learning architectures as a Gymnasium environment.",
    )
    p.add_argument("--version", action="version", version=f"autodlgym {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser(
        "search", parents=[common], help="run or resume a search; every trial lands in --out"
    )
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
        "--searcher",
        help="random, tpe, evolution, reinforce, ..., or package.module:Class; default auto: "
        "tpe inside ASHA with --time-budget, else random",
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
    s.add_argument(
        "--epochs",
        type=int,
        help="epochs of a fully trained trial (default 20 with a pruner, else 2; a tabular task's full fidelity)",
    )
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
        "--pruner",
        choices=["auto", "asha", "none", "median", "sha", "hyperband"],
        help="multi-fidelity: asha (rungs from 1/3 epoch), Optuna's median/sha/hyperband, or "
        "none; default auto: asha with --time-budget, else none",
    )
    s.add_argument(
        "--promotions",
        choices=["continue", "retrain"],
        help="under asha: a promoted candidate continues from its lower rung's saved training "
        "state (default continue; the same result as training from scratch) or is retrained "
        "from scratch (retrain)",
    )
    s.add_argument(
        "--fidelity",
        choices=["trained", "oneshot"],
        help="trained (default): every candidate is trained; oneshot: scored with the weights "
        "of a one-shot evaluator trained once over the space (a small space: a space file), "
        "recorded in the phase 'oneshot'",
    )
    s.add_argument(
        "--oneshot-evaluator",
        choices=["supernet", "hypernet"],
        help="with --fidelity oneshot: shared weights (supernet, the default) or weights "
        "generated from the spec (hypernet)",
    )
    s.add_argument(
        "--checks-per-epoch",
        type=int,
        help="validation checks (pruner reports) per epoch (default 4 with median/sha/hyperband)",
    )
    s.add_argument(
        "--max-retries", type=int, help="retries of a trial whose Ray worker died (default 2)"
    )
    s.add_argument("--amp", action="store_true", default=None, help="mixed precision on CUDA")
    s.add_argument(
        "--final-seeds",
        type=int,
        metavar="K",
        help=f"choose the answer on the mean of K seeds of the top candidates (0: off; "
        f"default {3} under --time-budget on tasks under 10k rows, with a fifth of the budget)",
    )
    s.add_argument(
        "--no-baselines",
        dest="baselines",
        action="store_false",
        default=None,
        help="fit no scikit-learn baselines (default: on a user's data, before the search)",
    )
    s.add_argument(
        "--allow-changed-data",
        action="store_true",
        help="with --resume: go on although the data file changed since the run was made",
    )
    shown = s.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        action="store_true",
        help="draw the progress bar even when stderr is not a terminal (default: a bar in a "
        "terminal, else a plain line per tenth of the trials and at least once a minute)",
    )
    shown.add_argument("--no-progress", action="store_true", help="no progress display")
    _add_budget(s)

    e = sub.add_parser(
        "eval", parents=[common], help="train and score one architecture; prints the result as JSON"
    )
    e.add_argument(
        "--arch",
        required=True,
        help="spec file: one JSON spec, or JSON lines as `autodlgym space sample` writes (with --line)",
    )
    e.add_argument(
        "--line", type=int, help="which spec of a JSON-lines --arch file to train (1 = first)"
    )
    e.add_argument("--task", default="mnist1d")
    e.add_argument("--task-opt", action="append", metavar="KEY=VALUE")
    e.add_argument("--epochs", type=int, default=20)
    e.add_argument("--max-train-samples", type=int)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="cpu")
    e.add_argument(
        "--space",
        help="validate the spec against this space file (otherwise the default space; a "
        "graph task's graph space)",
    )
    e.add_argument(
        "--no-validate", action="store_true", help="train a spec outside the space as it is"
    )
    _add_budget(e)

    lb = sub.add_parser("leaderboard", parents=[common], help="the best trials of a run")
    lb.add_argument("run", help="run directory (or its results.sqlite)")
    lb.add_argument(
        "--top", type=int, default=10, help="how many rows to show (default 10; 0: all)"
    )
    lb.add_argument("--by", default="val_score", help="column to rank by (default val_score)")
    lb.add_argument(
        "--csv",
        help="also write the ranked rows shown (every column) to this CSV file; with "
        "--per trial --top 0: every trial",
    )
    lb.add_argument("--parquet", help="also write the ranked rows (every column) to Parquet")
    lb.add_argument(
        "--per",
        choices=("spec", "trial"),
        default="spec",
        help="rank architectures, each at the highest fidelity it reached (spec, the default), "
        "or every trial (trial)",
    )
    lb.add_argument(
        "--wide",
        action="store_true",
        help="every column (each decision, metric and timing), however wide; by default the "
        f"table fits {BOARD_WIDTH} columns with the spec summarised in one",
    )
    lb.add_argument(
        "--retrained",
        action="store_true",
        help="rank the specs re-evaluated by autodlgym retrain by mean validation score",
    )

    rt = sub.add_parser(
        "retrain", parents=[common], help="train the best specs of a run with several seeds"
    )
    rt.add_argument("run", help="run directory (or its results.sqlite)")
    rt.add_argument("--top", type=int, default=3, help="how many specs (default 3)")
    rt.add_argument("--seeds", type=int, default=3, help="seeds per spec (default 3)")
    rt.add_argument("--epochs", type=int, help="final fidelity (default: the search's epochs)")
    rt.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    _add_changed_data(rt)

    ex = sub.add_parser(
        "export", parents=[common], help="write a trial's trained model, preprocessing and program"
    )
    ex.add_argument("run", help="run directory (or its results.sqlite)")
    ex.add_argument(
        "--trial",
        type=int,
        help="trial id (see the leaderboard); default: the run's answer (its final choice "
        "over seeds, else its best architecture)",
    )
    ex.add_argument("--out", required=True, help="directory to write")
    ex.add_argument("--epochs", type=int, help="train (or reuse weights) at this many epochs")
    ex.add_argument("--device", default="cpu", help="device for training when needed")
    _add_changed_data(ex)

    pr = sub.add_parser("predict", parents=[common], help="run an exported model on new data")
    pr.add_argument("model", help="directory written by autodlgym export")
    pr.add_argument(
        "--input", required=True, help="a .csv/.parquet table, an image or folder, or an .npz"
    )
    pr.add_argument("--scores", action="store_true", help="add class probabilities")

    rp = sub.add_parser(
        "report", parents=[common], help="one self-contained HTML page of a run's figures"
    )
    rp.add_argument("run", help="run directory (or its results.sqlite)")
    rp.add_argument("--out", help="HTML file to write (default RUN/report.html)")
    rp.add_argument("--top", type=int, default=10, help="rows of the top-k table (default 10)")

    cp = sub.add_parser(
        "compare", parents=[common], help="anytime curves of several runs of one task, one page"
    )
    cp.add_argument(
        "runs", nargs="+", metavar="RUN", help="run directories (or their results.sqlite)"
    )
    cp.add_argument("--out", default="compare.html", help="HTML file (default compare.html)")

    ex = sub.add_parser(
        "export-optuna", parents=[common], help="write a run as an Optuna study (optuna-dashboard)"
    )
    ex.add_argument("run", help="run directory (or its results.sqlite)")
    ex.add_argument("--out", help="SQLite file to write (default RUN/optuna-export.db)")

    b = sub.add_parser(
        "bench",
        parents=[common],
        help="compare searchers on tabular tasks: regret, test score, U test vs random",
    )
    b.add_argument(
        "--tasks", required=True, help="comma-separated tabular tasks, e.g. nasbench-graph:cora"
    )
    b.add_argument("--searchers", default="random,tpe,evolution", help="comma-separated searchers")
    b.add_argument("--seeds", type=int, default=10, help="seeds per task and searcher")
    b.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="first seed (default 0): seeds FIRST .. FIRST+SEEDS-1, e.g. to check on fresh seeds",
    )
    b.add_argument("--budgets", default="50,100", help="evaluation budgets to report, e.g. 50,100")
    b.add_argument("--out", help="directory for the CSVs, the plot and the runs (default: temp)")
    b.add_argument("--jobs", type=int, help="searches in parallel (default: CPU count)")

    sub.add_parser("tasks", parents=[common], help="list the tasks")
    sub.add_parser("searchers", parents=[common], help="list built-in and plugin searchers")

    sub.add_parser("experiments", help="list the experiments on what architectural priors do")
    ex = sub.add_parser("experiment", help="run one experiment: its table, figure and CSV")
    ex.add_argument("name", help="an experiment of `autodlgym experiments`")
    ex.add_argument("--quick", action="store_true", help="a small version (under a minute)")
    ex.add_argument("--out", help="folder for NAME.png and NAME.csv (default experiments/NAME)")
    ex.add_argument("--seed", type=int, default=0)

    sp = sub.add_parser("space", help="show or sample the search space")
    spsub = sp.add_subparsers(dest="space_command", metavar="show|sample", parser_class=_Parser)
    show = spsub.add_parser(
        "show", parents=[common], help="decisions, options, conditions and cardinality"
    )
    show.add_argument("--space", help="space file (default: the default space)")
    show.add_argument(
        "--task",
        help="show the space a search on this task starts from: its modality's blocks (and "
        "why each is in or out), its budget",
    )
    show.add_argument("--task-opt", action="append", default=[], metavar="KEY=VALUE")
    smp = spsub.add_parser("sample", parents=[common], help="random specs as JSON lines")
    smp.add_argument("--n", type=int, default=1)
    smp.add_argument("--seed", type=int, default=0)
    smp.add_argument("--space", help="space file (default: the task's default space)")
    smp.add_argument(
        "--task",
        default="mnist1d",
        help="task whose default space and budget apply (default mnist1d)",
    )
    _add_budget(smp)
    return p


def _space(path: str | None):
    from autodlgym.searchspace.space import SearchSpace

    return SearchSpace.from_file(path) if path else SearchSpace.default()


def _oneshot(args: argparse.Namespace) -> str | None:
    """``RunConfig.oneshot`` from ``--fidelity`` and ``--oneshot-evaluator``."""
    if args.oneshot_evaluator is not None and args.fidelity != "oneshot":
        raise AutoDLError("--oneshot-evaluator needs --fidelity oneshot")
    if args.fidelity != "oneshot":
        return None
    return args.oneshot_evaluator or "supernet"


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
        "checks_per_epoch": args.checks_per_epoch,
        "max_retries": args.max_retries,
        "amp": args.amp,
        "task_kwargs": args.task_opt,
        "searcher_options": args.searcher_opt,
        "max_params": args.max_params,
        "max_flops": args.max_flops,
        "baselines": args.baselines,
        "final_seeds": args.final_seeds,
        "oneshot": _oneshot(args),
        "promotions": args.promotions,
    }
    if args.allow_changed_data and not args.resume:
        raise AutoDLError("--allow-changed-data continues a run: give it with --resume")
    if args.resume:
        fixed = [k for k, v in given.items() if v is not None]
        if fixed:
            flags = ", ".join(
                "--"
                + k.replace("_", "-")
                .replace("task-kwargs", "task-opt")
                .replace("searcher-options", "searcher-opt")
                .replace("oneshot", "fidelity")
                for k in fixed
            )
            raise AutoDLError(
                f"--resume continues with the settings stored in {args.out}; drop {flags} "
                "(only --trials and --time-budget may change)"
            )
        config = None
        if args.trials is not None or args.time_budget is not None:
            config = RunConfig(out=args.out, trials=args.trials, time_budget=args.time_budget)
        summary_call = dict(
            config=config, resume=True, out=args.out, allow_changed_data=args.allow_changed_data
        )
        before = _finished_trials(args.out)
    else:
        kw: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        kw["task_kwargs"] = _key_values(args.task_opt, "--task-opt")
        kw["searcher_options"] = _key_values(args.searcher_opt, "--searcher-opt")
        if args.imports:
            from autodlgym.registry import resolve_imports

            kw["imports"] = resolve_imports(args.imports)
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
        _describe_task(config.task, config.task_kwargs)
        summary_call = dict(config=config)
    from autodlgym.progress import plural, progress_style

    try:
        with progress_style("bar" if args.progress else "auto"):
            summary = run_search(**summary_call, progress=not args.no_progress)
    except SearchInterrupted as exc:
        s = exc.summary
        print(
            f"interrupted: {plural(s.finished, 'trial')} recorded in {s.run_dir}; continue with "
            f"autodlgym search --out {s.run_dir} --resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(_search_summary(summary))
    if summary.final_note:
        print(summary.final_note)
    from autodlgym.analysis.baselines import baseline_lines

    for line in baseline_lines(
        summary.baselines, (summary.best_val_score, summary.best_test_score)
    ):
        print(line)
    if args.resume and summary.finished == before:
        print(_extend_hint(summary), file=sys.stderr)
    if summary.best_val_score is None and summary.finished:
        print(f"error: {_no_score_reason(summary.run_dir)}", file=sys.stderr)
        return EXIT_NO_SCORE
    print(f"leaderboard: autodlgym leaderboard {summary.run_dir}")
    return 0


def _no_score_reason(run_dir: Any) -> str:
    """One line: no trial of the run has a score, the commonest way its trials ended, and
    what to try."""
    from autodlgym.progress import plural
    from autodlgym.run import Run

    with Run.open(run_dir) as run:
        df = run.frame()
    ended = df.groupby(["status", "message"]).size().sort_values(ascending=False)
    (status, message), n = ended.index[0], int(ended.iloc[0])
    hint = {
        "timeout": "give trials more time (--trial-time-limit SECONDS or none) or a larger "
        "--time-budget",
        "oom": "lower --max-params / --max-flops or use a smaller space",
    }.get(status, f"see autodlgym leaderboard {run_dir} --per trial")
    return (
        f"no trial finished with a score ({plural(len(df), 'trial')}; "
        f"{n} ended {status}: {message}); {hint}"
    )


def _search_summary(summary: Any) -> str:
    """``300 trials in R (298 ok, 2 error this session); best val score 0.8100 (trial 69);
    stopped by trials after 14.9 s``."""
    from autodlgym.progress import plural

    best = (
        "no ok trial yet"
        if summary.best_val_score is None
        else f"best val score {summary.best_val_score:.4f} (trial {summary.best_trial_id})"
    )
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.statuses.items()))
    skipped = summary.rejected
    rejected = f"; {plural(skipped, 'over-budget candidate')} skipped" if skipped else ""
    limits = ""
    if getattr(summary, "throughput", None):
        limits = (
            f"; {summary.cut} cut at their time limit, machine measured at "
            f"{summary.throughput / 1e9:.2g} GFLOP/s of training"
        )
    return (
        f"{plural(summary.finished, 'trial')} in {summary.run_dir}"
        + (f" ({counts} this session)" if counts else "")
        + f"; {best}; stopped by {summary.stopped_by} after {summary.seconds:.1f} s{rejected}"
        + limits
    )


def _finished_trials(run_dir: str) -> int | None:
    """Trials a run directory holds (None when it holds no run: run_search says so)."""
    from autodlgym.results.store import ResultStore

    try:
        store = ResultStore(run_dir, create=False)
    except AutoDLError:
        return None
    try:
        return store.n_finished(phase="search")  # what the summary counts
    finally:
        store.close()


def _extend_hint(summary: Any) -> str:
    """What to type when a resumed run had nothing left to do."""
    from autodlgym.run import Run

    with Run.open(summary.run_dir) as run:
        config = run.config
    more = max(summary.finished, config.trials or 0) + 10
    budget = f"{config.time_budget / 60 * 2:g}m" if config.time_budget else "30m"
    used = []
    if config.trials is not None:
        used.append(f"--trials {config.trials}")
    if config.time_budget is not None:
        used.append(f"--time-budget {config.time_budget:g}s")
    return (
        f"the run had already used its budget ({' and '.join(used)}); to extend it: "
        f"autodlgym search --out {summary.run_dir} --resume --trials {more}"
        f" (or --time-budget {budget})"
    )


def _describe_task(name: str, options: dict[str, Any]) -> None:
    """Say how a user's data was read (split, missing values) before a search starts."""
    from autodlgym.tasks import get_task

    task = get_task(name, **options)
    if task.preprocessing is not None:
        print(f"task: {task.description}", file=sys.stderr)


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
    spec = ArchSpec.from_json(_one_spec(path, args.arch, args.line))
    task = get_task(args.task, **_key_values(args.task_opt, "--task-opt"))
    space = _budgeted_space(args, task, widest=True)
    if not args.no_validate:
        spec = space.validate(spec)
    reason = space.over_budget(spec)
    if reason is not None:  # nothing over budget is trained
        raise AutoDLError(
            f"the spec is over the budget ({reason}); lift it with --max-params none / "
            "--max-flops none or give larger limits"
        )
    result = train_and_score(
        spec, task, Fidelity(args.epochs, args.max_train_samples), args.seed, device=args.device
    )
    out = {"arch_id": spec.arch_id, "task": task.name, "spec": spec.to_dict(), **result.to_dict()}
    print(json.dumps(out, indent=2, default=str))
    return 0 if result.ok else 1


def _one_spec(path: Path, name: str, line: int | None) -> str:
    """The JSON text of the spec to train: the whole file when it is one JSON document, one
    line of a JSON-lines file (``--line``)."""
    text = path.read_text()
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise AutoDLError(f"spec file {name!r} is empty; write one with autodlgym space sample")
    if line is not None:
        if not 1 <= line <= len(lines):
            raise AutoDLError(f"--line {line} is out of range: {name!r} holds {len(lines)} specs")
        return lines[line - 1][1]
    try:
        json.loads(text)
        return text
    except json.JSONDecodeError:
        pass
    several = 0
    for _, ln in lines:
        try:
            several += isinstance(json.loads(ln), dict)
        except json.JSONDecodeError:
            several = 0
            break
    if several > 1:
        raise AutoDLError(
            f"spec file {name!r} holds {several} specs, one per line; eval trains one: "
            f"pick it with --line N (1 to {several})"
        )
    return text  # not JSON: ArchSpec.from_json says where


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from autodlgym.analysis.leaderboard import export, leaderboard
    from autodlgym.progress import plural
    from autodlgym.run import load_results

    if not Path(args.run).is_dir():
        raise AutoDLError(f"run directory {args.run!r} does not exist")
    if args.top < 0:
        raise AutoDLError(f"--top must be a positive number of rows, or 0 for all; got {args.top}")
    top = args.top or None
    df = load_results(args.run)
    if args.retrained:
        from autodlgym.analysis.retrained import format_retrained, retrained

        view = retrained(df)
        if view.empty:
            raise AutoDLError(
                f"nothing in {args.run} is retrained yet; run autodlgym retrain {args.run}"
            )
        print(format_retrained(view.head(top)))
        return 0
    n_retrained = int((df["phase"] != "search").sum())
    df = df[df["phase"] == "search"]  # retrained evaluations have a view of their own
    if args.by not in df.columns:
        raise AutoDLError(
            f"cannot rank by {args.by!r}; columns include val_score, test_score, params, flops"
        )
    width = None if args.wide else BOARD_WIDTH
    board = leaderboard(df, top=top, by=args.by, per=args.per) if len(df) else df
    if args.per == "trial" and top is None:
        ranked = leaderboard(df, top=None, by=args.by, per="trial", status=None)
    else:
        ranked = board
    for path in (args.csv, args.parquet):
        if path:
            export(ranked, path)  # every column of the rows ranked
    if not len(df):
        print(f"no trials in {args.run} yet: a search records each trial as it finishes")
        return 0
    if len(board):
        from autodlgym.searchspace.spec import ArchSpec

        board = board.assign(arch=[ArchSpec.from_json(s).summary() for s in board["spec"]])
    counts = ", ".join(f"{n} {s}" for s, n in df["status"].value_counts().items())
    print(f"{plural(len(df), 'trial')} in {args.run}: {counts}")  # the path whole, however long
    from autodlgym.results.environment import describe

    print(_wrap(describe(df.attrs.get("environment", [])), width))
    if len(board):
        print(format_board(board, by=args.by, width=width))
    else:
        from autodlgym.analysis.leaderboard import failure_summary

        print("no trial finished ok, so none is ranked; by status:")
        print(format_failures(failure_summary(df), width=width))
    _print_baselines(args.run, board if len(board) else None, width)
    if n_retrained:
        print(f"{n_retrained} retrained evaluations: autodlgym leaderboard {args.run} --retrained")
    return 0


def _print_baselines(run_dir: str, board: Any, width: int | None) -> None:
    """The run's scikit-learn baselines under its leaderboard, beside its top row."""
    from autodlgym.analysis.baselines import baseline_lines
    from autodlgym.run import Run

    with Run.open(run_dir) as run:
        base = run.baselines()
    best = None if board is None else (board["val_score"].iloc[0], board["test_score"].iloc[0])
    for line in baseline_lines(base, best):
        print(_wrap(line, width))


#: the leaderboard's default width in columns (``--wide`` lifts it)
BOARD_WIDTH = 100
#: columns of the default leaderboard, in this order (those present and not empty); ``arch``
#: is the spec summary
BOARD_COLUMNS = (
    "rank", "trial_id", "val_score", "test_score", "n_evals", "rung", "epochs", "params",
    "latency", "train_seconds", "init", "arch",
)  # fmt: skip
#: what to give up first when the default leaderboard is too wide (the summary shrinks too)
_BOARD_OPTIONAL = ("init", "latency", "epochs", "train_seconds", "rung", "n_evals", "test_score")
#: columns a --wide leaderboard leaves to --csv (JSON of the whole spec or diagnostics)
_NOT_PRINTED = ("spec", "diagnostics")
#: headers shorter than the column names
_HEADERS = {"trial_id": "trial", "train_seconds": "train_s"}
_SCORES = ("val_score", "test_score", "train_loss")
_COUNTS = ("params", "trainable_params", "flops")
_SECONDS = ("train_seconds", "eval_seconds", "latency")


def _wrap(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    import textwrap

    return textwrap.fill(text, width, subsequent_indent="  ", break_on_hyphens=False)


def _count(value: int) -> str:
    """A count in 4 characters or so: 812, 62.8k, 1.63M, 2.1G."""
    v = abs(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{value / scale:.3g}{unit}"
    return str(value)


def _cell(column: str, value: Any, exact: bool = False) -> str:
    """A value as the leaderboard prints it: scores to 4 decimals, counts short (``exact``:
    in full), seconds rounded; blank when missing."""
    import math
    import numbers

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    try:
        import pandas as pd

        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value)) if exact or column not in _COUNTS else _count(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if column in _SCORES or column.endswith("_score"):
            return f"{v:.4f}"
        if column in _SECONDS:
            return _seconds(v)
        if column in _COUNTS:  # a count held as float
            return str(int(v)) if exact else _count(int(v))
        return f"{v:.4g}"
    return str(value)


def _ellipsis() -> str:
    """What marks a shortened cell: "…", or "~" where stdout cannot encode it."""
    try:
        "…".encode(sys.stdout.encoding or "utf-8")
    except (LookupError, UnicodeEncodeError):
        return "~"
    return "…"


def _is_number(values: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def format_board(board: Any, by: str = "val_score", width: int | None = BOARD_WIDTH) -> str:
    """A leaderboard frame as text: numbers right-aligned, words left-aligned.

    With ``width`` (default :data:`BOARD_WIDTH`) the :data:`BOARD_COLUMNS` present (and the
    ranking column), empty ones left out, fitted to ``width`` characters: optional columns
    give way, then the spec summary (``arch``) is shortened. ``width=None``: every column
    but the spec and diagnostics JSON, in full.
    """
    if width is None:
        columns = [c for c in board.columns if c not in _NOT_PRINTED]
        if "arch" in columns:  # the summary closes the table
            columns = [c for c in columns if c != "arch"] + ["arch"]
        return _table(board, columns, exact=True)
    wanted = list(BOARD_COLUMNS)
    if by not in wanted:
        wanted.insert(2, by)
    columns = [c for c in wanted if c in board.columns and _shows(board, c)]
    min_arch = 16

    def room() -> int:  # what the summary may take beside the other columns
        others = [c for c in columns if c != "arch"]
        return width - sum(_col_width(board, c) for c in others) - 2 * len(others)

    while "arch" in columns and room() < min_arch:
        droppable = [c for c in _BOARD_OPTIONAL if c in columns and c != by]
        if not droppable:
            break
        columns.remove(droppable[0])
    return _table(board, columns, arch_width=max(room(), min_arch) if "arch" in columns else None)


def _shows(board: Any, column: str) -> bool:
    """False for a column with nothing to say: every value missing, every one zero (the
    training time of table lookups), or ``epochs`` the same in every row."""
    values = board[column]
    if values.isna().all():
        return False
    if column == "epochs" and values.nunique(dropna=False) == 1:
        return False
    if column in ("rank", "trial_id") or not _is_number(values):
        return True
    return not (values.fillna(0) == 0).all()


def _col_width(board: Any, column: str) -> int:
    header = _HEADERS.get(column, column)
    return max([len(header), *(len(_cell(column, v)) for v in board[column])])


def _table(
    board: Any, columns: list[str], exact: bool = False, arch_width: int | None = None
) -> str:
    from autodlgym.progress import shorten

    head = [_HEADERS.get(c, c) for c in columns]
    body = [
        [_cell(c, v, exact) for c, v in zip(columns, row)]
        for row in board[columns].itertuples(index=False)
    ]
    if arch_width is not None and "arch" in columns:
        i = columns.index("arch")
        for row in body:
            row[i] = shorten(row[i], arch_width, _ellipsis())
    right = [_is_number(board[c]) for c in columns]
    rows = [head, *body]
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    lines = []
    for r in rows:
        cells = [f"{v:>{w}}" if num else f"{v:<{w}}" for v, w, num in zip(r, widths, right)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_failures(summary: Any, width: int | None = BOARD_WIDTH) -> str:
    """:func:`~autodlgym.analysis.leaderboard.failure_summary` as text, its messages cut to
    ``width``."""
    from autodlgym.progress import shorten

    rows = [("status", "trials", "share", "messages")]
    for r in summary.itertuples(index=False):
        rows.append((str(r.status), str(r.count), f"{r.share:.0%}", str(r.examples)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for status, count, share, msg in rows:
        line = f"{status:<{widths[0]}}  {count:>{widths[1]}}  {share:>{widths[2]}}  "
        if width is not None:
            msg = shorten(msg, max(10, width - len(line)), _ellipsis())
        lines.append((line + msg).rstrip())
    return "\n".join(lines)


def cmd_retrain(args: argparse.Namespace) -> int:
    from autodlgym.analysis.retrained import format_retrained
    from autodlgym.retrain import retrain

    view = retrain(
        args.run, top=args.top, seeds=args.seeds, epochs=args.epochs, device=args.device,
        progress=True, allow_changed_data=args.allow_changed_data,
    )  # fmt: skip
    print(format_retrained(view))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from autodlgym.export import export_model

    if args.trial is None:
        from autodlgym.run import Run

        with Run.open(args.run) as run:
            args.trial = run.answer()
        if args.trial is None:
            raise AutoDLError(f"{args.run} has no trial with a score to export; give --trial")
    s = export_model(
        args.run, args.trial, args.out, epochs=args.epochs, device=args.device,
        allow_changed_data=args.allow_changed_data,
    )  # fmt: skip
    how = "trained now" if s.trained_now else "kept by autodlgym retrain"
    print(f"trial {s.trial_id} exported to {s.out} (weights of trial {s.weights_from}, {how})")
    if s.note:
        print(s.note)
    print(f"files: {', '.join(s.files)}" + ("" if s.onnx == "model.onnx" else f"; {s.onnx}"))
    if "predict.py" in s.files:
        print(
            f"predict: autodlgym predict {s.out} --input FILE  (or python {s.out}/predict.py --input FILE)"
        )
    else:  # a graph model: no stand-alone predict.py
        print(f"predict: autodlgym predict {s.out} --input GRAPH.pt|GRAPH.npz")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from autodlgym.export import predict_lines
    from autodlgym.tasks.preprocessing import print_lines

    return print_lines(predict_lines(args.model, args.input, scores=args.scores))


def cmd_report(args: argparse.Namespace) -> int:
    from autodlgym.analysis.report import report_command

    return report_command(args)


def cmd_compare(args: argparse.Namespace) -> int:
    from autodlgym.analysis.report import compare_command

    return compare_command(args)


def cmd_export_optuna(args: argparse.Namespace) -> int:
    from autodlgym.analysis.optuna_export import export_optuna_command

    return export_optuna_command(args)


def _columns(rows: Sequence[Sequence[str]]) -> str:
    """Rows of text as left-aligned columns, each as wide as its longest cell."""
    if not rows:
        return ""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(f"{str(c):<{w}}" for c, w in zip(r, widths)), str(r[-1])]).rstrip()
        for r in rows
    )


def _seconds(value: Any) -> str:
    """A duration for display: 12.3, 0.0412; blank when missing."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if v != v:  # NaN: a trial that did not train
        return ""
    return f"{v:.1f}" if abs(v) >= 1 else f"{v:.3g}"


def cmd_bench(args: argparse.Namespace) -> int:
    from autodlgym.analysis.bench import main

    return main(
        args.tasks,
        args.searchers,
        args.seeds,
        args.budgets,
        args.out,
        args.jobs,
        first_seed=args.first_seed,
    )


def cmd_tasks(args: argparse.Namespace) -> int:
    from autodlgym.tasks import list_tasks

    print(_columns(list_tasks()))
    return 0


def cmd_searchers(args: argparse.Namespace) -> int:
    from autodlgym.searchers.base import list_searchers

    print(_columns(list_searchers()))
    return 0


def cmd_space(args: argparse.Namespace) -> int:
    if args.space_command == "show":
        if not args.task:
            print(_space(args.space).describe())
            return 0
        from autodlgym.run import plan
        from autodlgym.runner import RunConfig

        config = RunConfig(
            out="", task=args.task, task_kwargs=_key_values(args.task_opt, "--task-opt"),
            space=_space(args.space).to_config() if args.space else None,
        )  # fmt: skip
        _, task, space = plan(config)
        print(space.describe())
        if not args.space and task.io is not None:
            from autodlgym.searchspace.config import modality_decisions, modality_priors

            print(f"blocks for {task.io.modality} inputs ({task.name}):")
            for block, offered, reason in modality_priors(task.io.modality):
                print(f"  {'+' if offered else '-'} {block:<10} {reason}")
            for line in modality_decisions(task.io.modality):
                print(line)
        return 0
    if args.space_command == "sample":
        if args.n < 0:
            raise AutoDLError(f"--n must be 0 or more, got {args.n}")
        import numpy as np

        from autodlgym.tasks import get_task

        space = _budgeted_space(args, get_task(args.task))
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
    "retrain": cmd_retrain,
    "export": cmd_export,
    "predict": cmd_predict,
    "report": cmd_report,
    "compare": cmd_compare,
    "export-optuna": cmd_export_optuna,
    "bench": cmd_bench,
    "tasks": cmd_tasks,
    "searchers": cmd_searchers,
    "space": cmd_space,
    "experiments": cmd_experiments,
    "experiment": cmd_experiment,
}


#: commands that read runs given as ``run`` (or ``runs``)
_READS_RUNS = ("leaderboard", "retrain", "export", "report", "compare", "export-optuna")


def _run_dir(text: str) -> str:
    """A run given as its directory or as its results.sqlite: the directory."""
    from autodlgym.results.store import DB_NAME

    path = Path(text)
    if path.is_file():
        if path.name == DB_NAME:
            return str(path.parent)
        raise AutoDLError(
            f"{text!r} is a file, not a run directory; give the directory that holds "
            f"{DB_NAME} (or that file)"
        )
    return text  # a missing one: each command says so in its own words


def _run_paths(args: argparse.Namespace) -> None:
    """Every command that reads a run takes its directory or its results.sqlite."""
    if args.command in _READS_RUNS:
        if getattr(args, "run", None) is not None:
            args.run = _run_dir(args.run)
        if getattr(args, "runs", None) is not None:
            args.runs = [_run_dir(r) for r in args.runs]
    elif args.command == "search" and args.out is not None:
        from autodlgym.results.store import DB_NAME

        out = Path(args.out)
        if out.name == DB_NAME and out.is_file():
            args.out = str(out.parent)


def _damaged(args: argparse.Namespace, exc: sqlite3.DatabaseError) -> str | None:
    """The one-line error for a damaged results store met after it opened (None when
    ``exc`` is not about a damaged database): names the store of the command's runs that
    SQLite's check finds damaged."""
    from autodlgym.results.store import DB_NAME, is_damaged, store_damage, unreadable_store

    if not is_damaged(exc):
        return None
    runs = [getattr(args, "run", None), *(getattr(args, "runs", None) or [])]
    if args.command == "search":
        runs.append(args.out)
    for run in runs:
        if run is None:
            continue
        path = Path(run) / DB_NAME
        reason = store_damage(path)
        if reason is not None:
            return str(unreadable_store(path, reason))
    return f"a database this command read is damaged ({exc})"


def _show_warning(message: Warning | str, *args: Any, **kwargs: Any) -> None:
    """A warning as one line, like the errors (no file and line of the code that warned)."""
    print(f"autodlgym: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.imports = getattr(args, "imports", [])
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        _run_paths(args)
        if args.imports:  # before any space, task or searcher name is looked up
            from autodlgym.registry import import_modules

            import_modules(args.imports)
        with warnings.catch_warnings():  # restores showwarning for a caller in Python
            warnings.showwarning = _show_warning
            return COMMANDS[args.command](args)
    except AutoDLError as exc:
        print(f"autodlgym: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.DatabaseError as exc:  # a store damaged past what opening it reads
        message = _damaged(args, exc)
        if message is None:
            raise
        print(f"autodlgym: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `autodlgym space sample --n 1000 | head`
        import os

        # what is still buffered would fail again at exit, with a traceback: drop it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
