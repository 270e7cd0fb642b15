"""A fork server for the tests' `dfu-tui` command lines (`tests.helpers.run_dfu`).

Most fault tests run several short `python -m dfu_tui ...` processes; about two thirds of
each one's CPU was the interpreter starting and importing numpy, pandas, Pillow and
matplotlib again, and a command that splits folds, scores or fits (`run` in the foreground,
`fit`, `predict`, a `resume`) spent 0.6 s more importing scikit-learn and SciPy. This
server imports those third-party libraries once, and the package's modules but the
dashboard's (`ours`: none of them reads the environment or the working folder when
imported, which a test checks; each command runs `dfu_tui.__main__` fresh), then hides
all of it from the garbage collector (`gc.freeze`: a child's collections would otherwise
walk, and so copy, every preloaded object; a short command's CPU halved). It forks one
child per command line: a real process with the caller's argument list, environment,
working folder, umask and standard streams, that runs `python -m dfu_tui` as `runpy` runs
it and exits with its exit code (or is killed by a signal, which the caller sees as a
negative return code, as with `subprocess`).

What differs from a new interpreter is what a preloaded library read when it was imported:
an environment that changes how Python starts or what those libraries read (`PYTHON*`,
`LD_*`, the locale, thread counts, `HOME`) is not served here; the caller starts a new
interpreter then, but for a `PYTHONPATH` that only puts folders before the server's own (the
stand-in's, `tests.helpers.standin_env`): the child puts them on `sys.path` where Python
would and imports the `sitecustomize` they hold, as `site` does at start. It starts a new
interpreter as it does for tests whose subject is how a process starts
(`run_dfu(..., cold=True)`). matplotlib keeps its font cache in the server's folder
whatever `MPLCONFIGDIR` the command sets: the test of where our caches go is cold.

Only the server signals a child, and only one it has not reaped yet (so never a reused
pid): a caller whose timeout passed asks it to, over the connection.

Under `pytest -n`, the controlling process starts one server for all its test processes
(`start_shared`, handed to each through pytest-xdist's `workerinput`: `attach`), so the
libraries are imported once a session, not once per test process (1.3 s of CPU each); a
lone pytest process starts its own on first use. A test process that finds the shared
server gone runs its command lines in new interpreters.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

#: The third-party libraries the server imports before it forks (then `ours()`).
PRELOAD = (
    "numpy",
    "pandas",
    "PIL.Image",
    "PIL.PngImagePlugin",
    "matplotlib.figure",
    "matplotlib.backends.backend_svg",
    "rich.console",
    "rich.table",
    "platformdirs",
    # scikit-learn's parts the commands use (SciPy with them): 0.5 s, about as much for
    # one of them as for all
    "sklearn.model_selection",
    "sklearn.metrics",
    "sklearn.ensemble",
    "sklearn.compose",
    "sklearn.impute",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.tree",
    "sklearn.linear_model",
    "sklearn.utils.class_weight",
    "skops.io",  # a model's forest (`fit`, `predict`): 0.3 s more
)


def ours() -> list[str]:
    """The package's modules a command may import, as the server imports them: all but the
    dashboard's (Textual: the commands do not load it) and the entry points (`__main__`
    runs the command line; each command runs it, as a new interpreter does). None of them
    reads the environment or the working folder when imported, and none loads TensorFlow,
    Keras or Ray (each imports them where it trains): both tested."""
    import pkgutil

    import dfu_tui

    found, folders = [], [(dfu_tui.__path__[0], "dfu_tui.")]
    while folders:
        folder, prefix = folders.pop()
        for module in pkgutil.iter_modules([folder], prefix):
            if module.name == "dfu_tui.tui" or module.name.endswith(".__main__"):
                continue
            found.append(module.name)
            if module.ispkg:
                folders.append(
                    (os.path.join(folder, module.name.rpartition(".")[2]), f"{module.name}.")
                )
    return sorted(found)


#: Environment variables read when Python starts or when a preloaded library is imported
#: (but `MPLCONFIGDIR`: only where matplotlib keeps its font cache, which the server chose;
#: the test of where our caches go starts a new interpreter).
STARTUP_PREFIXES = (
    *("PYTHON", "LD_", "LC_", "OMP_", "OPENBLAS", "MKL_"),
    *("SKLEARN_", "JOBLIB_", "LOKY_", "SCIPY_"),  # scikit-learn's and SciPy's, at import
)
STARTUP_NAMES = ("HOME", "LANG", "LANGUAGE", "TZ")

HEADER = struct.Struct("!I")


def startup_env(env: Mapping[str, str]) -> dict[str, str]:
    """What of `env` a new interpreter reads as it starts (`PYTHONPATH` apart)."""
    return {
        k: v
        for k, v in env.items()
        if (k.startswith(STARTUP_PREFIXES) or k in STARTUP_NAMES) and k != "PYTHONPATH"
    }


def _entries(env: Mapping[str, str]) -> list[str]:
    return env.get("PYTHONPATH", "").split(os.pathsep) if env.get("PYTHONPATH") else []


def extra_path(env: Mapping[str, str], base: Mapping[str, str]) -> list[str] | None:
    """The folders `env`'s `PYTHONPATH` puts before `base`'s, or None where it is not just
    that (another order, a relative or empty entry)."""
    mine, theirs = _entries(base), _entries(env)
    extra = theirs[: len(theirs) - len(mine)]
    if theirs[len(extra) :] != mine or not all(os.path.isabs(p) for p in theirs):
        return None
    return extra


# -- the server ---------------------------------------------------------------------------


def _child(request: dict[str, object], fds: list[int]) -> None:
    """In the forked child: become the command line's process, run it, exit."""
    import atexit
    import runpy

    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, 1 << 16)
    env = request["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update(env)
    cwd = str(request["cwd"])
    os.chdir(cwd)
    os.umask(int(str(request["umask"])))
    sys.path[0] = cwd
    extra = [str(p) for p in request["path"]]  # type: ignore[attr-defined]
    sys.path[1:1] = extra  # where Python puts PYTHONPATH: after the script's folder
    if any(os.path.isfile(os.path.join(p, "sitecustomize.py")) for p in extra):
        sys.modules.pop("sitecustomize", None)
        import sitecustomize  # noqa: F401  # as `site` does when Python starts
    args = request["args"]
    assert isinstance(args, list)
    sys.argv = ["-m", *map(str, args)]
    code: object = 0
    try:
        runpy.run_module(str(request["module"]), run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # as the interpreter's exit does
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code & 0xFF)


def _read_request(conn: socket.socket) -> tuple[dict[str, object], list[int]]:
    head, fds, _flags, _addr = socket.recv_fds(conn, HEADER.size, 3)
    (size,) = HEADER.unpack(head)
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("request cut short")
        body += chunk
    return json.loads(body), fds


def serve(path: str) -> None:
    """Serve at socket `path` until the parent process ends; say when it no longer does (a
    server that could not start, or ended), so that no caller waits for it."""
    try:
        _serve(path)
    finally:  # not in a forked child: it leaves through `os._exit`
        with open(marker(path, "gone"), "a"):
            pass


def _serve(path: str) -> None:
    os.close(os.pidfd_open(os.getpid()))  # Linux 5.3 or later: else no server, new interpreters
    for name in PRELOAD:
        __import__(name)
    for name in ours():
        __import__(name)
    gc.freeze()  # the children's collections leave what was preloaded alone (no copy-on-write)
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    with open(marker(path, "ready"), "x"):  # callers wait for it
        pass
    running: dict[int, socket.socket] = {}  # forked, not reaped yet -> its caller
    while os.getppid() == parent:
        for key, _ in sel.select(timeout=1.0):
            what = key.data
            if key.fileobj is listener:
                conn, _ = listener.accept()
                try:
                    request, fds = _read_request(conn)
                except (OSError, ValueError, struct.error):
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    _child(request, fds)
                for fd in fds:
                    os.close(fd)
                running[pid] = conn
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
                sel.register(os.pidfd_open(pid), selectors.EVENT_READ, ("ended", pid))
                sel.register(conn, selectors.EVENT_READ, ("kill", pid))
            elif what[0] == "kill":  # the caller's timeout passed (or it went away)
                sel.unregister(key.fileobj)
                os.kill(what[1], signal.SIGKILL)  # not reaped yet: still our child
            else:
                pid = what[1]
                sel.unregister(key.fileobj)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                conn = running.pop(pid)
                with contextlib.suppress(KeyError):
                    sel.unregister(conn)
                with contextlib.suppress(OSError):  # the caller gave up
                    conn.sendall(
                        json.dumps({"rc": os.waitstatus_to_exitcode(status)}).encode() + b"\n"
                    )
                conn.close()


# -- the caller ---------------------------------------------------------------------------


def marker(path: str, name: str) -> str:
    """The file the server at socket `path` writes once it listens ("ready"), or once it no
    longer does ("gone")."""
    return os.path.join(os.path.dirname(path), name)


class Unavailable(OSError):
    """The server is gone (nothing was run): the caller starts a new interpreter."""


class Zygote:
    """A fork server: this test process's own (`start`), or the one the controlling pytest
    process started for all its test processes (`attach`)."""

    def __init__(
        self,
        path: str,
        env: dict[str, str],
        base: dict[str, str],
        proc: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.path, self.env, self.base, self.proc = path, env, base, proc
        self.folder = Path(path).parent
        self.gone = False
        self.ready = False

    @classmethod
    def start(cls, wait: bool = True) -> Zygote:
        """Start a server (`wait`: until it listens, else its first caller waits)."""
        folder = Path(tempfile.mkdtemp(prefix="dfu-zygote-"))
        path = str(folder / "socket")
        env = dict(os.environ)
        if not env.get("MPLCONFIGDIR"):  # matplotlib reads it once, when imported
            env["MPLCONFIGDIR"] = str(folder / "matplotlib")
        root = Path(__file__).resolve().parents[1]
        proc = subprocess.Popen(
            [sys.executable, "-c", f"import tests.zygote as z; z.serve({path!r})"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        server = cls(path, startup_env(env), {"PYTHONPATH": env.get("PYTHONPATH", "")}, proc)
        if wait and not server.listens():
            server.close()
            raise RuntimeError("the test fork server did not start")
        return server

    @classmethod
    def attach(cls, shared: Mapping[str, object]) -> Zygote:
        """The server another process started (`describe`)."""
        env, base = shared["env"], shared["base"]
        assert isinstance(env, dict) and isinstance(base, dict)
        return cls(str(shared["path"]), env, base)

    def describe(self) -> dict[str, object]:
        """What `attach` takes (JSON)."""
        return {"path": self.path, "env": self.env, "base": self.base}

    def listens(self, timeout: float = 60.0) -> bool:
        """Whether the server is up (waiting for it to start, once)."""
        import time

        deadline = time.monotonic() + timeout
        while not self.ready and not self.gone:
            if os.path.exists(marker(self.path, "ready")):
                self.ready = True
            elif (
                os.path.exists(marker(self.path, "gone"))
                or (self.proc is not None and self.proc.poll() is not None)
                or time.monotonic() > deadline
            ):
                self.gone = True
            else:
                time.sleep(0.02)
        return self.ready and not self.gone and (self.proc is None or self.proc.poll() is None)

    def serves(self, env: Mapping[str, str]) -> bool:
        return (
            self.listens()
            and startup_env(env) == self.env
            and extra_path(env, self.base) is not None
        )

    def run(
        self,
        args: list[str],
        env: Mapping[str, str],
        cwd: Path,
        timeout: float,
        module: str = "dfu_tui",
    ) -> subprocess.CompletedProcess[str]:
        """`python -m MODULE ARGS` in a forked process."""
        import time

        if not self.listens():
            raise Unavailable(f"the test fork server at {self.path} is gone")
        deadline = time.monotonic() + timeout
        with _LOCK:  # the umask is the process's: read it one caller at a time
            umask = os.umask(0)
            os.umask(umask)
        request = {
            "module": module,
            "args": args,
            "env": dict(env),
            "cwd": str(cwd),
            "umask": umask,
            "path": extra_path(env, self.base) or [],
        }
        body = json.dumps(request).encode()
        r_out, w_out = os.pipe()
        r_err, w_err = os.pipe()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                sock.connect(self.path)
            except (FileNotFoundError, ConnectionRefusedError):
                self.gone = True
                sock.close()
                os.close(r_out)
                os.close(r_err)
                raise Unavailable(f"the test fork server at {self.path} is gone") from None
            socket.send_fds(sock, [HEADER.pack(len(body))], [0, w_out, w_err])
            sock.sendall(body)
        finally:
            os.close(w_out)
            os.close(w_err)
        reader = sock.makefile("rb")
        json.loads(reader.readline())  # forked
        out, err = bytearray(), bytearray()
        sel = selectors.DefaultSelector()
        sel.register(r_out, selectors.EVENT_READ, out)
        sel.register(r_err, selectors.EVENT_READ, err)
        timed_out = False
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                if timed_out:
                    break  # killed, and something it started still holds a stream
                timed_out = True
                sock.sendall(b"kill")  # the server signals it (its unreaped child)
                deadline = time.monotonic() + 5  # what it wrote before, then EOF
                continue
            for key, _ in sel.select(timeout=left):
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    key.data.extend(chunk)
                else:
                    sel.unregister(key.fd)
                    os.close(key.fd)
        for key in list(sel.get_map().values()):
            os.close(key.fd)
        line = reader.readline()
        reader.close()
        sock.close()
        stdout, stderr = _text(out), _text(err)
        cmd = [sys.executable, "-m", module, *args]
        if timed_out:
            raise subprocess.TimeoutExpired(cmd, timeout, output=stdout, stderr=stderr)
        return subprocess.CompletedProcess(cmd, int(json.loads(line)["rc"]), stdout, stderr)

    def close(self) -> None:
        """End the server this process started (an attached one is its starter's)."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def _text(data: bytearray) -> str:
    """As `subprocess` decodes with `text=True`: the locale's encoding, universal newlines."""
    import locale

    text = bytes(data).decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


_SERVER: list[Zygote | None] = []  # empty until the first call; [None]: it cannot start
_LOCK = threading.Lock()


def _keep(started: Zygote) -> Zygote:
    import atexit

    atexit.register(started.close)
    return started


def server() -> Zygote | None:
    """This test process's server (the shared one if attached, else its own, started once),
    or None where it cannot start."""
    with _LOCK:
        if not _SERVER:
            try:
                _SERVER.append(_keep(Zygote.start()))
            except (OSError, RuntimeError):
                _SERVER.append(None)
        return _SERVER[0]


def start_shared() -> Zygote | None:
    """In the controlling pytest process: the server for all its test processes (started on
    the first call, without waiting for it to listen), or None where it cannot start."""
    with _LOCK:
        if not _SERVER:
            try:
                _SERVER.append(_keep(Zygote.start(wait=False)))
            except OSError:
                _SERVER.append(None)
        return _SERVER[0]


def attach(shared: Mapping[str, object]) -> None:
    """In a test process: use the server the controlling process started (`start_shared`)."""
    with _LOCK:
        _SERVER[:] = [Zygote.attach(shared)]
