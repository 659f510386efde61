"""Train and score one candidate: ``train_and_score(spec, task, fidelity, seed, device)``;
``train_model`` does the same and also hands back the trained network.

The task's arrays are held as tensors on the device (once per process and device) and batches
are drawn by index from a seeded permutation: no DataLoader, whose per-batch collation costs
more than these small models' steps. The whole trial runs inside ``torch.random.fork_rng`` with
``torch.manual_seed(seed)``, so the same spec, task, fidelity and seed give the same scores on
CPU and the caller's random state is left as it was.

A failing candidate never raises: it ends with a status (``nan``, ``oom``, ``timeout``,
``error``) and a one-line message. Only bad arguments that are not the candidate's fault (an
unknown task, a bad fidelity) raise :class:`~autodlgym.errors.AutoDLError`.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from autodlgym.clock import now as _now  # the injectable clock
from autodlgym.clock import wall as _wall
from autodlgym.errors import AutoDLError
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import Task, get_task
from autodlgym.training.limits import (
    TRAIN_FLOPS_FACTOR,
    Throughput,
    grace,
    process_throughput,
    trial_limit,
)
from autodlgym.trial import (
    ERROR,
    FAILURES,
    NAN,
    OK,
    OOM,
    PRUNED,
    STOPPED,
    TIMEOUT,
    Fidelity,
    TrialResult,
    can_continue,
)
from autodlgym.utils import as_int

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: examples per forward pass when scoring (no gradients are kept, so this can be large)
EVAL_BATCH = 2048
#: most FLOPs of one evaluation batch (a large model scores in smaller batches, so a limit or
#: deadline is checked often enough)
EVAL_FLOPS = 10**10
#: most examples the initialisation diagnostics look at (their cost grows faster than linearly)
DIAGNOSTICS_BATCH = 64
#: the train subset of a fidelity with ``max_train_samples`` is a prefix of one fixed
#: permutation, so smaller budgets see subsets of what larger ones see
SUBSET_SEED = 0

Callback = Callable[[int, float], "bool | None"]
Progress = Callable[[float, int], None]
#: seconds between two calls of a trial's ``progress`` function
PROGRESS_EVERY = 0.5

_TENSORS: dict[tuple[str, tuple, str], dict[str, torch.Tensor]] = {}


#: the layout of a saved training state (:func:`save_state`); another version is not read
#: (version 1 could not stop inside an epoch and did not record its checks per epoch)
STATE_VERSION = 2


class _Continuation:
    """A trial's link to saved training states: the one it continues (``resume``, read by
    :func:`load_state` and checked against this trial's batches by :func:`_plan_resume`),
    where in its training that state was saved, and whether the trial saves its own
    (``state``, filled by the training loop once it trained all its fidelity asks)."""

    def __init__(self, resume: dict[str, Any] | None, save: bool) -> None:
        self.resume = resume
        self.save = save
        self.state: dict[str, Any] | None = None
        #: the epoch training resumes in and the batches of it already trained (indices
        #: ``<= skip``; -1: none, the epoch starts afresh)
        self.first = 1
        self.skip = -1
        #: the saved curve points a trial trained from scratch would also have made
        self.curve: list[dict[str, float]] = []
        #: losses and sizes of the batches trained since the last of those points
        self.losses: list[Any] = []
        self.sizes: list[int] = []
        #: the saved trial's last check is not one a trial from scratch makes there: its
        #: random state from before that check is the one to continue with
        self.unchecked = False

    @property
    def steps_done(self) -> int:
        return int(self.resume["steps"]) if self.resume is not None else 0

    @property
    def examples_done(self) -> int:
        return int(self.resume["examples"]) if self.resume is not None else 0


def save_state(path: str, state: Mapping[str, Any]) -> None:
    """Write a trial's training state (``torch.save``) atomically: a reader never sees half a
    file."""
    import os

    import torch

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    torch.save(dict(state), tmp)
    os.replace(tmp, path)


def load_state(
    path: str,
    spec: ArchSpec | Mapping[str, Any],
    task: Task | str,
    fidelity: Fidelity | int,
    seed: int,
    amp: bool,
    dev: Any = "cpu",
) -> dict[str, Any] | None:
    """The training state in ``path`` when a trial of ``spec`` on ``task`` at ``fidelity``
    with ``seed`` can continue from it (:func:`can_continue`, and the same spec, task, seed and
    precision); None otherwise (no file, an unreadable one, or another trial's)."""
    import torch

    spec = spec if isinstance(spec, ArchSpec) else ArchSpec(spec)
    task = get_task(task) if isinstance(task, str) else task
    fidelity = fidelity if isinstance(fidelity, Fidelity) else Fidelity(epochs=fidelity)
    try:
        state = torch.load(path, map_location=torch.device(dev), weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return None
    same = (
        state.get("arch_id") == spec.arch_id
        and state.get("task") == task.key
        and state.get("seed") == int(seed)
        and state.get("amp") == bool(amp)
    )
    try:
        saved = Fidelity.from_key(str(state.get("fidelity")))
    except (ValueError, TypeError, AutoDLError):
        return None
    return state if same and can_continue(saved, fidelity) else None


class _NonFinite(Exception):
    """Training produced a non-finite loss or parameter."""


class _TimeLimit(Exception):
    """The fidelity's time limit ran out."""


class _Stopped(Exception):
    """The search's deadline passed."""


class _Clock:
    """The trial's time: its limit (building, diagnostics, training and evaluation all count),
    the search's deadline, the seconds spent training, and throttled progress calls. With a
    ``throughput`` (an adaptive limit) the limit is set once the trial's FLOPs are known
    (:meth:`adapt`)."""

    def __init__(
        self,
        limit: float | None,
        deadline: float | None,
        progress: Progress | None,
        throughput: Throughput | None = None,
    ) -> None:
        self.start = _now()
        self.limit = limit
        self.limit_at = self.start + limit if limit is not None else math.inf
        # the deadline is wall-clock time (it crosses processes); compare in the trainer's time
        self.deadline_at = self.start + (deadline - _wall()) if deadline is not None else math.inf
        self.progress = progress
        self.next_progress = self.start
        self.train_start: float | None = None
        self.train_seconds = 0.0
        self.throughput = throughput
        #: what the trial is doing, for the message of a limit reached inside a forward pass
        self.phase = "before building the model"
        self.epochs_done = 0.0
        # the training since the last check: steps, examples, and train_seconds at its start
        self.stretch_steps = self.stretch_examples = 0
        self.stretch_from = 0.0

    def begin(self) -> None:
        """The trial's own time starts now (loading the task's data, shared by every trial of
        the process, does not count against its limit)."""
        self.start = _now()
        if self.limit is not None:
            self.limit_at = self.start + self.limit

    def set_limit(self, limit: float) -> None:
        """The trial's limit is ``limit`` seconds from its start."""
        self.limit = limit
        self.limit_at = self.start + limit

    def extend(self, seconds: float, deadline: bool = False) -> None:
        """Allow ``seconds`` more from now (a trial cut at its limit, or with ``deadline``
        stopped by the search's deadline, scores what it learned)."""
        if deadline:
            self.deadline_at = _now() + seconds
            self.limit_at = max(self.limit_at, self.deadline_at)
        else:
            self.limit_at = _now() + seconds

    def check(self, where: str | None = None) -> None:
        now = _now()
        if now > self.limit_at:
            raise _TimeLimit(f"time limit of {self.limit:g} s reached {where or self.phase}")
        if now > self.deadline_at:
            raise _Stopped(f"stopped by the search's time budget {where or self.phase}")

    def tick(self, epochs: float, steps: int) -> None:
        self.epochs_done = epochs
        if self.progress is not None and _now() >= self.next_progress:
            self.next_progress = _now() + PROGRESS_EVERY
            self.progress(epochs, steps)

    def train(self) -> None:
        """Training time starts (again) now."""
        self.train_start = _now()

    def pause(self) -> float:
        """Training time stops; returns the seconds trained in total."""
        if self.train_start is not None:
            self.train_seconds += _now() - self.train_start
            self.train_start = None
        return self.train_seconds

    def elapsed(self) -> float:
        return _now() - self.start

    def observe(self, flops: int | None) -> None:
        """Tell the process's :class:`Throughput` how long the training since the last
        check took (call it paused)."""
        if self.throughput is not None and flops and self.stretch_steps:
            self.throughput.observe(
                self.stretch_steps,
                TRAIN_FLOPS_FACTOR * flops * self.stretch_examples,
                self.train_seconds - self.stretch_from,
            )
        self.stretch_steps = self.stretch_examples = 0
        self.stretch_from = self.train_seconds

    @property
    def limited(self) -> bool:
        """Whether a limit or a deadline can end the trial."""
        return (
            self.limit is not None or self.throughput is not None or (self.deadline_at != math.inf)
        )


def train_and_score(
    spec: ArchSpec | Mapping[str, Any],
    task: Task | str = "mnist1d",
    fidelity: Fidelity | int = 1,
    seed: int = 0,
    device: str = "cpu",
    callback: Callback | None = None,
    diagnostics: bool = True,
    amp: bool = False,
    *,
    checks_per_epoch: int = 1,
    deadline: float | None = None,
    progress: Progress | None = None,
    adaptive_limit: bool = False,
    checkpoint: str | None = None,
    resume_from: str | None = None,
) -> TrialResult:
    """Build ``spec`` for ``task``, train it at ``fidelity`` and score it.

    Args:
        spec: the candidate (an ArchSpec or a mapping of decision -> value). Training
            settings come from it: ``optimizer`` (adam, adamw, sgd, rmsprop), ``momentum``,
            ``lr``, ``weight_decay``, ``batch_size`` (capped at the train size), ``grad_clip``
            (0: none), ``trainable``.
        task: a Task or a registered task name.
        fidelity: a Fidelity, or a number of epochs.
        seed: seeds initialisation, dropout and batch order.
        device: torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        callback: called as ``callback(check, val_score)`` after each validation check
            (1-based; with ``checks_per_epoch=1`` the check is the epoch); returning False
            (None continues) stops the trial with status ``pruned``; its scores are kept and
            the test score is measured.
        diagnostics: measure :func:`~autodlgym.training.diagnostics.diagnose` on a train
            batch before training. It runs on its own random stream and leaves the model as it
            was, so it does not change the scores.
        amp: train under ``torch.autocast`` on CUDA (see :func:`amp_dtype_for`: bfloat16 on
            GPUs that compute it natively, else float16 with a GradScaler); ignored on CPU.
        checks_per_epoch: validation checks per epoch, evenly spaced in batches: the curve
            gets a point (with a fractional ``epoch``) and ``callback`` is called at each. They
            do not change training, so the scores at the end are the same for any value.
        deadline: ``time.time()`` at which a trial still training stops at its next batch
            with status ``stopped``; having trained some steps, it then scores the model it
            reached as a cut trial does (validation where training went past the last check,
            then test, within the same grace), so every trial with a score has both.
        progress: called as ``progress(epochs_done, steps_done)`` (epochs as a fraction)
            about twice a second while training, for progress displays.
        adaptive_limit: the trial's time limit follows this process's measured speed
            (:mod:`autodlgym.training.limits`): its predicted seconds from its FLOPs times a
            margin, at least a floor and at most ``fidelity.time_limit``. The limit and the
            speed (training FLOPs per second) are recorded as ``limit_seconds`` and
            ``throughput``.
        checkpoint: a file to write the trial's training state to (weights, optimiser,
            batch order and random state: :func:`save_state`) when it ends ``ok`` having
            trained all its fidelity asks (its epochs, or up to its ``max_steps`` or
            ``max_examples``, inside an epoch), so a longer trial of the same spec can
            continue from it.
            A file that cannot be written is reported in ``message``; the trial stays ``ok``.
        resume_from: a file written by ``checkpoint``: the trial continues from it and trains
            only the batches it lacks (``result.continued_from`` says so; its ``curve`` starts
            with the earlier trial's checks, those a trial trained from scratch makes too; its
            seconds count its own work). The result
            equals a trial trained from scratch at ``fidelity`` (same weights, scores and
            curve values: :func:`~autodlgym.trial.can_continue` says when a state qualifies); a missing or
            unsuitable file trains from scratch.

    A trial that reaches its time limit after training some steps is *cut*: it scores what
    it learned (validation at the fraction of an epoch it reached, then test, within a
    grace of a quarter of its limit) and ends ``stopped`` with ``cut=True`` and the epochs,
    steps and scores it completed, like a trial stopped by the search's deadline. Only a
    trial that learned nothing (its limit ran out while building or measuring it) ends
    ``timeout``. The limit is checked between batches and inside each forward pass (before
    every module), so a long batch, evaluation or diagnostic overruns it by at most one
    module's forward and a backward pass.

    Returns:
        A TrialResult. Scores are higher-is-better (accuracy or R^2); ``val_score`` is the last
        check's, ``test_score`` is measured once at the end for reporting. Failures (nan, oom,
        timeout, error) have None scores and keep the curve of the checks they finished,
        ``epochs_run`` (whole epochs) and ``steps_run``; their ``train_seconds`` +
        ``eval_seconds`` is the trial's whole wall time (building, FLOP counting,
        diagnostics, training and evaluation: a trial ended by a limit of N s records more
        than N s), where an ``ok`` trial's ``train_seconds`` counts its training steps only.
        ``peak_rss_mb`` / ``peak_gpu_mb`` are this trial's peaks (see :func:`_peak_memory_mb`).
        After an ``oom`` the memory is released (garbage collected, CUDA cache emptied) before
        returning, so the same process can train the next trial.

    Raises:
        AutoDLError: an unknown task or a bad fidelity (never for a failing candidate).
    """
    return train_model(
        spec, task, fidelity, seed, device, callback, diagnostics, amp,
        checks_per_epoch=checks_per_epoch, deadline=deadline, progress=progress,
        adaptive_limit=adaptive_limit, checkpoint=checkpoint, resume_from=resume_from,
    )[0]  # fmt: skip


def train_model(
    spec: ArchSpec | Mapping[str, Any],
    task: Task | str = "mnist1d",
    fidelity: Fidelity | int = 1,
    seed: int = 0,
    device: str = "cpu",
    callback: Callback | None = None,
    diagnostics: bool = True,
    amp: bool = False,
    *,
    checks_per_epoch: int = 1,
    deadline: float | None = None,
    progress: Progress | None = None,
    adaptive_limit: bool = False,
    checkpoint: str | None = None,
    resume_from: str | None = None,
) -> tuple[TrialResult, torch.nn.Module | None]:
    """:func:`train_and_score`, returning ``(result, model)``: the trained network, in eval
    mode on ``device``, when the result is ``ok`` or ``pruned``, else None (a failed
    candidate's weights are not worth keeping)."""
    import torch

    task = get_task(task) if isinstance(task, str) else task
    if not isinstance(fidelity, Fidelity):
        fidelity = Fidelity(epochs=fidelity)
    dev = torch.device(device)
    result = TrialResult(status=OK, device=str(dev))
    fork_devices = (
        [dev.index if dev.index is not None else torch.cuda.current_device()]
        if dev.type == "cuda"
        else []
    )
    rss_reset = _reset_peak_memory(dev)
    model = None
    resume = None
    if resume_from is not None:
        resume = load_state(resume_from, spec, task, fidelity, seed, amp, dev)
    cont = _Continuation(resume, save=checkpoint is not None)
    throughput = process_throughput() if adaptive_limit else None
    clock = _Clock(fidelity.time_limit, deadline, progress, throughput)
    threads = torch.get_num_threads()
    if task.io is not None and task.io.is_graph and dev.type == "cpu":
        # message passing on graphs of thousands of nodes gains nothing from more threads,
        # and OpenMP's barriers cost dearly on a busy machine: a 4-epoch GCN trial on csbm
        # took 5.8 s on 2 threads and 0.09 s on one (2 cores, load average 10)
        torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            model = _run(spec, task, fidelity, seed, dev, callback, diagnostics, amp, result,
                         clock, as_int("checks_per_epoch", checks_per_epoch, minimum=1),
                         cont)  # fmt: skip
    except _NonFinite as exc:
        _fail(result, NAN, str(exc))
    except _TimeLimit as exc:
        if result.cut and result.val_score is not None:  # cut, then its final scoring ran out
            result.message = f"{result.message}; {exc} while scoring it, test not measured"
            result.test_score = None
        else:
            _fail(result, TIMEOUT, str(exc))
            result.cut = None
    except _Stopped as exc:
        if result.status == STOPPED:  # stopped, then its scoring ran out of the grace
            result.message = f"{result.message}; {exc} while scoring it, test not measured"
        else:
            result.status = STOPPED
            result.message = str(exc)
        result.test_score = None
    except Exception as exc:  # noqa: BLE001 - a failing candidate never stops a search
        _fail(result, OOM if _is_oom(exc) else ERROR, f"{type(exc).__name__}: {exc}")
    finally:
        torch.set_num_threads(threads)
    if result.status in FAILURES:
        # a failed trial's time all went somewhere (building, FLOP counting, diagnostics,
        # training, an evaluation cut short): train + eval seconds are its whole wall time
        result.train_seconds = max(result.train_seconds, clock.elapsed() - result.eval_seconds)
    result.limit_seconds = clock.limit
    if throughput is not None:
        result.throughput = throughput.flops_per_second_now
    # Measured before memory is released: the peak is the trial's, OOM included.
    result.peak_rss_mb, result.peak_gpu_mb = _peak_memory_mb(dev, rss_reset)
    if result.status == OOM:
        # Here, not inside ``except``: there the exception's traceback still holds the
        # frames of _run, and through them the model, its activations and its optimizer.
        model = None
        _release_memory(dev)
    if checkpoint is not None and result.status == OK and cont.state is not None:
        try:
            save_state(checkpoint, cont.state)
        except OSError as exc:  # a full disk or a path this worker cannot see
            result.message = f"checkpoint not saved: {exc}"
    cont.state = None
    if model is not None and result.status in (OK, PRUNED):
        return result, model.eval()
    return result, None


def _run(
    spec: ArchSpec | Mapping[str, Any],
    task: Task,
    fidelity: Fidelity,
    seed: int,
    dev: torch.device,
    callback: Callback | None,
    diagnostics: bool,
    amp: bool,
    result: TrialResult,
    clock: _Clock,
    checks_per_epoch: int,
    cont: _Continuation,
) -> torch.nn.Module:
    """The trial proper; fills ``result``, returns the trained model and raises on failure.
    ``result`` holds what was reached when it raises (seconds, steps, epochs and the curve
    so far)."""

    from autodlgym.nn.build import build_model, configure_trainable

    spec = spec if isinstance(spec, ArchSpec) else ArchSpec(spec)
    feed = make_feed(task, dev, fidelity.max_train_samples)
    n = feed.n

    clock.begin()
    clock.check()
    clock.phase = "while building the model"
    model = build_model(spec, task.io)
    configure_trainable(model, str(spec.get("trainable", "all")), seed)
    model.to(dev)
    batch_size = max(1, min(int(spec.get("batch_size", 128)), n))
    cap = _step_cap(fidelity, feed, batch_size)
    if cont.resume is not None:
        _plan_resume(cont, feed.n_batches(batch_size), checks_per_epoch)
    if cont.resume is not None:
        model.load_state_dict(cont.resume["model"])
    hooks = _install_checks(model, clock) if clock.limited else []
    try:
        result.params = sum(p.numel() for p in model.parameters())
        result.trainable_params = sum(_trainable_count(p) for p in model.parameters())
        clock.check()
        clock.phase = "while counting FLOPs"
        result.flops = _count_flops(spec, task, model, feed.sample(1))
        if clock.throughput is not None and result.flops:
            # a continued trial is limited by the work it still does
            clock.set_limit(
                _adaptive_limit(
                    clock.throughput,
                    result.flops,
                    fidelity,
                    n,
                    batch_size,
                    feed,
                    checks_per_epoch,
                    cap,
                    cont,
                )  # fmt: skip
            )
        clock.check()
        if cont.resume is not None:  # measured at initialisation, by the trial it continues
            result.diagnostics = dict(cont.resume.get("diagnostics") or {})
        elif diagnostics:
            clock.phase = "during the initialisation diagnostics"
            result.diagnostics = _diagnose(
                model,
                feed.sample(min(batch_size, DIAGNOSTICS_BATCH)),
                task.loss,
                seed,
            )
            clock.check()
        try:
            _train(model, spec, task, fidelity, seed, dev, feed, batch_size,
                   callback, amp, result, clock, checks_per_epoch, cont, cap)  # fmt: skip
        except _TimeLimit as exc:
            if result.steps_run == 0:
                raise  # it learned nothing: a timeout
            _score_cut(model, task, feed, amp, dev, result, clock, str(exc))
        except _Stopped as exc:
            if result.steps_run == 0:
                raise  # stopped before it trained: nothing to score
            _score_cut(model, task, feed, amp, dev, result, clock, str(exc), deadline=True)
        finally:
            result.train_seconds = clock.pause()
    finally:
        for hook in hooks:
            hook.remove()
    return model


def _install_checks(model: torch.nn.Module, clock: _Clock) -> list[Any]:
    """Check the trial's limit and deadline before every module's forward pass, so a long
    batch, evaluation or diagnostic stops inside its work, not only after it."""

    def check(module: Any, args: Any) -> None:
        clock.check()

    return [m.register_forward_pre_hook(check) for m in model.modules()]


def _step_cap(fidelity: Fidelity, feed: Feed, batch_size: int) -> float:
    """The most steps a trial at ``fidelity`` trains (``max_steps``, and ``max_examples`` over
    the examples of a whole batch: the batch size, or the training set where one batch holds
    it all); infinite where only its epochs decide."""
    cap: float = fidelity.max_steps if fidelity.max_steps is not None else math.inf
    if fidelity.max_examples is not None:
        whole = feed.n if feed.n_batches(batch_size) == 1 else min(batch_size, feed.n)
        cap = min(cap, max(1, fidelity.max_examples // max(1, whole)))
    return cap


def _check_positions(n_batches: int, checks_per_epoch: int) -> dict[int, int]:
    """Batch index -> check number within the epoch, for the validation checks of an epoch:
    evenly spaced in batches, the last one ending the epoch."""
    k = min(checks_per_epoch, n_batches)
    return {round(j * n_batches / k) - 1: j for j in range(1, k + 1)}


def _plan_resume(cont: _Continuation, n_batches: int, checks_per_epoch: int) -> None:
    """Where a trial continuing from ``cont.resume`` starts, and what it inherits: the curve
    points and the losses since the last of them that a trial trained from scratch would hold
    at the batch the state was saved at. A state saved with other batches or checks per epoch
    is not continued (``cont.resume`` becomes None: the trial trains from scratch)."""
    saved = cont.resume
    assert saved is not None
    if saved.get("n_batches") != n_batches or saved.get("checks_per_epoch") != checks_per_epoch:
        cont.resume = None
        return
    epoch, batch = int(saved["epoch"]), int(saved["batch"])
    checks = _check_positions(n_batches, checks_per_epoch)
    expected = [
        round(e - 1 + (c + 1) / n_batches, 6)
        for e in range(1, epoch + 1)
        for c in sorted(checks)
        if e < epoch or c <= batch
    ]
    wanted = set(expected)
    # the saved trial's own last check, where it stopped inside an epoch, is not one of them
    curve = [dict(p) for p in saved["curve"] if p["epoch"] in wanted]
    if [p["epoch"] for p in curve] != expected:
        cont.resume = None
        return
    cont.curve = curve
    if batch == n_batches - 1:  # it ended an epoch: the next one starts afresh
        cont.first, cont.skip = epoch + 1, -1
        return
    cont.first, cont.skip = epoch, batch
    cont.unchecked = batch not in checks
    if cont.unchecked and saved.get("rng_unchecked") is None:
        cont.resume = None
        return
    last_check = max((c for c in checks if c <= batch), default=-1)
    losses = saved["epoch_losses"]
    for b, size, loss in zip(saved["epoch_batches"], saved["epoch_sizes"], losses, strict=True):
        if last_check < int(b) <= batch:
            cont.losses.append(loss)
            cont.sizes.append(int(size))


def _adaptive_limit(
    throughput: Throughput,
    flops: int,
    fidelity: Fidelity,
    n: int,
    batch_size: int,
    feed: Feed,
    checks_per_epoch: int,
    cap: float = math.inf,
    cont: _Continuation | None = None,
) -> float:
    """The trial's limit from its FLOPs and the work its fidelity asks for (less what the
    state it continues from trained)."""
    steps = fidelity.epochs * math.ceil(n / batch_size)
    examples = fidelity.epochs * n
    if cap < steps:
        steps = int(cap)
        examples = min(examples, steps * batch_size)
    checks = fidelity.epochs * min(checks_per_epoch, math.ceil(n / batch_size))
    if cont is not None and cont.resume is not None:
        steps = max(1, steps - cont.steps_done)
        examples = max(1, examples - cont.examples_done)
        checks = max(1, checks - len(cont.curve))
    scored = checks * feed.split_size("val") + feed.split_size("test")
    return trial_limit(throughput, flops, examples, steps, scored, ceiling=fidelity.time_limit)


def _score_cut(
    model: torch.nn.Module,
    task: Task,
    feed: Feed,
    amp: bool,
    dev: torch.device,
    result: TrialResult,
    clock: _Clock,
    reason: str,
    deadline: bool = False,
) -> None:
    """A trial cut at its limit after training, or stopped by the search's ``deadline``:
    score what it learned (validation where the last check is older than its last step, then
    test), within a grace, and end ``stopped`` (``cut=True`` for a limit)."""
    import torch

    clock.pause()
    clock.observe(result.flops)
    clock.extend(grace(clock.limit or 0.0), deadline=deadline)
    epochs = round(clock.epochs_done, 6)
    result.status = STOPPED
    if deadline:
        result.message = (
            f"{reason}; scored the model it reached after {result.steps_run} steps "
            f"({epochs:g} epochs)"
        )
    else:
        result.cut = True
        result.message = (
            f"cut: {reason} after {result.steps_run} steps ({epochs:g} epochs); "
            "kept the scores it reached"
        )
    use_amp = amp and dev.type == "cuda"
    amp_dtype = amp_dtype_for(dev) if use_amp else torch.float16
    score = functools.partial(
        _score, task=task, use_amp=use_amp, amp_dtype=amp_dtype, clock=clock, flops=result.flops
    )
    if not result.curve or result.curve[-1]["epoch"] < epochs:
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad):
            raise _NonFinite(f"parameters became non-finite by epoch {epochs:g}")
        t0 = _now()
        clock.phase = "while scoring the cut trial"
        val_score = score(model, feed, "val")
        result.eval_seconds += _now() - t0
        if not math.isfinite(val_score):
            raise _NonFinite(f"validation outputs became non-finite by epoch {epochs:g}")
        result.val_score = val_score
        result.epochs_run = max(result.epochs_run, math.floor(epochs))  # one it ended in full
        result.curve.append(
            {
                "epoch": epochs,
                "train_loss": result.train_loss,
                "val_score": val_score,
                "seconds": clock.elapsed(),
            }  # fmt: skip
        )
    t0 = _now()
    result.test_score = score(model, feed, "test")
    result.eval_seconds += _now() - t0
    if not math.isfinite(result.test_score):
        raise _NonFinite("test outputs are non-finite")


def _train(
    model: torch.nn.Module,
    spec: ArchSpec,
    task: Task,
    fidelity: Fidelity,
    seed: int,
    dev: torch.device,
    feed: Feed,
    batch_size: int,
    callback: Callback | None,
    amp: bool,
    result: TrialResult,
    clock: _Clock,
    checks_per_epoch: int,
    cont: _Continuation,
    cap: float = math.inf,
) -> None:
    """The training loop with its validation checks, then the test score (from where a
    saved trial stopped when ``cont`` continues one). ``cap``: the most steps it trains
    (:func:`_step_cap`)."""
    import torch
    import torch.nn.functional as F

    optimizer = make_optimizer(model, spec)
    grad_clip = float(spec.get("grad_clip", 0.0))
    loss_fn = F.cross_entropy if task.is_classification else F.mse_loss
    use_amp = amp and dev.type == "cuda"
    amp_dtype = amp_dtype_for(dev) if use_amp else torch.float16
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None
    order = torch.Generator().manual_seed(seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if use_amp:
        autocast = functools.partial(torch.autocast, "cuda", dtype=amp_dtype)
    else:
        autocast = contextlib.nullcontext  # entering a disabled autocast still costs ~10 us
    score = functools.partial(
        _score, task=task, use_amp=use_amp, amp_dtype=amp_dtype, clock=clock, flops=result.flops
    )

    n_batches = feed.n_batches(batch_size)
    # batch indices after which a check runs: evenly spaced, the last one ends the epoch
    check_after = _check_positions(n_batches, checks_per_epoch)
    max_steps = cap
    steps = examples = 0
    first, skip = 1, -1
    carried: tuple[list[Any], list[int]] = ([], [])  # losses since the last check, inherited
    if cont.resume is not None:
        saved = cont.resume
        optimizer.load_state_dict(saved["optimizer"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        # the random state a trial from scratch has there: before the saved trial's own last
        # check where that check is not one of its (scoring may draw: a DataLoader's seed)
        rng, cuda_rng = saved["rng"], saved.get("cuda_rng")
        if cont.unchecked:
            rng, cuda_rng = saved["rng_unchecked"], saved.get("cuda_rng_unchecked")
        torch.set_rng_state(rng)
        if dev.type == "cuda" and cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, dev)
        first, skip = cont.first, cont.skip
        # inside an epoch: its order is drawn again from where it began, and the batches
        # already trained are passed over
        order.set_state(saved["epoch_order"] if skip >= 0 else saved["order"])
        steps = result.steps_run = cont.steps_done
        examples = cont.examples_done
        result.epochs_run = first - 1
        result.curve = [dict(point) for point in cont.curve]
        result.train_loss = result.curve[-1]["train_loss"] if result.curve else None
        result.val_score = result.curve[-1]["val_score"] if result.curve else None
        result.continued_epochs = round(first - 1 + (skip + 1) / n_batches, 6)
        carried = (list(cont.losses), list(cont.sizes))
    stop = capped = False
    unchecked: tuple[Any, Any] | None = None
    # this epoch's batches (index, size, loss) and the batch order at its start, for a state
    # saved inside it
    epoch_batches: list[int] = []
    epoch_sizes: list[int] = []
    epoch_losses: list[Any] = []
    epoch_order = order.get_state()
    b = -1
    for epoch in range(first, fidelity.epochs + 1):
        model.train()
        losses, sizes = [], []  # summed once per check: no extra tensor op per step
        epoch_batches, epoch_sizes, epoch_losses = [], [], []
        epoch_order = order.get_state()
        if epoch == first and skip >= 0:
            losses, sizes = carried
            if cont.save:
                for bb, size, loss in zip(cont.resume["epoch_batches"], cont.resume["epoch_sizes"],
                                          cont.resume["epoch_losses"], strict=True):  # fmt: skip
                    epoch_batches.append(int(bb))
                    epoch_sizes.append(int(size))
                    epoch_losses.append(loss)
        clock.train()
        for b, batch in enumerate(feed.epoch(order, batch_size)):
            if epoch == first and b <= skip:
                continue  # trained by the state this trial continues from
            last = steps + 1 >= max_steps
            if batch is not None:  # None: a lone leftover example, which breaks batch norm
                clock.phase = f"in epoch {epoch}"
                clock.check()
                optimizer.zero_grad(set_to_none=True)
                with autocast():
                    loss = loss_fn(batch.forward(model), batch.y)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    loss.backward()
                if grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                losses.append(loss.detach())
                sizes.append(batch.size)
                if cont.save:
                    epoch_batches.append(b)
                    epoch_sizes.append(batch.size)
                    epoch_losses.append(losses[-1])
                steps += 1
                examples += batch.size
                clock.stretch_steps += 1
                clock.stretch_examples += batch.size
                result.steps_run = steps
                clock.tick(epoch - 1 + (b + 1) / n_batches, steps)
            if b not in check_after and not last:
                continue
            # a validation check: after each 1/checks_per_epoch of the epoch, and at max_steps
            if last and cont.save and b not in check_after:  # a check of this trial's only
                unchecked = (
                    torch.get_rng_state(),
                    torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                )
            sync()
            clock.pause()
            clock.observe(result.flops)
            clock.phase = f"during evaluation in epoch {epoch}"
            if losses:
                weights = torch.tensor(sizes, dtype=torch.float32, device=dev)
                train_loss = float(torch.stack(losses).float() @ weights) / max(sum(sizes), 1)
                losses, sizes = [], []
                result.train_loss = train_loss
                if not math.isfinite(train_loss):
                    raise _NonFinite(f"training loss became non-finite in epoch {epoch}")
            if not all(bool(torch.isfinite(p).all()) for p in trainable):
                raise _NonFinite(f"parameters became non-finite in epoch {epoch}")
            t0 = _now()
            val_score = score(model, feed, "val")
            result.eval_seconds += _now() - t0
            result.val_score = val_score
            result.curve.append(
                {
                    "epoch": round(epoch - 1 + (b + 1) / n_batches, 6),
                    "train_loss": result.train_loss,
                    "val_score": val_score,
                    "seconds": clock.elapsed(),
                }
            )
            if b == n_batches - 1:  # a whole epoch counts once its check is recorded
                result.epochs_run = epoch
            if not math.isfinite(val_score):
                raise _NonFinite(f"validation outputs became non-finite in epoch {epoch}")
            keep_going = callback(len(result.curve), val_score) if callback is not None else None
            if keep_going is not None and not keep_going:  # None means "no opinion"
                result.status = PRUNED
                result.message = f"stopped by the callback after check {len(result.curve)}"
                stop = True
            capped = last and not stop
            stop = stop or last
            if stop:
                break
            clock.train()
        if stop:
            break
        sync()
        clock.pause()

    # all it was asked to train (its epochs, or up to its cap): a longer trial can go on
    if cont.save and result.status != PRUNED and (capped or result.epochs_run == fidelity.epochs):
        cont.state = {
            "version": STATE_VERSION,
            "arch_id": spec.arch_id,
            "task": task.key,
            "seed": int(seed),
            "amp": bool(amp),
            "fidelity": fidelity.key(),
            "max_train_samples": fidelity.max_train_samples,
            "epochs": int(fidelity.epochs),
            "checks_per_epoch": int(checks_per_epoch),
            "n_batches": int(n_batches),
            # where it stopped: the last batch it trained, in this epoch
            "epoch": int(epoch) if fidelity.epochs >= first else int(first - 1),
            "batch": int(b) if fidelity.epochs >= first else int(n_batches - 1),
            "steps": int(steps),
            "examples": int(examples),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "order": order.get_state(),
            "epoch_order": epoch_order,
            "epoch_batches": epoch_batches,
            "epoch_sizes": epoch_sizes,
            "epoch_losses": [loss.detach().clone() for loss in epoch_losses],
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
            # before its last check, where that check came from its cap alone
            "rng_unchecked": unchecked[0] if unchecked else None,
            "cuda_rng_unchecked": unchecked[1] if unchecked else None,
            "curve": [dict(point) for point in result.curve],
            "train_loss": result.train_loss,
            "diagnostics": result.diagnostics,
        }
    clock.phase = "while scoring the test set"
    t0 = _now()
    result.test_score = score(model, feed, "test")
    result.eval_seconds += _now() - t0
    if not math.isfinite(result.test_score):
        raise _NonFinite("test outputs are non-finite")
    return model


class Batch:
    """One batch: the model's inputs, the rows of its output that are scored (None: all) and
    their targets. ``size`` counts examples (nodes or graphs for graph tasks)."""

    __slots__ = ("inputs", "select", "y", "size")

    def __init__(self, inputs: tuple, y: torch.Tensor, select: Any = None) -> None:
        self.inputs = inputs
        self.select = select
        self.y = y
        self.size = len(y)

    def forward(self, model: torch.nn.Module) -> torch.Tensor:
        out = model(*self.inputs)
        return out if self.select is None else out[self.select]

    def graph(self) -> tuple | None:
        """``(edge_index, batch, select)`` of a graph batch (None for arrays)."""
        if len(self.inputs) == 1:
            return None
        batch = self.inputs[2] if len(self.inputs) > 2 else None
        return self.inputs[1], batch, self.select


class Feed:
    """How a task's data reaches the model: training batches, evaluation batches, a sample
    for diagnostics. Arrays here (:class:`ArrayFeed`); graphs in
    :mod:`autodlgym.training.graphs`."""

    n: int

    def n_batches(self, batch_size: int) -> int:
        raise NotImplementedError

    def epoch(self, order: torch.Generator, batch_size: int) -> Any:
        """The epoch's batches in a seeded order (None for a batch skipped)."""
        raise NotImplementedError

    def batches(self, split: str, size: int = EVAL_BATCH) -> Any:
        """Batches covering ``split`` (``val`` or ``test``) for scoring, of at most ``size``
        examples where the feed can split it."""
        raise NotImplementedError

    def split_size(self, split: str) -> int:
        """Examples in ``split`` (``val`` or ``test``)."""
        raise NotImplementedError

    def sample(self, k: int) -> Batch:
        """The first ``k`` training examples as one batch."""
        raise NotImplementedError


class ArrayFeed(Feed):
    """A task's arrays held on the device; batches indexed from a seeded permutation."""

    def __init__(self, data: dict[str, torch.Tensor], max_train_samples: int | None) -> None:
        import torch

        self.data = data
        self.x, self.y = data["x_train"], data["y_train"]
        self.n = len(self.y)
        if max_train_samples is not None and max_train_samples < self.n:
            gen = torch.Generator().manual_seed(SUBSET_SEED)
            subset = torch.randperm(self.n, generator=gen)[:max_train_samples].to(self.x.device)
            self.x, self.y = self.x[subset], self.y[subset]
            self.n = len(self.y)

    def n_batches(self, batch_size: int) -> int:
        return -(-self.n // batch_size)

    def epoch(self, order: torch.Generator, batch_size: int) -> Any:
        import torch

        perm = torch.randperm(self.n, generator=order).to(self.x.device)
        for i in range(0, self.n, batch_size):
            idx = perm[i : i + batch_size]
            yield None if len(idx) == 1 < batch_size else Batch((self.x[idx],), self.y[idx])

    def batches(self, split: str, size: int = EVAL_BATCH) -> Any:
        x, y = self.data[f"x_{split}"], self.data[f"y_{split}"]
        for i in range(0, len(x), size):
            yield Batch((x[i : i + size],), y[i : i + size])

    def split_size(self, split: str) -> int:
        return len(self.data[f"y_{split}"])

    def sample(self, k: int) -> Batch:
        return Batch((self.x[:k],), self.y[:k])


def make_feed(task: Task, dev: torch.device, max_train_samples: int | None = None) -> Feed:
    """The feed of ``task``'s data on ``dev`` (its tensors made once per process)."""
    if task.io is not None and task.io.is_graph:
        from autodlgym.training.graphs import GraphFeed

        return GraphFeed(task, dev, max_train_samples)
    return ArrayFeed(device_data(task, dev), max_train_samples)


def eval_batch(flops: int | None) -> int:
    """Examples per evaluation batch for a model of ``flops`` FLOPs per example."""
    if not flops:
        return EVAL_BATCH
    return max(1, min(EVAL_BATCH, EVAL_FLOPS // int(flops)))


def warm_up() -> None:
    """Pay once, before any trial's clock runs, what the first trial of a process would pay:
    importing the model builder and the first use of torch's FLOP counter (seconds)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import autodlgym.nn.build  # noqa: F401
    import autodlgym.training.diagnostics  # noqa: F401

    with torch.no_grad(), FlopCounterMode(display=False):
        torch.nn.Linear(2, 2)(torch.zeros(1, 2))
    process_throughput()  # this machine's speed now, for adaptive time limits


def device_data(task: Task, dev: torch.device | str) -> dict[str, torch.Tensor]:
    """The task's arrays as tensors on ``dev`` (``x_train``, ``y_train``, ``x_val``, ...),
    made once per process and shared by every trial (do not modify them)."""
    import torch

    key = (task.name, task.kwargs, str(dev))
    tensors = _TENSORS.get(key)
    if tensors is None:
        data = task.load()
        tensors = {
            name: torch.tensor(getattr(data, name), device=dev)
            for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        }
        _TENSORS[key] = tensors
    return tensors


def make_optimizer(model: torch.nn.Module, spec: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimiser a trial of ``spec`` trains ``model`` with (``optimizer``, ``lr``,
    ``weight_decay``, ``momentum``; weights trained only in part do not decay)."""
    import torch

    name = str(spec.get("optimizer", "adam"))
    lr = float(spec.get("lr", 1e-3))
    wd = float(spec.get("weight_decay", 0.0))
    momentum = float(spec.get("momentum", 0.0))
    params = [p for p in model.parameters() if p.requires_grad]
    # weights that train only in part (a gradient mask) must not decay: decay would shrink
    # their frozen random part too
    decayed = [p for p in params if not hasattr(p, "_autodl_mask")]
    masked = [p for p in params if hasattr(p, "_autodl_mask")]
    groups = [
        g for g in ({"params": decayed}, {"params": masked, "weight_decay": 0.0}) if g["params"]
    ]
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, momentum=momentum, weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}; use adam, adamw, sgd or rmsprop")


def score_split(
    model: torch.nn.Module, feed: Feed, split: str, task: Task, *, flops: int | None = None
) -> float:
    """Accuracy or R^2 of ``model`` on ``split`` (``val`` or ``test``) of ``feed``, as a trial
    scores it (eval mode, no gradients, large batches; full precision)."""
    import torch

    return _score(model, feed, split, task, False, torch.float16, flops=flops)


def _score(
    model: torch.nn.Module,
    feed: Feed,
    split: str,
    task: Task,
    use_amp: bool,
    amp_dtype: torch.dtype,
    clock: _Clock | None = None,
    flops: int | None = None,
) -> float:
    """Accuracy or R^2 (over all outputs) on ``split`` (``val`` or ``test``), in eval mode and
    large batches (the clock's time limit and deadline are checked between batches), of at
    most ``EVAL_BATCH`` examples and ``EVAL_FLOPS`` FLOPs (``flops`` per example)."""
    import torch

    batch = eval_batch(flops)
    was_training = model.training
    model.eval()
    outs, ys = [], []
    try:
        with torch.no_grad(), torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
            for one in feed.batches(split, batch):
                if clock is not None:
                    clock.check()
                outs.append(one.forward(model).float())
                ys.append(one.y)
    finally:
        model.train(was_training)
    out = torch.cat(outs)
    y = torch.cat(ys)
    if task.is_classification:
        if not bool(torch.isfinite(out).all()):
            return math.nan
        return float((out.argmax(dim=1) == y).float().mean())
    sse = float(((out - y) ** 2).sum())
    sst = float(((y - y.mean(dim=0)) ** 2).sum())
    if not math.isfinite(sse):
        return math.nan
    return 1.0 - sse / sst if sst > 0 else 0.0


def _count_flops(spec: ArchSpec, task: Task, model: torch.nn.Module, one: Batch) -> int | None:
    """FLOPs of one example's forward pass, from the cost model
    (:func:`~autodlgym.searchspace.cost.estimate_cost`: recurrent cells and attention
    included, which torch's counter misses on CPU, where LSTMs and eval-mode attention run as
    fused kernels). Where the cost model cannot read the spec, torch's counter runs on the
    model; None where that fails too (training then shows whether the model works)."""
    from autodlgym.searchspace.cost import estimate_cost

    try:
        return int(estimate_cost(spec, task.io).flops)
    except Exception:  # noqa: BLE001 - fall back to measuring
        pass
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()  # batch statistics need more than one example
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            one.forward(model)
        return int(counter.get_total_flops()) // max(1, one.size)
    except Exception:  # noqa: BLE001 - a measurement, not a verdict on the candidate
        return None
    finally:
        model.train(was_training)


# the names these had before they were public (callers outside this module use the public ones)
_device_data = device_data
_make_optimizer = make_optimizer


def _diagnose(model: torch.nn.Module, batch: Batch, loss: str, seed: int) -> dict[str, Any]:
    """Initialisation diagnostics. ``diagnose`` leaves the model's parameters, buffers and
    gradients as they were; the fork keeps the trial's random stream as it was too."""
    import torch

    from autodlgym.training.diagnostics import diagnose

    x = batch.inputs[0]
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        return dict(diagnose(model, x, batch.y, loss, seed=seed, graph=batch.graph()).to_dict())


def _trainable_count(p: torch.nn.Parameter) -> int:
    """Entries that train: all of a parameter, or those its gradient mask lets through."""
    if not p.requires_grad:
        return 0
    mask = getattr(p, "_autodl_mask", None)
    return p.numel() if mask is None else int(mask.expand_as(p).count_nonzero())


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError):
        return True
    # torch's CPU allocator raises a plain RuntimeError ("can't allocate memory")
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _fail(result: TrialResult, status: str, message: str) -> None:
    result.status = status
    result.message = TrialResult.failure(status, message).message
    result.val_score = result.test_score = None


def amp_dtype_for(dev: torch.device) -> torch.dtype:
    """The autocast dtype for mixed precision on ``dev``: bfloat16 where the GPU computes it
    natively (compute capability 8.0 and up: A100, H100, RTX 30xx and later), else float16,
    which the trainer pairs with a GradScaler. ``torch.cuda.is_bf16_supported()`` is not used:
    it also says yes where bfloat16 is only emulated (V100, T4), which is slower than float16.
    """
    import torch

    major, _ = torch.cuda.get_device_capability(dev)
    return torch.bfloat16 if major >= 8 else torch.float16


#: Linux's per-process resident-set high-water mark, reset by writing "5" to clear_refs
#: (proc(5)); both files are per process, so trials in other processes do not interfere.
_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"


def _reset_peak_memory(dev: torch.device) -> bool:
    """Start this trial's peak-memory counters: CUDA's peak allocated bytes and, on Linux,
    the process's peak resident set (``VmHWM``). Returns whether the latter was reset."""
    import torch

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    try:
        with open(_CLEAR_REFS, "w") as f:
            # first hand back what earlier trials freed: glibc keeps freed heap pages resident,
            # and the peak would start from them
            _collect_earlier_trials()
            _trim_heap()
            f.write("5")
        return True
    except OSError:  # not Linux, or /proc is read-only: peak_rss_mb will be None
        return False


#: ``len(sys.modules)`` at the last collection before a trial
_modules_seen = 0


def _collect_earlier_trials() -> None:
    """Free what earlier trials in this process left, at a cost independent of the process.

    A trial's model, optimizer and batches are freed by reference counting when it returns:
    an ok or failed trial leaves no reference cycle (tests/training/test_memory.py), so only
    the young generations are collected. A full ``gc.collect()`` scans every object the process
    holds (0.16 s a trial with torch, pandas and Ray imported; about a second in a test
    session): it runs only when modules were imported since the last trial. Imports made
    inside a trial leave cycles holding its frames and so its model (the first optimizer a
    process builds imports torch's compiler stack). An OOM trial gets its full collection in
    :func:`_release_memory`.
    """
    global _modules_seen
    if len(sys.modules) != _modules_seen:
        gc.collect()
        _modules_seen = len(sys.modules)
    else:
        gc.collect(1)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def _trim_heap() -> None:
    """Return the C heap's free pages to the system (glibc's ``malloc_trim``; a no-op
    elsewhere), so the resident set is what is live."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _peak_memory_mb(dev: torch.device, rss_reset: bool) -> tuple[float | None, float | None]:
    """``(peak_rss_mb, peak_gpu_mb)`` since :func:`_reset_peak_memory`.

    ``peak_rss_mb`` is the process's peak resident set during the trial: everything live in the
    process when it started (interpreter, torch, the task's tensors; freed heap pages are
    handed back first) plus what the trial added on top; trials in one process differ by what
    they add. None where it cannot be reset per trial (non-Linux).
    ``peak_gpu_mb`` is ``torch.cuda.max_memory_allocated`` (tensors of this process on ``dev``,
    not the caching allocator's reserve, not other processes sharing the GPU); None on CPU.
    """
    import torch

    gpu = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    rss = None
    if rss_reset:  # otherwise VmHWM is the lifetime peak, not this trial's
        try:
            with open(_STATUS) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        rss = int(line.split()[1]) / 2**10  # kB
                        break
        except OSError:
            pass
    return rss, gpu


def _release_memory(dev: torch.device) -> None:
    """Give back what a failed trial left: collect its cycles, then return CUDA's cached blocks
    to the driver so the next trial (or a neighbour on a shared GPU) can use them."""
    import torch

    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
