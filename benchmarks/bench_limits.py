"""Do searches survive a busy machine? Time-budgeted searches beside busy loops, one line each.

For each task and seed: ``autodlgym search --time-budget B`` (a subprocess, as a user runs
it) while ``--hogs`` Python busy loops hold the cores; printed: trials, how many were cut at
their time limit (kept their scores) and how many ended ``timeout`` with no score, the
overrun of the budget (the search's own seconds past B, and the command's wall time past B,
which includes starting Python, torch and loading the data), the best validation score and
its test score, and the training speed the run measured.

Tasks: ``mnist1d`` and scikit-learn's digits written as a folder of 32x32 PNGs
(``images:DIR``, the case whose limits did not hold). Usage::

    python benchmarks/bench_limits.py --budget 60 --seeds 0 --hogs 2

The machine's load is whatever else runs as well: figures are noisy; state the load.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def digits_folder(root: Path) -> Path:
    """scikit-learn's digits as one folder of 32x32 PNGs per class."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    out = root / "digits_img"
    d = load_digits()
    for i, (img, y) in enumerate(zip(d.images, d.target)):
        (out / str(y)).mkdir(parents=True, exist_ok=True)
        a = (img / 16 * 255).astype(np.uint8)
        Image.fromarray(a).resize((32, 32), Image.NEAREST).save(out / str(y) / f"{i}.png")
    return out


def run(task: str, seed: int, budget: float, root: Path) -> dict:
    import autodlgym

    out = root / f"run-{re.sub(r'[^a-z0-9]+', '_', task.lower())}-{seed}"
    cmd = [sys.executable, "-m", "autodlgym.cli", "search", "--task", task, "--time-budget",
           str(budget), "--seed", str(seed), "--out", str(out), "--no-progress"]  # fmt: skip
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=budget * 5 + 300)
    wall = time.perf_counter() - t0
    summary = next((ln for ln in p.stdout.splitlines() if " trials in " in ln), "")
    seconds = re.search(r"after ([\d.]+) s", summary)
    df = autodlgym.load_results(out) if (out / "results.sqlite").exists() else None
    row = {"task": task, "seed": seed, "rc": p.returncode, "wall_over": wall - budget}
    row["search_over"] = float(seconds.group(1)) - budget if seconds else float("nan")
    if df is None or df.empty:
        return {**row, "trials": 0, "err": p.stderr.strip().splitlines()[-1:]}
    cut = df["cut"].fillna(False).astype(bool) if "cut" in df else df.status.map(lambda s: False)
    best = df[df.val_score.notna()].sort_values("val_score", ascending=False)
    return {
        **row,
        "trials": len(df),
        "cut": int(cut.sum()),
        "bare_timeout": int(((df.status == "timeout") & df.val_score.isna()).sum()),
        "scored": int(df.val_score.notna().sum()),
        "best_val": float(best.val_score.iloc[0]) if len(best) else float("nan"),
        "its_test": float(best.test_score.iloc[0]) if len(best) else float("nan"),
        "gflops": float(df["throughput"].median() / 1e9) if "throughput" in df else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per search")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="busy loops")
    ap.add_argument("--tasks", nargs="+", default=["mnist1d", "images"])
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    tasks = [f"images:{digits_folder(root)}" if t == "images" else t for t in args.tasks]
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    try:
        print(f"budget {args.budget:g} s, {args.hogs} busy loops, load before: "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
        for task in tasks:
            for seed in args.seeds:
                r = run(task, seed, args.budget, root)
                name = "digits 32x32 images" if task.startswith("images:") else task
                if not r["trials"]:
                    print(f"{name} seed {seed}: no trials (rc {r['rc']}): {r['err']}")
                    continue
                print(
                    f"{name} seed {seed}: {r['trials']} trials, {r['scored']} scored, "
                    f"{r['cut']} cut, {r['bare_timeout']} timeout without a score; overrun "
                    f"{r['search_over']:+.1f} s (command {r['wall_over']:+.1f} s); best val "
                    f"{r['best_val']:.3f} (test {r['its_test']:.3f}); {r['gflops']:.2f} GFLOP/s "
                    f"measured; rc {r['rc']}; load {os.getloadavg()[0]:.1f}"
                )
    finally:
        for h in hogs:
            h.kill()
            h.wait()


if __name__ == "__main__":
    main()
