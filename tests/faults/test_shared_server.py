"""A machine shared with colleagues, often as root (issue 20): a path we write to, a run folder
and its files are untrusted until checked. Tests that need another user use `nobody`
(chown as root; `setpriv` to act as them) and are skipped when not root."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_dfu
from tests.tui.conftest import CANCELLED, COMPLETED, FIXTURES

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


def copy_run(tmp_path: Path, run_id: str = COMPLETED) -> Path:
    runs = tmp_path / "runs"
    runs.mkdir(exist_ok=True)
    return Path(shutil.copytree(FIXTURES / run_id, runs / run_id))


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    return line


def special_targets(tmp_path: Path) -> dict[str, Path]:
    """Paths that are not a regular file of ours: a link to our file, a dangling link, a
    FIFO, a folder, a socket and (as root) a character device and another user's file."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    out = {}
    out["link"] = tmp_path / "link.csv"
    out["link"].symlink_to(victim)
    out["dangling"] = tmp_path / "dangling.csv"
    out["dangling"].symlink_to(tmp_path / "nowhere.csv")
    out["fifo"] = tmp_path / "fifo.csv"
    os.mkfifo(out["fifo"])
    out["folder"] = tmp_path / "folder.csv"
    out["folder"].mkdir()
    import socket

    out["socket"] = tmp_path / "sock.csv"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(out["socket"]))
    sock.close()
    if os.geteuid() == 0:
        out["device"] = tmp_path / "null.csv"
        os.mknod(out["device"], 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        out["theirs"] = tmp_path / "theirs.csv"
        out["theirs"].write_text("their work\n")
        os.chown(out["theirs"], NOBODY, NOBODY)
    return out


def snapshot(path: Path) -> tuple[int, int, int, bytes | None]:
    st = os.lstat(path)
    data = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
    return st.st_mode, st.st_uid, st.st_ino, data


@pytest.mark.parametrize("command", ["export", "report"])
def test_output_never_replaces_what_is_not_a_file_of_ours(tmp_path: Path, command: str) -> None:
    run = copy_run(tmp_path)
    for kind, target in special_targets(tmp_path).items():
        before = snapshot(target)
        proc = run_dfu(dict(os.environ), command, str(run), "--output", str(target), timeout=120)
        line = one_error(proc)
        assert str(target) in line, (kind, line)
        assert snapshot(target) == before, kind  # nothing at the path changed
    assert (tmp_path / "victim.txt").read_text() == "keep me\n"
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written


def test_output_replaces_a_regular_file_of_ours_and_dash_is_stdout(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    mine = tmp_path / "mine.csv"
    mine.write_text("old\n")
    proc = run_dfu(dict(os.environ), "export", str(run), "--output", str(mine))
    assert proc.returncode == 0 and f"replaced {mine}" in proc.stderr
    assert mine.read_text().startswith("row,") and stat.S_IMODE(mine.stat().st_mode) == 0o600
    new = tmp_path / "new.csv"
    proc = run_dfu(dict(os.environ), "export", str(run), "--output", str(new))
    assert proc.returncode == 0 and f"wrote {new}" in proc.stderr
    dash = run_dfu(dict(os.environ), "export", str(run), "--output", "-")
    assert dash.returncode == 0 and dash.stdout == new.read_text()
    assert not (ROOT / "-").exists()


@pytest.mark.parametrize("name", ["events.jsonl", "lock", "supervisor.log"])
def test_run_files_are_never_written_through_a_link(tmp_path: Path, name: str) -> None:
    """A run folder whose log, lock or supervisor log is a link to another file: stop and
    resume never write into the link's target."""
    run = copy_run(tmp_path, CANCELLED)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    target = run / name
    if name == "events.jsonl":
        shutil.copy(target, tmp_path / "events.copy")
    target.unlink(missing_ok=True)
    target.symlink_to(victim)
    for command in (("stop",), ("resume", "--detach")):
        proc = run_dfu(dict(os.environ), *command, str(run), timeout=120)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert victim.read_text() == "keep me\n", (command, proc.stderr)
    assert target.is_symlink()


@pytest.mark.parametrize("name", ["events.jsonl", "lock"])
def test_a_fifo_in_a_run_folder_never_hangs(tmp_path: Path, name: str) -> None:
    run = copy_run(tmp_path, CANCELLED)
    (run / name).unlink(missing_ok=True)
    os.mkfifo(run / name)
    runs = str(run.parent)
    for args in (
        ("status", "--runs-dir", runs),
        ("status", str(run), "--json"),
        ("export", str(run), "--output", str(tmp_path / "x.csv")),
        ("report", str(run), "--output", str(tmp_path / "x.html")),
        ("stop", str(run)),
    ):
        proc = run_dfu(dict(os.environ), *args, timeout=60)  # a hang fails by timeout
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.returncode in (0, 1, 2), (args, proc.returncode)
    assert stat.S_ISFIFO(os.lstat(run / name).st_mode)  # still what it was


@pytest.fixture
def shared(tmp_path: Path):
    """A folder every user may enter (pytest's own is root's, 0700)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="dfu-shared-", dir="/tmp"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@as_root
def test_another_users_run_is_listed_not_read_and_never_acted_on(shared: Path) -> None:
    """In a shared runs folder: a run of root's (0700) seen by `nobody` is "not readable",
    and their own run lists; root's stop, resume, tag, archive and report refuse a run
    folder that belongs to `nobody`."""
    tmp_path = shared
    runs = tmp_path / "runs"
    mine = copy_run(tmp_path, CANCELLED)  # root's, 0700
    os.chmod(mine, 0o700)
    theirs = Path(shutil.copytree(FIXTURES / COMPLETED, runs / COMPLETED))
    for folder, _dirs, files in os.walk(theirs):
        os.chown(folder, NOBODY, NOBODY)
        for f in files:
            os.chown(os.path.join(folder, f), NOBODY, NOBODY)
    for p in (tmp_path, runs):
        os.chmod(p, 0o755)
    env = {**os.environ, "HOME": str(tmp_path), "DFU_TUI_CACHE_DIR": str(tmp_path / "c")}

    def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
        drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        return subprocess.run(
            [*drop, sys.executable, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )

    for json_flag in ([], ["--json"]):
        proc = as_nobody("-m", "dfu_tui", "status", "--runs-dir", str(runs), *json_flag)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        if json_flag:
            states = {s["run_id"]: s["status"] for s in json.loads(proc.stdout)}
            assert states == {CANCELLED: "not readable", COMPLETED: "completed"}
        else:
            from dfu_tui.runs.rundir import short_ids

            short = short_ids([CANCELLED, COMPLETED])
            assert "not readable" in proc.stdout and short[COMPLETED] in proc.stdout
            assert short[CANCELLED] in proc.stdout  # listed, by its short id, never read
    # the dashboard's reader, as nobody: lists root's run as not readable and goes on
    snippet = (
        "import sys; from pathlib import Path; from dfu_tui.runs.catalog import RunCatalog; "
        "c = RunCatalog(Path(sys.argv[1])); c.refresh(); "
        "print({k: s.status for k, s in c.states.items()})"
    )
    proc = as_nobody("-c", snippet, str(runs))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == repr({COMPLETED: "completed", CANCELLED: "not readable"})
    before = {p: snapshot(p) for p in theirs.rglob("*")}
    for args in (
        ("stop", str(theirs)),
        ("resume", str(theirs), "--detach"),
        ("tag", str(theirs), "--add", "x"),
        ("archive", str(theirs)),
        ("report", str(theirs)),
    ):
        line = one_error(run_dfu(dict(os.environ), *args, timeout=120))
        assert "not by this user" in line, (args, line)
    assert {p: snapshot(p) for p in theirs.rglob("*")} == before  # not one file changed


def test_dashboard_lists_a_run_it_cannot_read(tmp_path: Path) -> None:
    """The catalog (the dashboard's reader) lists an unreadable folder as "not readable"
    and goes on (it crashed with PermissionError at start)."""
    if os.geteuid() == 0:
        pytest.skip("root reads every folder; covered as another user above")
    from dfu_tui.runs.catalog import RunCatalog

    runs = tmp_path / "runs"
    copy_run(tmp_path, COMPLETED)
    locked = runs / "20990101-000000-aaaaaa"
    locked.mkdir(mode=0o000)
    try:
        catalog = RunCatalog(runs)
        catalog.refresh()
        assert catalog.states[locked.name].status == "not readable"
        assert catalog.states[COMPLETED].status == "completed"
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "abc", "1e9", ""])
def test_heartbeat_variable_is_checked_before_a_run_exists(tmp_path: Path, value: str) -> None:
    env = {**os.environ, "DFU_TUI_HEARTBEAT": value, "DFU_TUI_CACHE_DIR": str(tmp_path / "c")}
    runs = tmp_path / "runs"
    proc = run_dfu(env, "run", "configs/default.toml", "--runs-dir", str(runs), timeout=120)
    assert "DFU_TUI_HEARTBEAT" in one_error(proc)
    assert not runs.exists() or not any(runs.iterdir())  # no half-made run
    run = copy_run(tmp_path, CANCELLED)
    assert "DFU_TUI_HEARTBEAT" in one_error(run_dfu(env, "resume", str(run), "--detach"))


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("stop", "--grace", "nan"), "--grace"),
        (("stop", "--grace", "-5"), "--grace"),
        (("stop", "--grace", "inf"), "--grace"),
        (("resume", "--jobs", "0"), "--jobs"),
        (("resume", "--jobs", "-3"), "--jobs"),
        (("resume", "--jobs", "100000"), "--jobs"),
    ],
)
def test_command_line_numbers_are_checked(tmp_path: Path, args: tuple[str, ...], name: str) -> None:
    run = copy_run(tmp_path, CANCELLED)
    before = (run / "events.jsonl").read_bytes()
    line = one_error(run_dfu(dict(os.environ), args[0], str(run), *args[1:]))
    assert name in line
    assert (run / "events.jsonl").read_bytes() == before  # nothing done


@pytest.mark.parametrize("text", ["null", "[]", '"x"', '{"config": 3}', "{", "\xff"])
def test_a_damaged_fingerprint_is_one_line(tmp_path: Path, text: str) -> None:
    run = copy_run(tmp_path, CANCELLED)
    (run / "fingerprint.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    line = one_error(run_dfu(dict(os.environ), "resume", str(run)))
    assert "fingerprint.json" in line


def test_configs_that_imply_impossible_work_or_floods_are_one_line_each(
    tmp_path: Path, tiny_demo_master: Path
) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    nested = tmp_path / "nested.toml"
    nested.write_text("[" + ".".join(f"t{i}" for i in range(30)) + "]\nx = 1\n")
    trees = tmp_path / "trees.toml"
    trees.write_text("[metadata_model]\nn_estimators = 100000000000000000000000000\n")
    many = tmp_path / "many.toml"
    names = ",".join(f'"c{i}"' for i in range(50_000))
    many.write_text(f"[features]\nexclude = [{names}]\n")
    batch = tmp_path / "batch.toml"
    batch.write_text("[data]\nimage_size = 512\n[image_model]\nbatch_size = 100000\n")
    for path, says in (
        (batch, "GiB of input per batch, above the 4 GiB limit"),
        (deep, "nested too deeply"),
        (nested, "nested deeper than"),
        (trees, "metadata_model.n_estimators: must be in 1..100,000"),
    ):
        line = one_error(run_dfu(dict(os.environ), "validate", str(path), timeout=120))
        assert says in line, line
    proc = run_dfu(
        {**os.environ, "DFU_TUI_CACHE_DIR": str(tmp_path / "c")},
        "validate",
        str(many),
        "--set",
        f"data.root='{tiny_demo_master}'",  # an existing dataset: no demo to generate
        timeout=300,
    )
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 21, len(errors)
    assert "and 49,980 more" in errors[-1]


def test_keras_and_matplotlib_write_into_our_cache_not_home(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "DFU_TUI_CACHE_DIR": str(cache)}
    env.pop("MPLCONFIGDIR", None)
    env.pop("KERAS_HOME", None)
    proc = run_dfu(env, "report", str(run), "--output", str(tmp_path / "r.html"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not any(home.iterdir()), list(home.iterdir())  # matplotlib wrote nothing there
    assert stat.S_IMODE((cache / "matplotlib").stat().st_mode) == 0o700


def test_a_stop_racing_a_starting_resume_stops_it(tmp_path: Path) -> None:
    """A stop that finds nothing to signal leaves a request: a supervisor that starts after
    it (a resume past its checks) stops before training; `resume` itself clears an old
    request first, so a later resume runs."""
    from dfu_tui.config import load_config
    from dfu_tui.runs.rundir import RunDir, create_run_dir
    from dfu_tui.runs.supervisor import clear_stop, stop_requested

    def stopped_then_started(run: Path, *resume: str) -> subprocess.CompletedProcess[str]:
        """`stop` with nothing to signal, then a supervisor that was past its checks."""
        stop = run_dfu(dict(os.environ), "stop", str(run))
        assert stop.returncode == 0 and "cancelled" in stop.stdout, stop.stderr
        assert (run / "stop.request").is_file()
        return subprocess.run(
            [sys.executable, "-m", "dfu_tui.supervise", str(run), *resume, "--jobs", "1"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )

    run = copy_run(tmp_path, CANCELLED)
    before = (run / "events.jsonl").read_bytes()
    started = stopped_then_started(run, "--resume")
    assert started.returncode == 130, started.stdout + started.stderr
    assert "stopped while the resume was starting" in started.stdout
    assert (run / "events.jsonl").read_bytes() == before  # nothing trained, nothing logged
    clear_stop(RunDir(run))  # what `resume` does first
    assert not stop_requested(RunDir(run))
    # a new run's supervisor too: a stop that came while it was starting stops it
    fresh = create_run_dir(tmp_path / "new", load_config(ROOT / "configs" / "default.toml"))
    started = stopped_then_started(fresh.path)
    assert started.returncode == 130, started.stdout + started.stderr
    assert "stopped while the run was starting" in started.stdout
    kinds = [json.loads(x)["kind"] for x in fresh.events.read_text().splitlines() if x]
    assert "run_started" not in kinds and kinds[-1] == "run_cancelled"


def test_odd_folders_on_the_command_line_are_one_line(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "linked").symlink_to(real)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    env = {**os.environ, "DFU_TUI_CACHE_DIR": str(tmp_path / "c")}
    for args, says in (
        (("demo-data", str(tmp_path / "linked"), "--patients", "12"), "a symbolic link"),
        (("demo-data", str(tmp_path / "dangling"), "--patients", "12"), "a symbolic link"),
        (("status", "--runs-dir", str(tmp_path / "dangling")), "dangling symbolic link"),
        (("run", "configs/default.toml", "--runs-dir", str(tmp_path / "dangling")), "dangling"),
    ):
        line = one_error(run_dfu(env, *args, timeout=120))
        assert says in line, (args, line)
    assert not any(real.iterdir())  # nothing written through the link
    listed = run_dfu(env, "status", "--runs-dir", "/proc/1")
    assert listed.returncode == 0 and "not readable" not in listed.stdout  # not run folders


def test_report_of_a_run_whose_config_is_not_utf8(tmp_path: Path) -> None:
    run = copy_run(tmp_path, CANCELLED)
    (run / "config.toml").write_bytes(b"\xff\xfe[data]\n")
    proc = run_dfu(dict(os.environ), "report", str(run), "--output", str(tmp_path / "r.html"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "not UTF-8" in (tmp_path / "r.html").read_text()


# a server as Ray's are: bound to every interface; is it reachable from this namespace?
LISTENER = """
import json, socket, sys, threading
from dfu_tui.runs import netns
if sys.argv[1] == "threaded":
    threading.Thread(target=threading.Event().wait, daemon=True).start()
why = netns.isolate()
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("0.0.0.0", 0))
server.listen()
inner = socket.create_connection(("127.0.0.1", server.getsockname()[1]), timeout=5)
print(json.dumps({"why": why, "port": server.getsockname()[1], "seen": netns.interfaces()}))
sys.stdout.flush()
sys.stdin.read()
"""


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_isolated_network_has_loopback_only(user: str) -> None:
    """What binds every interface in the isolated namespace is reachable on its loopback and
    from nowhere else: as root, and as another user (a user namespace, single-threaded)."""
    from dfu_tui.runs import netns

    if user == "nobody" and os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    cmd = [*(drop if user == "nobody" else []), sys.executable, "-c", LISTENER, "single"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        got = json.loads(line)
        if got["why"] and "namespace" in got["why"] and os.geteuid() != 0:
            pytest.skip(f"this system grants no namespace: {got['why']}")
        assert got["why"] == "" and got["seen"] == ["lo"]
        assert len(netns.interfaces()) >= 1
        # from here (the machine's own namespace), nothing listens on that port
        import socket

        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", got["port"]), timeout=2).close()
    finally:
        proc.kill()
        proc.wait()


@as_root
def test_isolation_refused_says_why_and_changes_nothing() -> None:
    """Another user's process that already has threads cannot have a user namespace: the
    reason names the way out, and the process keeps the machine's network as it was."""
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    proc = subprocess.run(
        [*drop, sys.executable, "-c", LISTENER, "threaded"],
        cwd=ROOT,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    got = json.loads(proc.stdout)
    assert "--detach" in got["why"]
    from dfu_tui.runs import netns

    assert got["seen"] == netns.interfaces()


def test_which_configs_get_a_private_network() -> None:
    """A new local Ray instance (no address or "local") is isolated, in the CLI, the early
    supervisor check (raw TOML values) and the executor alike; a cluster address is not."""
    from dfu_tui.runs.netns import local_ray

    assert local_ray("ray", "") and local_ray("ray", None) and local_ray("ray", "local")
    assert not local_ray("ray", "auto") and not local_ray("ray", "10.0.0.1:6379")
    assert not local_ray("local", "") and not local_ray(["ray"], "") and not local_ray("ray", 5)
