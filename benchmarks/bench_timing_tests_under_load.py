"""The formerly timing-sensitive tests, run again and again beside a CPU hog.

Starts ``--hogs`` busy-loop processes (the equivalent of ``stress --cpu N``), then runs the
tests that used to decide pass or fail by wall-clock windows ``--runs`` times in a row, in one
process each (``-n 0``), and prints how many runs passed and how long each took. It asserts
nothing; a failing run prints pytest's last lines.

    python benchmarks/bench_timing_tests_under_load.py --hogs 4 --runs 20
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import subprocess
import sys
import time

#: the tests that compared wall-clock times or counted trials in a time window
TESTS = [
    "tests/training/test_time.py",
    "tests/test_runner.py::test_deadline_stops_the_trial_in_flight_and_resume_continues",
    "tests/test_runner.py::test_time_budget_stops_the_search",
    "tests/test_runner.py::test_trial_time_limit_gives_timeout_status",
    "tests/test_runner.py::test_progress_counts_time_and_shows_trials_in_flight",
    "tests/test_terminal.py::test_status_shows_trials_in_flight_compactly",
    "tests/test_terminal.py::test_a_chosen_bar_counts_time_when_there_is_a_time_budget",
    "tests/test_cli.py::test_resume_after_sigkill_loses_and_duplicates_nothing",
]


def _hog() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=4, help="busy-loop processes")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--stop-after", type=float, default=None, help="seconds; stop early")
    args = parser.parse_args()
    hogs = [mp.Process(target=_hog, daemon=True) for _ in range(args.hogs)]
    for p in hogs:
        p.start()
    passed, t_start = 0, time.monotonic()
    try:
        for i in range(1, args.runs + 1):
            t0 = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", *TESTS],
                capture_output=True,
                text=True,
            )
            ok = proc.returncode == 0
            passed += ok
            print(
                f"run {i}: {'passed' if ok else 'FAILED'} in {time.monotonic() - t0:.0f} s",
                flush=True,
            )
            if not ok:
                print(proc.stdout[-3000:], flush=True)
            if args.stop_after and time.monotonic() - t_start > args.stop_after:
                break
    finally:
        for p in hogs:
            p.terminate()
    print(f"{passed} of {i} runs passed beside {args.hogs} busy-loop processes")


if __name__ == "__main__":
    main()
