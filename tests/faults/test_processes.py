"""Stop, resume and run names under faults (issue 10, items 6, 7, 10 and 14), with real
supervisor and worker processes on a tiny metadata-only run."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dfu_tui.runs.procs import alive, run_processes
from dfu_tui.runs.state import load_state
from tests.helpers import (
    ROOT,
    STANDIN,
    detached_run,
    end_group,
    run_dfu,
    run_dfu_at_once,
    standin_env,
    tiny,
    wait_for,
)
from tests.tui.conftest import CANCELLED, COMPLETED, FIXTURES


def slow(data: Path) -> list[str]:
    """A run whose tasks take seconds without using the CPU (time to stop or kill it
    mid-run while the other tests run): a small forest and the stand-in image branch, whose
    epochs wait (`standin_env`); three folds, one worker."""
    return tiny(
        f"data.root='{data}'",
        "modalities.use=['metadata', 'thermal_map']",
        "cv.folds=3",
        "image_model.epochs=6",
        "image_model.patience=6",
        STANDIN,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {**os.environ, "DFU_TUI_CACHE_DIR": str(tmp_path / "cache"), "DFU_TUI_HEARTBEAT": "1"}
    return standin_env(base, epoch_seconds=0.15)


def detach(env: dict[str, str], runs: Path, data: Path) -> Path:
    return detached_run(env, runs, slow(data), "--jobs", "1")


def events(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x]


@pytest.mark.slow
def test_stop_right_after_detach_stops_for_real(
    tmp_path: Path, env: dict[str, str], small_demo_master: Path
) -> None:
    run = detach(env, tmp_path / "runs", small_demo_master)
    proc = run_dfu(env, "stop", str(run))  # at once: the lock is already held
    assert proc.returncode == 0 and "cancelled" in proc.stdout, proc.stdout + proc.stderr
    assert run_processes(run) == []  # nobody is left to write to the log
    after = events(run)
    assert after[-1]["kind"] == "run_cancelled"
    assert [e["kind"] for e in after].count("run_cancelled") == 1
    assert load_state(run).status == "cancelled"


def test_stop_never_signals_a_process_that_is_not_the_runs(tmp_path: Path) -> None:
    """A stale run whose recorded supervisor pid and group now belong to someone else."""
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        run = tmp_path / CANCELLED
        shutil.copytree(FIXTURES / CANCELLED, run)
        lines = (run / "events.jsonl").read_text().splitlines()
        kept = []
        for line in lines:
            e = json.loads(line)
            if e["kind"] == "run_cancelled":
                continue  # the run looks alive but its supervisor is gone
            if e["kind"] in ("run_started", "run_resumed"):
                e["pid"] = e["pgid"] = stranger.pid
            kept.append(json.dumps(e))
        (run / "events.jsonl").write_text("\n".join(kept) + "\n")
        proc = run_dfu(dict(os.environ), "stop", str(run))
        assert proc.returncode == 0, proc.stderr
        assert alive(stranger.pid) and stranger.poll() is None
        assert load_state(run).status == "cancelled"
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_ends_what_a_killed_supervisor_left_and_only_that(tmp_path: Path) -> None:
    """What a supervisor starts without naming the run on its command line (a local Ray
    instance and its workers, some of which ignore SIGTERM) is recorded by identity; after
    the supervisor was killed, stop ends exactly those processes, never a reused pid, and
    does not wait the workers' grace (half of `--grace`) for them: SIGKILL after a second
    (what stop took is asserted with a wide margin: 1 s against the 60 s it would be)."""
    from dfu_tui.runs.procs import (
        STARTED_FILE,
        TOKEN_ENV,
        descendants,
        identity,
        record_started,
    )

    run = tmp_path / CANCELLED
    shutil.copytree(FIXTURES / CANCELLED, run)
    token = secrets.token_hex(16)  # its own: another test may run beside it

    def start(command: list[str], secret: str | None = token) -> subprocess.Popen:
        env = {**os.environ, **({TOKEN_ENV: secret} if secret else {})}
        return subprocess.Popen(command, start_new_session=True, env=env)

    ignores_term = start(["bash", "-c", "trap '' TERM; sleep 60 & wait"])
    ours = [start(["sleep", "60"]), ignores_term]
    # strangers: one whose pid the record names with an older identity (a reused pid: it
    # cannot hold our secret token), one started by someone else (no token, another
    # session: identity is public in /proc and proves nothing, so it is never recorded)
    strangers = [start(["sleep", "60"], secret=None), start(["sleep", "60"], secret=None)]
    try:
        wait_for(lambda: len(descendants(ignores_term.pid)) == 1)  # its sleep
        record_started(run, [p.pid for p in ours] + descendants(ignores_term.pid), token)
        # a process that is not ours (no token, another session) is never recorded
        record_started(run, [strangers[1].pid], token)
        assert str(strangers[1].pid) not in json.loads((run / STARTED_FILE).read_text())
        doc = json.loads((run / STARTED_FILE).read_text())
        boot, ticks = identity(strangers[0].pid).split(":")
        doc[str(strangers[0].pid)] = {"identity": f"{boot}:{int(ticks) - 100}", "token": token}
        doc["not-a-pid"] = "x"
        (run / STARTED_FILE).write_text(json.dumps(doc))
        found = {p.pid: p.role for p in run_processes(run)}
        assert set(found) == {*(p.pid for p in ours), *descendants(ignores_term.pid)}
        assert set(found.values()) == {"started"}
        # the log still looks alive: its supervisor was killed
        lines = (run / "events.jsonl").read_text().splitlines()
        kept = [x for x in lines if json.loads(x)["kind"] != "run_cancelled"]
        (run / "events.jsonl").write_text("\n".join(kept) + "\n")
        # a grace that would give workers a minute: what ignores SIGTERM here gets a second
        proc = run_dfu(dict(os.environ), "stop", str(run), "--grace", "120")
        assert proc.returncode == 0, proc.stderr
        took = float(proc.stdout.split("cancelled after ")[1].split()[0])
        assert took < 30, proc.stdout
        assert run_processes(run) == []
        assert all(p.poll() is not None for p in ours)
        assert all(p.poll() is None for p in strangers)
        assert load_state(run).status == "cancelled"
    finally:
        for p in [*ours, *strangers]:
            end_group(p)


def test_stop_ends_what_a_killed_supervisors_processes_started_after_the_record(
    tmp_path: Path,
) -> None:
    """A killed supervisor's Ray instance keeps starting workers that no record names: they
    hold the supervisor's secret token, which proves them ours, so stop ends them too; a
    process of ours without the token is left alone."""
    from dfu_tui.runs.procs import TOKEN_ENV, cmdline, descendants, has_token, record_started

    run = tmp_path / CANCELLED
    shutil.copytree(FIXTURES / CANCELLED, run)
    token = secrets.token_hex(16)  # its own: another test may run beside it
    env = {**os.environ, TOKEN_ENV: token}
    # a recorded "raylet" that starts a "worker" once recorded, then is killed (-9)
    raylet = subprocess.Popen(
        ["bash", "-c", "sleep 0.5; sleep 60 & wait"], start_new_session=True, env=env
    )
    mine = subprocess.Popen(["sleep", "60"], start_new_session=True)
    worker_fd: int | None = None
    try:
        record_started(run, [raylet.pid], token)

        def workers() -> list[int]:  # its `sleep 60` (before it, `sleep 0.5` is its child)
            return [p for p in descendants(raylet.pid) if cmdline(p) == ["sleep", "60"]]

        (worker,) = wait_for(workers)
        # it outlives its group's leader: ended (if the test fails) through a pidfd taken
        # now, which names this very process even once its pid is reused
        worker_fd = os.pidfd_open(worker)
        raylet.kill()
        raylet.wait()
        found = {p.pid for p in run_processes(run)}
        # (says what the scan saw if it fails: it failed once with nothing found, cause not
        # known; pids wrap at 32768 here, see `end_group`)
        assert worker in found and mine.pid not in found, (
            found,
            cmdline(worker),
            has_token(worker, token),
            (run / "processes.json").read_text(),
        )
        lines = (run / "events.jsonl").read_text().splitlines()
        kept = [x for x in lines if json.loads(x)["kind"] != "run_cancelled"]
        (run / "events.jsonl").write_text("\n".join(kept) + "\n")
        proc = run_dfu(dict(os.environ), "stop", str(run))
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: not alive(worker), timeout=10)
        assert mine.poll() is None and run_processes(run) == []
    finally:
        if worker_fd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(worker_fd, signal.SIGKILL)
            os.close(worker_fd)
        for p in (raylet, mine):
            end_group(p)


def test_a_damaged_process_record_trusts_nothing(tmp_path: Path) -> None:
    from dfu_tui.runs.procs import STARTED_FILE

    stranger = subprocess.Popen(["sleep", "60"])
    try:
        from dfu_tui.runs.procs import identity

        true = identity(stranger.pid)
        for text in (
            "{",
            "[1, 2]",
            json.dumps({str(stranger.pid): "0:0"}),
            json.dumps({str(stranger.pid): true}),  # the format before tokens
            json.dumps({str(stranger.pid): {"identity": true, "token": ""}}),
            json.dumps({str(stranger.pid): {"identity": true, "token": ["x"]}}),
            "",
        ):
            (tmp_path / STARTED_FILE).write_text(text)
            assert run_processes(tmp_path) == []
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.slow
def test_resume_ends_orphans_and_only_one_of_two_resumes_wins(
    tmp_path: Path, env: dict[str, str], small_demo_master: Path
) -> None:
    run = detach(env, tmp_path / "runs", small_demo_master)
    wait_for(lambda: any(e["kind"] == "fold_finished" for e in events(run)))
    wait_for(lambda: any(p.role == "worker" for p in run_processes(run)))
    # the worker is held still, so it cannot finish before the resume finds it (SIGTERM
    # from the resume must still end it: the supervisor continues what it ends)
    orphans = [p for p in run_processes(run) if p.role == "worker"]
    for p in orphans:
        os.kill(p.pid, signal.SIGSTOP)
    os.kill(int((run / "lock").read_text()), signal.SIGKILL)
    assert orphans and all(alive(p.pid) for p in orphans)  # workers outlived their supervisor
    both = run_dfu_at_once(env, "resume", str(run), "--detach", "--jobs", "1", times=2)
    outcomes = [(p.returncode, p.stderr) for p in both]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2], outcomes
    loser = next(err for code, err in outcomes if code == 2)
    assert "already running" in loser and "Traceback" not in loser
    wait_for(lambda: load_state(run).status == "completed", timeout=300)
    log = events(run)
    assert any("orphaned process(es)" in e.get("text", "") for e in log if e["kind"] == "message")
    assert all(not alive(p.pid) for p in orphans)
    # folds complete before the kill were not scored (and flagged) a second time
    finished = [e["fold"] for e in log if e["kind"] == "fold_finished"]
    assert sorted(finished) == sorted(set(finished)) == list(range(1, 4))


def test_resumed_fold_flags_are_counted_once() -> None:
    """A log where a resume scored fold 1 again: its flags replace, never add."""
    from dfu_tui.runs.state import RunState

    lines = (FIXTURES / CANCELLED / "events.jsonl").read_text().splitlines()
    events_ = [json.loads(x) for x in lines]
    fold = [
        e
        for e in events_
        if e["kind"] in ("flag", "fold_finished") and e.get("scope", "fold") == "fold"
    ]
    once, twice = RunState("a"), RunState("b")
    for e in events_:
        once.apply(e)
        twice.apply(e)
    for e in fold:  # the same fold scored again
        twice.apply(e)
    assert once.flag_counts() == twice.flag_counts() == {"collapse": 1, "warning": 0}


@pytest.mark.parametrize(
    "name", ["/etc", "2026*", "[a-z]*", "**", "*", "?", "../runs", "", ".", "..", "2026/../x"]
)
def test_a_run_name_is_never_a_pattern(tmp_path: Path, name: str) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    proc = run_dfu(dict(os.environ), "status", name, "--runs-dir", str(runs))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no run" in proc.stderr and "Traceback" not in proc.stderr


def test_a_literal_prefix_still_finds_its_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    proc = run_dfu(dict(os.environ), "status", COMPLETED[:18], "--runs-dir", str(runs), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["run_id"] == COMPLETED
    many = run_dfu(dict(os.environ), "status", "2026", "--runs-dir", str(runs))
    assert many.returncode == 2 and "matches 2 runs" in many.stderr


def test_the_process_record_keeps_only_live_processes(tmp_path: Path) -> None:
    """Across resumes a run records new processes; a recorded one that is gone, or whose
    pid is another process now, is dropped, and a reused pid gets its new identity."""
    from dfu_tui.runs.procs import STARTED_FILE, TOKEN_ENV, identity, record_started

    token = secrets.token_hex(16)  # its own: another test may run beside it
    env = {**os.environ, TOKEN_ENV: token}
    first = subprocess.Popen(["sleep", "60"], env=env)
    second = subprocess.Popen(["sleep", "60"], env=env)
    try:
        record_started(tmp_path, [first.pid], token)
        first.kill()
        first.wait()
        # as if `second` had got a recorded pid back: an old identity under its pid
        doc = json.loads((tmp_path / STARTED_FILE).read_text())
        boot, ticks = identity(second.pid).split(":")
        doc[str(second.pid)] = {"identity": f"{boot}:{int(ticks) - 100}", "token": token}
        (tmp_path / STARTED_FILE).write_text(json.dumps(doc))
        record_started(tmp_path, [second.pid], token)
        assert json.loads((tmp_path / STARTED_FILE).read_text()) == {
            str(second.pid): {
                "identity": identity(second.pid),
                "token": token,
                "session": os.getsid(0),
            }
        }
        assert [p.pid for p in run_processes(tmp_path)] == [second.pid]
    finally:
        for p in (first, second):
            p.kill()
            p.wait()


@pytest.mark.slow  # three supervised runs of real worker processes
def test_tasks_of_a_fold_ending_together_one_killed_fail_the_run_naming_it(
    tmp_path: Path, small_demo_master: Path, monkeypatch
) -> None:
    """A fold's tasks may end within one poll, one of them killed: the run fails naming the
    killed task (it used to score the fold first and fail on the missing file); no fold is
    scored twice when its tasks end together. Real worker processes; the executor only
    reports them once every one of them has ended, as a slow poll would. Then workers
    take task after task, up to `executor.tasks_per_worker`."""
    from dfu_tui.config import load_config
    from dfu_tui.data.dataset import load_dataset
    from dfu_tui.runs.executor import LocalProcessExecutor, TaskOutcome
    from dfu_tui.runs.fingerprint import run_fingerprint, save_fingerprint
    from dfu_tui.runs.rundir import create_run_dir, write_features
    from dfu_tui.runs.supervisor import Supervisor

    for key, value in standin_env({"DFU_TUI_CACHE_DIR": str(tmp_path / "cache")}).items():
        monkeypatch.setenv(key, value)

    class TogetherExecutor(LocalProcessExecutor):
        """Reports outcomes only once no task runs; kills the image task of fold 1."""

        held: list[TaskOutcome] = []

        def submit(self, run_dir: Path, task_id: str, threads: int) -> None:
            super().submit(run_dir, task_id, threads)
            if task_id == "fold1-thermal_map":
                next(w for w in self._workers if w.task == task_id).proc.kill()

        def poll(self) -> list[TaskOutcome]:
            self.held = [*self.held, *super().poll()]
            if LocalProcessExecutor.running.fget(self):  # type: ignore[attr-defined]
                return []
            out, self.held = self.held, []
            return out

        @property
        def running(self) -> list[str]:  # a held outcome's task still counts as running
            busy = LocalProcessExecutor.running.fget(self)  # type: ignore[attr-defined]
            return [*busy, *(o.task_id for o in self.held)]

    def prepared(sets: list[str]) -> Path:
        cfg = load_config(ROOT / "configs" / "default.toml", sets)
        run = create_run_dir(tmp_path / "runs", cfg)
        write_features(run, cfg, load_dataset(cfg.dataset, modalities=[]))
        save_fingerprint(run.fingerprint, run_fingerprint(cfg))
        return run.path

    base = [
        f"data.root='{small_demo_master}'",
        "data.image_size=32",
        "cv.folds=2",
        "metadata_model.n_estimators=20",
        "radar.enabled=false",
        "image_model.epochs=2",
        STANDIN,
    ]
    from dfu_tui.runs.rundir import RunDir

    failing = RunDir(prepared(base))
    code = Supervisor(failing, 2, 1.0, executor=TogetherExecutor()).execute(resume=False)
    assert code != 0
    (failure,) = [e for e in events(failing.path) if e["kind"] == "run_failed"]
    assert failure["task"] == "fold1-thermal_map" and failure["exit_code"] == -9

    class Together(TogetherExecutor):
        def submit(self, run_dir: Path, task_id: str, threads: int) -> None:
            LocalProcessExecutor.submit(self, run_dir, task_id, threads)

    whole = RunDir(prepared(base))
    assert Supervisor(whole, 2, 1.0, executor=Together()).execute(resume=False) == 0
    scored = [e["fold"] for e in events(whole.path) if e["kind"] == "fold_finished"]
    assert sorted(scored) == [1, 2]  # each fold once

    # the config's executor: a fresh worker after `executor.tasks_per_worker` tasks (with
    # no limit one worker takes all four: test_run_writes_every_file)
    limited = RunDir(prepared([*base, "executor.tasks_per_worker=2"]))
    assert Supervisor(limited, 1, 1.0).execute(resume=False) == 0
    pids = [e["pid"] for e in events(limited.path) if e["kind"] == "task_started"]
    assert [sorted(set(pids), key=pids.index).index(p) for p in pids] == [0, 0, 1, 1]
    assert not [p for p in run_processes(limited.path) if p.role == "worker"]  # all ended

    # the supervisor's wait between two looks ends as soon as a worker answers, or dies
    import time

    executor = LocalProcessExecutor()
    try:
        for task in ("fold1-metadata", "fold2-metadata"):
            executor.submit(whole.path, task, 1)
            if task == "fold2-metadata":  # killed while it waits for its task
                os.kill(executor._workers[0].proc.pid, signal.SIGKILL)  # noqa: SLF001
            began, outcomes = time.monotonic(), list[TaskOutcome]()
            while not outcomes:
                executor.wait(120)
                outcomes = executor.poll()
                assert time.monotonic() - began < 60, "wait slept its whole time"
            assert [(o.task_id, o.exit_code) for o in outcomes] == [
                (task, 0 if task == "fold1-metadata" else -9)
            ]
    finally:
        executor.cancel()


def test_the_notify_hook_announces_collapses_and_the_end_and_never_holds_a_run(
    tmp_path: Path,
) -> None:
    """From the events: each fold COLLAPSE and the run's end (with its verdict) run the
    user's command with the run id, the state and what happened; the hook runs apart (a
    hook that hangs holds nothing), without our token; one that cannot start is a line."""
    import time

    from dfu_tui.runs.notify import Notifier
    from dfu_tui.runs.procs import TOKEN_ENV
    from dfu_tui.runs.rundir import RunDir

    run = tmp_path / COMPLETED
    shutil.copytree(FIXTURES / COMPLETED, run)
    out = tmp_path / "said.txt"
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import os, sys, time\n"
        f"open({str(out)!r}, 'a').write('|'.join(sys.argv[1:]) + '|' + "
        f"str(os.environ.get({TOKEN_ENV!r})) + chr(10))\n"
        "time.sleep(8)\n"  # a slow hook (it ends by itself)
    )
    os.environ[TOKEN_ENV] = "ab" * 16
    try:
        notifier = Notifier(f"{sys.executable} '{hook}'", RunDir(run))
        assert notifier.pump() == []  # made at the log's end: nothing old is announced
        notifier.reader.offset = 0
        began = time.monotonic()
        assert notifier.pump() == []
        assert time.monotonic() - began < 4  # not waited for
    finally:
        del os.environ[TOKEN_ENV]
    states = [state for state, _ in notifier.sent]
    assert states[-1] == "completed" and "collapse" in states
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == len(states))
    lines = out.read_text().splitlines()
    ended = next(x for x in lines if "|completed|" in x)
    assert ended.startswith(f"{COMPLETED}|completed|") and "minimum" in ended
    assert all(x.endswith("|None") for x in lines)  # the token is not the hook's
    collapse = next(x for x in lines if "|collapse|" in x)
    assert collapse.split("|")[2].startswith("fold ")
    missing = Notifier(str(tmp_path / "no-such-hook"), RunDir(run))
    missing.reader.offset = 0
    problems = missing.pump()
    assert problems and all("notify.command could not start" in p for p in problems)
