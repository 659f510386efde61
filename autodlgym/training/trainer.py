"""Train and score one candidate: ``train_and_score(spec, task, fidelity, seed, device)``.

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
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import Task, get_task
from autodlgym.trial import ERROR, NAN, OK, OOM, PRUNED, TIMEOUT, Fidelity, TrialResult

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: examples per forward pass when scoring (no gradients are kept, so this can be large)
EVAL_BATCH = 2048
#: most examples the initialisation diagnostics look at (their cost grows faster than linearly)
DIAGNOSTICS_BATCH = 64
#: the train subset of a fidelity with ``max_train_samples`` is a prefix of one fixed
#: permutation, so smaller budgets see subsets of what larger ones see
SUBSET_SEED = 0

Callback = Callable[[int, float], "bool | None"]

_TENSORS: dict[tuple[str, tuple, str], dict[str, torch.Tensor]] = {}


class _NonFinite(Exception):
    """Training produced a non-finite loss or parameter."""


class _TimeLimit(Exception):
    """The fidelity's time limit ran out."""


def train_and_score(
    spec: ArchSpec | Mapping[str, Any],
    task: Task | str = "mnist1d",
    fidelity: Fidelity | int = 1,
    seed: int = 0,
    device: str = "cpu",
    callback: Callback | None = None,
    diagnostics: bool = True,
    amp: bool = False,
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
        callback: called as ``callback(epoch, val_score)`` after each epoch (1-based);
            returning False (None continues) stops the trial with status ``pruned``; its
            scores are kept and the test score is measured.
        diagnostics: measure :func:`~autodlgym.training.diagnostics.diagnose` on a train
            batch before training. It runs on its own random stream and leaves the model as it
            was, so it does not change the scores.
        amp: train under ``torch.autocast`` on CUDA (see :func:`amp_dtype_for`: bfloat16 on
            GPUs that compute it natively, else float16 with a GradScaler); ignored on CPU.

    Returns:
        A TrialResult. Scores are higher-is-better (accuracy or R^2); ``val_score`` is the last
        epoch's, ``test_score`` is measured once at the end for reporting. Failures (nan, oom,
        timeout, error) have None scores and keep the curve of the epochs they finished.
        ``peak_rss_mb`` / ``peak_gpu_mb`` are this trial's peaks (see :func:`_peak_memory_mb`).
        After an ``oom`` the memory is released (garbage collected, CUDA cache emptied) before
        returning, so the same process can train the next trial.

    Raises:
        AutoDLError: an unknown task or a bad fidelity (never for a failing candidate).
    """
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
    try:
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            _run(spec, task, fidelity, seed, dev, callback, diagnostics, amp, result)
    except _NonFinite as exc:
        _fail(result, NAN, str(exc))
    except _TimeLimit as exc:
        _fail(result, TIMEOUT, str(exc))
    except Exception as exc:  # noqa: BLE001 - a failing candidate never stops a search
        _fail(result, OOM if _is_oom(exc) else ERROR, f"{type(exc).__name__}: {exc}")
    # Measured before memory is released: the peak is the trial's, OOM included.
    result.peak_rss_mb, result.peak_gpu_mb = _peak_memory_mb(dev, rss_reset)
    if result.status == OOM:
        # Here, not inside ``except``: there the exception's traceback still holds the
        # frames of _run, and through them the model, its activations and its optimizer.
        _release_memory(dev)
    return result


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
) -> None:
    """The trial proper; fills ``result`` and raises on failure."""
    import torch
    import torch.nn.functional as F

    from autodlgym.searchspace.build import build_model, configure_trainable

    spec = spec if isinstance(spec, ArchSpec) else ArchSpec(spec)
    data = _device_data(task, dev)
    x_train, y_train = data["x_train"], data["y_train"]
    n = len(y_train)
    if fidelity.max_train_samples is not None and fidelity.max_train_samples < n:
        gen = torch.Generator().manual_seed(SUBSET_SEED)
        subset = torch.randperm(n, generator=gen)[: fidelity.max_train_samples].to(dev)
        x_train, y_train = x_train[subset], y_train[subset]
        n = len(y_train)

    model = build_model(spec, task.io)
    configure_trainable(model, str(spec.get("trainable", "all")), seed)
    model.to(dev)
    result.params = sum(p.numel() for p in model.parameters())
    result.trainable_params = sum(_trainable_count(p) for p in model.parameters())
    result.flops = _count_flops(model, x_train[:1])
    batch_size = max(1, min(int(spec.get("batch_size", 128)), n))
    if diagnostics:
        result.diagnostics = _diagnose(
            model,
            x_train[: min(batch_size, DIAGNOSTICS_BATCH)],
            y_train[: min(batch_size, DIAGNOSTICS_BATCH)],
            task.loss,
            seed,
        )

    optimizer = _make_optimizer(model, spec)
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

    start = time.perf_counter()
    deadline = start + fidelity.time_limit if fidelity.time_limit is not None else math.inf
    for epoch in range(1, fidelity.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=order).to(dev)
        losses, sizes = [], []  # summed once per epoch: no extra tensor op per step
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            if len(idx) == 1 < batch_size:
                continue  # a lone leftover example would break batch norm
            if time.perf_counter() > deadline:
                raise _TimeLimit(
                    f"time limit of {fidelity.time_limit:g} s reached in epoch {epoch}"
                )
            xb, yb = x_train[idx], y_train[idx]
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = loss_fn(model(xb), yb)
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
            sizes.append(len(idx))
        sync()
        result.train_seconds += time.perf_counter() - t0
        weights = torch.tensor(sizes, dtype=torch.float32, device=dev)
        train_loss = float(torch.stack(losses).float() @ weights) / max(sum(sizes), 1)
        result.epochs_run = epoch
        result.train_loss = train_loss
        if not math.isfinite(train_loss):
            raise _NonFinite(f"training loss became non-finite in epoch {epoch}")
        if not all(bool(torch.isfinite(p).all()) for p in trainable):
            raise _NonFinite(f"parameters became non-finite in epoch {epoch}")

        t0 = time.perf_counter()
        val_score = _score(model, data["x_val"], data["y_val"], task, use_amp, amp_dtype)
        result.eval_seconds += time.perf_counter() - t0
        result.val_score = val_score
        result.curve.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_score": val_score,
                "seconds": time.perf_counter() - start,
            }
        )
        if not math.isfinite(val_score):
            raise _NonFinite(f"validation outputs became non-finite in epoch {epoch}")
        keep_going = callback(epoch, val_score) if callback is not None else None
        if keep_going is not None and not keep_going:  # None means "no opinion"
            result.status = PRUNED
            result.message = f"stopped by the callback after epoch {epoch}"
            break

    t0 = time.perf_counter()
    result.test_score = _score(model, data["x_test"], data["y_test"], task, use_amp, amp_dtype)
    result.eval_seconds += time.perf_counter() - t0
    if not math.isfinite(result.test_score):
        raise _NonFinite("test outputs are non-finite")


def _device_data(task: Task, dev: torch.device) -> dict[str, torch.Tensor]:
    """The task's arrays as tensors on ``dev``, made once per process."""
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


def _make_optimizer(model: torch.nn.Module, spec: ArchSpec) -> torch.optim.Optimizer:
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


def _score(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task: Task,
    use_amp: bool,
    amp_dtype: torch.dtype,
) -> float:
    """Accuracy or R^2 (over all outputs), in eval mode and large batches."""
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
        out = torch.cat(
            [model(x[i : i + EVAL_BATCH]).float() for i in range(0, len(x), EVAL_BATCH)]
        )
    model.train(was_training)
    if task.is_classification:
        if not bool(torch.isfinite(out).all()):
            return math.nan
        return float((out.argmax(dim=1) == y).float().mean())
    sse = float(((out - y) ** 2).sum())
    sst = float(((y - y.mean(dim=0)) ** 2).sum())
    if not math.isfinite(sse):
        return math.nan
    return 1.0 - sse / sst if sst > 0 else 0.0


def _count_flops(model: torch.nn.Module, x: torch.Tensor) -> int | None:
    """FLOPs of one example's forward pass (ops torch cannot count add 0); None where the
    counter itself fails (training then shows whether the model works)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()  # batch statistics need more than one example
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
        return int(counter.get_total_flops())
    except Exception:  # noqa: BLE001 - a measurement, not a verdict on the candidate
        return None
    finally:
        model.train(was_training)


def _diagnose(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str, seed: int
) -> dict[str, Any]:
    """Initialisation diagnostics. ``diagnose`` leaves the model's parameters, buffers and
    gradients as they were; the fork keeps the trial's random stream as it was too."""
    import torch

    from autodlgym.training.diagnostics import diagnose

    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        return dict(diagnose(model, x, y, loss, seed=seed).to_dict())


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
            # and the peak would start from them (a few ms, against trials of seconds)
            gc.collect()
            _trim_heap()
            f.write("5")
        return True
    except OSError:  # not Linux, or /proc is read-only: peak_rss_mb will be None
        return False


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
