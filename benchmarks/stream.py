"""What the dashboard sends to a terminal while a run streams, as an SSH link carries it:
bytes per second and CPU of the dashboard in a real pseudo-terminal at 80x24 and 120x40, on
the runs list and on the streaming run's monitor, this tree side by side with a git
revision, and `top -d 1` in the same terminal for scale.

    python benchmarks/stream.py [--against REV] [--seconds 15] [--rate 2]

The runs folder holds the two committed fixture runs and one synthetic run of 10 folds x
100 epochs that is still running: a thread appends `--rate` epoch events and one heartbeat
per second to its log while each measure lasts. Everything is written under one temporary
folder, removed at the end.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

from _common import ROOT, scratch
from dashboard import FIXTURE, emit_epoch, synthetic_run

from dfu_tui.runs.events import EventWriter

CLOCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK


def in_terminal(
    argv: list[str], size: tuple[int, int], env: dict[str, str], cwd: Path
) -> tuple[subprocess.Popen[bytes], int, list[tuple[float, int]]]:
    """Start `argv` in a new pseudo-terminal of `size` (columns, rows); a thread drains it
    and records (time, bytes) of every read."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
    )
    os.close(slave)
    reads: list[tuple[float, int]] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            reads.append((time.perf_counter(), len(chunk)))

    threading.Thread(target=drain, daemon=True).start()
    return proc, master, reads


def measure(
    argv: list[str],
    size: tuple[int, int],
    env: dict[str, str],
    cwd: Path,
    seconds: float,
    keys: bytes = b"",
    stream: Path | None = None,
    rate: float = 2.0,
) -> tuple[float, float]:
    """(bytes per second, % of a core) of `argv` over `seconds` in a terminal of `size`,
    after a start-up and `keys`, while `stream`'s log grows at `rate` epochs per second."""
    proc, master, reads = in_terminal(argv, size, env, cwd)
    stop = threading.Event()
    try:
        time.sleep(6.0)  # started and drawn
        if keys:
            os.write(master, keys)
            time.sleep(3.0)
        if stream is not None:

            def write() -> None:
                writer = EventWriter(stream / "events.jsonl")
                n, beat = 1000, time.perf_counter()
                while not stop.wait(1.0 / rate):
                    n += 1
                    emit_epoch(writer, n)
                    if time.perf_counter() - beat >= 1.0:
                        writer.emit("heartbeat", pid=os.getpid())
                        beat = time.perf_counter()
                writer.close()

            threading.Thread(target=write, daemon=True).start()
            time.sleep(2.0)  # the stream under way
        start, cpu0 = time.perf_counter(), cpu_seconds(proc.pid)
        time.sleep(seconds)
        end, cpu1 = time.perf_counter(), cpu_seconds(proc.pid)
        sent = sum(n for t, n in list(reads) if start <= t < end)
        return sent / (end - start), 100 * (cpu1 - cpu0) / (end - start)
    finally:
        stop.set()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(master)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", default="d405592", help="git revision measured beside")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=2.0, help="epoch events per second")
    args = parser.parse_args()
    base = scratch("dfu-stream-")
    other = base / "against"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(other), args.against], cwd=ROOT, check=True
    )
    try:
        runs = base / "runs"
        runs.mkdir()
        for run in (FIXTURE, FIXTURE.parent / "20261128-133945-3b5598"):
            shutil.copytree(run, runs / run.name)
        streaming = runs / "20261201-000000-aaaaaa"  # the newest: the list's first row
        synthetic_run(streaming, folds=10, epochs=100, running=True)
        env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
        env["DFU_TUI_CACHE_DIR"] = str(base / "cache")
        print(
            f"streaming {args.rate:g} epochs/s and a heartbeat each second; {args.seconds:g} s each"
        )
        print(f"{'size':>7} {'view':<9} {'dashboard':<10} {'bytes/s':>9} {'CPU':>7}")
        for size in ((80, 24), (120, 40)):
            top = measure(["top", "-d", "1"], size, env, base, args.seconds)
            label = f"{size[0]}x{size[1]}"
            print(
                f"{label:>7} {'-':<9} {'top -d 1':<10} {top[0]:>9.0f} {top[1]:>6.1f}%", flush=True
            )
            for view, keys in (("runs", b""), ("monitor", b"\r")):
                for name, code in ((args.against, other), ("this tree", ROOT)):
                    argv = [sys.executable, "-m", "dfu_tui", "--runs-dir", str(runs)]
                    argv += ["--config", str(ROOT / "configs" / "default.toml")]
                    tree_env = {**env, "PYTHONPATH": str(code)}
                    rate, cpu = measure(
                        argv, size, tree_env, code, args.seconds, keys, streaming, args.rate
                    )
                    print(
                        f"{label:>7} {view:<9} {name:<10} {rate:>9.0f} {cpu:>6.1f}%"
                        f"  ({rate / max(top[0], 1):.1f}x top)",
                        flush=True,
                    )
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
