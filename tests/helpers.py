"""Helpers for tests that drive real `dfu-tui` processes."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")

#: The deterministic stand-in image branch (`tests/standin`), for tests whose subject is
#: process handling: `--set` it with `standin_env` (which registers it in every process).
STANDIN = "image_model.backbone='standin'"

#: The tiny run every training test starts from (32 px crops, 2 folds, 40 trees, 3 epochs
#: on one TensorFlow thread, no radar: its own tests turn it on); a test adds what it is about.
TINY = [
    "data.image_size=32",
    "cv.folds=2",
    "metadata_model.n_estimators=40",
    "image_model.epochs=3",
    "image_model.patience=3",
    "image_model.threads=1",
    "radar.enabled=false",
]


class SharedRun(NamedTuple):
    """A run a session fixture made once, and what its command printed."""

    run: Path
    stdout: str


def tiny(*extra: str) -> list[str]:
    """`TINY` and then `extra` (a later setting wins)."""
    return [*TINY, *extra]


def shared_cnn_settings(data_root: Path) -> list[str]:
    """The settings of the shared real CNN run (`conftest.shared_cnn_run`); a test that
    compares another executor's models with it runs the same."""
    return tiny(f"data.root='{data_root}'", "image_model.patience=2", "radar.enabled=true")


def standin_env(env: dict[str, str], epoch_seconds: float = 0.05) -> dict[str, str]:
    """`env` with the stand-in registered in every Python process started from it."""
    import os

    path = [str(ROOT / "tests" / "standin"), str(ROOT), env.get("PYTHONPATH", "")]
    return {
        **env,
        "PYTHONPATH": os.pathsep.join(p for p in path if p),
        "DFU_TUI_STANDIN_EPOCH": str(epoch_seconds),
    }


def set_args(items: list[str] | tuple[str, ...]) -> list[str]:
    """`--set KEY=VALUE` for each item, as the command line takes them."""
    return [arg for item in items for arg in ("--set", item)]


def run_dfu(
    env: dict[str, str], *args: str, timeout: float = 600, cold: bool = False
) -> subprocess.CompletedProcess[str]:
    """`python -m dfu_tui ARGS` in the repository root with `env`: a process forked by the
    test fork server (`tests.zygote`), or, with `cold` or an environment that changes how a
    process starts, a new interpreter."""
    if not cold:
        from tests import zygote

        server = zygote.server()
        if server is not None and server.serves(env):
            with contextlib.suppress(zygote.Unavailable):  # gone: a new interpreter
                return server.run(list(args), env, ROOT, timeout)
    return subprocess.run(
        [sys.executable, "-m", "dfu_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=timeout,
    )


def run_dfu_at_once(
    env: dict[str, str], *args: str, times: int, timeout: float = 300
) -> list[subprocess.CompletedProcess[str]]:
    """`run_dfu(env, *args)` `times` times at once: as many processes, started together."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(lambda _: run_dfu(env, *args, timeout=timeout), range(times)))


def detached_run(
    env: dict[str, str], runs: Path, sets: list[str], *options: str, config: str = ""
) -> Path:
    """`dfu-tui run CONFIG --detach` with `--set` for each of `sets` and extra command-line
    `options`; the directory of the run it started."""
    args = set_args(sets)
    proc = run_dfu(
        env,
        "run",
        config or "configs/default.toml",
        "--runs-dir",
        str(runs),
        "--detach",
        *options,
        *args,
    )
    assert proc.returncode == 0, proc.stderr
    return runs / proc.stdout.strip()


def wait_for(check: Callable[[], T], timeout: float = 240.0, every: float = 0.2) -> T:
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")


def end_group(proc: subprocess.Popen) -> None:
    """Kill the process group that `proc` leads (started with `start_new_session`) and reap
    `proc`; the group only while `proc` is not reaped yet (alive or a zombie), which keeps
    its number ours. Once reaped, the number is free: pids wrap at 32768 on this machine, and
    a test beside this one may lead a new group with it by now, whose processes are not
    ours to signal."""
    import contextlib
    import os
    import signal

    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def leak_run(base: Path, patients: int, folds: int, trees: int) -> tuple[Path, str]:
    """A real metadata-only run on the demo with the planted dressing leak, compared without
    the treatment group; returns (the run directory, its stdout)."""
    import os

    env = {**os.environ, "DFU_TUI_CACHE_DIR": str(base / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    sets = [
        f"demo.patients={patients}",
        "demo.planted_leak=true",
        "modalities.use=['metadata']",
        f"cv.folds={folds}",
        f"metadata_model.n_estimators={trees}",
        "cv.inner_folds=2",
        # two permutations per column and two forests a side (5 and 5 by default): the
        # planted leak is as plain (the same caveat and ranks), in 60 % of the time
        "radar.repeats=2",
        "radar.forest_seeds=2",
    ]
    args = set_args(sets)
    runs = base / "runs"
    proc = run_dfu(
        env,
        "run",
        "configs/default.toml",
        "--runs-dir",
        str(runs),
        "--compare-features",
        "treatment",
        "--jobs",
        "1",  # one worker process: the other core runs the other tests
        *args,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = runs.iterdir()
    return run, proc.stdout


POLL = 0.05  # seconds between two checks of a condition the dashboard is awaited for
#: How often a dashboard under test reads its runs folder (`DfuApp(refresh_seconds=...)`):
#: a test waits for that reading (a run's monitor opens once it is read) and the default's
#: quarter second is spent waiting; `test_live.py` keeps the default.
REFRESH = 0.05


async def until(pilot: Any, check: Callable[[], object], timeout: float = 120.0) -> None:
    """Let the dashboard run until `check()` is true; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s")
        await pilot.pause(POLL)


async def on_screen(pilot: Any, name: str) -> Any:
    """The app's screen once a screen of the class `name` is on top and mounted (a run's
    monitor or compare opens once the watcher thread has read the run's whole log), with
    every part it mounts after its first frame (the monitor's panels: `ready`)."""
    app = pilot.app
    await until(
        pilot,
        lambda: (
            type(app.screen).__name__ == name
            and app.screen.is_mounted
            and getattr(app.screen, "ready", True)
        ),
    )
    await pilot.pause()
    return app.screen


async def open_form(pilot: Any) -> Any:
    """Press `n` and return the launch form once its configs are read and it is filled."""
    from dfu_tui.tui.screens.launch import LaunchScreen

    await pilot.press("n")
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.ready)
    screen = app.screen
    await until(pilot, lambda: str(screen.query_one("#preview").render()))
    return screen
