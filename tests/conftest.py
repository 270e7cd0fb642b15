"""Shared fixtures: a private cache per test session and tiny demo datasets."""

from __future__ import annotations

import fcntl
import gc
import math
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SharedRun, run_dfu, set_args, shared_cnn_settings

# Keep TensorFlow quiet and small in tests that train.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The stand-in image branch in this process too (tests that train in-process); processes the
# tests start get it from `tests.helpers.standin_env`.
from dfu_tui import config as _config  # noqa: E402

_config.EXTRA_BACKBONES["standin"] = "tests.standin.branch:train"


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path_factory.getbasetemp() / "user-cache"
    monkeypatch.setenv("DFU_TUI_CACHE_DIR", str(cache))


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """A folder that `build` fills once per test session: under `pytest -n`, by the first
    test process that asks for it, while the others wait for it (a lock in the session's
    shared temporary folder) and then read the same folder; in one process, a folder of its
    own. Whoever uses it does not modify it. A build that failed is tried again."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = factory.mktemp(name)
        build(folder)
        return folder
    shared = factory.getbasetemp().parent  # the session's, above each process's own
    folder, done = shared / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo dataset of 14 patients, generated once per test session (`built_once`; do not
    modify)."""
    from dfu_tui.data.demo import write_demo

    folder = built_once(
        tmp_path_factory, "tiny-demo", lambda base: write_demo(base / "tiny", patients=14, seed=3)
    )
    return folder / "tiny"


@pytest.fixture
def tiny_demo(tiny_demo_master: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny demo dataset that a test may damage."""
    root = tmp_path / "data"
    shutil.copytree(tiny_demo_master, root)
    return root


def write_config(path: Path, text: str) -> Path:
    """Write a TOML config file and return its path."""
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def small_demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo dataset of 30 patients for training tests (do not modify)."""
    from dfu_tui.data.demo import write_demo

    return built_once(
        tmp_path_factory, "small-demo", lambda root: write_demo(root, patients=30, seed=3)
    )


@pytest.fixture(scope="session")
def shared_cnn_run(tmp_path_factory: pytest.TempPathFactory, small_demo_master: Path) -> SharedRun:
    """A real run (the forest and a real CNN on thermal_map, the radar on, `--jobs 1`) of the
    30-patient demo and what it printed, made once per test session (`built_once`) and
    shared by the run command's test, the final-model tests (`xdist_group("model")`) and the
    Ray executor's (`xdist_group("ray")`, another test process); copy the run before
    changing it."""

    def build(base: Path) -> None:
        env = {**os.environ, "DFU_TUI_CACHE_DIR": str(base / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = run_dfu(
            env,
            "run",
            "configs/default.toml",
            "--runs-dir",
            str(base / "runs"),
            "--jobs",
            "1",  # one TensorFlow process: the other core runs the other tests
            *set_args(shared_cnn_settings(small_demo_master)),
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        (base / "stdout.txt").write_text(proc.stdout, encoding="utf-8")

    base = built_once(tmp_path_factory, "cnn-run", build)
    (run,) = (base / "runs").iterdir()
    return SharedRun(run, (base / "stdout.txt").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def shared_leak_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real metadata-only run on the demo with the planted dressing leak, compared without
    the treatment group, made once per test process and shared by the radar tests and the
    dashboard's feature panels (mark their tests `xdist_group("leak")`; do not modify)."""
    from tests.helpers import leak_run

    run, stdout = leak_run(tmp_path_factory.mktemp("leak"), patients=60, folds=3, trees=60)
    (run / "stdout.txt").write_text(stdout, encoding="utf-8")
    return run


#: pytest's cache key for how long each slow test took last time (`pytest_sessionfinish`)
DURATIONS = "dfu-tui/slow-test-seconds"
#: `workerinput`'s key for the shared fork server (`pytest_configure_node`)
ZYGOTE = "dfu-tui/fork-server"
_took: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each slow test's seconds (setup, call and teardown), as its reports arrive (under
    `pytest -n`, in the controlling process too)."""
    if "slow" in report.keywords:
        _took[report.nodeid] = _took.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Keep this session's slow-test durations in pytest's cache (`.pytest_cache`), for the
    next session's order; the controlling process writes them, not each test process."""
    cache = getattr(session.config, "cache", None)
    if cache is None or os.environ.get("PYTEST_XDIST_WORKER") or not _took:
        return
    known = cache.get(DURATIONS, {})
    cache.set(DURATIONS, {**(known if isinstance(known, dict) else {}), **_took})


_frozen_at = [0]  # how many modules were loaded at the last `gc.freeze`
_full_collections = [0]  # since then


def _count_full_collections(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info.get("generation") == 2:
        _full_collections[0] += 1


gc.callbacks.append(_count_full_collections)


def _freeze_what_lives() -> None:
    """Between two tests, move the objects alive now out of the garbage collector's sight
    (`gc.freeze`) once a full collection has found them alive, or once many modules were
    loaded (the test modules when collected, TensorFlow in the tests that train in-process):
    each full collection walked all of them again (with TensorFlow loaded, 0.4 s a
    collection: 5 s of one test process's run). The finished test's own garbage goes first
    (a young-generation collection), so little that is dead is kept."""
    if _full_collections[0] or len(sys.modules) - _frozen_at[0] > 300:
        gc.collect(1)
        gc.freeze()
        _frozen_at[0] = len(sys.modules)
        _full_collections[0] = 0


def pytest_collection_finish(session: pytest.Session) -> None:
    _freeze_what_lives()


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _freeze_what_lives()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, in the controlling process: hand each test process the slow-test
    durations read once from the cache, so that all of them order the tests alike even if
    another session writes the cache meanwhile, and the fork server for their command lines
    (one for all: `tests.zygote.start_shared`)."""
    cache = getattr(node.config, "cache", None)
    known = cache.get(DURATIONS, {}) if cache is not None else {}
    node.workerinput[DURATIONS] = known if isinstance(known, dict) else {}
    from tests import zygote

    shared = zygote.start_shared()
    if shared is not None:
        node.workerinput[ZYGOTE] = shared.describe()


def pytest_configure(config: pytest.Config) -> None:
    """In a test process under `pytest -n`: the controlling process's fork server."""
    shared = getattr(config, "workerinput", {}).get(ZYGOTE)
    if shared:
        from tests import zygote

        zygote.attach(shared)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `pytest -n`, the tests that belong to no `xdist_group` go out in an order that
    spreads the slow ones (runs, trainings: they keep more than one core busy) among the
    others (the dashboard's, whose test process waits for the app to go idle), so that
    neither test process spends the last minutes on dashboard tests alone while cores idle;
    the second half is quick tests only, which even out when each process ends. The slow
    ones go longest first where pytest's cache knows how long they took last time (a long
    test handed out late was the suite's last 17 seconds), else in file order. Every test
    process gets the same durations from the controlling process (`pytest_configure_node`),
    so all collect the same order. The groups' tests keep their order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    known = getattr(config, "workerinput", {}).get(DURATIONS, {})

    def last_time(item: pytest.Item) -> float:
        took = known.get(item.nodeid)
        return -float(took) if isinstance(took, (int, float)) else -math.inf  # unknown: first

    grouped = [i for i in items if i.get_closest_marker("xdist_group")]
    rest = [i for i in items if not i.get_closest_marker("xdist_group")]
    slow = sorted((i for i in rest if i.get_closest_marker("slow")), key=last_time)
    quick = [i for i in rest if not i.get_closest_marker("slow")]
    spread = max(1, len(quick) // 2)  # the slow ones go among the first half
    step = max(1, spread // max(1, len(slow)))
    mixed: list[pytest.Item] = []
    for n, item in enumerate(quick):
        if n % step == 0 and slow:
            mixed.append(slow.pop(0))
        mixed.append(item)
    items[:] = [*grouped, *slow, *mixed]  # slow: any left over (more slow than quick ones)
