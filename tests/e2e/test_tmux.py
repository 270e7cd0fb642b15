"""End to end in a real terminal (tmux): launch with keys, drop the terminal, come back."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dfu_tui.runs.state import load_state
from tests.helpers import standin_env, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def tmux(session: str, *args: str) -> str:
    """A tmux command to the server of `session`: each terminal has a server of its own,
    so that tests on two test processes never meet in one (a session ending the shared
    server's last while another starts raced), nor in the user's own."""
    command = ["tmux", "-L", session, *args]
    return subprocess.run(command, capture_output=True, text=True, check=False).stdout


@contextlib.contextmanager
def terminal(session: str, command: str, size: tuple[int, int] = (120, 40)) -> Iterator[str]:
    """A tmux terminal named `session` running `command`, gone when the block ends (as an
    SSH connection that drops)."""
    x, y = str(size[0]), str(size[1])
    tmux(session, "new-session", "-d", "-s", session, "-x", x, "-y", y, command)
    socket = tmux(session, "display-message", "-p", "#{socket_path}").strip()
    try:
        yield session
    finally:
        tmux(session, "kill-server")
        if socket.endswith(session):  # the server leaves its socket file behind
            Path(socket).unlink(missing_ok=True)


def pane(session: str) -> str:
    return tmux(session, "capture-pane", "-p", "-t", session)


def shows(session: str, text: str, timeout: float) -> None:
    """Wait until the terminal shows `text`; fail with what it shows."""
    try:
        wait_for(lambda: text in pane(session), timeout)
    except AssertionError:
        raise AssertionError(f"{text!r} not shown in {timeout} s:\n{pane(session)}") from None


def test_dropped_terminal_does_not_stop_training(tmp_path: Path, small_demo_master: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "tiny.toml").write_text(
        f"[data]\nroot = '{small_demo_master}'\nimage_size = 32\n"
        "[modalities]\nuse = ['metadata', 'thermal_map']\n"
        "[cv]\nfolds = 2\n[metadata_model]\nn_estimators = 40\n[radar]\nenabled = false\n"
        # the stand-in image branch: the subject is the terminal, not training
        "[image_model]\nepochs = 6\npatience = 6\nbackbone = 'standin'\n",
        encoding="utf-8",
    )
    runs = tmp_path / "runs"
    standin = standin_env({}, epoch_seconds=0.2)
    env = (
        f"DFU_TUI_CACHE_DIR={tmp_path / 'cache'} DFU_TUI_HEARTBEAT=1 TF_CPP_MIN_LOG_LEVEL=3 "
        f"PYTHONPATH={standin['PYTHONPATH']} DFU_TUI_STANDIN_EPOCH=0.2"
    )
    command = (
        f"cd {tmp_path} && env {env} {sys.executable} -m dfu_tui --runs-dir {runs} "
        f"--config {configs / 'tiny.toml'}"
    )
    session = f"dfu-e2e-{os.getpid()}"
    with terminal(session, command):
        shows(session, "No runs", 60)

        def form_open() -> bool:
            if "new run" in pane(session):
                return True
            tmux(
                session, "send-keys", "-t", session, "n"
            )  # again, in case the app was still starting
            return False

        try:
            wait_for(form_open, 30, every=1.0)
        except AssertionError:
            raise AssertionError(pane(session)) from None
        shows(session, "0.70", 30)  # the form is filled (metadata weight)
        tmux(session, "send-keys", "-t", session, "C-l")
        events_file = wait_for(lambda: next(iter(runs.glob("*/events.jsonl")), None), 120)
        assert events_file is not None
        run_dir = events_file.parent
        wait_for(lambda: load_state(run_dir).epochs, 120)
    wait_for(lambda: load_state(run_dir).status in ("completed", "failed", "cancelled"), 240)
    assert load_state(run_dir).status == "completed"

    session2 = session + "-again"
    with terminal(session2, command):
        # the runs list names a run by its shortest unique prefix (as `status` does)
        shows(session2, run_dir.name[:11], 60)
        screen = pane(session2)
        assert "completed" in screen and "2/2" in screen
        tmux(session2, "send-keys", "-t", session2, "Enter")
        shows(session2, "sample sd", 30)
        kappa = load_state(run_dir).fold_results[0]["combinations"][0]["kappa"]
        assert f"{kappa:.3f}" in pane(session2)
        tmux(session2, "send-keys", "-t", session2, "Escape", "q")


def test_a_dashboard_whose_terminal_is_gone_ends(tmp_path: Path) -> None:
    """The terminal goes away without a SIGHUP reaching the dashboard (under `make run`,
    make takes it; or a parent ignores it): the dashboard ends within seconds rather than
    reading its end of file forever, half a core spinning on a shared server."""
    runs = tmp_path / "runs"
    command = (
        f"trap '' HUP; exec env DFU_TUI_CACHE_DIR={tmp_path / 'cache'} "
        f"{sys.executable} -m dfu_tui --runs-dir {runs}"
    )
    session = f"dfu-hup-{os.getpid()}"
    with terminal(session, command, (100, 30)):
        shows(session, "No runs", 60)
        (pid,) = [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit()
            and str(runs).encode() in (line := _cmdline(p))
            and b"-m\x00dfu_tui\x00" in line  # the dashboard, not the terminal's command
        ]

    def ended() -> bool:
        status = Path(f"/proc/{pid}/status")
        try:
            return "State:\tZ" in status.read_text()
        except OSError:
            return True

    wait_for(ended, 15)


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
