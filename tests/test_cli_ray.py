"""`autodlgym search --workers 2` on Ray, as a user runs it: a search, and a driver killed with
SIGKILL mid-run that `--resume` brings to its full budget with no trial lost or duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from autodlgym import load_results

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CLI = [sys.executable, "-m", "autodlgym.cli"]


@pytest.fixture
def ray_env(tmp_path):
    """A private, short Ray temp dir; every process left with it in its command line is
    killed afterwards (a SIGKILLed driver cannot stop the Ray it started)."""
    ray_dir = tempfile.mkdtemp(prefix="adg-", dir="/tmp")
    env = dict(os.environ, RAY_TMPDIR=ray_dir, RAY_AUTH_MODE="disabled", OMP_NUM_THREADS="1")
    yield env
    subprocess.run(["pkill", "-9", "-f", ray_dir], check=False)
    subprocess.run(["rm", "-rf", ray_dir], check=False)


def _args(out, space_file, trials, epochs=1, samples=256):
    return [
        "search",
        "--out",
        str(out),
        "--space",
        str(space_file),
        "--trials",
        str(trials),
        "--epochs",
        str(epochs),
        "--max-train-samples",
        str(samples),
        "--workers",
        "2",
        "--no-progress",
    ]


def test_two_worker_search_and_driver_sigkill_resume(tmp_path, tiny_space_file, ray_env):
    a = subprocess.run(
        [*CLI, *_args(tmp_path / "a", tiny_space_file, 4)],
        env=ray_env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert a.returncode == 0, a.stderr[-2000:]
    df = load_results(tmp_path / "a")
    assert len(df) == 4 and set(df.worker.str[:3]) != {"loc"}  # trained on Ray workers

    out = tmp_path / "b"
    proc = subprocess.Popen(
        [*CLI, *_args(out, tiny_space_file, 12, epochs=4, samples=2048)],
        env=ray_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    n, deadline = 0, time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            n = len(load_results(out))
        except Exception:  # noqa: BLE001 - not created yet
            n = 0
        if n >= 3:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= n < 12
    r = subprocess.run(
        [*CLI, "search", "--out", str(out), "--resume", "--no-progress"],
        env=ray_env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    df = load_results(out)
    assert len(df) == 12
    assert sorted(df.trial_id) == list(range(12))
