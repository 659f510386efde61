"""Per-trial memory, out-of-memory trials and the GPU-only paths, exercised on a CPU: peaks are
this trial's, an OOM raised inside a forward ends the trial ``oom`` with its memory released
and the worker carries on, an ``oom`` is never reused, and mixed precision picks bfloat16 only
where the GPU computes it natively."""

from __future__ import annotations

import gc
import sys
import weakref

import pytest
import torch

from autodlgym.execution.local import LocalExecutor
from autodlgym.nn import blocks
from autodlgym.results.store import ResultStore
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.training import trainer
from autodlgym.training.trainer import amp_dtype_for, train_and_score
from autodlgym.trial import OK, OOM, Fidelity, TrialJob

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-trial RSS peaks need Linux's clear_refs"
)

TINY = Fidelity(epochs=1, max_train_samples=128)


def mlp_spec(width: int, depth: int = 1) -> ArchSpec:
    # built directly: the default space stops at width 512
    return ArchSpec(
        {
            "n_stages": 1,
            "stage1.block": "mlp",
            "stage1.depth": depth,
            "stage1.width": width,
            "optimizer": "adam",
            "batch_size": 64,
            "init": "he_normal",
        }
    )


def _vm_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


#: Run in a fresh process: in a long test session freed heap pages of earlier tests are reused
#: by the trial without raising the resident set, so "before" would not be a clean baseline.
_PEAK_SCRIPT = """
import gc, json, sys
from autodlgym.nn.build import build_model
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import get_task
from autodlgym.training.trainer import train_and_score
from autodlgym.trial import Fidelity

big, small = (ArchSpec(json.loads(a)) for a in sys.argv[1:3])
fid = Fidelity(epochs=1, max_train_samples=128)
n_params = sum(p.numel() for p in build_model(big, get_task("digits").io).parameters())
train_and_score(small, "digits", fid, diagnostics=False)  # data and code loaded
gc.collect()
before = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
large = train_and_score(big, "digits", fid, diagnostics=False).to_dict()
after = train_and_score(small, "digits", fid, diagnostics=False).to_dict()
print(json.dumps({"n_params": n_params, "before": before, "large": large, "small": after}))
"""


@linux_only
def test_cpu_peak_is_this_trials_own():
    import json
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    specs = [mlp_spec(2048, depth=3).to_json(), mlp_spec(8).to_json()]
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, *specs], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    m = json.loads(out.stdout.strip().splitlines()[-1])
    large, small = m["large"], m["small"]
    # weights, gradients and Adam's two moments, float32: a floor for what training adds
    held_mb = 4 * m["n_params"] * 4 / 2**20  # about 8.5M parameters: 130 MiB
    assert large["status"] == small["status"] == OK
    assert large["peak_gpu_mb"] is None and small["peak_gpu_mb"] is None
    assert large["peak_rss_mb"] >= m["before"] + 0.9 * held_mb
    # a lifetime peak could only grow; this one starts again with each trial
    assert small["peak_rss_mb"] < large["peak_rss_mb"] - 0.5 * held_mb


def test_peak_rss_is_none_where_it_cannot_be_reset(monkeypatch):
    monkeypatch.setattr(trainer, "_CLEAR_REFS", "/nonexistent/clear_refs")
    result = train_and_score(mlp_spec(8), "digits", TINY, diagnostics=False)
    assert result.status == OK and result.peak_rss_mb is None


# Out of memory ------------------------------------------------------------------------------
OOM_WIDTH = 24  # the block of this width runs out of memory in its forward pass


@pytest.fixture
def oom_block(monkeypatch):
    """MLP blocks of width OOM_WIDTH raise CUDA's OutOfMemoryError when they train; a weak
    reference to the last such block is kept in ``alive``."""
    alive: list[weakref.ref] = []
    forward = blocks.MLPBlock.forward

    def raising(self, x):
        if self.out_shape[0] == OOM_WIDTH and torch.is_grad_enabled():
            alive[:] = [weakref.ref(self)]
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return forward(self, x)

    monkeypatch.setattr(blocks.MLPBlock, "forward", raising)
    return alive


@pytest.mark.parametrize("diagnostics", [False, True])
def test_oom_inside_a_forward_ends_the_trial_oom(oom_block, diagnostics):
    result = train_and_score(mlp_spec(OOM_WIDTH), "digits", TINY, diagnostics=diagnostics)
    assert result.status == OOM
    assert "OutOfMemoryError" in result.message and "20.00 GiB" in result.message
    assert result.val_score is None and result.test_score is None
    assert result.peak_rss_mb is not None or not sys.platform.startswith("linux")


def test_a_cpu_allocation_failure_is_an_oom(monkeypatch):
    # torch's CPU allocator fails with a RuntimeError, not a MemoryError
    def allocating(self, x):
        return x @ torch.empty(x.shape[1], 10**13)  # 40 TB: no machine gives it

    monkeypatch.setattr(blocks.MLPBlock, "forward", allocating)
    result = train_and_score(mlp_spec(8), "digits", TINY, diagnostics=False)
    assert result.status == OOM and "can't allocate memory" in result.message


def test_memory_is_released_after_the_except_block(oom_block, monkeypatch):
    seen = []
    release = trainer._release_memory

    def checked(dev):
        release(dev)
        # the model is gone once collected: nothing (no live traceback) holds it any more
        seen.append(oom_block[0]() is None)

    monkeypatch.setattr(trainer, "_release_memory", checked)
    result = train_and_score(mlp_spec(OOM_WIDTH), "digits", TINY, diagnostics=False)
    assert result.status == OOM and seen == [True]


@pytest.mark.parametrize("fails", [False, True])
@pytest.mark.parametrize("diagnostics", [False, True])
def test_a_trials_model_is_freed_without_a_full_collection(monkeypatch, fails, diagnostics):
    # the trainer collects only the young generations before each trial's peak-memory reset:
    # that is enough only if an ok or failed trial leaves no reference cycle holding its model
    alive: list[weakref.ref] = []
    forward = blocks.MLPBlock.forward

    def recording(self, x):
        alive[:] = [weakref.ref(self)]
        if fails and torch.is_grad_enabled():
            raise RuntimeError("a broken block")
        return forward(self, x)

    monkeypatch.setattr(blocks.MLPBlock, "forward", recording)
    train_and_score(mlp_spec(8), "digits", TINY, diagnostics=diagnostics)  # imports done
    gc.collect()
    gc.disable()
    try:
        result = train_and_score(mlp_spec(16), "digits", TINY, diagnostics=diagnostics)
        assert result.status == ("error" if fails else OK)
        assert alive and alive[0]() is None
    finally:
        gc.enable()


class _Cycle:
    def __init__(self):
        self.me = self


@pytest.mark.parametrize("imported", [False, True])
def test_a_full_collection_follows_only_a_trial_that_imported(monkeypatch, imported):
    import types

    cycle = _Cycle()
    ref = weakref.ref(cycle)
    trainer._collect_earlier_trials()  # sys.modules as it is now
    gc.collect()  # the cycle, still reachable, is now in the oldest generation
    del cycle
    if imported:  # a trial imported a module (whose import can leave cycles holding frames)
        monkeypatch.setitem(sys.modules, "_a_module_a_trial_imported", types.ModuleType("m"))
    gc.disable()
    try:
        trainer._collect_earlier_trials()
        assert (ref() is None) == imported
    finally:
        gc.enable()
        gc.collect()


def test_the_worker_carries_on_after_an_oom(oom_block):
    with LocalExecutor() as executor:
        for i, width in enumerate((OOM_WIDTH, 16)):
            executor.submit(TrialJob(i, mlp_spec(width).to_json(), "digits", TINY, seed=0))
        statuses = [executor.wait()[0][1].status for _ in range(2)]
    assert statuses == [OOM, OK]


def test_an_oom_is_never_reused(tmp_path, make_result):
    # memory depends on the machine and on neighbours sharing it (fractional GPUs, other
    # workers on the host), so an oom says nothing certain about the candidate
    spec = mlp_spec(16)
    with ResultStore(tmp_path) as store:
        store.add_pending(0, spec, TINY, 0)
        store.append(0, spec, TINY, 0, make_result(0, status=OOM))
        assert store.lookup(spec.arch_id, TINY, 0) is None
        store.add_pending(1, spec, TINY, 0)
        store.append(1, spec, TINY, 0, make_result(1))
        assert store.lookup(spec.arch_id, TINY, 0)[0] == 1


# Mixed precision ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "capability, dtype",
    [
        ((7, 0), torch.float16),  # V100: bfloat16 only emulated
        ((7, 5), torch.float16),  # T4
        ((8, 0), torch.bfloat16),  # A100
        ((8, 6), torch.bfloat16),
        ((9, 0), torch.bfloat16),  # H100
    ],
)
def test_amp_picks_bfloat16_only_on_native_support(monkeypatch, capability, dtype):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    # what torch.cuda.is_bf16_supported() would say with emulation counts for nothing
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_dtype_for(torch.device("cuda")) == dtype


def test_the_torch_floor_covers_the_calls():
    # the fp16 path builds torch.amp.GradScaler("cuda"), which torch 2.3 introduced
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    floor = re.search(r'"torch>=(\d+)\.(\d+)', text)
    assert floor and (int(floor[1]), int(floor[2])) >= (2, 3)
    assert 'GradScaler("cuda")' in Path(trainer.__file__).read_text()
    torch.amp.GradScaler("cuda", enabled=False)  # the call exists in the installed torch
