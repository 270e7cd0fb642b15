"""The tests' fork server (`tests/zygote.py`) runs a command line as a new interpreter does:
the same output, exit code, environment and working folder, one new process per call."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests import zygote
from tests.helpers import ROOT, run_dfu, standin_env
from tests.tui.conftest import COMPLETED, FIXTURES


def test_a_forked_command_line_is_what_a_new_interpreter_does() -> None:
    server = zygote.server()
    assert server is not None and server.serves(dict(os.environ))
    env = dict(os.environ)
    for args in (
        ("status", "--runs-dir", str(FIXTURES)),  # exit 0, a table on stdout
        ("export", str(FIXTURES / COMPLETED), "--output", "-"),  # a CSV on stdout
        ("status", "nope", "--runs-dir", str(FIXTURES)),  # exit 2, one line on stderr
        ("--no-such-option",),  # argparse's usage and exit 2
    ):
        forked, cold = run_dfu(env, *args), run_dfu(env, *args, cold=True)
        assert (forked.returncode, forked.stdout, forked.stderr) == (
            cold.returncode,
            cold.stdout,
            cold.stderr,
        ), args
    # the caller's environment reaches the command (`run` checks the heartbeat up front)
    bad = {**env, "DFU_TUI_HEARTBEAT": "abc"}
    forked = run_dfu(bad, "run", "configs/default.toml")
    assert forked.returncode == 2 and "DFU_TUI_HEARTBEAT" in forked.stderr
    assert forked.stderr == run_dfu(bad, "run", "configs/default.toml", cold=True).stderr
    # an environment that changes how Python starts is not the server's to run
    assert not server.serves({**env, "HOME": "/elsewhere"})
    assert not server.serves({**env, "PYTHONPATH": "elsewhere"})  # relative
    assert not server.serves({**env, "PYTHONPATH": os.pathsep.join(["/a", "", "/b"])})


def test_folders_put_before_the_path_and_their_sitecustomize_are_a_new_interpreters() -> None:
    """The stand-in's environment (`PYTHONPATH` with its folder first) is served: the child
    has the very `sys.path` of a new interpreter and ran the folder's `sitecustomize`, which
    registered the stand-in backbone."""
    server = zygote.server()
    assert server is not None
    env = standin_env(dict(os.environ))
    assert server.serves(env)
    forked = server.run(["path"], env, ROOT, 60, "tests.probe")
    cold = subprocess.run(
        [sys.executable, "-m", "tests.probe", "path"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert (forked.returncode, forked.stdout, forked.stderr) == (0, cold.stdout, cold.stderr)
    lines = forked.stdout.splitlines()
    assert lines[1] == f"{ROOT / 'tests' / 'standin' / 'sitecustomize.py'} True"
    assert "standin" in lines[2]
    # without it: no stand-in
    plain = server.run(["path"], dict(os.environ), ROOT, 60, "tests.probe").stdout
    assert plain.splitlines()[0] != lines[0] and "standin" not in plain


def probe(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    server = zygote.server()
    assert server is not None
    return server.run(list(args), {**os.environ, **env}, ROOT / "tests", timeout, "tests.probe")


def test_each_call_is_a_new_process_with_the_callers_setting() -> None:
    old = os.umask(0o027)
    try:
        first = probe("who", PROBE="one")
    finally:
        os.umask(old)
    second = probe("who", PROBE="two")
    pid, cwd, value, mask, argv0 = first.stdout.splitlines()[0].split()
    assert (cwd, value, mask) == (str(ROOT / "tests"), "one", "0o27")
    assert argv0.endswith("probe.py") and first.stderr == "to stderr\n"
    # preloaded (and frozen): pandas, and ours
    assert first.stdout.splitlines()[1] == "True True True"
    assert second.stdout.split()[2] == "two" and second.stdout.split()[0] != pid
    assert int(pid) not in (os.getpid(), os.getppid())


# In a new interpreter: the libraries the server preloads, then each module of ours it
# preloads with an environment and a working folder that fail when read.
IMPORTS_READ_NOTHING = """
import os, sys
import tests.zygote as z
for name in z.PRELOAD:
    __import__(name)
names = z.ours()

class Tripwire(dict):
    def __getitem__(self, key):
        raise AssertionError(f"read {key!r} when imported")
    def get(self, key, default=None):
        return self[key]
    def __contains__(self, key):
        return self[key]

def no_folder():
    raise AssertionError("read the working folder when imported")

os.environ, os.getcwd = Tripwire(), no_folder
for name in names:
    __import__(name)
heavy = {"textual", "tensorflow", "keras", "ray"}
print(len(names), sorted({n.split(".")[0] for n in sys.modules} & heavy))
"""


def test_what_the_server_preloads_of_ours_reads_nothing_when_imported() -> None:
    """A forked command finds our modules imported by the server, not with its own
    environment or folder: so none of them may read either when imported; and none loads the
    dashboard's Textual or what trains (TensorFlow, Keras, Ray)."""
    names = zygote.ours()
    assert {"dfu_tui.cli", "dfu_tui.runs.supervisor", "dfu_tui.report"} <= set(names)
    assert not [n for n in names if n.startswith("dfu_tui.tui") or n.endswith("__main__")]
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTS_READ_NOTHING],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(len(names)), "[]"]


def test_ends_as_a_new_interpreter_would() -> None:
    raised = probe("raise")
    assert raised.returncode == 1
    assert "Traceback" in raised.stderr and "RuntimeError: the probe raised" in raised.stderr
    said = probe("exit")
    assert said.returncode == 1 and said.stderr == "said, and exit 1\n"
    assert probe("kill").returncode == -9
    with pytest.raises(subprocess.TimeoutExpired) as timed_out:
        probe("sleep", timeout=0.5)
    assert timed_out.value.cmd[:3] == [sys.executable, "-m", "tests.probe"]


def test_one_server_for_all_test_processes_and_none_is_a_new_interpreter(
    tmp_path, monkeypatch
) -> None:
    """Under `pytest -n` a test process uses the server its controlling process started (it
    did not start one); a server found gone runs the command in a new interpreter."""
    server = zygote.server()
    assert server is not None
    assert (server.proc is None) == bool(os.environ.get("PYTEST_XDIST_WORKER"))
    (tmp_path / "ready").touch()  # it once listened at this socket, and is gone
    base = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    gone = zygote.Zygote.attach(
        {"path": str(tmp_path / "socket"), "env": zygote.startup_env(os.environ), "base": base}
    )
    assert gone.serves(dict(os.environ))
    monkeypatch.setattr(zygote, "_SERVER", [gone])
    args = ("export", str(FIXTURES / COMPLETED), "--output", "-")
    done = run_dfu(dict(os.environ), *args)
    assert gone.gone and not gone.serves(dict(os.environ))
    assert done.returncode == 0 and done.stdout == run_dfu(dict(os.environ), *args).stdout
    assert done.stdout.startswith("row,fold,")
    # one that could not start (or ended) says so: nobody waits for it
    (tmp_path / "ready").unlink()
    (tmp_path / "gone").touch()
    never = zygote.Zygote.attach(gone.describe())
    began = time.monotonic()
    assert not never.listens(timeout=60) and never.gone
    assert time.monotonic() - began < 30  # at once, not after the minute it would wait
