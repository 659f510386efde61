"""Test-wide settings: every artefact stays in a temporary directory."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["trial_fixtures"]  # space, make_result, fidelity: hand-made trials

_ROOT = Path(tempfile.mkdtemp(prefix="autodlgym-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
for var, sub in (("MPLCONFIGDIR", "mpl"), ("RAY_TMPDIR", "ray"), ("AUTODLGYM_CACHE", "cache")):
    os.environ.setdefault(var, str(_ROOT / sub))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")

try:
    from hypothesis import HealthCheck, settings

    _HYPOTHESIS = dict(
        deadline=None,
        database=None,
        print_blob=True,  # a failure prints the example and how to reproduce it
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    # "autodlgym" (the default, CI's): the same examples on every run, so a draw cannot block
    # an unrelated change; "explore": fresh random examples, to hunt for new failures
    settings.register_profile("autodlgym", derandomize=True, **_HYPOTHESIS)
    settings.register_profile("explore", derandomize=False, **_HYPOTHESIS)
    settings.load_profile(os.environ.get("AUTODLGYM_HYPOTHESIS_PROFILE", "autodlgym"))
except ImportError:  # pragma: no cover
    pass


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that use Ray run last, one after the other, with one Ray started for them all
    (:func:`ray_cluster`). Under pytest-xdist (``--dist loadgroup``, set in pyproject.toml) they
    go to one worker together, and each test file's tests stay in one worker (its module
    fixtures are built once)."""
    ray = [item for item in items if item.get_closest_marker("ray") is not None]
    rest = [item for item in items if item.get_closest_marker("ray") is None]
    items[:] = rest + ray
    for item in rest:
        item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    for item in ray:
        item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """One local Ray (2 CPUs, no dashboard) for every test of the session that needs one; a
    RayExecutor made meanwhile shares it (and leaves it running)."""
    ray = pytest.importorskip("ray")
    from autodlgym.execution.ray_executor import ray_temp_dir

    temp = ray_temp_dir(tmp_path_factory.getbasetemp())
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)  # may lie outside the base temp (short path)


#: A small corner of the default space: fast trials for end-to-end tests.
TINY_SPACE = {
    "base": "default",
    "max_stages": 1,
    "globals": {
        "n_stages": {"options": [1]},
        "norm": {"options": ["none", "batch"]},
        "dropout": {"options": [0.0]},
        "trainable": {"options": ["all"]},
        "batch_size": {"options": [64]},
        "optimizer": {"options": ["adam", "sgd"]},
        "lr": {"options": [1e-3, 1e-2]},
    },
    "stage": {
        "block": {"options": ["mlp", "conv"]},
        "depth": {"options": [1]},
        "width": {"options": [8, 16]},
    },
}


@pytest.fixture(scope="module", autouse=True)
def _settled_heap():
    """Objects alive when a test module starts (the libraries imported so far, session
    fixtures) leave the garbage collector's generations: a full collection (Python's own, or
    the one after an out-of-memory trial) scans every tracked object, and in a test process
    holding torch, pandas, Ray and pytest that scan otherwise costs up to a second."""
    gc.collect()
    gc.freeze()
    yield


@pytest.fixture
def fake_clock():
    """A :class:`~autodlgym.clock.FakeClock` read by this process while the test runs: time
    stands still unless the test advances it or sets ``tick`` (seconds per reading)."""
    from autodlgym.clock import FakeClock, use_clock

    with use_clock(FakeClock()) as clock:
        yield clock


@pytest.fixture
def tiny_space_config() -> dict:
    import copy

    return copy.deepcopy(TINY_SPACE)


@pytest.fixture(scope="session")
def tiny_space_session_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny space as a file, for fixtures that outlive one test."""
    import json

    p = tmp_path_factory.mktemp("space") / "tiny_space.json"
    p.write_text(json.dumps(TINY_SPACE))
    return p


@pytest.fixture
def tiny_space_file(tmp_path: Path) -> Path:
    import json

    p = tmp_path / "tiny_space.json"
    p.write_text(json.dumps(TINY_SPACE))
    return p
