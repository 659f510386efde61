"""Overhead of autodlgym's trainer over a plain PyTorch loop, and of one env step and one store
write per trial.

The trainer and a hand-written loop train the same CNN spec (same model from ``build_model``,
same optimizer, same batches drawn by index from the same seeded permutation, a validation pass
per epoch and a test pass at the end) in this process, alternating, several times; the script
prints median wall times and their ratio (target <= 1.05) and checks that both give the same
scores. Initialisation diagnostics are off for the ratio and timed separately. It then times ``AutoDLEnv.step`` against a direct
``train_and_score`` call on a tiny trial and ``ResultStore.append`` (targets: under 5 ms each).

    OMP_NUM_THREADS=1 python benchmarks/bench_overhead.py [--epochs 5] [--repeats 11]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from autodlgym.nn.build import build_model, configure_trainable
from autodlgym.searchspace.space import SearchSpace
from autodlgym.tasks import get_task
from autodlgym.training.diagnostics import diagnose
from autodlgym.training.trainer import DIAGNOSTICS_BATCH, train_and_score
from autodlgym.trial import Fidelity

CNN = {
    "n_stages": 2, "stage1.block": "conv", "stage1.depth": 1, "stage1.width": 32,
    "stage1.kernel": 5, "stage1.dilation": 1, "stage2.downsample": "max",
    "stage2.block": "conv", "stage2.depth": 1, "stage2.width": 32, "stage2.kernel": 3,
    "stage2.dilation": 1, "connections": "chain", "activation": "relu", "norm": "none",
    "dropout": 0.0, "init": "he_normal", "zero_init_residual": False, "trainable": "all",
    "head_pool": "avg", "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0,
    "batch_size": 128, "grad_clip": 0.0,
}  # fmt: skip


def plain_loop(spec, task, tensors, epochs: int, seed: int) -> tuple[float, float]:
    """What one writes by hand: returns (last validation accuracy, test accuracy)."""
    x_train, y_train, x_val, y_val, x_test, y_test = tensors
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(spec, task.io)
        configure_trainable(model, spec["trainable"], seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=spec["lr"])
        order = torch.Generator().manual_seed(seed)
        n, bs = len(y_train), spec["batch_size"]
        for _ in range(epochs):
            model.train()
            for idx in torch.randperm(n, generator=order).split(bs):
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                val = float((model(x_val).argmax(1) == y_val).float().mean())
        with torch.no_grad():
            test = float((model(x_test).argmax(1) == y_test).float().mean())
    return val, test


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def cpu_timed(fn, *args, **kwargs):
    """(wall seconds, CPU seconds of this process, result). With one torch thread the CPU
    time is this process's own work, which other processes on a busy machine disturb less."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, time.process_time() - c0, out


def trainer_vs_plain(epochs: int, repeats: int) -> None:
    task = get_task("mnist1d")
    spec = SearchSpace.default().validate(CNN)
    d = task.load()
    tensors = [torch.tensor(getattr(d, k)) for k in ("x_train", "y_train", "x_val", "y_val",
                                                      "x_test", "y_test")]  # fmt: skip
    fid = Fidelity(epochs=epochs)
    train_and_score(spec, task, Fidelity(1, max_train_samples=200), diagnostics=False)  # warm-up
    plain_loop(spec, task, [t[:200] for t in tensors], 1, 0)
    n_diag = min(CNN["batch_size"], DIAGNOSTICS_BATCH)
    ours, plain, diag, ratios, cpu_ratios, same = [], [], [], [], [], True
    for r in range(repeats):
        if r % 2:  # alternate which goes first
            t_plain, c_plain, (val, test) = cpu_timed(plain_loop, spec, task, tensors, epochs, r)
        t_ours, c_ours, res = cpu_timed(train_and_score, spec, task, fid, seed=r, diagnostics=False)
        if not r % 2:
            t_plain, c_plain, (val, test) = cpu_timed(plain_loop, spec, task, tensors, epochs, r)
        same = same and (res.val_score, res.test_score) == (val, test)
        ours.append(t_ours)
        plain.append(t_plain)
        ratios.append(t_ours / t_plain)
        cpu_ratios.append(c_ours / c_plain)
        # what diagnostics add to a trial: diagnose() on a fresh model and one train batch
        model = build_model(spec, task.io)
        diag.append(timed(diagnose, model, tensors[0][:n_diag], tensors[1][:n_diag])[0])
    steps = epochs * -(-len(d.y_train) // CNN["batch_size"])
    print(
        f"CNN on mnist1d: {epochs} epochs = {steps} steps of {CNN['batch_size']}, "
        f"{repeats} alternating repeats, torch threads {torch.get_num_threads()}"
    )
    print(f"  plain PyTorch loop        median {statistics.median(plain):8.3f} s")
    print(f"  train_and_score           median {statistics.median(ours):8.3f} s (diagnostics off)")
    print(f"  ratio (median of pairs)   {statistics.median(ratios):8.3f}   target <= 1.05")
    print(f"  ratio of CPU times        {statistics.median(cpu_ratios):8.3f}   (median of pairs)")
    print(f"  diagnostics cost          median {1000 * statistics.median(diag):8.1f} ms per trial "
          f"({n_diag} examples; only when diagnostics are on)")  # fmt: skip
    print(f"  same scores from both loops in every repeat: {same}")


def env_and_store(repeats: int) -> None:
    try:
        from autodlgym.envs.autodl_env import AutoDLEnv
        from autodlgym.results.store import ResultStore
    except ImportError as exc:
        print(f"env/store overhead: skipped ({exc})")
        return
    space = SearchSpace.default()
    tiny = {**CNN, "n_stages": 1, "stage1.width": 8, "stage1.kernel": 3}
    tiny = {k: v for k, v in tiny.items() if not k.startswith("stage2.")}
    fid = Fidelity(epochs=1, max_train_samples=64)
    env = AutoDLEnv("mnist1d", space=space, fidelity=fid, budget=10**6)
    env.reset(seed=0)
    spec = space.validate(tiny)
    action = space.encode(spec)
    env.step(action)
    train_and_score(spec, "mnist1d", fid, diagnostics=True)  # warm-up
    steps, direct = [], []
    for r in range(repeats):
        steps.append(timed(env.step, action)[0])
        direct.append(timed(train_and_score, spec, "mnist1d", fid, seed=r)[0])
    # the env's own bookkeeping, timed without a trial in between: decode, seed, job; then
    # observation, reward and info from a result
    job, _ = env.prepare(action)
    result = env.history[-1][1]
    books = [timed(env.prepare, action)[0] + timed(env.finish, job, spec, result)[0]
             for _ in range(repeats)]  # fmt: skip
    env.close()
    diffs = [a - b for a, b in zip(steps, direct)]
    print(f"AutoDLEnv.step vs train_and_score, tiny trial ({repeats} alternating repeats):")
    print(
        f"  env.step median {1000 * statistics.median(steps):7.2f} ms, "
        f"train_and_score median {1000 * statistics.median(direct):7.2f} ms"
    )
    print(
        f"  env-step overhead         median {1000 * statistics.median(diffs):7.2f} ms per "
        "trial   target < 5 ms"
    )
    print(f"  (difference of the fastest runs, less sensitive to load: "
          f"{1000 * (min(steps) - min(direct)):.2f} ms)")  # fmt: skip
    print(f"  of which env bookkeeping  median {1000 * statistics.median(books):7.2f} ms per trial "
          "(prepare + finish, timed alone)")  # fmt: skip

    result = train_and_score(spec, "mnist1d", Fidelity(epochs=10, max_train_samples=64))
    with tempfile.TemporaryDirectory() as tmp, ResultStore(tmp) as store:
        writes = [timed(store.append, i, spec, fid, 0, result)[0]
                  for i in range(max(repeats, 200))]  # fmt: skip
    print(
        f"  store append ({len(result.curve)}-point curve, diagnostics) median "
        f"{1000 * statistics.median(writes):7.2f} ms per trial   target < 5 ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--env-repeats", type=int, default=30)
    args = parser.parse_args()
    trainer_vs_plain(args.epochs, args.repeats)
    env_and_store(args.env_repeats)


if __name__ == "__main__":
    main()
